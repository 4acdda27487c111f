/**
 * A fetched repository's symlinks must not lead the agent's working directory or the
 * runner's config writes outside the workspace: a real repository with symlinks,
 * served by `git http-backend` on 127.0.0.1 and fetched by the runner.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { planConfigFiles, writeConfigFiles } from '../../runner/config-layers';
import { GitServer, startGitServer } from '../support/git-server';
import { fakeHarness, git, makeRunDirs, makeTmpDir, runTask, task } from '../support/runner-fixtures';

let root: string;
let outside: string;
let server: GitServer;

beforeAll(async () => {
  root = makeTmpDir('paddock-symlinks-');
  outside = path.join(root, 'outside');
  fs.mkdirSync(outside);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-symlink-work-'));
  git(work, 'init', '-q', '-b', 'main');
  fs.mkdirSync(path.join(work, 'packages', 'app'), { recursive: true });
  fs.writeFileSync(path.join(work, 'packages', 'app', 'app.txt'), 'app\n');
  fs.symlinkSync(outside, path.join(work, 'docs-link')); // absolute, outside everything
  fs.symlinkSync('../..', path.join(work, 'up')); // relative: workspace/repo/up -> the run's root
  fs.symlinkSync('packages/app', path.join(work, 'inner')); // stays inside: fine
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'symlinks');
  fs.mkdirSync(path.join(root, 'repos'));
  git(path.join(root, 'repos'), 'clone', '-q', '--bare', work, path.join(root, 'repos', 'links.git'));
  fs.rmSync(work, { recursive: true, force: true });
  server = await startGitServer({ root: path.join(root, 'repos') });
});

afterAll(async () => {
  await server.close();
});

async function fetchTask(source: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const dirs = makeRunDirs(makeTmpDir());
  const t = task({ sources: [{ name: 'repo', type: 'git_https', url: server.repoUrl('links'), ...source } as any], ...extra });
  const r = await runTask(dirs, { task: t, harness: fakeHarness('echo') });
  return { ...r, dirs };
}

describe('symlinks in a fetched repository', () => {
  test('subPath through a symlink to an outside directory: source_failed, the agent never runs there', async () => {
    const r = await fetchTask({ subPath: 'docs-link' });
    expect(r.code).toBe(3);
    expect(r.status).toMatchObject({ outcome: 'source_failed', message: expect.stringMatching(/subPath "docs-link" leads outside the repository through a symlink .*name a real directory/) });
    expect(fs.readdirSync(outside)).toEqual([]);
    expect(fs.existsSync(path.join(r.dirs.home, 'report.json'))).toBe(false);
  });

  test('workdir through a relative symlink out of the workspace: source_failed, nothing written outside', async () => {
    const r = await fetchTask({}, { workdir: 'repo/up', config: { files: [{ path: 'agent.json', base: 'workdir', format: 'json', content: '{}' }] } });
    expect(r.code).toBe(3);
    expect(r.status.message).toMatch(/task\.workdir "repo\/up" leads outside the workspace through a symlink/);
    expect(fs.existsSync(path.join(r.dirs.root, 'agent.json'))).toBe(false);
    expect(fs.existsSync(path.join(r.dirs.home, 'report.json'))).toBe(false);
  });

  test('a symlink that stays inside the repository is followed: the agent works in its real directory', async () => {
    const r = await fetchTask({}, { workdir: 'repo/inner' });
    expect(r.code).toBe(0);
    expect(r.report().cwd).toBe(path.join(fs.realpathSync(r.dirs.workspace), 'repo', 'packages', 'app'));
  });

  test('a config file under a symlinked directory: refused before any directory is created outside', () => {
    const base = makeTmpDir();
    const workdir = path.join(base, 'workdir');
    fs.mkdirSync(workdir);
    fs.symlinkSync(outside, path.join(workdir, '.tool'));
    const files = planConfigFiles([{ label: 'task', layer: { files: [{ path: '.tool/deep/er/config.json', base: 'workdir', format: 'json', content: '{}' }] } }]);
    expect(() => writeConfigFiles(files, { home: base, workdir })).toThrow(/resolves outside/);
    expect(fs.readdirSync(outside)).toEqual([]);
  });
});
