/**
 * Sources: a real repository served by `git http-backend` on 127.0.0.1, fetched by the
 * runner by branch, tag, SHA, default branch and with subPath; faults end in
 * source_failed; a private repository proves git credentials work and never leak.
 */
import * as fs from 'fs';
import * as path from 'path';
import { GitServer, startGitServer } from '../support/git-server';
import { gitEnv } from '../../runner/sources';
import { DemoRepo, fakeHarness, git, listFiles, makeDemoRepos, makeRunDirs, makeTmpDir, pool, runTask, task } from '../support/runner-fixtures';

const GIT_USER = 'robot';
const GIT_PASSWORD = 'gitpass-7c1e9b3f5a';

let root: string;
let server: GitServer;
/** Another origin (host:port) the credentialed server redirects `/private/moved...` to. */
let elsewhere: GitServer;
/** A plain-http server. */
let plain: GitServer;
let caFile: string;
let repo: DemoRepo;

beforeAll(async () => {
  root = makeTmpDir('paddock-sources-');
  repo = makeDemoRepos(path.join(root, 'repos'), { private: true });
  fs.symlinkSync('.', path.join(root, 'repos', 'slow')); // slow/demo.git: the same repo, answered late
  const auth = { username: GIT_USER, password: GIT_PASSWORD };
  elsewhere = await startGitServer({ root: path.join(root, 'repos'), auth, tls: true });
  server = await startGitServer({ root: path.join(root, 'repos'), auth, slowMs: 10_000, tls: true, redirectTo: (p) => (p.startsWith('/private/moved') ? elsewhere.url : undefined) });
  plain = await startGitServer({ root: path.join(root, 'repos'), auth });
  caFile = path.join(root, 'ca.pem');
  fs.writeFileSync(caFile, fs.readFileSync(server.caFile!, 'utf8') + fs.readFileSync(elsewhere.caFile!, 'utf8'));
});

afterAll(async () => {
  await Promise.all([server.close(), elsewhere.close(), plain.close()]);
  fs.rmSync(root, { recursive: true, force: true });
});

const echo = fakeHarness('echo');
/** runTask with both HTTPS servers' CAs for git (the runner's env; never the agent's): a redirect reaches the other host. */
const fetchRun = (dirs: Parameters<typeof runTask>[0], specs: Parameters<typeof runTask>[1], opts: Parameters<typeof runTask>[2] = {}) =>
  runTask(dirs, specs, { env: { PATH: process.env.PATH, GIT_SSL_CAINFO: caFile }, ...opts });

async function fetchTask(source: Record<string, unknown>, extra: { pool?: unknown; git?: string } = {}) {
  const dirs = makeRunDirs(makeTmpDir());
  const t = task({ sources: [{ name: 'repo', type: 'git_https', url: server.repoUrl('demo'), ...source } as any] });
  const r = await fetchRun(dirs, { task: t, harness: echo, ...(extra.pool ? { pool: extra.pool } : {}) }, extra.git ? { git: extra.git } : {});
  return { ...r, dirs, checkout: path.join(dirs.workspace, 'repo') };
}

