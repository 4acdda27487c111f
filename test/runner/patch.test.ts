/**
 * The change of a run: a real repository served by git http-backend, a script agent
 * that adds, edits, deletes and renames files (one binary, one mode change), and the
 * recorded patch applied with `git apply` to a fresh clone at the base commit.
 */
import * as fs from 'fs';
import * as path from 'path';
import { countNumstat } from '../../runner/patch';
import { GitServer, startGitServer } from '../support/git-server';
import { EDIT_SCRIPT, fakeHarness, git, makeChangeRepo, makeRunDirs, makeTmpDir, runTask, task } from '../support/runner-fixtures';

let root: string;
let server: GitServer;
let base: string;

beforeAll(async () => {
  root = makeTmpDir('paddock-patch-');
  base = makeChangeRepo(path.join(root, 'repos'));
  server = await startGitServer({ root: path.join(root, 'repos'), tls: true });
});

afterAll(async () => {
  await server.close();
});

async function runScript(script: string, extra: Partial<Parameters<typeof task>[0]> = {}, credential?: { env: string; value: string }) {
  const dirs = makeRunDirs(makeTmpDir());
  const t = task({ sources: [{ name: 'repo', type: 'git_https', url: server.repoUrl('work') }], ...extra });
  const harness = fakeHarness('script', [script], credential ? { credentialEnv: [credential.env] } : {});
  const env = { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile, ...(credential ? { [credential.env]: credential.value } : {}) };
  const r = await runTask(dirs, { task: t, harness }, { env });
  return { ...r, dirs };
}

