/**
 * The runtime commands run without the synthesis stack: with cdk8s, constructs,
 * @pulumi/* and Paddock's own constructs/ and stacks/ made unloadable (a require
 * hook preloaded through NODE_OPTIONS, so the workers `paddock local` starts get
 * it too), the runner, the worker, the controller and `paddock local` still work.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import { AgentPool, AgentTask, Harness, Platform, SandboxProfile } from '../../constructs';
import { fakeHarness, makeRunDirs, makeTmpDir, readJson, task } from '../support/runner-fixtures';

const ROOT = path.join(__dirname, '..', '..');
const PADDOCK = path.join(ROOT, 'bin', 'paddock.js');
const HOOK = path.join(ROOT, 'test', 'support', 'block-synthesis.js');

function blocked(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  return spawnSync(process.execPath, args, {
    cwd: opts.cwd ?? ROOT,
    encoding: 'utf8',
    timeout: opts.timeout ?? 60_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...opts.env, NODE_OPTIONS: `--require ${HOOK}` },
  });
}

describe('runtime commands without the synthesis stack', () => {
  test('the hook really blocks it (this suite can fail)', () => {
    for (const mod of ['cdk8s', 'constructs', '@pulumi/pulumi', './lib/constructs/agent-pool.js', './lib/stacks/example-platform.js']) {
      const r = blocked(['-e', `require(${JSON.stringify(mod)})`]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain('blocked by block-synthesis.js');
    }
  });

  test('every runtime module loads: runner, worker, controller, stores, APIs, leader election, local, CLI', () => {
    const modules = fs
      .readdirSync(path.join(ROOT, 'lib'))
      .filter((d) => ['core', 'runner', 'controller', 'cli'].includes(d))
      .flatMap((d) => fs.readdirSync(path.join(ROOT, 'lib', d)).filter((f) => f.endsWith('.js')).map((f) => `./lib/${d}/${f}`));
    expect(modules).toEqual(expect.arrayContaining(['./lib/runner/run.js', './lib/runner/worker.js', './lib/controller/controller.js', './lib/controller/local.js', './lib/cli/main.js']));
    const r = blocked(['-e', modules.map((m) => `require(${JSON.stringify(m)});`).join('')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test.each(['run', 'worker', 'controller', 'local', 'tasks submit', 'tasks watch', 'harness dry-run', 'harness presets', 'egress explain'])('paddock %s --help', (words) => {
    const r = blocked([PADDOCK, ...words.split(' '), '--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  test('paddock harness dry-run codex and paddock version', () => {
    const dry = blocked([PADDOCK, 'harness', 'dry-run', 'codex', '--prompt', 'hi']);
    expect(dry.stderr).toBe('');
    expect(JSON.parse(dry.stdout).at(-1)).toBe('hi');
    expect(blocked([PADDOCK, 'version']).status).toBe(0);
  });

  test('paddock run executes a task', () => {
    const dirs = makeRunDirs();
    fs.writeFileSync(path.join(dirs.root, 'task.json'), JSON.stringify(task()));
    fs.writeFileSync(path.join(dirs.root, 'harness.json'), JSON.stringify(fakeHarness('echo')));
    const r = blocked([PADDOCK, 'run', '--task', 'task.json', '--harness', 'harness.json', '--no-pool', '--workspace', dirs.workspace, '--home', dirs.home, '--artifacts', dirs.artifacts, '--tmp', dirs.tmp], { cwd: dirs.root });
    expect(r.stderr).not.toContain('blocked by');
    expect(r.status).toBe(0);
    expect(readJson(path.join(dirs.artifacts, 'status.json')).outcome).toBe('succeeded');
  });

  test('paddock local runs a declared task of a synthesized platform through the controller and a warm worker', () => {
    const root = makeTmpDir('paddock-nosynth-');
    const app = new App({ outdir: path.join(root, 'dist') });
    const platform = new Platform(new Chart(app, 'paddock', { disableResourceNameHashes: true }), 'platform', { namespace: 'paddock' });
    const harness = Harness.fromSpec({ ...fakeHarness('echo'), image: 'example.com/fake:1' });
    const pool = new AgentPool(platform, 'fake', { harnesses: [harness], mode: 'warm', replicas: 1, sandbox: SandboxProfile.none() });
    new AgentTask(platform, 'hello', { pool, harness, prompt: 'Say hello' });
    app.synth();
    const r = blocked([PADDOCK, 'local', '--dir', path.join(root, 'dist'), '--out', path.join(root, 'out'), '--timeout', '60'], { cwd: root, timeout: 90_000 });
    expect(r.stderr).not.toContain('blocked by');
    expect(r.stdout).toMatch(/task hello: Succeeded \(succeeded\) after 1 attempt\(s\), 1 result\(s\)/);
    expect(r.status).toBe(0);
  });
});
