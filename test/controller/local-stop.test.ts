/**
 * Nothing keeps running when it should not: a SIGKILLed worker's agent dies with it
 * (the agent runs under a supervisor holding a pipe to the worker), `paddock local`
 * on SIGTERM (or SIGKILL) stops its workers and their agents, and two `paddock local`
 * on one --out refuse. Real processes: the built CLI and a stand-in agent that logs
 * its pid.
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { startApi, ApiServer } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { lockOut, LocalError } from '../../controller/local';
import { isAlive, makeTmpDir, waitFor } from '../support/runner-fixtures';
import { localToken, memoryPlatform, slowHarness, taskSpec } from './support/platform';

jest.setTimeout(90_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');
const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)));

/** pids of agents that logged "start" and never "end". */
function agentPids(log: string): number[] {
  if (!fs.existsSync(log)) return [];
  return fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('start ')).map((l) => Number(l.split(' ').pop()));
}

/** Processes whose command line mentions `marker` (a unique temp path). */
function processesMentioning(marker: string): number[] {
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid).filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(marker) && isAlive(Number(p));
    } catch {
      return false;
    }
  }).map(Number);
}

const children: ChildProcess[] = [];
afterEach(async () => {
  children.forEach((c) => c.kill('SIGKILL'));
  await Promise.all(children.map(exited));
  children.length = 0;
});

describe('a SIGKILLed worker takes its agent with it', () => {
  let api: ApiServer | undefined;
  let controller: Controller | undefined;
  afterEach(async () => {
    await api?.close();
    await controller?.stop();
  });

  test('no agent runs beside the retried attempt', async () => {
    const root = makeTmpDir('paddock-kill-');
    const agentLog = path.join(root, 'agent.log');
    const store = memoryPlatform(slowHarness(agentLog, 2500), { tasks: [taskSpec('t1')] });
    controller = new Controller({ store, namespace: 'paddock', leaseTtlMs: 1000, settings: { backoffBaseMs: 10 } });
    await controller.start();
    const { auth, tokenFile } = localToken(root);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth });
    const worker = (id: string) => {
      const c = spawn(process.execPath, [PADDOCK, 'worker', '--pool', 'warm', '--controller', api!.url, '--token-file', tokenFile, '--id', id, '--work-dir', path.join(root, id), '--wait', '500'], { stdio: 'ignore', env: { PATH: process.env.PATH } });
      children.push(c);
      return c;
    };
    const w1 = worker('w1');
    expect(await waitFor(() => agentPids(agentLog).length === 1, 20_000)).toBe(true);
    const [first] = agentPids(agentLog);
    w1.kill('SIGKILL');
    await exited(w1);
    // The supervisor saw the worker's pipe close and stopped the agent's group.
    expect(await waitFor(() => !isAlive(first), 5_000)).toBe(true);
    worker('w2');
    expect(await waitFor(() => controller!.task('t1')?.run?.phase === 'Succeeded', 30_000)).toBe(true);
    expect(controller.task('t1')!.run!.attempt).toBe(2);
    const lines = fs.readFileSync(agentLog, 'utf8');
    expect(lines).not.toContain(`end prompt-t1 ${first}`);
    expect(agentPids(agentLog)).toHaveLength(2);
  });
});

describe('paddock local: stopping and locking', () => {
  /** A dist/ folder (one JSON file per ConfigMap) with a warm pool running the stand-in agent. */
  function dist(root: string, sleepMs: number): { dir: string; agentLog: string } {
    const agentLog = path.join(root, 'agent.log');
    const store = memoryPlatform(slowHarness(agentLog, sleepMs), { tasks: [taskSpec('t1'), taskSpec('t2')] });
    const dir = path.join(root, 'dist');
    fs.mkdirSync(dir);
    for (const cm of store.list('ConfigMap')) fs.writeFileSync(path.join(dir, `${cm.metadata.name}.json`), JSON.stringify({ ...cm, metadata: { ...cm.metadata, namespace: 'paddock' } }));
    return { dir, agentLog };
  }

  function local(root: string, dir: string, out: string): { child: ChildProcess; output: () => string } {
    let output = '';
    const child = spawn(process.execPath, [PADDOCK, 'local', '--dir', dir, '--out', out, '--workers', '2'], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    children.push(child);
    return { child, output: () => output };
  }

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`${signal} while agents run: the workers and their agents stop${signal === 'SIGTERM' ? ', exit 5, the lock is released' : ' (the workers\' stdin lifeline closes)'}`, async () => {
      const root = makeTmpDir('paddock-local-stop-');
      const { dir, agentLog } = dist(root, 60_000);
      const out = path.join(root, 'out');
      const l = local(root, dir, out);
      expect(await waitFor(() => agentPids(agentLog).length === 2, 30_000)).toBe(true);
      expect(processesMentioning(out).length).toBeGreaterThanOrEqual(2); // the two workers
      l.child.kill(signal);
      await exited(l.child);
      if (signal === 'SIGTERM') {
        expect(l.child.exitCode).toBe(5);
        expect(l.output()).toMatch(/stopping: SIGTERM to the workers/);
        expect(fs.existsSync(path.join(out, '.lock'))).toBe(false);
      }
      expect(await waitFor(() => agentPids(agentLog).every((p) => !isAlive(p)), 10_000)).toBe(true);
      expect(await waitFor(() => processesMentioning(out).length === 0, 10_000)).toBe(true);
    });
  }

  test('a second paddock local on the same --out refuses (exit 2, naming the holder); a stale lock is taken over', async () => {
    const root = makeTmpDir('paddock-local-lock-');
    const { dir, agentLog } = dist(root, 60_000);
    const out = path.join(root, 'out');
    const first = local(root, dir, out);
    expect(await waitFor(() => agentPids(agentLog).length === 2, 30_000)).toBe(true);
    const second = spawnSync(process.execPath, [PADDOCK, 'local', '--dir', dir, '--out', out], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(second.status).toBe(2);
    expect(second.stderr + second.stdout).toMatch(new RegExp(`--out ${out} is in use by another paddock local \\(pid ${first.child.pid}`));
    expect(agentPids(agentLog)).toHaveLength(2); // nothing ran twice
    first.child.kill('SIGKILL');
    await exited(first.child);
    // Its lock stays behind, naming a dead pid: the next one takes it over.
    expect(fs.readFileSync(path.join(out, '.lock'), 'utf8').trim()).toBe(String(first.child.pid));
    const release = lockOut(out);
    expect(fs.readFileSync(path.join(out, '.lock'), 'utf8').trim()).toBe(String(process.pid));
    expect(() => lockOut(out)).toThrow(LocalError);
    release();
    expect(fs.existsSync(path.join(out, '.lock'))).toBe(false);
  });
});
