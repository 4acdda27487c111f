/**
 * Paddock inside a user's own cdk8s chart: composing with real cdk8s-plus-30 objects,
 * several Platforms in one chart, a Chart namespace, and the rules a library user
 * trips over (ungranted credentials, literal Secrets from other constructs).
 */
import { ApiObject, Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-30';
import { AgentPool, AgentTask, CredentialSecret, Harness, Platform } from '../../constructs';
import { selects } from '../../policy/rules';
import { expectValidK8s } from '../support/k8s-schema';
import { find, keyedPool, newPlatform, synth, synthProblems } from '../support/synth';

const podLabels = (o: any) => o.spec.template.metadata.labels;

describe('cdk8s-plus-30 interop', () => {
  test("a user's kplus.NetworkPolicy selects a pool's pods (not another pool's), admits the controller, and a Deployment's connections reach the pool", () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()], mode: 'warm' });
    new AgentTask(platform, 'hello', { pool: keyedPool(platform, 'jobs', { harnesses: [Harness.codex()] }), prompt: 'x' });
    const np = new kplus.NetworkPolicy(chart, 'user-np', { selector: pool, ingress: { rules: [{ peer: platform.controllerPods, ports: [kplus.NetworkPolicyPort.tcp(9000)] }] } });
    const web = new kplus.Deployment(chart, 'web', { metadata: { namespace: 'paddock' }, containers: [{ image: 'nginx', portNumber: 8080 }] });
    web.connections.allowTo(pool, { ports: [kplus.NetworkPolicyPort.tcp(9000)], isolation: kplus.PodConnectionsIsolation.POD });
    const objects = synth(chart);
    const userNp = objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata?.name === np.name) as any;
    expect(userNp.metadata.namespace).toBe('paddock');
    expect(selects(userNp.spec.podSelector, podLabels(find(objects, 'Deployment', 'pool-codex')))).toBe(true);
    expect(selects(userNp.spec.podSelector, podLabels(find(objects, 'Job', objects.find((o) => o.kind === 'Job')!.metadata!.name!)))).toBe(false);
    expect(selects(userNp.spec.ingress[0].from[0].podSelector, podLabels(find(objects, 'Deployment', 'paddock-controller')))).toBe(true);
    expect(userNp.spec.ingress[0].from[0].namespaceSelector).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': 'paddock' } });
    const egress = objects.find((o) => o.kind === 'NetworkPolicy' && /allowegress/i.test(o.metadata?.name ?? '')) as any;
    expect(selects(egress.spec.egress[0].to[0].podSelector, podLabels(find(objects, 'Deployment', 'pool-codex')))).toBe(true);
    expectValidK8s(objects.filter((o) => o.kind === 'NetworkPolicy'));
  });

  test("a pool selects its task Jobs' pods too", () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    new AgentTask(platform, 'hello', { pool, prompt: 'x' });
    const np = new kplus.NetworkPolicy(chart, 'np', { selector: pool });
    const objects = synth(chart);
    const job = objects.find((o) => o.kind === 'Job') as any;
    expect(selects((objects.find((o) => o.metadata?.name === np.name) as any).spec.podSelector, podLabels(job))).toBe(true);
  });

  test("the platform's DNS rule in a kplus.NetworkPolicy is the platform's own DNS egress rule", () => {
    const { chart, platform } = newPlatform({ clusterDns: { namespace: 'dns', podLabels: { app: 'coredns' } } });
    const app = new kplus.Deployment(chart, 'app', { metadata: { namespace: 'paddock' }, containers: [{ image: 'nginx' }] });
    const np = new kplus.NetworkPolicy(chart, 'np', { selector: app, egress: { rules: [platform.dnsNetworkPolicyRule()] } });
    const synthesized = synth(chart).find((o) => o.metadata?.name === np.name) as any;
    const own = platform.dnsEgressRule();
    expect(synthesized.spec.egress[0].to).toEqual(own.to);
    expect(synthesized.spec.egress[0].ports).toEqual(own.ports);
  });

  test('CredentialSecret.fromSecret takes a kplus Secret: imported, or one with values behind the opt-in', () => {
    const { chart, platform } = newPlatform();
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    CredentialSecret.fromSecret(platform, 'openai', kplus.Secret.fromSecretName(chart, 'imported', 'openai-api'), ['OPENAI_API_KEY']).grantTo(pool);
    const literal = new kplus.Secret(platform, 'literal', { metadata: { name: 'git-token' }, stringData: { token: 'ghp-not-a-real-token' } });
    CredentialSecret.fromSecret(platform, 'git', literal, ['token'], { allowPlaintextInManifests: true }).grantTo(pool, { git: { host: 'github.com', key: 'token' } });
    const objects = synth(chart);
    // The imported Secret holds a model key: the model gateway mounts it, the pool's pods never do.
    const gatewayVolumes = find(objects, 'Deployment', 'paddock-model-gateway').spec.template.spec.volumes;
    expect(gatewayVolumes.map((v: any) => v.secret?.secretName)).toContain('openai-api');
    expect(JSON.stringify(find(objects, 'Deployment', 'pool-codex').spec.template)).not.toContain('openai-api');
    expect(JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json']).credentials.git[0].secret).toBe('git-token');
  });

  test('a kplus Secret with values inside the platform without the opt-in fails synthesis', () => {
    const { chart, platform } = newPlatform();
    const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()] });
    CredentialSecret.fromSecret(platform, 'git', new kplus.Secret(platform, 'literal', { metadata: { name: 'git-token' }, stringData: { token: 'x' } }), ['token']).grantTo(pool, { git: { host: 'github.com', key: 'token' } });
    expect(synthProblems(chart).join('\n')).toMatch(/Secret "git-token" \(test\/platform\/literal\/Resource\): its values would be written in plain text .*allowPlaintextInManifests: true/);
  });

  test('a kplus Secret in another namespace is refused, naming the platform namespace', () => {
    const { chart, platform } = newPlatform();
    const secret = new kplus.Secret(chart, 'elsewhere', { metadata: { name: 's', namespace: 'other' } });
    expect(() => CredentialSecret.fromSecret(platform, 'c', secret, ['k'])).toThrow(/CredentialSecret "c": Secret "s" is in namespace "other", but the platform's pods run in "paddock"; create it in the platform namespace/);
  });
});

