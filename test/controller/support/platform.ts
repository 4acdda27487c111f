/** An in-memory platform (pool, harness, tasks as the constructs synthesize them) for the controller tests and the bench. */
import * as path from 'path';
import { standardLabels } from '../../../core/labels';
import type { HarnessSpec, PoolSpec, TaskSpec } from '../../../policy/specs';
import { taskConfigMap } from '../../../controller/observe';
import { MemoryStore } from '../../../controller/store';
import { StaticTokenAuth } from '../../../controller/auth';
import { writeLocalToken } from '../../../controller/local';
import { ApiServers, startApis } from '../../../controller/api';
import { Controller, ControllerOptions } from '../../../controller/controller';
import { stableJson } from '../../../core/stable-json';

export const NS = 'paddock';
export const SLOW_AGENT = path.join(__dirname, 'slow-agent.js');

export function slowHarness(log: string, sleepMs: number): HarnessSpec {
  return {
    apiVersion: 'paddock.dev/v1alpha1',
    kind: 'Harness',
    name: 'slow',
    capability: 'harness.slow',
    image: 'example.invalid/slow:1',
    command: [process.execPath, SLOW_AGENT, log, String(sleepMs), '{prompt}'],
    promptVia: 'argv',
    results: { from: 'stdout' },
  };
}

export const TALK_AGENT = path.join(__dirname, 'talk-agent.js');

/** A harness whose stand-in CLI keeps its conversation in HOME and resumes it natively (talk-agent.js). */
export function talkHarness(): HarnessSpec {
  return {
    apiVersion: 'paddock.dev/v1alpha1',
    kind: 'Harness',
    name: 'talk',
    capability: 'harness.talk',
    image: 'example.invalid/talk:1',
    command: [process.execPath, TALK_AGENT, '{prompt}'],
    promptVia: 'argv',
    results: { from: 'stdout' },
    resume: { start: ['--start', '{session_id}'], argv: ['--resume', '{session_id}'], state: ['.talk'] },
  };
}

export function taskSpec(name: string, extra: Partial<TaskSpec> = {}): TaskSpec {
  return { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'warm', harness: 'slow', prompt: `prompt-${name}`, timeoutSeconds: 60, ...extra };
}

export function memoryPlatform(harness: HarnessSpec, opts: { mode?: 'warm' | 'job'; concurrency?: number; tasks?: TaskSpec[]; push?: PoolSpec['push'] } = {}): MemoryStore {
  const store = new MemoryStore(NS);
  const pool: PoolSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'warm', capabilities: [harness.capability], harnesses: [harness.name], mode: opts.mode ?? 'warm', concurrency: opts.concurrency ?? 100, ...(opts.push ? { push: opts.push } : {}) };
  store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pool-warm', labels: standardLabels(NS, 'pool', { 'paddock.dev/pool': 'warm' }) }, data: { 'pool.json': stableJson(pool) } });
  store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `harness-${harness.name}`, labels: standardLabels(NS, 'harness', { 'paddock.dev/harness': harness.name }) }, data: { 'harness.json': stableJson(harness) } });
  for (const t of opts.tasks ?? []) store.createSync(taskConfigMap(NS, t));
  return store;
}

/** Another pool in the same store (e.g. a second warm pool, or a job pool), running the same harness. */
export function addPool(store: MemoryStore, harness: HarnessSpec, name: string, mode: 'warm' | 'job'): void {
  const pool: PoolSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name, capabilities: [harness.capability], harnesses: [harness.name], mode, concurrency: 100 };
  store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `pool-${name}`, labels: standardLabels(NS, 'pool', { 'paddock.dev/pool': name }) }, data: { 'pool.json': stableJson(pool) } });
}

/** paddock local's credential: one random token in a 0600 file, and the headers a JSON call sends with it. */
export function localToken(dir: string): { auth: StaticTokenAuth; token: string; tokenFile: string; headers: Record<string, string> } {
  const tokenFile = path.join(dir, 'token');
  const token = writeLocalToken(tokenFile);
  return { auth: new StaticTokenAuth(token), token, tokenFile, headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } };
}

/** A started controller with its task and worker APIs on loopback, callers authenticated by a local token in `dir`. */
export async function startLocalControlPlane(opts: ControllerOptions, dir: string): Promise<{ controller: Controller; apis: ApiServers; token: ReturnType<typeof localToken> }> {
  const controller = new Controller(opts);
  await controller.start();
  const token = localToken(dir);
  const apis = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', auth: token.auth });
  return { controller, apis, token };
}

/** A stream that drops what it gets (a worker's agent output in tests that do not read it). */
export function devNull(): NodeJS.WritableStream {
  return new (require('stream').Writable)({ write: (_c: unknown, _e: unknown, cb: () => void) => cb() });
}
