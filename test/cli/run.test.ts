/**
 * `paddock run` arguments, and the runner as a real process: SIGTERM mid-run (pod
 * eviction), local mode, usage errors.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../core/harness';
import { parseRunArgs } from '../../cli/run';
import { fakeHarness, isAlive, makeRunDirs, readJson, readJsonl, task, waitFor, writeSpecs } from '../support/runner-fixtures';

// The built CLI (jest's global setup runs tsc into lib/): the product's own entry point.
const PADDOCK = path.join(__dirname, '..', '..', 'bin', 'paddock.js');

interface Proc {
  readonly child: ChildProcess;
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

/** The runner as a real process: `paddock run ARGS`. */
function spawnRunner(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [PADDOCK, 'run', ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c) => (stdout += c));
  child.stderr!.on('data', (c) => (stderr += c));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

describe('parseRunArgs', () => {
  test('pod mode: no arguments, the defaults', () => {
    expect(parseRunArgs([])).toEqual({ options: {}, local: false, help: false });
  });

  test('local mode: every option, both spellings', () => {
    const parsed = parseRunArgs([
      '--task',
      't.json',
      `--harness=${__filename}`,
      '--pool',
      'p',
      '--workspace',
      'w',
      '--home',
      'h2',
      '--artifacts',
      'a',
      '--tmp',
      'x',
      '--sandbox',
      'bwrap',
      '--kill-grace',
      '2.5',
    ]);
    expect(parsed).toEqual({
      local: true,
      help: false,
      options: { task: 't.json', harness: __filename, pool: 'p', workspace: 'w', home: 'h2', artifacts: 'a', tmp: 'x', sandbox: 'bwrap', killGraceMs: 2500 },
    });
    expect(parseRunArgs(['--task-dir', 'd', '--no-pool']).options).toEqual({ task: 'd', pool: null });
  });

  test.each([
    [['--bogus'], /^unknown option --bogus; known: --task, --task-dir, --harness, /],
    [['--task-dir'], /^--task-dir needs a value, e.g. --task-dir \/etc\/paddock\/task$/],
    [['--task', '--home', 'h'], /^--task needs a value, e.g. --task task.json$/],
    [['--no-pool=yes'], /^--no-pool takes no value; write --no-pool alone$/],
    [['stray'], /^unexpected argument "stray"; known options: --task, /],
    [['--task'], /--task needs a value, e.g. --task task.json/],
    [['--task', 'a', '--task-dir', 'b'], /either --task FILE or --task-dir DIR/],
    [['--sandbox', 'docker'], /--sandbox "docker" is not supported; write --sandbox bwrap/],
    [['--kill-grace', 'soon'], /must be a number of seconds/],
    [['--pool', 'p', '--no-pool'], /either --pool or --no-pool/],
    [['--home', 'a', '--home', 'b'], /--home is given twice/],
    [['--harness', 'codexx'], /--harness "codexx" is neither a file, a folder nor a harness preset \(claude-code, codex, /],
  ])('%j is rejected with a message that says what to write', (args, message) => {
    expect(() => parseRunArgs(args)).toThrow(message);
  });
});

test('--harness PRESET: the preset spec from the construct library', () => {
  expect(parseRunArgs(['--harness', 'codex']).options.harness).toEqual({ inline: Harness.codex().spec, label: 'preset "codex"' });
});

describe('the runner as a process', () => {
  test('SIGTERM mid-run: the agent process group is stopped, artifacts written, exit 5', async () => {
    const dirs = makeRunDirs();
    const specs = writeSpecs(dirs, { task: task(), harness: fakeHarness('hang') });
    const p = spawnRunner([
      '--task-dir',
      specs.task,
      '--harness',
      specs.harness,
      '--workspace',
      dirs.workspace,
      '--home',
      dirs.home,
      '--artifacts',
      dirs.artifacts,
      '--tmp',
      dirs.tmp,
      '--kill-grace',
      '0.3',
    ]);
    const pidFile = path.join(dirs.home, 'grandchild.pid');
    expect(await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8') !== '', 10_000)).toBe(true);
    const grandchild = Number(fs.readFileSync(pidFile, 'utf8'));
    const agent = readJson(path.join(dirs.home, 'report.json'));
    expect(agent.mode).toBe('hang');
    await new Promise((r) => setTimeout(r, 100)); // let the partial output arrive
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('[paddock] got SIGTERM; stopping the agent');
    const status = readJson(path.join(dirs.artifacts, 'status.json'));
    expect(status).toMatchObject({ outcome: 'terminated', runnerExitCode: 5, signal: 'SIGTERM' });
    expect(r.stdout).toContain('[agent] partial output before hanging');
    expect(readJsonl(path.join(dirs.artifacts, 'results.jsonl'))).toEqual([{ partial: true }]);
    expect(await waitFor(() => !isAlive(grandchild), 2000)).toBe(true);
  });

  test('local mode: --task FILE --harness FILE runs in a fresh temp directory', async () => {
    const dirs = makeRunDirs();
    const specs = writeSpecs(dirs, { task: task(), harness: fakeHarness('echo') });
    const r = await spawnRunner(['--task', path.join(specs.task, 'task.json'), '--harness', path.join(specs.harness, 'harness.json')]).done;
    expect(r.code).toBe(0);
    const root = /local run directory: (\S+)/.exec(r.stderr)?.[1];
    expect(root).toBeDefined();
    expect(readJson(path.join(root!, 'artifacts', 'status.json')).outcome).toBe('succeeded');
    expect(fs.existsSync(path.join(root!, 'workspace', 'agent-wrote.txt'))).toBe(true);
    fs.rmSync(root!, { recursive: true, force: true });
  });

  test('a usage error exits 2 with the message', async () => {
    const r = await spawnRunner(['--sandbox', 'docker']).done;
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`paddock run: --sandbox "docker" is not supported; write --sandbox bwrap\n`);
  });
});
