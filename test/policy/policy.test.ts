import { ApiObject, JsonPatch } from 'cdk8s';
import { AgentPool, AgentTask, CredentialSecret, EgressAllowlist, Harness } from '../../constructs';
import { checkPodSecurityRestricted, selects } from '../../policy/rules';
import { newPlatform, synth, synthProblems } from '../support/synth';

describe('security policy runs at synth time', () => {
  test('a compliant platform synthesizes with no problems', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 'hello', { pool, prompt: 'say hello' });
    expect(synthProblems(chart)).toEqual([]);
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
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
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
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 'leak', { pool, prompt: 'p', env: { TOKEN: 'hunter2-very-secret' } });
    expect(synthProblems(chart)).toEqual([
      'ConfigMap "task-leak": key "task.json" contains the value of a credential; reference the Secret with CredentialSecret.grantTo(pool) instead',
    ]);
  });

  test('something shaped like an API key in a harness ConfigMap fails synthesis', () => {
    const { chart, platform } = newPlatform();
    new AgentPool(platform, 'codex', { harnesses: [Harness.codex({ env: { OPENAI_API_KEY: 'sk-proj-abcdefghijklmnopqrstuvwxyz0123' } })] });
    expect(synthProblems(chart)).toEqual([
      'ConfigMap "harness-codex": key "harness.json" contains what looks like an OpenAI API key; keep credentials in a Secret and grant them with CredentialSecret.grantTo(pool)',
    ]);
  });

  test('agent pods not covered by a default-deny NetworkPolicy fail synthesis', () => {
    const { chart, platform } = newPlatform();
    new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
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
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    pool.allowEgressTo(EgressAllowlist.forHarnesses(platform, 'providers', [Harness.codex()], { backend: 'networkpolicy' }));
    expect(synthProblems(chart)).toEqual([
      expect.stringMatching(
        /^EgressAllowlist "providers": host rule "api.openai.com" cannot be enforced by backend "networkpolicy", which sees only IP addresses; .*Use backend "proxy" .* or "cilium"/,
      ),
    ]);
  });

  test('hostname egress rules synthesize under the default (proxy) backend, the proxy pod hardened like every pod', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
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
