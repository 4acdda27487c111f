/**
 * Dispatch throughput: tasks per second through the controller in local mode
 * (in-memory store, the HTTP API on 127.0.0.1, `paddock worker` processes
 * leasing tasks and running them with the runner) with a no-op harness
 * (`echo {prompt}`), for 1, 4 and 16 workers; p50/p99 latency from submit
 * (POST /v1/tasks) to start (the lease granted to a worker). The ceiling: the
 * raw HTTP round-trip rate of this machine (a trivial loopback server, the
 * same number of concurrent clients), measured in the same run. Each task
 * costs at least 3 round trips (submit, lease, report) plus a runner
 * (spec validation, directories, exec, artifacts), so tasks/s is far below
 * the round-trip rate; the ratio shows how far.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { standardLabels } from '../core/labels';
import type { HarnessSpec, PoolSpec } from '../policy/specs';
import { startApis } from '../controller/api';
import { StaticTokenAuth } from '../controller/auth';
import { writeLocalToken } from '../controller/local';
import { Controller } from '../controller/controller';
import { MemoryStore } from '../controller/store';
import { stableJson } from '../core/stable-json';

export interface DispatchCase {
  readonly workers: number;
  readonly tasks: number;
  readonly seconds: number;
  readonly tasksPerSecond: number;
  /** Submit -> lease granted, ms. */
  readonly p50StartMs: number;
  readonly p99StartMs: number;
  /** Raw loopback HTTP round trips per second with as many concurrent clients. */
  readonly httpRoundTripsPerSecond: number;
}

export interface DispatchBenchResult {
  readonly cases: DispatchCase[];
}

const BIN = path.join(__dirname, '..', '..', 'bin', 'paddock.js');
const NS = 'paddock';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** The benchmark platform: a warm pool "bench" running a no-op harness. */
export function platform(): MemoryStore {
  const store = new MemoryStore(NS);
  const harness: HarnessSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Harness', name: 'noop', capability: 'harness.noop', command: ['echo', '{prompt}'], promptVia: 'argv', results: { from: 'stdout' } };
  const pool: PoolSpec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Pool', name: 'bench', capabilities: ['harness.noop'], harnesses: ['noop'], mode: 'warm', concurrency: 1000 };
  store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'pool-bench', labels: standardLabels(NS, 'pool', { 'paddock.dev/pool': 'bench' }) }, data: { 'pool.json': stableJson(pool) } });
  store.createSync({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'harness-noop', labels: standardLabels(NS, 'harness', { 'paddock.dev/harness': 'noop' }) }, data: { 'harness.json': stableJson(harness) } });
  return store;
}

async function postJson(url: string, body: unknown, token?: string): Promise<number> {
  const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  await res.arrayBuffer();
  return res.status;
}

/** Round trips per second of a trivial JSON POST on loopback with `clients` concurrent clients. */
export async function httpCeiling(clients: number, ms = 1500): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  let count = 0;
  const end = Date.now() + ms;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (Date.now() < end) {
        await postJson(url, { pool: 'bench', worker: 'w', waitMs: 0 });
        count++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await new Promise<void>((r) => {
    server.close(() => r());
    server.closeAllConnections();
  });
  return count / seconds;
}

export async function dispatchCase(workers: number, tasks: number): Promise<DispatchCase> {
  const store = platform();
  const started = new Map<string, number>();
  const controller = new Controller({
    store,
    namespace: NS,
    leaseTtlMs: 30_000,
    log: (line) => {
      const m = /^run (\S+): Running - attempt \d+ leased by worker/.exec(line);
      if (m) started.set(m[1], performance.now());
    },
  });
  let completed = 0;
  const complete = controller.complete.bind(controller);
  controller.complete = async (id, worker, result) => {
    const r = await complete(id, worker, result);
    if (r === 'ok') completed++;
    return r;
  };
  await controller.start();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-dispatch-'));
  const tokenFile = path.join(root, 'token');
  const token = writeLocalToken(tokenFile);
  const api = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', auth: new StaticTokenAuth(token) });
  const children: ChildProcess[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      children.push(
        spawn(process.execPath, [BIN, 'worker', '--pool', 'bench', '--controller', api.workers.url, '--token-file', tokenFile, '--id', `w${i + 1}`, '--work-dir', path.join(root, `w${i + 1}`), '--wait', '5000'], {
          stdio: 'ignore',
          env: { PATH: process.env.PATH },
        }),
      );
    }
    // Warm-up: every worker has leased and finished one task, so start-up is not measured.
    const submitted = new Map<string, number>();
    const submit = async (name: string) => {
      submitted.set(name, performance.now());
      const status = await postJson(`${api.tasks.url}/v1/tasks`, { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'bench', harness: 'noop', prompt: `noop ${name}`, timeoutSeconds: 60 }, token);
      if (status !== 201) throw new Error(`POST /v1/tasks ${name}: HTTP ${status}`);
    };
    for (let i = 0; i < workers; i++) await submit(`warm-${i}`);
    await waitFor(() => completed >= workers, 60_000, 'the warm-up tasks');
    const base = completed;
    const t0 = performance.now();
    for (let i = 0; i < tasks; i++) await submit(`t-${i}`);
    await waitFor(() => completed >= base + tasks, 300_000, `${tasks} tasks`);
    const seconds = (performance.now() - t0) / 1000;
    const latencies = [...submitted.entries()]
      .filter(([name]) => name.startsWith('t-'))
      .map(([name, at]) => {
        const run = [...started.keys()].find((r) => r.startsWith(`${name}-`) && r.length === name.length + 11);
        return run ? started.get(run)! - at : NaN;
      })
      .filter((x) => Number.isFinite(x));
    return {
      workers,
      tasks,
      seconds,
      tasksPerSecond: tasks / seconds,
      p50StartMs: percentile(latencies, 50),
      p99StartMs: percentile(latencies, 99),
      httpRoundTripsPerSecond: await httpCeiling(workers),
    };
  } finally {
    children.forEach((c) => c.kill('SIGTERM'));
    await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)))));
    await api.close();
    await controller.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`dispatch bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export async function benchDispatch(workerCounts: number[] = [1, 4, 16], tasksPerWorker = 25): Promise<DispatchBenchResult> {
  const cases: DispatchCase[] = [];
  for (const w of workerCounts) cases.push(await dispatchCase(w, Math.max(50, Math.min(400, w * tasksPerWorker))));
  return { cases };
}

export function reportDispatch(r: DispatchBenchResult): string[] {
  const f = (n: number, d = 1) => n.toFixed(d);
  return [
    'dispatch: tasks through the controller (local mode, warm workers, no-op harness `echo {prompt}`)',
    '  workers  tasks  tasks/s  submit->start p50 ms  p99 ms  loopback HTTP round trips/s (ceiling)  tasks/s vs ceiling',
    ...r.cases.map(
      (c) =>
        `  ${String(c.workers).padStart(7)}  ${String(c.tasks).padStart(5)}  ${f(c.tasksPerSecond).padStart(7)}  ${f(c.p50StartMs).padStart(20)}  ${f(c.p99StartMs).padStart(6)}  ${f(c.httpRoundTripsPerSecond, 0).padStart(38)}  ${(c.tasksPerSecond / c.httpRoundTripsPerSecond).toFixed(4).padStart(18)}`,
    ),
  ];
}

if (require.main === module) {
  benchDispatch()
    .then((r) => console.log(reportDispatch(r).join('\n')))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
