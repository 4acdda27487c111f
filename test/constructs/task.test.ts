import { parse as parseYaml } from 'yaml';
import { Duration } from 'cdk8s';
import { AgentPool, AgentTask, CredentialSecret, EgressAllowlist, Harness, SandboxProfile } from '../../constructs';
import { validateSpec } from '../../policy/specs';
import { expectValidK8s } from '../support/k8s-schema';
import { find, keyedPool, newPlatform, synth } from '../support/synth';

function taskJob(props: Partial<ConstructorParameters<typeof AgentTask>[2]> = {}) {
  const { chart, platform } = newPlatform();
  const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
  const task = new AgentTask(platform, 'fix', { pool, prompt: 'fix it', ...props });
  const objects = synth(chart);
  return { task, objects, job: objects.find((o) => o.kind === 'Job') as any };
}

describe('AgentTask', () => {
  test('synthesizes a task ConfigMap the runner schema accepts', () => {
    const { objects } = taskJob({ sources: [{ url: 'https://github.com/octocat/Hello-World.git', ref: '7fd1a60', subPath: 'docs' }] });
    const spec = JSON.parse(find(objects, 'ConfigMap', 'task-fix').data['task.json']);
    expect(validateSpec('Task', spec)).toEqual([]);
    expect(spec).toMatchObject({
      name: 'fix',
      pool: 'codex',
      harness: 'codex',
      model: 'gpt-5-codex',
      timeoutSeconds: 1800,
      sources: [{ name: 'hello-world', type: 'git_https', ref: '7fd1a60', subPath: 'docs', depth: 1 }],
    });
  });

  test('a prompt over the argv limit needs a harness that takes it on stdin or as a file', () => {
    const long = 'x'.repeat(100 * 1024 + 1);
    expect(() => taskJob({ prompt: long })).toThrow(
      /^AgentTask "fix": prompt: is 102401 bytes, over the 102400 bytes a prompt may have as an argv element \(\{prompt\}\); shorten it, or pass it with promptVia "stdin" or "file" \(an option of every preset\), or use a harness whose command takes \{prompt_file\} \(or neither placeholder: stdin\) \(harness "codex" passes it as an argument\)$/,
    );
    expect(() => taskJob({ prompt: 'x'.repeat(100 * 1024) })).not.toThrow();
    for (const promptVia of ['stdin', 'file'] as const) {
      const { platform } = newPlatform();
      const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex({ promptVia })] });
      expect(() => new AgentTask(platform, 'fix', { pool, prompt: long })).not.toThrow();
    }
  });

  test('the Job name carries a hash of the spec: a changed task runs again, an unchanged one does not', () => {
    const a = taskJob().job.metadata.name;
    expect(a).toMatch(/^fix-[0-9a-f]{10}$/);
    expect(taskJob().job.metadata.name).toBe(a);
    expect(taskJob({ prompt: 'fix it better' }).job.metadata.name).not.toBe(a);
    expect(taskJob({ model: 'o3' }).job.metadata.name).not.toBe(a);
  });

  test('the Job runs the runner in the pool sandbox with the task, pool and harness mounted', () => {
    const { job } = taskJob({ timeout: Duration.minutes(10) });
    const pod = job.spec.template.spec;
    expect(job.spec.activeDeadlineSeconds).toBe(600 + 120);
    expect(job.spec.backoffLimit).toBe(0);
    expect(pod.runtimeClassName).toBe('gvisor');
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.containers[0].image).toBe(Harness.codex().image);
    const volumes = Object.fromEntries(pod.volumes.map((v: any) => [v.name, v]));
    expect(volumes.task.configMap.name).toBe('task-fix');
    expect(volumes.harness.configMap.name).toBe('harness-codex');
    expect(volumes.pool.configMap.name).toBe('pool-codex');
    expect(volumes.workspace.emptyDir.sizeLimit).toBe('10Gi');
    expect(job.spec.template.metadata.labels).toMatchObject({ 'paddock.dev/task': 'fix', 'paddock.dev/pool': 'codex', 'paddock.dev/agent': 'true' });
  });

  test('priority reaches task.json (the controller orders the queue by it); left out it stays out (500)', () => {
    const spec = (objects: any[]) => JSON.parse(find(objects, 'ConfigMap', 'task-fix').data['task.json']);
    expect(spec(taskJob({ priority: 900 }).objects).priority).toBe(900);
    expect(spec(taskJob().objects).priority).toBeUndefined();
  });

  test('createJob: false leaves dispatch to the controller', () => {
    const { objects } = taskJob({ createJob: false });
    expect(objects.some((o) => o.kind === 'Job')).toBe(false);
    expect(find(objects, 'ConfigMap', 'task-fix')).toBeDefined();
  });

  test('a session task in a job pool: its task ConfigMap only, the controller creates its Job when the session\'s lock is free', () => {
    const { objects } = taskJob({ session: { name: 'fix', create: true } });
    expect(objects.some((o) => o.kind === 'Job')).toBe(false);
    expect(JSON.parse(find(objects, 'ConfigMap', 'task-fix').data['task.json'])).toMatchObject({ pool: 'codex', session: { name: 'fix', create: true } });
  });

  test('createJob: true with a session is refused, naming the field and the fix', () => {
    expect(() => taskJob({ session: { name: 'fix' }, createJob: true })).toThrow(
      /AgentTask "fix".*createJob: a task with a session cannot have its Job written at synth time: the Job must wait until the session's task before it has ended, and carry the state that run saved. Remove createJob \(the controller creates the Job\), or remove session/,
    );
  });

  test('grants and allowlists added after the task still reach its Job', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 'fix', { pool: 'codex', prompt: 'p' });
    CredentialSecret.fromSecretName(platform, 'openai', 'openai-api', ['OPENAI_API_KEY']).grantTo(pool);
    pool.allowEgressTo(new EgressAllowlist(platform, 'web', { rules: [{ cidr: '0.0.0.0/0' }] }));
    const job = synth(chart).find((o) => o.kind === 'Job') as any;
    expect(job.spec.template.spec.volumes.map((v: any) => v.name)).toContain('gateway-token');
    expect(job.spec.template.metadata.labels['egress.paddock.dev/web']).toBe('allow');
  });
});

