/** Delivery at synth time: the push credential reaches pool.json (a reference) but no agent pod; bad deliveries fail naming the field. */
import { parse as parseYaml } from 'yaml';
import { AgentPool, AgentTask, CredentialSecret, Harness, PlatformProps } from '../../constructs';
import { validateCiliumNetworkPolicy } from '../../policy/cilium';
import { find, newPlatform, synth, synthProblems } from '../support/synth';

function setup(grant = true, props: PlatformProps = {}) {
  const ctx = newPlatform(props);
  const pool = new AgentPool(ctx.platform, 'codex', { harnesses: [Harness.codex()], env: { OPENAI_API_KEY: 'from-the-gateway' } });
  const push = CredentialSecret.fromSecretName(ctx.platform, 'push', 'github-push', ['token']);
  if (grant) push.grantPushTo(pool, { host: 'github.com', key: 'token' });
  return { ...ctx, pool, push };
}

const source = { url: 'https://github.com/acme/app.git', branch: 'main' };

describe('AgentTask delivery', () => {
  test('the delivery is in task.json; the push credential is a reference in pool.json and mounted in no agent pod', () => {
    const { chart, platform, pool } = setup();
    new AgentTask(platform, 'fix', { pool, prompt: 'p', sources: [source], delivery: { branch: 'paddock/fix', pullRequest: { title: 'Fix it' } } });
    const objects = synth(chart);
    const task = JSON.parse(find(objects, 'ConfigMap', 'task-fix').data['task.json']);
    expect(task.delivery).toEqual({ branch: 'paddock/fix', pullRequest: { title: 'Fix it' } });
    const poolSpec = JSON.parse(find(objects, 'ConfigMap', 'pool-codex').data['pool.json']);
    expect(poolSpec.push).toEqual([{ host: 'github.com', secret: 'github-push', key: 'token', username: 'x-access-token', forge: 'github' }]);
    const pods = objects.filter((o) => o.kind === 'Job' || o.kind === 'Deployment').map((o) => JSON.stringify(o));
    for (const pod of pods) expect(pod).not.toContain('github-push');
  });

  test.each([
    [{ branch: 'fix..it' }, /AgentTask "fix": delivery.branch: "fix..it" is not a branch name git accepts: it contains ".."; e.g. "fix.it"/],
    [{ branch: '-x' }, /delivery.branch: "-x" is not a branch name git accepts: it starts with "-"/],
    [{ branch: 'a/.hidden' }, /has a component starting with "\."/],
    [{ branch: 'ok', pullRequest: { title: 't', base: 'ma^in' } }, /delivery.pullRequest.base: "ma\^in" is not a branch name git accepts: it contains "\^"/],
    [{ branch: 'ok', repository: 'git@github.com:me/fork.git' }, /delivery.repository: "git@github.com:me\/fork.git" must be an https:\/\/ URL/],
  ])('bad at once: %j', (delivery, message) => {
    const { platform, pool } = setup();
    expect(() => new AgentTask(platform, 'fix', { pool, prompt: 'p', sources: [source], delivery: delivery as any })).toThrow(message);
  });

  test('a delivery without a push credential fails synthesis, saying how to grant one', () => {
    const { chart, platform, pool } = setup(false);
    new AgentTask(platform, 'fix', { pool, prompt: 'p', sources: [source], delivery: { branch: 'paddock/fix' } });
    expect(synthProblems(chart).join('\n')).toMatch(/AgentTask "fix": delivery: the pool has no push credential, so nothing can push to github.com; grant one with credential.grantPushTo\(pool, \{ host: "github.com", key: "token" \}\)/);
  });

  test('a fork on another host than its credential fails synthesis', () => {
    const { chart, platform, pool } = setup();
    new AgentTask(platform, 'fix', { pool, prompt: 'p', sources: [source], delivery: { branch: 'x', repository: 'https://gitlab.com/me/app.git' } });
    expect(synthProblems(chart).join('\n')).toMatch(/AgentTask "fix": delivery.repository: "https:\/\/gitlab.com\/me\/app.git" is on gitlab.com, but the pool's push credentials are for github.com/);
  });

  test('a fork on another host than the source fails synthesis unless the pool may reach the source host too', () => {
    const { chart, platform, pool, push } = setup();
    push.grantPushTo(pool, { host: 'gitlab.com', key: 'token', forge: 'gitlab' });
    new AgentTask(platform, 'fix', { pool, prompt: 'p', sources: [{ url: 'https://git.example.org/acme/app.git', branch: 'main' }], delivery: { branch: 'x', repository: 'https://gitlab.com/me/app.git' } });
    expect(synthProblems(chart).join('\n')).toMatch(/AgentTask "fix": delivery.repository: "https:\/\/gitlab.com\/me\/app.git" is on gitlab.com, but the publish step fetches the base commit from the source's host git.example.org, .*grant a push credential for git.example.org too/);
    const ok = setup();
    ok.push.grantPushTo(ok.pool, { host: 'gitlab.com', key: 'token', forge: 'gitlab' });
    new AgentTask(ok.platform, 'fix', { pool: ok.pool, prompt: 'p', sources: [source], delivery: { branch: 'x', repository: 'https://gitlab.com/me/app.git' } });
    expect(synthProblems(ok.chart)).toEqual([]);
  });

  test('a pull request title over GitHub\'s 256 characters fails synthesis; GitLab allows 255', () => {
    const { chart, platform, pool } = setup();
    new AgentTask(platform, 'fix', { pool, prompt: 'p', sources: [source], delivery: { branch: 'x', pullRequest: { title: 'y'.repeat(257) } } });
    expect(synthProblems(chart).join('\n')).toMatch(/delivery.pullRequest.title: is 257 characters; GitHub accepts at most 256/);
    const gl = newPlatform();
    const glPool = new AgentPool(gl.platform, 'codex', { harnesses: [Harness.codex()], env: { OPENAI_API_KEY: 'from-the-gateway' } });
    CredentialSecret.fromSecretName(gl.platform, 'push', 'gl', ['token']).grantPushTo(glPool, { host: 'gitlab.com', key: 'token', forge: 'gitlab' });
    new AgentTask(gl.platform, 'fix', { pool: glPool, prompt: 'p', sources: [{ url: 'https://gitlab.com/a/b.git' }], delivery: { branch: 'x', pullRequest: { title: 'y'.repeat(256) } } });
    expect(synthProblems(gl.chart).join('\n')).toMatch(/GitLab accepts at most 255/);
  });

  test('grantPushTo rejects a bad host, an undeclared key and a twice-granted host', () => {
    const { pool, push } = setup();
    expect(() => push.grantPushTo(pool, { host: 'https://github.com', key: 'token' })).toThrow(/grantPushTo\(codex\): host "https:\/\/github.com" must be a bare hostname/);
    expect(() => push.grantPushTo(pool, { host: 'gitlab.com', key: 'nope' })).toThrow(/key "nope" is not one of the Secret "github-push"'s declared keys: token/);
    expect(() => push.grantPushTo(pool, { host: 'github.com', key: 'token' })).toThrow(/a push credential for host "github.com" is granted twice/);
  });
});

describe("the publish Jobs' egress: only the push credentials' git hosts and their forges' APIs", () => {
  /** A GitHub grant and a self-hosted GitLab on port 8443 (its API on the same origin). */
  function pushPlatform(props: PlatformProps = {}) {
    const ctx = setup(true, props);
    const gl = CredentialSecret.fromSecretName(ctx.platform, 'gl-push', 'gitlab-push', ['token']);
    const other = new AgentPool(ctx.platform, 'other', { harnesses: [Harness.codex()], env: { OPENAI_API_KEY: 'from-the-gateway' } });
    gl.grantPushTo(other, { host: 'git.example.org:8443', key: 'token', forge: 'gitlab' });
    new AgentTask(ctx.platform, 'fix', { pool: ctx.pool, prompt: 'p', sources: [source], delivery: { branch: 'paddock/fix' } });
    const objects = synth(ctx.chart);
    const job = parseYaml(find(objects, 'ConfigMap', 'paddock-publisher').data['job-template.yaml']);
    const publishPolicies = objects.filter((o) => o.kind === 'NetworkPolicy' && matches((o.spec as any).podSelector, job.spec.template.metadata.labels));
    return { ...ctx, objects, job, publishPolicies };
  }
  const matches = (selector: { matchLabels?: Record<string, string> }, labels: Record<string, string>) => Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

  test('proxy (default): the allowlist "publish" names exactly those hosts; the Job goes through its proxy and reaches nothing directly but DNS', () => {
    const { objects, job, publishPolicies } = pushPlatform();
    const allowlist = JSON.parse(find(objects, 'ConfigMap', 'egress-publish').data['allowlist.json']);
    expect(allowlist.hosts.map((h: any) => `${h.host}:${h.ports.join(',')}`)).toEqual(['api.github.com:443', 'git.example.org:8443', 'github.com:443']);
    expect(allowlist.hosts.every((h: any) => h.match === 'exact' && !h.allowPlainHttp)).toBe(true);
    expect(allowlist.pools).toEqual([]);
    const conf: string = find(objects, 'ConfigMap', 'egress-publish').data['squid.conf'];
    for (const host of ['api.github.com', 'git.example.org', 'github.com']) expect(conf).toContain(host);
    const pod = job.spec.template;
    expect(pod.metadata.labels['egress.paddock.dev/publish']).toBe('allow');
    const env = Object.fromEntries(pod.spec.containers[0].env.map((e: any) => [e.name, e.value]));
    expect(env.HTTPS_PROXY).toMatch(/^http:\/\/egress-proxy-publish\.paddock\.svc(\.cluster\.local)?:\d+$/);
    expect(env.NO_PROXY).not.toMatch(/github|example\.org/);
    // What the publish pods may reach, over every policy that selects them: DNS and the proxy, no address range.
    expect(publishPolicies.map((p) => p.metadata!.name).sort()).toEqual(['egress-publish', 'paddock-default-deny', 'paddock-publisher']);
    const rules = publishPolicies.flatMap((p) => (p.spec as any).egress ?? []);
    expect(rules.flatMap((r: any) => r.to ?? []).filter((t: any) => t.ipBlock)).toEqual([]);
    expect(rules.flatMap((r: any) => r.ports ?? []).map((p: any) => p.port).sort()).toEqual([3128, 53, 53].sort());
    expect(find(objects, 'NetworkPolicy', 'paddock-publisher').spec).toMatchObject({ policyTypes: ['Ingress', 'Egress'], ingress: [], egress: [] });
  });

  test('no agent pod is under the publish allowlist, and the allowlist admits no agent host', () => {
    const { objects } = pushPlatform();
    const allowlist = JSON.parse(find(objects, 'ConfigMap', 'egress-publish').data['allowlist.json']);
    expect(allowlist.hosts.map((h: any) => h.host)).not.toContain('api.openai.com');
    for (const o of objects.filter((x) => ['Deployment', 'Job'].includes(x.kind) && x.metadata?.name !== 'egress-proxy-publish')) {
      expect((o as any).spec.template.metadata.labels['egress.paddock.dev/publish']).toBeUndefined();
    }
  });

  test("cilium: a CiliumNetworkPolicy with those names only (Cilium's CRD accepts it), private ranges denied, no proxy", () => {
    const { objects, job, publishPolicies } = pushPlatform({ publishEgress: 'cilium' });
    const cnp = find(objects, 'CiliumNetworkPolicy', 'egress-publish');
    expect(validateCiliumNetworkPolicy(cnp)).toEqual([]);
    expect(cnp.spec.endpointSelector.matchLabels).toEqual({ 'egress.paddock.dev/publish': 'allow' });
    const fqdn = cnp.spec.egress.filter((r: any) => r.toFQDNs).map((r: any) => ({ names: r.toFQDNs.map((f: any) => f.matchName ?? f.matchPattern), ports: r.toPorts[0].ports.map((p: any) => p.port) }));
    expect(fqdn).toEqual([
      { names: ['api.github.com', 'github.com'], ports: ['443'] },
      { names: ['git.example.org'], ports: ['8443'] },
    ]);
    expect(cnp.spec.egressDeny[0].toCIDRSet).toContainEqual({ cidr: '169.254.169.254/32' });
    expect(objects.find((o) => o.metadata?.name === 'egress-proxy-publish')).toBeUndefined();
    expect(job.spec.template.spec.containers[0].env.map((e: any) => e.name)).toEqual(['HOME']);
    expect(publishPolicies.flatMap((p) => (p.spec as any).egress ?? []).flatMap((r: any) => r.to ?? []).filter((t: any) => t.ipBlock)).toEqual([]);
  });

  test('an unknown publishEgress fails at once, naming the choices', () => {
    expect(() => newPlatform({ publishEgress: 'networkpolicy' as any })).toThrow(/Platform: publishEgress "networkpolicy" is unknown; use "proxy" .* or "cilium"/);
  });
});
