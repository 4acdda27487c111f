/**
 * The AgentPlatform component against Pulumi's mocks (pulumi.runtime.setMocks):
 * what the SDK registers, never a real engine, provider or cluster.
 */
import { registrations, unwrapSecrets, valueOf } from './support/mocks'; // first: installs the mocks
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { ApiObject } from 'cdk8s';
import { examplePlatform } from '../../stacks/example-platform';
import { AGENT_PLATFORM_TYPE, AgentPlatform, kubernetesResourceName, SKIP_AWAIT_ANNOTATION, synthesizePlatform } from '../../stacks/pulumi';
import { _forgetRuntimeClasses, TYPED_KINDS } from '../../stacks/pulumi/agent-platform';
import type { KubeObject } from '../../policy/rules';
import { validateK8sObject } from '../support/k8s-schema';
import { cdk8sExample, cdk8sSynth, Child, deploy, identity } from './support/deploy';
import { wider } from './support/definitions';

/** A registered input without what the Pulumi path adds on purpose (the skipAwait annotation on Jobs). */
function withoutPulumiFields(inputs: any): any {
  const copy = JSON.parse(JSON.stringify(unwrapSecrets(inputs)));
  if (copy.kind === 'Job' && copy.metadata?.annotations) {
    delete copy.metadata.annotations[SKIP_AWAIT_ANNOTATION];
    if (Object.keys(copy.metadata.annotations).length === 0) delete copy.metadata.annotations;
  }
  return copy;
}

function byIdentity(objects: Array<{ apiVersion: string; kind: string; metadata?: any }>): Map<string, any> {
  return new Map(objects.map((o) => [identity(o), o]));
}

describe('AgentPlatform under Pulumi mocks: parity with cdk8s synth', () => {
  test.each([
    ['the example platform (stacks/cdk8s/main.ts)', 'parity-example', examplePlatform, cdk8sExample],
    ['a wider definition (kata, none and custom sandboxes; file and git grants)', 'parity-wider', wider, () => cdk8sSynth(wider)],
  ])('%s: the same objects, field for field', async (_label, name, def, synth) => {
    const expected = synth();
    const { children } = await deploy(name, def);
    expect(expected.length).toBeGreaterThan(10);

    const registered = byIdentity(children.map((c) => c.inputs));
    const written = byIdentity(expected);
    expect([...registered.keys()].sort()).toEqual([...written.keys()].sort());
    for (const [id, object] of written) {
      expect({ id, inputs: withoutPulumiFields(registered.get(id)) }).toEqual({ id, inputs: object });
    }
  });

  test.each([
    ['the example platform', 'valid-example', { ...examplePlatform, credentialValues: { 'openai-api': { OPENAI_API_KEY: pulumi.secret('sk-test-0123456789abcdefghij') } } }],
    ['the wider definition', 'valid-wider', { ...wider, credentialValues: { 'openai-api': { OPENAI_API_KEY: pulumi.secret('sk-test-0123456789abcdefghij') }, 'codex-auth': { 'auth.json': '{}' }, 'git-token': { token: 'ghp_x' } } }],
  ])('%s: every registered input (credential Secrets included) passes strict Kubernetes 1.30 schema validation', async (_label, name, args) => {
    const { children } = await deploy(name, args);
    const problems = children.map((c) => ({ id: identity(c.inputs), problems: validateK8sObject(unwrapSecrets(c.inputs)) })).filter((p) => p.problems.length);
    expect(problems).toEqual([]);
    expect(children.length).toBeGreaterThan(20);
  });
});