describe('AgentPool', () => {
  test('credential files are mounted read-only in the agent container; git credentials only in the Job\'s fetch step and the controller', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()], sandbox: SandboxProfile.none() });
    CredentialSecret.fromSecretName(platform, 'auth', 'codex-auth', ['auth.json']).grantTo(pool, { files: { '.codex/auth.json': 'auth.json' }, exposeToAgent: true });
    CredentialSecret.fromSecretName(platform, 'git', 'git-token', ['token']).grantTo(pool, { git: { host: 'github.com', key: 'token' } });
    const objects = synth(chart);
    expectValidK8s(objects);
    const spec = JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json']);
    expect(spec.credentials).toEqual({
      files: [{ path: '.codex/auth.json', source: '/var/run/paddock/secrets/codex-auth/auth.json', secret: 'codex-auth', key: 'auth.json' }],
      git: [{ host: 'github.com', username: 'x-access-token', passwordFile: '/var/run/paddock/secrets/git-token/token', secret: 'git-token', key: 'token' }],
    });
    const pod = find(objects, 'Deployment', 'pool-codex').spec.template.spec;
    expect(pod.runtimeClassName).toBeUndefined();
    expect(pod.volumes).toContainEqual({ name: 'secret-codex-auth', secret: { secretName: 'codex-auth', items: [{ key: 'auth.json', path: 'auth.json' }], defaultMode: 0o440 } });
    // The worker pod has no git Secret at all.
    expect(JSON.stringify(pod)).not.toContain('git-token');
    const job = parseYaml(find(objects, 'ConfigMap', 'pool-codex').data['job-template.yaml']).spec.template.spec;
    const gitMount = { name: 'secret-git-token', mountPath: '/var/run/paddock/secrets/git-token', readOnly: true };
    expect(job.initContainers.map((c: any) => [c.name, c.args])).toEqual([['fetch', ['run', '--phase', 'fetch']]]);
    expect(job.initContainers[0].volumeMounts).toContainEqual(gitMount);
    expect(job.containers[0].args).toEqual(['run', '--phase', 'agent']);
    expect(JSON.stringify(job.containers[0])).not.toContain('git-token');
  });

  test('a warm pool\'s git credential is mounted by the controller (which fetches its sources), never by its workers', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'warm', { harnesses: [Harness.codex()], mode: 'warm', sandbox: SandboxProfile.none() });
    pool.allowEgressTo(new EgressAllowlist(platform, 'git-hosts', { rules: [{ host: 'git.example.com' }] }));
    CredentialSecret.fromSecretName(platform, 'git', 'git-token', ['token']).grantTo(pool, { git: { host: 'git.example.com', key: 'token' } });
    const objects = synth(chart);
    expect(JSON.stringify(find(objects, 'Deployment', 'pool-warm').spec.template)).not.toContain('git-token');
    const controller = find(objects, 'Deployment', 'paddock-controller').spec.template;
    expect(controller.spec.volumes).toContainEqual({ name: 'secret-git-token', secret: { secretName: 'git-token', items: [{ key: 'token', path: 'token' }], defaultMode: 0o440 } });
    expect(controller.spec.containers[0].volumeMounts).toContainEqual({ name: 'secret-git-token', mountPath: '/var/run/paddock/secrets/git-token', readOnly: true });
    // It fetches through the pool's egress (the allowlist's proxy admits pods with this label).
    expect(controller.metadata.labels['egress.paddock.dev/git-hosts']).toBe('allow');
  });

  test('pod labels say the pool and its capabilities', () => {
    const { chart, platform } = newPlatform();
    keyedPool(platform, 'mixed', { harnesses: [Harness.codex(), Harness.claudeCode()] });
    const labels = find(synth(chart), 'Deployment', 'pool-mixed').spec.template.metadata.labels;
    expect(labels).toMatchObject({
      'paddock.dev/pool': 'mixed',
      'capability.paddock.dev/harness.codex': 'true',
      'capability.paddock.dev/harness.claude-code': 'true',
    });
  });

  test('a granted name cannot be granted twice', () => {
    const { platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    CredentialSecret.fromSecretName(platform, 'a', 'a', ['OPENAI_API_KEY']).grantTo(pool);
    expect(() => CredentialSecret.fromSecretName(platform, 'b', 'b', ['OPENAI_API_KEY']).grantTo(pool)).toThrow(
      'AgentPool "codex": environment variable "OPENAI_API_KEY" is granted twice; grant each once',
    );
  });
});