describe('fetching git_https sources over HTTPS', () => {
  test('by branch: the branch head, the agent works in the checkout', async () => {
    const r = await fetchTask({ branch: 'feature' });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.sources).toEqual([{ name: 'repo', dir: 'repo', commit: repo.featureSha }]);
    expect(fs.readFileSync(path.join(r.checkout, 'feature.txt'), 'utf8')).toBe('feature\n');
    expect(r.report().cwd).toBe(r.checkout);
    expect(fs.existsSync(path.join(r.checkout, 'agent-wrote.txt'))).toBe(true);
    expect(git(r.checkout, 'rev-parse', '--abbrev-ref', 'HEAD')).toBe('feature');
  });

  test('default branch, depth 1', async () => {
    const r = await fetchTask({});
    expect(r.status.sources[0].commit).toBe(repo.mainSha);
    expect(git(r.checkout, 'rev-list', '--count', 'HEAD')).toBe('1');
  });

  test('depth is honoured', async () => {
    const r = await fetchTask({ branch: 'main', depth: 2 });
    expect(git(r.checkout, 'rev-list', '--count', 'HEAD')).toBe('2');
  });

  test.each(['v1', 'v1-light'])('by tag (%s): the tagged commit', async (tag) => {
    const r = await fetchTask({ ref: tag });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.sources[0].commit).toBe(repo.firstSha);
    expect(fs.readFileSync(path.join(r.checkout, 'README.md'), 'utf8')).toBe('# demo v1\n');
  });

  test('by SHA (not a branch head): git init + fetch of that commit', async () => {
    const r = await fetchTask({ ref: repo.firstSha });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.sources[0].commit).toBe(repo.firstSha);
    expect(fs.readFileSync(path.join(r.checkout, 'README.md'), 'utf8')).toBe('# demo v1\n');
  });

  test('by abbreviated SHA: resolved from the full history', async () => {
    const r = await fetchTask({ ref: repo.featureSha.slice(0, 7), subPath: 'packages/app' });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.sources[0].commit).toBe(repo.featureSha);
    expect(fs.existsSync(path.join(r.checkout, 'feature.txt'))).toBe(true);
    expect(fs.existsSync(path.join(r.checkout, 'packages/lib'))).toBe(false);
    expect(r.stderr).toMatch(/give the full 40-character SHA to fetch one commit/);
  });

  test('with subPath (branch): sparse checkout, the agent works in the subPath', async () => {
    const r = await fetchTask({ branch: 'main', subPath: 'packages/app' });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.sources[0]).toEqual({ name: 'repo', dir: 'repo/packages/app', commit: repo.mainSha });
    expect(fs.existsSync(path.join(r.checkout, 'packages/app/app.txt'))).toBe(true);
    expect(fs.existsSync(path.join(r.checkout, 'packages/lib'))).toBe(false);
    expect(r.report().cwd).toBe(path.join(r.checkout, 'packages/app'));
  });

  test('with subPath (SHA)', async () => {
    const r = await fetchTask({ ref: repo.featureSha, subPath: 'packages/lib' });
    expect(r.status.outcome).toBe('succeeded');
    expect(fs.existsSync(path.join(r.checkout, 'packages/lib/lib.txt'))).toBe(true);
    expect(fs.existsSync(path.join(r.checkout, 'packages/app'))).toBe(false);
    expect(r.report().cwd).toBe(path.join(r.checkout, 'packages/lib'));
  });

  test('several labelled sources: each in its own directory, the agent in the workspace', async () => {
    const dirs = makeRunDirs(makeTmpDir());
    const t = task({
      sources: [
        { name: 'app', type: 'git_https', url: server.repoUrl('demo'), branch: 'main', subPath: 'packages/app' },
        { name: 'old', type: 'git_https', url: server.repoUrl('demo'), ref: 'v1' },
      ],
    });
    const r = await fetchRun(dirs, { task: t, harness: echo });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.sources.map((s: any) => [s.name, s.commit])).toEqual([
      ['app', repo.mainSha],
      ['old', repo.firstSha],
    ]);
    expect(r.report().cwd).toBe(dirs.workspace);
  });

  describe('faults end in source_failed (exit 3), the agent never runs', () => {
    test.each([
      ['a missing repository', { url: 'MISSING' }, /git clone failed/],
      ['a missing branch', { branch: 'no-such-branch' }, /no-such-branch/],
      ['a missing tag', { ref: 'v9' }, /v9/],
      ['a missing SHA', { ref: 'f'.repeat(40) }, /git fetch failed/],
      ['an abbreviated SHA of no commit', { ref: 'abcdef1' }, /ref "abcdef1" is neither a tag nor a commit of the repository/],
      ['a missing subPath', { branch: 'main', subPath: 'nope' }, /subPath "nope" is not a directory/],
    ])('%s', async (_name, source, message) => {
      const s = { ...source } as Record<string, unknown>;
      if (s.url === 'MISSING') s.url = server.repoUrl('missing');
      const r = await fetchTask(s);
      expect(r.code).toBe(3);
      expect(r.status.outcome).toBe('source_failed');
      expect(r.status.message).toMatch(message);
      expect(fs.existsSync(path.join(r.dirs.home, 'report.json'))).toBe(false);
      expect(fs.existsSync(path.join(r.dirs.artifacts, 'results.jsonl'))).toBe(false);
    });
  });
});

describe('a stalled server', () => {
  const slowTask = () => task({ sources: [{ name: 'repo', type: 'git_https', url: `${server.url}/slow/demo.git` }] });

  test('SIGTERM (abort) while fetching: terminated, exit 5, git stopped at once, the agent never runs', async () => {
    const dirs = makeRunDirs(makeTmpDir());
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const r = await fetchRun(dirs, { task: slowTask(), harness: echo }, { signal: controller.signal });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(r.code).toBe(5);
    expect(r.status.outcome).toBe('terminated');
    expect(r.status.message).toMatch(/asked to stop while fetching sources/);
    expect(fs.existsSync(path.join(dirs.home, 'report.json'))).toBe(false);
  });

  test('git taking longer than its limit: source_failed', async () => {
    const dirs = makeRunDirs(makeTmpDir());
    const r = await fetchRun(dirs, { task: slowTask(), harness: echo }, { gitTimeoutMs: 300 });
    expect(r.code).toBe(3);
    expect(r.status.message).toMatch(/git clone took longer than 300 ms/);
  });
});

