import { ApiObject, JsonPatch } from 'cdk8s';
import { AgentPool, AgentTask, CredentialSecret, EgressAllowlist, Harness } from '../../constructs';
import { checkPodSecurityRestricted, selects } from '../../policy/rules';
import { App, Chart } from 'cdk8s';
import { examplePlatform } from '../../stacks/example-platform';
import { buildPlatform } from '../../stacks/platform-definition';
import { admits, canConnect, mayReach, podOf, PodRef } from '../support/netpol';
import { find, keyedPool, newPlatform, synth, synthProblems } from '../support/synth';

describe('security policy runs at synth time', () => {
  test('a compliant platform synthesizes with no problems', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 'hello', { pool, prompt: 'say hello' });
    expect(synthProblems(chart)).toEqual([]);
  });

  test('agent containers reference no Secret unless it was granted with exposeToAgent: worker Deployments, Jobs and Job templates', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    CredentialSecret.fromSecretName(platform, 'openai', 'openai-api', ['OPENAI_API_KEY']).grantTo(pool);
    CredentialSecret.fromSecretName(platform, 'git', 'git-token', ['token']).grantTo(pool, { git: { host: 'github.com', key: 'token' } });
    CredentialSecret.fromSecretName(platform, 'auth', 'codex-auth', ['auth.json']).grantTo(pool, { files: { '.codex/auth.json': 'auth.json' }, exposeToAgent: true });
    new AgentTask(platform, 'hello', { pool, prompt: 'say hello' });
    // As synthesized: the model key is the gateway's, the git token the fetch step's, the file the agent's by choice.
    expect(synthProblems(chart)).toEqual([]);
    const objects = synth(chart);
    const job = objects.find((o) => o.kind === 'Job') as any;
    expect(job.spec.template.metadata.annotations).toEqual({ 'paddock.dev/agent-secrets': 'codex-auth' });
    // A hand-added reference to a Secret the pool did not expose fails, wherever the agent runs.
    pool.workers.addJsonPatch(JsonPatch.add('/spec/template/spec/containers/0/env/-', { name: 'LEAK', valueFrom: { secretKeyRef: { name: 'openai-api', key: 'OPENAI_API_KEY' } } }));
    pool.workers.addJsonPatch(JsonPatch.add('/spec/template/spec/containers/0/envFrom', [{ secretRef: { name: 'git-token' } }]));
    ApiObject.of(platform.node.findAll().find((c) => c instanceof ApiObject && (c as ApiObject).kind === 'Job')!).addJsonPatch(
      JsonPatch.add('/spec/template/spec/volumes/-', { name: 'sneaky', secret: { secretName: 'git-token' } }),
      JsonPatch.add('/spec/template/spec/containers/0/volumeMounts/-', { name: 'sneaky', mountPath: '/sneaky' }),
    );
    const problems = synthProblems(chart);
    const fix = 'grant model keys without exposeToAgent (the model gateway holds them) and git credentials with { git } (the fetch step holds them), or grant it with exposeToAgent: true';
    expect(problems).toContain(`Deployment "pool-codex": container "runner" references Secret "openai-api" (env LEAK), which the agent could read; ${fix}`);
    expect(problems).toContain(`Deployment "pool-codex": container "runner" references Secret "git-token" (envFrom), which the agent could read; ${fix}`);
    expect(problems).toContain(`Job "${job.metadata.name}": container "runner" references Secret "git-token" (volume "sneaky"), which the agent could read; ${fix}`);
  });

  test('the Job template in the pool ConfigMap is checked too', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    CredentialSecret.fromSecretName(platform, 'openai', 'openai-api', ['OPENAI_API_KEY']).grantTo(pool);
    const template = pool.jobTemplate.bind(pool);
    (pool as any).jobTemplate = () => {
      const job = template();
      job.spec!.template.spec!.containers[0].env!.push({ name: 'OPENAI_API_KEY', valueFrom: { secretKeyRef: { name: 'openai-api', key: 'OPENAI_API_KEY' } } });
      return job;
    };
    expect(synthProblems(chart).join('\n')).toMatch(/Job "\$\{JOB_NAME\} \(job-template.yaml in ConfigMap "pool-codex"\)": container "runner" references Secret "openai-api" \(env OPENAI_API_KEY\)/);
  });

  test('a privileged container breaks Pod Security "restricted"', () => {
    const { chart, platform } = newPlatform();
    platform.controller.addJsonPatch(JsonPatch.add('/spec/template/spec/containers/0/securityContext/privileged', true));
    platform.controller.addJsonPatch(JsonPatch.remove('/spec/template/spec/containers/0/securityContext/capabilities'));
    const problems = synthProblems(chart);
    expect(problems).toContain('Deployment "paddock-controller": container "controller": securityContext.privileged must not be true');
    expect(problems).toContain('Deployment "paddock-controller": container "controller": securityContext.capabilities.drop must include "ALL"');
  });

  test('an agent pod running as root breaks Pod Security "restricted", in its Job template too', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    pool.workers.addJsonPatch(JsonPatch.replace('/spec/template/spec/securityContext/runAsNonRoot', false));
    pool.workers.addJsonPatch(JsonPatch.replace('/spec/template/spec/containers/0/securityContext/runAsNonRoot', false));
    expect(synthProblems(chart)).toContain('Deployment "pool-codex": container "runner": runAsNonRoot must be true (in the pod or container securityContext)');
  });

  test('hostPath volumes and host namespaces are refused', () => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'bad' },
      spec: { hostNetwork: true, volumes: [{ name: 'root', hostPath: { path: '/' } }], containers: [{ name: 'c', image: 'i' }] },
    };
    const problems = checkPodSecurityRestricted(pod);
    expect(problems).toContain('Pod "bad": hostNetwork must not be true (Pod Security "restricted")');
    expect(problems.join('\n')).toMatch(/volume "root" is of type hostPath/);
  });

  test('an RBAC wildcard fails synthesis', () => {
    const { chart, platform } = newPlatform();
    new ApiObject(platform, 'extra-role', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'too-much', namespace: 'paddock' },
      rules: [{ apiGroups: [''], resources: ['*'], verbs: ['get'] }],
    });
    expect(synthProblems(chart)).toEqual(['Role "too-much": rules[0].resources uses a wildcard; list what is needed by name']);
  });

  test('a literal credential value copied into a task fails synthesis', () => {
    const { chart, platform } = newPlatform();
    CredentialSecret.fromLiteral(platform, 'token', { secretName: 'tok', values: { TOKEN: 'hunter2-very-secret' }, allowPlaintextInManifests: true });
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 'leak', { pool, prompt: 'p', env: { TOKEN: 'hunter2-very-secret' } });
    expect(synthProblems(chart)).toEqual([
      'ConfigMap "task-leak": key "task.json" contains the value of a credential; reference the Secret with CredentialSecret.grantTo(pool) instead',
    ]);
  });

  test('something shaped like an API key in a harness ConfigMap fails synthesis', () => {
    const { chart, platform } = newPlatform();
    keyedPool(platform, 'codex', { harnesses: [Harness.codex({ env: { OPENAI_API_KEY: 'sk-proj-abcdefghijklmnopqrstuvwxyz0123' } })] });
    expect(synthProblems(chart)).toEqual([
      'ConfigMap "harness-codex": key "harness.json" contains what looks like an OpenAI API key; keep credentials in a Secret and grant them with CredentialSecret.grantTo(pool)',
    ]);
  });

  test('agent pods not covered by a default-deny NetworkPolicy fail synthesis', () => {
    const { chart, platform } = newPlatform();
    keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    const defaultDeny = platform.node.findChild('default-deny') as ApiObject;
    defaultDeny.addJsonPatch(JsonPatch.replace('/spec/podSelector', { matchLabels: { 'app.kubernetes.io/component': 'controller' } }));
    const problems = synthProblems(chart);
    expect(problems).toContain(
      'Deployment "pool-codex": its agent pods are not selected by a default-deny NetworkPolicy (ingress and egress) in namespace "paddock"; keep the Platform\'s default-deny policy',
    );
    expect(problems.join('\n')).toMatch(/job-template.yaml in ConfigMap "pool-codex".*not selected by a default-deny/);
  });

  test('hostname egress rules fail closed under the networkpolicy backend, naming the backends that can enforce them', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    pool.allowEgressTo(EgressAllowlist.forHarnesses(platform, 'providers', [Harness.codex()], { backend: 'networkpolicy' }));
    expect(synthProblems(chart)).toEqual([
      expect.stringMatching(
        /^EgressAllowlist "providers": host rule "api.openai.com" cannot be enforced by backend "networkpolicy", which sees only IP addresses; .*Use backend "proxy" .* or "cilium"/,
      ),
    ]);
  });

  test('hostname egress rules synthesize under the default (proxy) backend, the proxy pod hardened like every pod', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    pool.allowEgressTo(EgressAllowlist.forHarnesses(platform, 'providers', [Harness.codex()]));
    expect(synthProblems(chart)).toEqual([]);
    const proxy = synth(chart).find((o) => o.kind === 'Deployment' && o.metadata?.name === 'egress-proxy-providers')!;
    expect(checkPodSecurityRestricted(proxy)).toEqual([]);
  });

  test('a proxy pod that runs as root breaks Pod Security "restricted"', () => {
    const { chart, platform } = newPlatform();
    const allowlist = new EgressAllowlist(platform, 'providers', { rules: [{ host: 'api.openai.com' }] });
    const deployment = allowlist.proxy!.node.findChild('deployment') as ApiObject;
    deployment.addJsonPatch(JsonPatch.replace('/spec/template/spec/containers/0/securityContext/runAsUser', 0));
    expect(synthProblems(chart)).toContain('Deployment "egress-proxy-providers": container "squid": securityContext.runAsUser must not be 0 (root)');
  });

  test('all problems are listed at once', () => {
    const { chart, platform } = newPlatform();
    platform.controller.addJsonPatch(JsonPatch.add('/spec/template/spec/hostPID', true));
    new ApiObject(platform, 'r', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'r' }, rules: [{ apiGroups: ['*'], resources: ['pods'], verbs: ['*'] }] });
    expect(synthProblems(chart)).toHaveLength(3);
  });
});