describe('SandboxProfile', () => {
  test.each([
    [SandboxProfile.gvisor(), 'gvisor', 'runsc'],
    [SandboxProfile.kata(), 'kata', 'kata'],
    [SandboxProfile.custom({ handler: 'kata-qemu', overhead: { memory: '200Mi' } }), 'kata-qemu', 'kata-qemu'],
  ])('%#: synthesizes its RuntimeClass and applies it to agent pods', (profile, name, handler) => {
    const { chart, platform } = newPlatform();
    keyedPool(platform, 'p', { harnesses: [Harness.codex()], sandbox: profile });
    const objects = synth(chart);
    expectValidK8s(objects);
    expect(find(objects, 'RuntimeClass', name).handler).toBe(handler);
    expect(find(objects, 'Deployment', 'pool-p').spec.template.spec.runtimeClassName).toBe(name);
  });

  test('createRuntimeClass: false uses a RuntimeClass the cluster admin owns', () => {
    const { chart, platform } = newPlatform();
    keyedPool(platform, 'p', { harnesses: [Harness.codex()], sandbox: SandboxProfile.gvisor({ createRuntimeClass: false }) });
    const objects = synth(chart);
    expect(objects.some((o) => o.kind === 'RuntimeClass')).toBe(false);
    expect(find(objects, 'Deployment', 'pool-p').spec.template.spec.runtimeClassName).toBe('gvisor');
  });

  test('scheduling and overhead land in the RuntimeClass', () => {
    const { chart, platform } = newPlatform();
    const sandbox = SandboxProfile.gvisor({ nodeSelector: { sandbox: 'gvisor' }, tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }] });
    keyedPool(platform, 'p', { harnesses: [Harness.codex()], sandbox });
    const rc = find(synth(chart), 'RuntimeClass', 'gvisor');
    expect(rc.overhead).toEqual({ podFixed: { cpu: '100m', memory: '64Mi' } });
    expect(rc.scheduling).toEqual({ nodeSelector: { sandbox: 'gvisor' }, tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }] });
  });
});

describe('EgressAllowlist', () => {
  test('a CIDR rule keeps private ranges and the metadata endpoint out unless named', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'p', { harnesses: [Harness.codex()] });
    pool.allowEgressTo(new EgressAllowlist(platform, 'web', { rules: [{ cidr: '0.0.0.0/0' }, { cidr: '10.1.2.0/24', ports: [5432] }, { cidr: '::/0' }] }));
    const objects = synth(chart);
    expectValidK8s(objects);
    const np = find(objects, 'NetworkPolicy', 'egress-web');
    expect(np.spec.podSelector).toEqual({ matchLabels: { 'egress.paddock.dev/web': 'allow' } });
    expect(np.spec.policyTypes).toEqual(['Egress']);
    const [dns, world, named, world6] = np.spec.egress;
    expect(dns.ports).toEqual([{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
    expect(dns.to[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'kube-system' });
    expect(world.to[0].ipBlock).toEqual({
      cidr: '0.0.0.0/0',
      except: ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'],
    });
    expect(world.ports).toEqual([{ protocol: 'TCP', port: 443 }]);
    expect(named.to[0].ipBlock).toEqual({ cidr: '10.1.2.0/24' });
    expect(world6.to[0].ipBlock).toEqual({ cidr: '::/0', except: ['::1/128', 'fc00::/7', 'fe80::/10'] });
  });
});
