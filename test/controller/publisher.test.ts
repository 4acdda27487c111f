/**
 * The publish step against a real git server (git http-backend with receive-pack, over
 * HTTPS on 127.0.0.1): a run's patch lands on the branch with the spec's message and
 * author and is the base plus the patch; a moved branch is a conflict; a wrong token is
 * denied. Pull and merge requests go to thin fakes of the GitHub and GitLab REST APIs.
 */
import * as fs from 'fs';
import * as path from 'path';
import { resolveDelivery } from '../../core/delivery';
import type { DeliverySpec, PushCredentialSpec, TaskSpec } from '../../policy/specs';
import { publish } from '../../controller/publisher';
import { main } from '../../cli/main';
import { gzipSync } from 'zlib';
import { GitServer, startGitServer } from '../support/git-server';
import { FakeForge, startFakeForge } from '../support/fake-forge';
import { EDIT_SCRIPT, fakeHarness, git, makeChangeRepo, makeRunDirs, makeTmpDir, runTask, task } from '../support/runner-fixtures';

const PUSHER = { username: 'robot', password: 'push-token-4f1d2c9a7b' };
let root: string;
let bare: string;
let server: GitServer;
let base: string;
let patch: Buffer;
let agentTree: string;
let tokenFile: string;

beforeAll(async () => {
  root = makeTmpDir('paddock-publish-');
  base = makeChangeRepo(path.join(root, 'repos'), 'acme/work');
  bare = path.join(root, 'repos', 'acme', 'work.git');
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true, push: PUSHER });
  // A real run of a script agent makes the patch.
  const dirs = makeRunDirs(makeTmpDir());
  const r = await runTask(dirs, { task: task({ sources: [{ name: 'work', type: 'git_https', url: server.repoUrl('acme/work') }] }), harness: fakeHarness('script', [EDIT_SCRIPT]) }, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile } });
  expect(r.status.changes[0].base).toBe(base);
  patch = fs.readFileSync(path.join(dirs.artifacts, 'patches', 'work.patch'));
  agentTree = path.join(dirs.workspace, 'work');
  tokenFile = path.join(makeTmpDir(), 'token');
  fs.writeFileSync(tokenFile, PUSHER.password + '\n');
});

afterAll(async () => {
  await server.close();
});

function deliveryFor(delivery: DeliverySpec, cred: Partial<PushCredentialSpec> = {}) {
  const t: Pick<TaskSpec, 'name' | 'sources' | 'delivery'> = { name: 'fix-it', sources: [{ name: 'work', type: 'git_https', url: server.repoUrl('acme/work'), branch: 'main' }], delivery };
  return resolveDelivery(t, [{ host: server.host, secret: 'push', key: 'token', username: PUSHER.username, ...cred }])!;
}

const publishTo = (delivery: DeliverySpec, extra: Partial<Parameters<typeof publish>[0]> = {}, cred: Partial<PushCredentialSpec> = {}) =>
  publish({ delivery: deliveryFor(delivery, cred), base, patch, tokenFile, caEnv: { GIT_SSL_CAINFO: server.caFile! }, ...extra });

