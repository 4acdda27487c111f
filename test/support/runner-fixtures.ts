/**
 * Fixtures for the runner tests: real git repositories (bare, served by git-server.ts),
 * spec builders, the fake agent, temp directories and an in-memory output stream.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Writable } from 'stream';
import type { HarnessSpec, PoolSpec, TaskSpec } from '../../policy/specs';
import { run, RunOptions } from '../../runner/run';
import { promptViaOf } from '../../core/command-template';

export const FAKE_AGENT = path.resolve(__dirname, '../runner/fixtures/fake-agent.js');

/** Commits in the fixture repository `demo`. */
export interface DemoRepo {
  /** First commit on main, tagged v1 (annotated) and v1-light (lightweight). */
  readonly firstSha: string;
  /** Head of main. */
  readonly mainSha: string;
  /** Head of branch `feature` (branched from the first commit). */
  readonly featureSha: string;
}

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Paddock Test',
  GIT_AUTHOR_EMAIL: 'test@paddock.invalid',
  GIT_COMMITTER_NAME: 'Paddock Test',
  GIT_COMMITTER_EMAIL: 'test@paddock.invalid',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, { cwd, env: { ...process.env, ...GIT_ENV }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

function write(dir: string, rel: string, content: string): void {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), content);
}

/**
 * Creates `<reposRoot>/demo.git`:
 *   main:    README.md (v2), packages/app/app.txt, packages/lib/lib.txt
 *   v1 tag:  README.md (v1) ...
 *   feature: + feature.txt
 * and, when `private` is set, `<reposRoot>/private/secret.git` with secret-repo.txt.
 */