describe('label selectors', () => {
  test.each([
    [{}, { a: '1' }, true],
    [{ matchLabels: { a: '1' } }, { a: '1', b: '2' }, true],
    [{ matchLabels: { a: '1' } }, { a: '2' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'In', values: ['1', '2'] }] }, { a: '2' }, true],
    [{ matchExpressions: [{ key: 'a', operator: 'NotIn', values: ['1'] }] }, { a: '1' }, false],
    [{ matchExpressions: [{ key: 'a', operator: 'Exists' }] }, {}, false],
    [{ matchExpressions: [{ key: 'a', operator: 'DoesNotExist' }] }, {}, true],
  ])('%j selects %j: %s', (selector, labels, expected) => {
    expect(selects(selector as any, labels)).toBe(expected);
  });
});

describe('the controller\'s two ports under the synthesized NetworkPolicies', () => {
  /** A warm pool (codex), a second warm pool (gemini-ish: another codex pool), a job pool with a declared task (claude). */
  function platformObjects(props: Parameters<typeof newPlatform>[0] = {}) {
    const { chart, platform } = newPlatform(props);
    keyedPool(platform, 'codex', { harnesses: [Harness.codex()], mode: 'warm', replicas: 2 });
    keyedPool(platform, 'other', { harnesses: [Harness.codex()], mode: 'warm' });
    const jobs = keyedPool(platform, 'claude', { harnesses: [Harness.claudeCode()] });
    new AgentTask(platform, 'hello', { pool: jobs, prompt: 'say hello' });
    return synth(chart);
  }
  const ports = (objects: any[]) => {
    const container = find(objects, 'Deployment', 'paddock-controller').spec.template.spec.containers[0];
    const byName = Object.fromEntries(container.ports.map((p: any) => [p.name, p.containerPort]));
    return { task: byName.http as number, worker: byName.workers as number };
  };
  const pods = (objects: any[]) => ({
    controller: podOf(find(objects, 'Deployment', 'paddock-controller')),
    warm: podOf(find(objects, 'Deployment', 'pool-codex')),
    otherWarm: podOf(find(objects, 'Deployment', 'pool-other')),
    jobPoolWorker: podOf(find(objects, 'Deployment', 'pool-claude')),
    job: podOf(objects.find((o) => o.kind === 'Job')),
    tool: { namespace: 'paddock', labels: { app: 'ci-submitter' } } as PodRef,
  });

  test('the controller listens on both, the Service exposes both (http, workers), warm workers are pointed at the worker port', () => {
    const objects = platformObjects();
    expect(ports(objects)).toEqual({ task: 8080, worker: 8081 });
    expect(find(objects, 'Deployment', 'paddock-controller').spec.template.spec.containers[0].args).toEqual(expect.arrayContaining(['--port', '8080', '--worker-port', '8081']));
    expect(find(objects, 'Service', 'paddock-controller').spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'workers', port: 8081, targetPort: 'workers', protocol: 'TCP' },
      { name: 'metrics', port: 9090, targetPort: 'metrics', protocol: 'TCP' },
    ]);
    expect(find(objects, 'Deployment', 'pool-codex').spec.template.spec.containers[0].args).toEqual(['worker', '--pool', 'codex', '--controller', 'http://paddock-controller.paddock.svc:8081', '--isolation', 'container', '--wipe', '/tmp', '--wipe', '/home/agent']);
  });

  test('agent pods (warm workers, task Jobs) are not admitted to the task API port; pods without agent code are', () => {
    const objects = platformObjects();
    const { task } = ports(objects);
    const p = pods(objects);
    for (const [name, pod] of Object.entries({ warm: p.warm, otherWarm: p.otherWarm, job: p.job, jobPoolWorker: p.jobPoolWorker })) {
      expect({ name, agent: pod.labels['paddock.dev/agent'] }).toEqual({ name, agent: 'true' });
      expect({ name, admitted: admits(objects, p.controller, pod, task) }).toEqual({ name, admitted: false });
      expect({ name, connects: canConnect(objects, pod, p.controller, task) }).toEqual({ name, connects: false });
    }
    expect(admits(objects, p.controller, p.tool, task)).toBe(true);
    // Another namespace's pods are not admitted either.
    expect(admits(objects, p.controller, { namespace: 'elsewhere', labels: {} }, task)).toBe(false);
  });

  test('warm workers are admitted to the worker port, and their egress reaches only that port of the controller', () => {
    const objects = platformObjects();
    const { task, worker } = ports(objects);
    const p = pods(objects);
    for (const pod of [p.warm, p.otherWarm]) {
      expect(admits(objects, p.controller, pod, worker)).toBe(true);
      expect(canConnect(objects, pod, p.controller, worker)).toBe(true);
      expect(mayReach(objects, pod, p.controller, task)).toBe(false);
    }
    // Job pods, a job pool's (idle) workers and pods without agent code get nothing on the worker port.
    for (const pod of [p.job, p.jobPoolWorker, p.tool]) expect(admits(objects, p.controller, pod, worker)).toBe(false);
    expect(mayReach(objects, p.job, p.controller, worker)).toBe(false);
    // The warm pool's own egress policy to the controller names only the worker port.
    expect(find(objects, 'NetworkPolicy', 'pool-codex-controller').spec.egress.flatMap((r: any) => r.ports.map((x: any) => x.port))).toEqual([worker]);
  });

  test('custom ports: controller.port and controller.workerPort; no warm pool: the worker port admits no one', () => {
    const objects = platformObjects({ controller: { port: 9000, workerPort: 9001 } });
    expect(ports(objects)).toEqual({ task: 9000, worker: 9001 });
    const p = pods(objects);
    expect(canConnect(objects, p.warm, p.controller, 9001)).toBe(true);
    expect(canConnect(objects, p.warm, p.controller, 9000)).toBe(false);
    expect(find(objects, 'Deployment', 'pool-codex').spec.template.spec.containers[0].args).toContain('http://paddock-controller.paddock.svc:9001');

    const { chart, platform } = newPlatform();
    new AgentTask(platform, 'hello', { pool: keyedPool(platform, 'claude', { harnesses: [Harness.claudeCode()] }), prompt: 'x' });
    const jobOnly = synth(chart);
    const controller = podOf(find(jobOnly, 'Deployment', 'paddock-controller'));
    // The task API and the metrics port only: no rule names the worker port.
    expect(find(jobOnly, 'NetworkPolicy', 'paddock-controller').spec.ingress.flatMap((r: any) => r.ports.map((x: any) => x.port))).toEqual([8080, 9090]);
    expect(admits(jobOnly, controller, podOf(find(jobOnly, 'Deployment', 'pool-claude')), 8081)).toBe(false);
    expect(() => newPlatform({ controller: { port: 8081, workerPort: 8081 } })).toThrow(/the worker lease API needs its own port/);
  });

  test('the example platform: its warm claude workers reach only the worker port; codex Jobs reach neither', () => {
    const app = new App({ outdir: require('os').tmpdir() });
    const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
    buildPlatform(chart, 'platform', examplePlatform);
    const objects = synth(chart);
    const { task, worker } = ports(objects);
    const controller = podOf(find(objects, 'Deployment', 'paddock-controller'));
    const claude = podOf(find(objects, 'Deployment', 'pool-claude'));
    expect(canConnect(objects, claude, controller, worker)).toBe(true);
    expect(canConnect(objects, claude, controller, task)).toBe(false);
    const codexJobs = objects.filter((o) => o.kind === 'Job').map(podOf);
    expect(codexJobs.length).toBeGreaterThan(0);
    for (const job of codexJobs) {
      expect(canConnect(objects, job, controller, task)).toBe(false);
      expect(canConnect(objects, job, controller, worker)).toBe(false);
    }
  });
});