describe('publish (real git server over HTTPS with receive-pack)', () => {
  test('the push lands on the branch with the spec\'s message and author, and is the base plus the patch', async () => {
    const status = await publishTo({ branch: 'paddock/fix-it', commitMessage: 'Fix the edits\n\nDone by an agent.', author: { name: 'Ada Agent', email: 'ada@example.org' } });
    expect(status).toMatchObject({ state: 'pushed', branch: 'paddock/fix-it', base, commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
    expect(git(bare, 'rev-parse', 'refs/heads/paddock/fix-it')).toBe(status.commit);
    expect(git(bare, 'log', '-1', '--format=%an <%ae>|%cn <%ce>|%P', 'paddock/fix-it')).toBe(`Ada Agent <ada@example.org>|Ada Agent <ada@example.org>|${base}`);
    expect(git(bare, 'log', '-1', '--format=%B', 'paddock/fix-it')).toBe('Fix the edits\n\nDone by an agent.');
    // The pushed tree is the agent's tree.
    const tmp = makeTmpDir();
    git(tmp, 'init', '-q', '--bare', 'g');
    git(tmp, '--git-dir', 'g', '--work-tree', agentTree, 'add', '-A');
    expect(git(bare, 'rev-parse', 'paddock/fix-it^{tree}')).toBe(git(tmp, '--git-dir', 'g', 'write-tree'));
    // The token was sent only as basic auth to the git host, and never logged.
    expect(server.requests.some((r) => r.basicAuth === `${PUSHER.username}:${PUSHER.password}`)).toBe(true);
    // A retry of the same delivery finds it done.
    const again = await publishTo({ branch: 'paddock/fix-it', commitMessage: 'Fix the edits\n\nDone by an agent.', author: { name: 'Ada Agent', email: 'ada@example.org' } });
    expect(again).toMatchObject({ state: 'pushed', commit: status.commit });
  });

  test('a branch that moved is a conflict and stays untouched', async () => {
    const other = git(bare, 'commit-tree', '-m', 'someone else', `${base}^{tree}`, '-p', base);
    git(bare, 'update-ref', 'refs/heads/moved', other);
    const status = await publishTo({ branch: 'moved' });
    expect(status.state).toBe('conflict');
    expect(status.reason).toMatch(new RegExp(`branch moved moved: it points at ${other}, not at the base commit ${base}`));
    expect(git(bare, 'rev-parse', 'refs/heads/moved')).toBe(other);
  });

  test('a branch still at the base commit is fast-forwarded', async () => {
    git(bare, 'update-ref', 'refs/heads/at-base', base);
    const status = await publishTo({ branch: 'at-base' });
    expect(status.state).toBe('pushed');
    expect(git(bare, 'rev-parse', 'at-base^')).toBe(base);
  });

  test('a token the git host refuses: denied, and the token is in no message', async () => {
    const bad = path.join(makeTmpDir(), 'token');
    fs.writeFileSync(bad, 'wrong-token-0a9b8c7d6e');
    const status = await publishTo({ branch: 'paddock/denied' }, { tokenFile: bad });
    expect(status.state).toBe('denied');
    expect(status.reason).toMatch(/refused the push credential/);
    expect(JSON.stringify(status)).not.toContain('wrong-token-0a9b8c7d6e');
    expect(() => git(bare, 'rev-parse', '--verify', '-q', 'refs/heads/paddock/denied')).toThrow();
  });

  test('a patch that does not apply to the base: failed, with the reason', async () => {
    const status = await publishTo({ branch: 'paddock/bad' }, { patch: Buffer.from('diff --git a/nope.txt b/nope.txt\n--- a/nope.txt\n+++ b/nope.txt\n@@ -1 +1 @@\n-x\n+y\n') });
    expect(status).toMatchObject({ state: 'failed', reason: expect.stringMatching(/the patch does not apply to the base commit/) });
  });

  test('no change: skipped, nothing pushed', async () => {
    const status = await publishTo({ branch: 'paddock/empty' }, { patch: Buffer.alloc(0) });
    expect(status.state).toBe('skipped');
  });
});

describe('pull and merge requests (fake GitHub and GitLab REST APIs)', () => {
  let github: FakeForge;
  let gitlab: FakeForge;
  beforeAll(async () => {
    github = await startFakeForge('github');
    gitlab = await startFakeForge('gitlab');
  });
  afterAll(async () => {
    await github.close();
    await gitlab.close();
  });

  test('fake GitHub: a draft pull request with the spec\'s title and body, exactly one POST', async () => {
    const status = await publishTo({ branch: 'paddock/pr', pullRequest: { title: 'Fix the edits', body: 'Made by Paddock.' } }, {}, { forge: 'github', api: github.url });
    expect(status).toMatchObject({ state: 'pushed', pullRequest: { number: 7, url: 'https://github.example/acme/work/pull/7' } });
    expect(github.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /repos/acme/work/pulls']);
    const [req] = github.requests;
    expect(req.body).toEqual({ title: 'Fix the edits', body: 'Made by Paddock.', head: 'paddock/pr', base: 'main', draft: true });
    expect(req.headers.authorization).toBe(`Bearer ${PUSHER.password}`);
    expect(req.headers.accept).toBe('application/vnd.github+json');
    expect(req.headers['x-github-api-version']).toBe('2022-11-28');
  });

  test('fake GitLab: a draft merge request ("Draft: " title) with the spec\'s description', async () => {
    const status = await publishTo({ branch: 'paddock/mr', pullRequest: { title: 'Fix the edits', body: 'Made by Paddock.', base: 'main' } }, {}, { forge: 'gitlab', api: `${gitlab.url}/api/v4` });
    expect(status).toMatchObject({ state: 'pushed', pullRequest: { number: 3, url: 'https://gitlab.example/acme/work/-/merge_requests/3' } });
    expect(gitlab.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /api/v4/projects/acme%2Fwork/merge_requests']);
    expect(gitlab.requests[0].body).toEqual({ source_branch: 'paddock/mr', target_branch: 'main', title: 'Draft: Fix the edits', description: 'Made by Paddock.' });
    expect(gitlab.requests[0].headers['private-token']).toBe(PUSHER.password);
  });

  test('fake GitHub: draft: false and no base in the spec asks the repository for its default branch', async () => {
    github.requests.length = 0;
    const d = deliveryFor({ branch: 'paddock/pr2', pullRequest: { title: 'T', draft: false } }, { forge: 'github', api: github.url });
    const status = await publish({ delivery: { ...d, pullRequest: { ...d.pullRequest!, base: undefined } }, base, patch, tokenFile, caEnv: { GIT_SSL_CAINFO: server.caFile! } });
    expect(status.state).toBe('pushed');
    expect(github.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /repos/acme/work', 'POST /repos/acme/work/pulls']);
    expect(github.requests[1].body).toMatchObject({ draft: false, base: 'main' });
  });
});

describe('paddock publish (the publish Job\'s command) over mounted ConfigMaps and a Secret', () => {
  function mounts(delivery: DeliverySpec, changes: unknown[], patchBytes: Buffer | null = patch) {
    const dir = makeTmpDir('paddock-publish-mounts-');
    const task: TaskSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'fix-it', pool: 'p', harness: 'h', prompt: 'x', sources: [{ name: 'work', type: 'git_https', url: server.repoUrl('acme/work'), branch: 'main' }], delivery };
    const pool = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'p', capabilities: ['harness.h'], harnesses: ['h'], push: [{ host: server.host, secret: 'gh-push', key: 'token', username: PUSHER.username }] };
    for (const [d, f, v] of [['task', 'task.json', task], ['pool', 'pool.json', pool], ['run', 'status.json', { outcome: 'succeeded', changes }]] as const) {
      fs.mkdirSync(path.join(dir, d), { recursive: true });
      fs.writeFileSync(path.join(dir, d, f), JSON.stringify(v));
    }
    if (patchBytes) fs.writeFileSync(path.join(dir, 'run', 'patch-work.gz'), gzipSync(patchBytes));
    fs.mkdirSync(path.join(dir, 'secrets', 'gh-push'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'secrets', 'gh-push', 'token'), PUSHER.password);
    const out: string[] = [];
    const err: string[] = [];
    const run = () => main(['publish', '--task', path.join(dir, 'task'), '--pool', path.join(dir, 'pool'), '--run', path.join(dir, 'run'), '--secrets', path.join(dir, 'secrets'), '--work-dir', path.join(dir, 'work')], { stdout: (t) => out.push(t), stderr: (t) => err.push(t) }, { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile });
    return { run, out, err };
  }
  const change = () => ({ source: 'work', base, files: 7, insertions: 3, deletions: 2, bytes: patch.length });

  test('pushes and prints the status as JSON, exit 0', async () => {
    const m = mounts({ branch: 'paddock/cli', commitMessage: 'From the Job' }, [change()]);
    expect(await m.run()).toBe(0);
    expect(JSON.parse(m.out.join(''))).toMatchObject({ state: 'pushed', branch: 'paddock/cli' });
    expect(git(bare, 'log', '-1', '--format=%s', 'paddock/cli')).toBe('From the Job');
  });

  test('a moved branch exits 1 (conflict)', async () => {
    git(bare, 'update-ref', 'refs/heads/moved-cli', git(bare, 'commit-tree', '-m', 'elsewhere', `${base}^{tree}`, '-p', base));
    const m = mounts({ branch: 'moved-cli' }, [change()]);
    expect(await m.run()).toBe(1);
    expect(JSON.parse(m.out.join('')).state).toBe('conflict');
  });

  test('a run whose patch was too large: exit 2, naming it', async () => {
    const m = mounts({ branch: 'paddock/big' }, [{ ...change(), patchTooLarge: true }], null);
    expect(await m.run()).toBe(2);
    expect(m.err.join('')).toMatch(/no patch-work.gz \(the patch was over the size cap: patchTooLarge\)/);
  });

  test('a run whose change held a credential the agent was given: exit 2, naming it, nothing pushed', async () => {
    const m = mounts({ branch: 'paddock/leak' }, [{ ...change(), patchWithheld: true }], null);
    expect(await m.run()).toBe(2);
    expect(m.err.join('')).toMatch(/no patch-work.gz \(the change holds a credential the agent was given: patchWithheld\)/);
  });
});