describe('AgentPlatform under Pulumi mocks: what is registered', () => {
  let deployed: Awaited<ReturnType<typeof deploy>>;
  beforeAll(async () => {
    deployed = await deploy('agents', { ...examplePlatform, credentialValues: { 'openai-api': { OPENAI_API_KEY: pulumi.secret('sk-test-value-000000000000') } } });
  });
  const kindOf = (c: Child) => c.inputs.kind as string;
  const named = (kind: string, name: string) => deployed.children.find((c) => kindOf(c) === kind && c.inputs.metadata?.name === name)!;

  test('a component of type paddock:index:AgentPlatform, whose inputs hold nothing', () => {
    expect(deployed.component).toMatchObject({ type: AGENT_PLATFORM_TYPE, name: 'agents', custom: false, inputs: {} });
  });

  test('every object as the typed @pulumi/kubernetes resource of its kind', () => {
    for (const c of deployed.children) {
      const { apiVersion, kind } = c.inputs;
      const info = TYPED_KINDS[`${apiVersion}/${kind}`];
      expect(info).toBeDefined();
      expect(c.resource).toBeInstanceOf(info.resource);
      const group = apiVersion.includes('/') ? apiVersion : `core/${apiVersion}`;
      expect(c.type).toBe(`kubernetes:${group}:${kind}`);
      expect(c.custom).toBe(true);
    }
    expect(named('Deployment', 'pool-codex').resource).toBeInstanceOf(k8s.apps.v1.Deployment);
    expect(named('RuntimeClass', 'gvisor').resource).toBeInstanceOf(k8s.node.v1.RuntimeClass);
    expect(named('Secret', 'openai-api').resource).toBeInstanceOf(k8s.core.v1.Secret);
  });

  test('stable, unique names: <component>-<kind>[-<namespace>]-<name>', () => {
    const names = deployed.children.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    const summarize = deployed.children.find((c) => kindOf(c) === 'Job' && c.inputs.metadata.labels['paddock.dev/task'] === 'summarize-readme')!;
    expect(summarize.name).toBe(`agents-job-paddock-${summarize.inputs.metadata.name}`);
    expect(names).toEqual(expect.arrayContaining([
      'agents-namespace-paddock',
      'agents-runtimeclass-gvisor',
      'agents-deployment-paddock-pool-codex',
      'agents-configmap-paddock-harness-claude-code',
      'agents-secret-paddock-openai-api',
    ]));
    // Same definition, same names: a second synthesis names every object the same way.
    const again = synthesizePlatform(examplePlatform).objects.map((o) => kubernetesResourceName('agents', o));
    expect(names.filter((n) => n !== 'agents-secret-paddock-openai-api').sort()).toEqual(again.sort());
  });

  test('every child is parented to the component (options and URN)', () => {
    for (const c of deployed.children) {
      expect(c.parent).toBe(deployed.platform);
      expect(c.urn).toContain(`::${AGENT_PLATFORM_TYPE}$${c.type}::${c.name}`);
    }
  });

  test('dependency order: Namespace and RuntimeClass, then what pods need, then Deployments, then task Jobs', () => {
    const ns = named('Namespace', 'paddock');
    const runtimeClass = named('RuntimeClass', 'gvisor');
    const tier = (c: Child) => (c === ns || c === runtimeClass ? 0 : kindOf(c) === 'Deployment' ? 2 : kindOf(c) === 'Job' ? 3 : 1);
    const inTier = (t: number) => deployed.children.filter((c) => tier(c) === t);
    expect(inTier(1).map(kindOf)).toEqual(expect.arrayContaining(['NetworkPolicy', 'ServiceAccount', 'Role', 'RoleBinding', 'ConfigMap', 'Secret', 'Service']));
    expect(inTier(2).length).toBeGreaterThanOrEqual(3); // controller and the two pools (and an egress proxy, if any)
    expect(inTier(3).map((c) => c.inputs.metadata.labels['paddock.dev/task'])).toEqual(['summarize-readme']); // the claude pool is warm: no Job

    for (const first of inTier(0)) expect(first.dependsOn).toEqual([]);
    for (const c of deployed.children.filter((c) => tier(c) > 0)) {
      const expected = deployed.children.filter((d) => tier(d) < tier(c) && !(tier(c) === 1 && d.inputs.kind === 'Secret'));
      // Everything namespaced waits for the Namespace; a pod-starting object waits for all it may need:
      // network floor, identity, config, sandbox and credentials; a task Job also for the Deployments
      // (egress proxy, controller, pools) to be up.
      expect(new Set(c.dependsOn)).toEqual(new Set(tier(c) === 1 ? (c.inputs.kind === 'Secret' ? [ns.resource] : [ns.resource, runtimeClass.resource]) : expected.map((d) => d.resource)));
      // The SDK holds a registration until its dependencies are registered: the engine sees them in this order.
      expect(c.seq).toBeGreaterThan(Math.max(...c.dependsOn.map((d) => deployed.children.find((x) => x.resource === d)!.seq)));
    }
  });

  test('outputs: namespace, pools, controller service and URL, task Jobs, created Secrets', async () => {
    const p = deployed.platform;
    const jobs = deployed.children.filter((c) => kindOf(c) === 'Job').map((c) => c.inputs.metadata);
    expect(await valueOf(p.namespace)).toBe('paddock');
    expect(await valueOf(p.poolNames)).toEqual(['codex', 'claude']);
    expect(await valueOf(p.controllerService)).toBe('paddock-controller');
    expect(await valueOf(p.controllerUrl)).toBe('http://paddock-controller.paddock.svc');
    expect(await valueOf(p.taskJobNames)).toEqual(Object.fromEntries(jobs.map((m) => [m.labels['paddock.dev/task'], m.name])));
    expect(Object.keys(await valueOf(p.taskJobNames))).toEqual(['summarize-readme']);
    expect(await valueOf(p.credentialSecretNames)).toEqual(['openai-api']);
    expect(p.resources).toEqual(deployed.children.map((c) => c.resource));
  });

  test('task Jobs are not awaited by default (pulumi.com/skipAwait), and are with awaitTaskJobs', async () => {
    for (const job of deployed.children.filter((c) => kindOf(c) === 'Job')) {
      expect(job.inputs.metadata.annotations).toEqual({ [SKIP_AWAIT_ANNOTATION]: 'true' });
    }
    const awaited = await deploy('awaited', { ...examplePlatform, awaitTaskJobs: true });
    const jobs = awaited.children.filter((c) => c.inputs.kind === 'Job');
    expect(jobs).toHaveLength(1);
    for (const job of jobs) expect(job.inputs.metadata.annotations).toBeUndefined();
  });
});