describe('the patch of a run (real git server, script agent)', () => {
  test('adds, edits, deletes, renames, binary and mode changes: the patch applies to a fresh clone at the base and reproduces the tree', async () => {
    const r = await runScript(EDIT_SCRIPT);
    expect(r.status.outcome).toBe('succeeded');
    const [change] = r.status.changes;
    expect(change).toEqual({ source: 'repo', base, files: 7, insertions: 3, deletions: 2, bytes: expect.any(Number) });
    const patch = fs.readFileSync(path.join(r.dirs.artifacts, 'patches', 'repo.patch'), 'utf8');
    expect(patch).toContain('rename from rename-me.txt');
    expect(patch).toContain('rename to moved/renamed.txt');
    expect(patch).toContain('GIT binary patch');
    expect(patch).toContain('old mode 100644\nnew mode 100755');
    expect(patch).toContain('deleted file mode');
    expect(patch).not.toContain('build/out.txt');
    // The checkout's .git/config (an fsmonitor hook the agent planted) was never run.
    expect(fs.existsSync(path.join(r.dirs.home, 'fsmonitor-ran'))).toBe(false);

    const fresh = makeTmpDir('paddock-apply-');
    // From the bare repository itself: a sync git call cannot reach this process's own server.
    git(fresh, 'clone', '-q', path.join(root, 'repos', 'work.git'), 'c');
    const clone = path.join(fresh, 'c');
    git(clone, 'checkout', '-q', base);
    git(clone, 'apply', '--index', path.join(r.dirs.artifacts, 'patches', 'repo.patch'));
    const agentTree = path.join(r.dirs.workspace, 'repo');
    // The same tree: the agent's files (minus what .gitignore ignores), byte for byte, with modes.
    expect(git(clone, 'write-tree')).toBe(treeOf(agentTree));
    expect(fs.statSync(path.join(clone, 'run.sh')).mode & 0o111).not.toBe(0);
    expect(fs.readFileSync(path.join(clone, 'added.bin'))).toEqual(fs.readFileSync(path.join(agentTree, 'added.bin')));
  });

  test("a Job pod's split run: the fetch step checks out, the agent's runner (no git credential, no fetch) records the patch against that commit", async () => {
    const dirs = makeRunDirs(makeTmpDir());
    const t = task({ sources: [{ name: 'repo', type: 'git_https', url: server.repoUrl('work') }] });
    const specs = { task: t, harness: fakeHarness('script', [EDIT_SCRIPT]) };
    const fetched = await runTask(dirs, specs, { phase: 'fetch', env: { PATH: process.env.PATH, GIT_SSL_CAINFO: server.caFile } });
    expect(fetched.code).toBe(0);
    const requests = server.requests.length;
    // The agent container's runner: no CA, no network use; the checkout is the fetch step's.
    const r = await runTask(dirs, specs, { phase: 'agent' });
    expect(server.requests.length).toBe(requests);
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.changes).toEqual([{ source: 'repo', base, files: 7, insertions: 3, deletions: 2, bytes: expect.any(Number) }]);
    expect(fs.readFileSync(path.join(dirs.artifacts, 'patches', 'repo.patch'), 'utf8')).toContain('rename to moved/renamed.txt');
  });

  test('no change: an empty summary and no patch file', async () => {
    const r = await runScript("true");
    expect(r.status.changes).toEqual([{ source: 'repo', base, files: 0, insertions: 0, deletions: 0, bytes: 0 }]);
    expect(fs.existsSync(path.join(r.dirs.artifacts, 'patches', 'repo.patch'))).toBe(false);
  });

  test("the runner's own workdir config files are not part of the change", async () => {
    const r = await runScript('echo changed >> edit.txt', { config: { files: [{ path: 'opencode.json', base: 'workdir', format: 'json', content: '{"a": 1}' }] } });
    expect(fs.existsSync(path.join(r.dirs.workspace, 'repo', 'opencode.json'))).toBe(true);
    expect(r.status.changes[0]).toMatchObject({ files: 1, insertions: 1, deletions: 0 });
    expect(fs.readFileSync(path.join(r.dirs.artifacts, 'patches', 'repo.patch'), 'utf8')).not.toContain('opencode.json');
  });

  test('a failed agent still records its change (delivery decides what to do with it)', async () => {
    const r = await runScript('echo more >> edit.txt; exit 3');
    expect(r.status.outcome).toBe('failed');
    expect(r.status.changes[0]).toMatchObject({ files: 1, insertions: 1 });
  });

  test('a hostile agent that writes its credential into the checkout: the patch is withheld, never stored or shown', async () => {
    const key = 'sk-exposed-model-key-7d1c0e';
    const r = await runScript('echo "leak=$MODEL_KEY" >> edit.txt; env > env-dump.txt', {}, { env: 'MODEL_KEY', value: key });
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.changes).toEqual([expect.objectContaining({ source: 'repo', base, files: 2, patchWithheld: true })]);
    expect(fs.existsSync(path.join(r.dirs.artifacts, 'patches', 'repo.patch'))).toBe(false);
    expect(r.stderr).toMatch(/source "repo": the agent's change holds a credential it was given; the patch is withheld \(patchWithheld\)/);
    expect(r.stderr + JSON.stringify(r.status)).not.toContain(key);
  });

  test('a change that cannot be read is reported, the outcome stays the agent\'s', async () => {
    const r = await runScript('rm -rf .git');
    expect(r.status.outcome).toBe('succeeded');
    expect(r.status.changesError).toMatch(/source "repo": git .* failed while recording the change/);
  });
});

describe('numstat counting', () => {
  test('renames and binary files', () => {
    expect(countNumstat('1\t2\ta.txt\0-\t-\tb.bin\0' + '0\t0\t\0old.txt\0new.txt\0')).toEqual({ files: 3, insertions: 1, deletions: 2 });
  });
});

/** The tree git would record for a work tree (honouring its .gitignore), without touching its .git. */
function treeOf(dir: string): string {
  const tmp = makeTmpDir('paddock-tree-');
  const env = ['--git-dir', path.join(tmp, 'g'), '--work-tree', dir];
  git(tmp, 'init', '-q', '--bare', path.join(tmp, 'g'));
  git(tmp, ...env, 'add', '-A');
  return git(tmp, ...env, 'write-tree');
}