describe('a private repository (basic auth)', () => {
  function setup() {
    const scratch = makeTmpDir('paddock-gitcred-');
    const passwordFile = path.join(scratch, 'password');
    fs.writeFileSync(passwordFile, `${GIT_PASSWORD}\n`);
    // A git that records its argv and environment, then runs the real one.
    const wrapper = path.join(scratch, 'git-recording');
    const argvLog = path.join(scratch, 'argv.log');
    const envLog = path.join(scratch, 'env.log');
    fs.writeFileSync(wrapper, `#!/bin/sh\nprintf '%s\\n' "$*" >> '${argvLog}'\nenv >> '${envLog}'\nexec git "$@"\n`, { mode: 0o755 });
    return { scratch, passwordFile, wrapper, argvLog, envLog };
  }

  test('cloned with the pool git credential, which never reaches argv, env, logs, artifacts or the agent', async () => {
    const s = setup();
    const before = server.requests.length;
    const p = pool({ credentials: { git: [{ host: server.host, username: GIT_USER, passwordFile: s.passwordFile }] } });
    const r = await fetchTask({ url: `${server.url}/private/secret.git` }, { pool: p, git: s.wrapper });
    expect(r.status.outcome).toBe('succeeded');
    expect(fs.readFileSync(path.join(r.checkout, 'secret-repo.txt'), 'utf8')).toBe('only with credentials\n');
    // The server saw the right credentials.
    expect(server.requests.slice(before).some((q) => q.basicAuth === `${GIT_USER}:${GIT_PASSWORD}`)).toBe(true);
    // Not on any git argv, not in git's env, not in the logs or the artifacts, not for the agent.
    const everywhere = [
      fs.readFileSync(s.argvLog, 'utf8'),
      fs.readFileSync(s.envLog, 'utf8'),
      r.stdout,
      r.stderr,
      ...listFiles(r.dirs.artifacts).map((f) => fs.readFileSync(path.join(r.dirs.artifacts, f), 'utf8')),
      JSON.stringify(r.report()),
      fs.readFileSync(path.join(r.checkout, '.git', 'config'), 'utf8'),
    ].join('\n');
    expect(everywhere).not.toContain(GIT_PASSWORD);
    expect(fs.readFileSync(s.argvLog, 'utf8')).toMatch(/^clone /m);
    // The agent's env has no git credential plumbing at all.
    expect(Object.keys(r.report().env).filter((k) => k.startsWith('GIT_'))).toEqual([]);
    // The helper script is gone once the sources are fetched.
    expect(fs.readdirSync(r.dirs.tmp)).toEqual([]);
  });

  test('without a credential: source_failed, no prompt, no hang', async () => {
    const r = await fetchTask({ url: `${server.url}/private/secret.git` });
    expect(r.status.outcome).toBe('source_failed');
    expect(r.status.message).toMatch(/git clone failed/);
  });

  test('with a wrong password: source_failed, the wrong password redacted too', async () => {
    const s = setup();
    fs.writeFileSync(s.passwordFile, 'wrong-password-123');
    const p = pool({ credentials: { git: [{ host: server.host, username: GIT_USER, passwordFile: s.passwordFile }] } });
    const r = await fetchTask({ url: `${server.url}/private/secret.git` }, { pool: p });
    expect(r.status.outcome).toBe('source_failed');
    expect(r.stderr + JSON.stringify(r.status)).not.toContain('wrong-password-123');
  });

  test('a redirect to another host gets no credential: the helper answers only for its own https origin', async () => {
    const s = setup();
    const before = elsewhere.requests.length;
    const p = pool({ credentials: { git: [{ host: server.host, username: GIT_USER, passwordFile: s.passwordFile }] } });
    // /private/moved/... on the credentialed host answers 302 to the other host, which asks for auth.
    const r = await fetchTask({ url: `${server.url}/private/moved/secret.git` }, { pool: p });
    expect(server.requests.some((q) => q.status === 302 && q.url.startsWith('/private/moved/'))).toBe(true);
    const there = elsewhere.requests.slice(before);
    expect(there.some((q) => q.status === 401)).toBe(true);
    expect(there.filter((q) => q.basicAuth !== undefined)).toEqual([]);
    expect(r.status.outcome).toBe('source_failed');
  });

  test('an http:// source on a credentialed host: refused as invalid before git runs, the credential never sent', async () => {
    const s = setup();
    const p = pool({ credentials: { git: [{ host: plain.host, username: GIT_USER, passwordFile: s.passwordFile }] } });
    const r = await fetchTask({ url: `${plain.url}/private/secret.git` }, { pool: p });
    expect(r.status.outcome).toBe('invalid_spec');
    expect(r.status.message).toMatch(/sources\[0\]\.url: must be an https:\/\/ URL.*http:\/\/ is refused/);
    expect(plain.requests).toEqual([]);
    // Defense in depth: a spec that skipped the schema still gets no credential over http://.
    const ctx = { baseEnv: { PATH: process.env.PATH ?? '' }, credentials: [{ host: plain.host, username: GIT_USER, passwordFile: s.passwordFile }], scratchDir: makeTmpDir() };
    expect(() => gitEnv({ name: 'repo', url: `${plain.url}/private/secret.git` }, ctx)).toThrow(/is http:\/\/, and pool credential for host "127\.0\.0\.1:\d+" is never sent in clear; write https:\/\//);
  });
});