describe('AgentPlatform under Pulumi mocks: provider pass-through', () => {
  test.each([
    ['{ provider }', (p: k8s.Provider) => ({ provider: p })],
    ['{ providers: [provider] }', (p: k8s.Provider) => ({ providers: [p] })],
    ['{ providers: { kubernetes: provider } }', (p: k8s.Provider) => ({ providers: { kubernetes: p } })],
  ])('%s on the component reaches every Kubernetes resource', async (label, opts) => {
    const provider = new k8s.Provider(`cluster-${registrations.length}`, { kubeconfig: '{}', namespace: 'ignored' });
    const reference = `${await valueOf(provider.urn)}::${await valueOf(provider.id)}`;
    const { children } = await deploy(`prov-${label.length}`, { ...examplePlatform, credentialValues: { 'openai-api': { OPENAI_API_KEY: 'x'.repeat(12) } } }, opts(provider));
    expect(children.length).toBeGreaterThan(20);
    for (const c of children) expect({ name: c.name, provider: c.provider }).toEqual({ name: c.name, provider: reference });
  });

  test('without a provider the children use the default one', async () => {
    const { children } = await deploy('default-provider', examplePlatform);
    for (const c of children) expect(c.provider).toBe('');
  });
});

describe('AgentPlatform under Pulumi mocks: kinds without a typed class', () => {
  test('an object added with `extend` (a CiliumNetworkPolicy) is a CustomResource, registered as synthesized', async () => {
    const cnp = {
      apiVersion: 'cilium.io/v2',
      kind: 'CiliumNetworkPolicy',
      metadata: { name: 'codex-fqdn', namespace: 'paddock' },
      spec: { endpointSelector: { matchLabels: { 'paddock.dev/pool': 'codex' } }, egress: [{ toFQDNs: [{ matchName: 'api.openai.com' }] }] },
    };
    const { children } = await deploy('cilium', { ...examplePlatform, extend: (platform) => void new ApiObject(platform, 'cnp', cnp) });
    const c = children.find((x) => x.inputs.kind === 'CiliumNetworkPolicy')!;
    expect(c.resource).toBeInstanceOf(k8s.apiextensions.CustomResource);
    expect(c.type).toBe('kubernetes:cilium.io/v2:CiliumNetworkPolicy');
    expect(c.name).toBe('cilium-ciliumnetworkpolicy-paddock-codex-fqdn');
    expect(c.inputs).toEqual(cnp);
    expect(c.dependsOn.map((d) => children.find((x) => x.resource === d)!.inputs.kind).sort()).toEqual(['Namespace', 'RuntimeClass']);
  });

  test('the typed-class table drops no field: each class passes on every listed top-level field', async () => {
    const probes = Object.entries(TYPED_KINDS).map(([gvk, info], i) => {
      const [kind, ...version] = gvk.split('/').reverse();
      const obj = Object.fromEntries([
        ['apiVersion', version.reverse().join('/')],
        ['kind', kind],
        ...info.fields.map((f) => [f, f === 'metadata' ? { name: `probe-${i}` } : { probe: f }]),
      ]);
      const name = `probe-${i}-${kind.toLowerCase()}`;
      return { obj, name, resource: new info.resource(name, obj) };
    });
    await Promise.all(probes.map((p) => valueOf(p.resource.urn)));
    for (const { obj, name } of probes) {
      const seen = registrations.find((r) => r.name === name)!;
      expect(unwrapSecrets(seen.inputs)).toEqual(obj);
    }
  });
});