export function makeDemoRepos(reposRoot: string, opts: { private?: boolean } = {}): DemoRepo {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-repo-work-'));
  try {
    git(work, 'init', '-q', '-b', 'main');
    write(work, 'README.md', '# demo v1\n');
    write(work, 'packages/app/app.txt', 'app v1\n');
    write(work, 'packages/lib/lib.txt', 'lib v1\n');
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', 'first');
    const firstSha = git(work, 'rev-parse', 'HEAD');
    git(work, 'tag', '-a', 'v1', '-m', 'version 1');
    git(work, 'tag', 'v1-light');
    git(work, 'checkout', '-q', '-b', 'feature');
    write(work, 'feature.txt', 'feature\n');
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', 'feature');
    const featureSha = git(work, 'rev-parse', 'HEAD');
    git(work, 'checkout', '-q', 'main');
    write(work, 'README.md', '# demo v2\n');
    git(work, 'commit', '-q', '-am', 'second');
    const mainSha = git(work, 'rev-parse', 'HEAD');
    fs.mkdirSync(reposRoot, { recursive: true });
    const bare = path.join(reposRoot, 'demo.git');
    git(reposRoot, 'clone', '-q', '--bare', work, bare);
    // Fetching by SHA: allowed by protocol v2, and for v0 clients with this setting.
    git(bare, 'config', 'uploadpack.allowReachableSHA1InWant', 'true');
    if (opts.private) {
      const pwork = path.join(work, 'private-work');
      fs.mkdirSync(pwork);
      git(pwork, 'init', '-q', '-b', 'main');
      write(pwork, 'secret-repo.txt', 'only with credentials\n');
      git(pwork, 'add', '-A');
      git(pwork, 'commit', '-q', '-m', 'private');
      fs.mkdirSync(path.join(reposRoot, 'private'), { recursive: true });
      git(reposRoot, 'clone', '-q', '--bare', pwork, path.join(reposRoot, 'private', 'secret.git'));
    }
    return { firstSha, mainSha, featureSha };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** A repository with text files, a binary file and a script; returns the head commit. */
export function makeChangeRepo(reposRoot: string, name = 'work'): string {
  const work = makeTmpDir('paddock-change-repo-');
  git(work, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(work, 'edit.txt'), 'one\ntwo\nthree\n');
  fs.writeFileSync(path.join(work, 'delete.txt'), 'gone soon\n');
  fs.writeFileSync(path.join(work, 'rename-me.txt'), 'a file that moves, with enough text to be seen as a rename\n'.repeat(5));
  fs.writeFileSync(path.join(work, 'logo.bin'), Buffer.from([0, 1, 2, 3, 255, 254, 0, 0, 10, 13]));
  fs.writeFileSync(path.join(work, 'run.sh'), '#!/bin/sh\necho hi\n');
  fs.writeFileSync(path.join(work, '.gitignore'), 'build/\n');
  git(work, 'add', '-A');
  git(work, 'commit', '-q', '-m', 'base');
  fs.mkdirSync(reposRoot, { recursive: true });
  fs.mkdirSync(path.dirname(path.join(reposRoot, `${name}.git`)), { recursive: true });
  git(reposRoot, 'clone', '-q', '--bare', work, path.join(reposRoot, `${name}.git`));
  return git(work, 'rev-parse', 'HEAD');
}

/** What the agent does: every kind of change git knows. */
export const EDIT_SCRIPT = [
  'printf "one\\n2\\nthree\\nfour\\n" > edit.txt',
  'rm delete.txt',
  'git mv -q rename-me.txt moved/renamed.txt 2>/dev/null || { mkdir -p moved && mv rename-me.txt moved/renamed.txt; }',
  'printf "\\000\\001new binary\\377" > logo.bin',
  'printf "\\211PNG\\r\\n\\032\\n\\000\\000" > added.bin',
  'printf "brand new\\n" > added.txt',
  'chmod +x run.sh',
  'mkdir -p build && echo ignored > build/out.txt',
  'git config core.fsmonitor "touch $HOME/fsmonitor-ran; false"',
].join(' && ');

const tmpDirs: string[] = [];

/** A fresh temp directory, removed after the test file (set PADDOCK_KEEP_TMP=1 to keep them). */
export function makeTmpDir(prefix = 'paddock-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

if (typeof afterAll === 'function') {
  afterAll(() => {
    if (process.env.PADDOCK_KEEP_TMP === '1') return;
    for (const dir of tmpDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
}

/** The directories of one run under a temp root. */
export interface RunDirs {
  readonly root: string;
  readonly workspace: string;
  readonly home: string;
  readonly artifacts: string;
  readonly tmp: string;
  /** A folder per spec, laid out like mounted ConfigMaps. */
  readonly specs: string;
}

export function makeRunDirs(root = makeTmpDir()): RunDirs {
  const dirs = {
    root,
    workspace: path.join(root, 'workspace'),
    home: path.join(root, 'home'),
    artifacts: path.join(root, 'artifacts'),
    tmp: path.join(root, 'tmp'),
    specs: path.join(root, 'specs'),
  };
  fs.mkdirSync(dirs.specs, { recursive: true });
  return dirs;
}

export function task(overrides: Partial<TaskSpec> = {}): TaskSpec {
  return {
    apiVersion: 'paddock.dev/v1alpha1',
    kind: 'Task',
    name: 'demo-task',
    pool: 'local',
    harness: 'fake',
    prompt: 'Say hello',
    timeoutSeconds: 30,
    ...overrides,
  };
}

/** A harness running the fake agent in `mode` with extra args (placeholders allowed). */
export function fakeHarness(mode: string, args: string[] = ['{prompt}'], overrides: Partial<HarnessSpec> = {}): HarnessSpec {
  const command = [process.execPath, FAKE_AGENT, mode, ...args];
  const promptVia = promptViaOf(command);
  return {
    apiVersion: 'paddock.dev/v1alpha1',
    kind: 'Harness',
    name: 'fake',
    capability: 'harness.fake',
    command,
    promptVia,
    results: { from: 'stdout' },
    ...overrides,
  };
}

export function pool(overrides: Partial<PoolSpec> = {}): PoolSpec {
  return {
    apiVersion: 'paddock.dev/v1alpha1',
    kind: 'Pool',
    name: 'local',
    capabilities: ['harness.fake'],
    harnesses: ['fake'],
    ...overrides,
  };
}

/** Writes each spec as `<specs>/<kind>/<kind>.json`, the way a kubelet mounts a ConfigMap key; returns the folders. */
export function writeSpecs(dirs: RunDirs, specs: { task?: unknown; harness?: unknown; pool?: unknown }): { task: string; harness: string; pool: string } {
  const out = { task: path.join(dirs.specs, 'task'), harness: path.join(dirs.specs, 'harness'), pool: path.join(dirs.specs, 'pool') };
  for (const kind of ['task', 'harness', 'pool'] as const) {
    const value = specs[kind];
    if (value === undefined) continue;
    fs.mkdirSync(out[kind], { recursive: true });
    fs.writeFileSync(path.join(out[kind], `${kind}.json`), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  }
  return out;
}

/** A Writable that keeps everything written to it. */
export class Capture extends Writable {
  private readonly chunks: string[] = [];
  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk.toString());
    cb();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

export function readJson<T = any>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

export function readJsonl(file: string): unknown[] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l)
    .map((l) => JSON.parse(l));
}

/** Everything under a directory, as relative paths (sorted). */
export function listFiles(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.name === '.git') continue;
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push(path.relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}

/** True while `pid` exists and is not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}

export interface RunTaskResult {
  readonly code: number;
  readonly status: any;
  /** What the runner wrote to its stdout (the agent's stdout lines). */
  readonly stdout: string;
  /** What the runner wrote to its stderr (its own log and the agent's stderr lines). */
  readonly stderr: string;
  /** $HOME/report.json written by the fake agent, if it ran. */
  report(): any;
}

/** Write the specs like mounted ConfigMaps and call run() on them with in-memory output. */
export async function runTask(
  dirs: RunDirs,
  specs: { task: unknown; harness: unknown; pool?: unknown },
  opts: Partial<RunOptions> = {},
): Promise<RunTaskResult> {
  const paths = writeSpecs(dirs, specs);
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await run({
    task: paths.task,
    harness: paths.harness,
    pool: specs.pool !== undefined ? paths.pool : null,
    workspace: dirs.workspace,
    home: dirs.home,
    artifacts: dirs.artifacts,
    tmp: dirs.tmp,
    env: { PATH: process.env.PATH },
    stdout,
    stderr,
    killGraceMs: 300,
    ...opts,
  });
  const statusFile = path.join(dirs.artifacts, 'status.json');
  return {
    code,
    status: fs.existsSync(statusFile) ? readJson(statusFile) : undefined,
    stdout: stdout.text,
    stderr: stderr.text,
    report: () => readJson(path.join(dirs.home, 'report.json')),
  };
}