describe('rules a library user meets', () => {
  test("a harness's credentialEnv without a grant fails synthesis, naming the variable and the grant", () => {
    const { chart, platform } = newPlatform();
    new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    expect(synthProblems(chart)).toEqual([expect.stringMatching(/^AgentPool "codex": harness "codex" reads its credential from OPENAI_API_KEY, which nothing grants to this pool; grant it, e\.g\. CredentialSecret\.fromSecretName\(platform, .*\["OPENAI_API_KEY"\]\)\.grantTo\(pool\)/)]);
  });

  test('the credential may come from a grant, the pool env (a gateway) or a granted credential file', () => {
    const granted = newPlatform();
    CredentialSecret.fromSecretName(granted.platform, 'k', 'openai-api', ['OPENAI_API_KEY']).grantTo(new AgentPool(granted.platform, 'codex', { harnesses: [Harness.codex()] }));
    expect(synthProblems(granted.chart)).toEqual([]);
    const gateway = newPlatform();
    new AgentPool(gateway.platform, 'codex', { harnesses: [Harness.codex()], env: { OPENAI_API_KEY: 'injected-by-gateway' } });
    expect(synthProblems(gateway.chart)).toEqual([]);
    const file = newPlatform();
    CredentialSecret.fromSecretName(file.platform, 'auth', 'codex-auth', ['auth.json']).grantTo(new AgentPool(file.platform, 'codex', { harnesses: [Harness.codex()] }), { files: { '.codex/auth.json': 'auth.json' }, exposeToAgent: true });
    expect(synthProblems(file.chart)).toEqual([]);
  });

  test('a literal Secret another construct adds inside the platform needs the opt-in', () => {
    const { chart, platform } = newPlatform();
    new ApiObject(platform, 'raw', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'raw', namespace: 'paddock' }, stringData: { K: 'v' } });
    new ApiObject(platform, 'empty', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'empty', namespace: 'paddock' } });
    CredentialSecret.fromLiteral(platform, 'ok', { secretName: 'ok', values: { K: 'value-ok' }, allowPlaintextInManifests: true });
    expect(synthProblems(chart)).toEqual([expect.stringMatching(/^Secret "raw" \(test\/platform\/raw\): its values would be written in plain text/)]);
  });

  test('two Platforms in one chart write RuntimeClass "gvisor" once', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'two', { disableResourceNameHashes: true });
    for (const ns of ['team-a', 'team-b']) keyedPool(new Platform(chart, ns, { namespace: ns }), 'codex', { harnesses: [Harness.codex()] });
    const objects = synth(chart);
    expect(objects.filter((o) => o.kind === 'RuntimeClass').map((o) => o.metadata?.name)).toEqual(['gvisor']);
    expect(objects.filter((o) => o.kind === 'Deployment' && o.metadata?.name === 'pool-codex').map((o) => (o as any).spec.template.spec.runtimeClassName)).toEqual(['gvisor', 'gvisor']);
  });

  test('a Chart namespace never lands on the Namespace or the RuntimeClass', () => {
    const app = Testing.app();
    const chart = new Chart(app, 'ns', { disableResourceNameHashes: true, namespace: 'paddock' });
    keyedPool(new Platform(chart, 'platform'), 'codex', { harnesses: [Harness.codex()] });
    const objects = synth(chart);
    expect(find(objects, 'Namespace', 'paddock').metadata).not.toHaveProperty('namespace');
    expect(find(objects, 'RuntimeClass', 'gvisor').metadata).not.toHaveProperty('namespace');
    expect(find(objects, 'Deployment', 'pool-codex').metadata.namespace).toBe('paddock');
    expectValidK8s(objects);
  });
});