describe('AgentPlatform under Pulumi mocks: library arguments', () => {
  const custom = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name: 'aider', capability: 'harness.aider', image: 'ghcr.io/example/aider:1', command: ['aider', '--message', '{prompt}'], promptVia: 'argv', results: { from: 'stdout' } } as const;

  test('a custom harness as data, an allowlist backend, a task config, workdir and createJob', async () => {
    const { children } = await deploy('library-args', {
      namespace: 'lib',
      egress: [{ name: 'web', backend: 'cilium', rules: [{ host: 'api.example.com' }] }],
      pools: [{ name: 'aider', harnesses: [{ spec: { ...custom, command: [...custom.command], promptVia: 'argv' } }], egress: ['web'] }],
      tasks: [{ name: 'docs', pool: 'aider', prompt: 'Write docs.', workdir: 'repo/docs', createJob: false, config: [{ path: '.aider.conf.yml', content: 'auto-commits: false\n' }] }],
    });
    const kinds = children.map((c) => `${c.inputs.kind}/${c.inputs.metadata?.name}`);
    expect(kinds).toEqual(expect.arrayContaining(['ConfigMap/harness-aider', 'CiliumNetworkPolicy/egress-web']));
    expect(kinds.filter((k) => k.startsWith('Job/'))).toEqual([]);
    const task = JSON.parse(children.find((c) => c.inputs.metadata?.name === 'task-docs')!.inputs.data['task.json']);
    expect(task.workdir).toBe('repo/docs');
    expect(task.config.files).toEqual([{ base: 'home', format: 'text', path: '.aider.conf.yml', content: 'auto-commits: false\n' }]);
  });

  test('tasks and grants may name a pool added with extend', async () => {
    const { AgentPool, Harness } = require('../../constructs');
    const { children } = await deploy('extended', {
      namespace: 'ext',
      pools: [],
      credentials: [{ secretName: 'openai-api', keys: ['OPENAI_API_KEY'], grants: { extra: {} } }],
      tasks: [{ name: 'hello', pool: 'extra', prompt: 'Say hello.' }],
      extend: (platform) => void new AgentPool(platform, 'extra', { harnesses: [Harness.codex()] }),
    });
    expect(children.some((c) => c.inputs.kind === 'Job' && c.inputs.metadata.labels['paddock.dev/pool'] === 'extra')).toBe(true);
  });

  test('two AgentPlatforms in one stack create RuntimeClass "gvisor" once; the second depends on it', async () => {
    _forgetRuntimeClasses();
    const before = registrations.length;
    const a = new AgentPlatform('team-a', { namespace: 'team-a', pools: [{ name: 'codex', harnesses: ['codex'] }], credentials: [{ secretName: 'k', keys: ['OPENAI_API_KEY'], grants: { codex: {} } }] });
    const b = new AgentPlatform('team-b', { namespace: 'team-b', pools: [{ name: 'codex', harnesses: ['codex'] }], credentials: [{ secretName: 'k', keys: ['OPENAI_API_KEY'], grants: { codex: {} } }] });
    await Promise.all([valueOf(a.urn), valueOf(b.urn), ...[...a.resources, ...b.resources].map((r) => valueOf(r.urn))]);
    const runtimeClasses = registrations.slice(before).filter((r) => r.type === 'kubernetes:node.k8s.io/v1:RuntimeClass');
    expect(runtimeClasses.map((r) => r.inputs.metadata.name)).toEqual(['gvisor']);
    expect(b.resources.some((r) => r instanceof k8s.node.v1.RuntimeClass)).toBe(false);
  });

  test('a second AgentPlatform whose RuntimeClass "gvisor" differs fails, naming the first', () => {
    _forgetRuntimeClasses();
    new AgentPlatform('first', { namespace: 'first', pools: [{ name: 'codex', harnesses: ['codex'] }], credentials: [{ secretName: 'k', keys: ['OPENAI_API_KEY'], grants: { codex: {} } }] });
    expect(
      () =>
        new AgentPlatform('second', {
          namespace: 'second',
          pools: [{ name: 'codex', harnesses: ['codex'], sandbox: { type: 'gvisor', options: { overhead: { cpu: '1', memory: '1Gi' } } } }],
          credentials: [{ secretName: 'k', keys: ['OPENAI_API_KEY'], grants: { codex: {} } }],
        }),
    ).toThrow(/AgentPlatform "second": RuntimeClass "gvisor" is created by AgentPlatform "first" with other settings/);
  });
});
