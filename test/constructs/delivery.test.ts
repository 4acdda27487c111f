/** Delivery at synth time: the push credential reaches pool.json (a reference) but no agent pod; bad deliveries fail naming the field. */
import { AgentPool, AgentTask, CredentialSecret, Harness } from '../../constructs';
import { find, newPlatform, synth, synthProblems } from '../support/synth';

function setup(grant = true) {
  const ctx = newPlatform();
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
