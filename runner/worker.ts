/**
 * `paddock worker --pool P --controller URL`: a warm pool's worker. Leases a
 * task from the controller (long poll), runs it with the runner (`run()`, in
 * this process) in a fresh directory per lease, renews the lease while it
 * runs, reports status.json + results.jsonl, removes the directory, repeats.
 * If a renewal is refused (the lease expired and the run went to another
 * worker, or the task was superseded or deleted) the run is stopped and its
 * report is not sent. SIGTERM: the current run is stopped (outcome
 * `terminated`, which the controller retries elsewhere) and the worker exits 0.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { POD_PATHS, run } from './run';
import { readSessionState } from './session';
import type { SandboxKind } from './sandbox-bwrap';
import { type LeaseGrant, MAX_RESULT_BYTES, shortenStatus } from '../core/protocol';

export interface WorkerOptions {
  readonly controller: string;
  readonly pool: string;
  /** @default - $HOSTNAME or a random id */
  readonly id?: string;
  /** Per-lease directories go here. @default - $PADDOCK_WORK_DIR, else /workspace in a pod (its emptyDir), else a new temporary directory */
  readonly workDir?: string;
  /** Keep each run's directory (local mode: the artifacts stay readable). @default false */
  readonly keep?: boolean;
  /** Stop after this many runs (tests, benchmarks). @default - never */
  readonly maxRuns?: number;
  /** Long-poll wait per lease request. @default 20000 */
  readonly waitMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly signal?: AbortSignal;
  readonly sandbox?: SandboxKind;
  readonly killGraceMs?: number;
  /** Progress lines. @default - stderr */
  readonly log?: (line: string) => void;
  /** Agent output. @default - process stdout/stderr */
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WritableStream;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

async function post(base: string, route: string, body: unknown, signal?: AbortSignal): Promise<{ status: number; body: any }> {
  const res = await fetch(new URL(route, base), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), signal });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/** Returns the number of runs completed (reported and accepted). */
export async function runWorker(opts: WorkerOptions): Promise<number> {
  const id = opts.id ?? process.env.HOSTNAME ?? `worker-${process.pid}`;
  const log = opts.log ?? ((line: string) => process.stderr.write(`[paddock worker ${id}] ${line}\n`));
  const workDir = opts.workDir ?? opts.env?.PADDOCK_WORK_DIR ?? (isWritableDir(POD_PATHS.workspace) ? POD_PATHS.workspace : fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-worker-')));
  fs.mkdirSync(workDir, { recursive: true });
  let done = 0;
  let failures = 0;
  log(`pool ${opts.pool}: leasing from ${opts.controller}`);
  while (!opts.signal?.aborted && (opts.maxRuns === undefined || done < opts.maxRuns)) {
    let grant: LeaseGrant | undefined;
    try {
      const r = await post(opts.controller, '/v1/leases', { pool: opts.pool, worker: id, waitMs: opts.waitMs ?? 20_000 }, opts.signal);
      if (r.status === 204) continue;
      if (r.status !== 200) throw new Error(`lease request: HTTP ${r.status} ${JSON.stringify(r.body)}`);
      grant = r.body as LeaseGrant;
      failures = 0;
    } catch (err) {
      if (opts.signal?.aborted) break;
      failures++;
      const wait = Math.min(200 * 2 ** Math.min(failures, 5), 5000);
      log(`cannot reach the controller (${(err as Error).message}); retrying in ${wait} ms`);
      await sleep(wait, opts.signal);
      continue;
    }
    if (await execute(grant, opts, id, workDir, log)) done++;
  }
  log(`stopping after ${done} run(s)`);
  return done;
}

async function execute(grant: LeaseGrant, opts: WorkerOptions, id: string, workDir: string, log: (line: string) => void): Promise<boolean> {
  const dir = path.join(workDir, `${grant.run}-${grant.attempt}-${grant.id.slice(0, 8)}`);
  const dirs = { workspace: path.join(dir, 'workspace'), home: path.join(dir, 'home'), artifacts: path.join(dir, 'artifacts'), tmp: path.join(dir, 'tmp') };
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let lost = false;
  const renew = setInterval(() => {
    post(opts.controller, `/v1/leases/${grant.id}/renew`, { worker: id })
      .then((r) => {
        if (r.status === 409 && !lost) {
          lost = true;
          log(`run ${grant.run}: the lease was taken back; stopping the run`);
          stop.abort();
        }
      })
      .catch(() => undefined); // the next renewal tries again; the TTL covers a few misses
  }, grant.renewEveryMs);
  log(`run ${grant.run} (attempt ${grant.attempt}): task ${grant.task.name}, harness ${grant.harness.name}; directory ${dir}`);
  try {
    await run({
      task: { inline: grant.task, label: `task "${grant.task.name}" (lease ${grant.id.slice(0, 8)})` },
      harness: { inline: grant.harness, label: `harness "${grant.harness.name}"` },
      pool: { inline: grant.pool, label: `pool "${grant.pool.name}"` },
      ...dirs,
      env: opts.env ?? process.env,
      signal: stop.signal,
      ...(opts.sandbox ? { sandbox: opts.sandbox } : {}),
      ...(opts.killGraceMs !== undefined ? { killGraceMs: opts.killGraceMs } : {}),
      ...(opts.stdout ? { stdout: opts.stdout } : {}),
      ...(opts.stderr ? { stderr: opts.stderr } : {}),
      ...(grant.session ? { session: grant.session } : {}),
    });
  } finally {
    clearInterval(renew);
    opts.signal?.removeEventListener('abort', onOuterAbort);
  }
  let accepted = false;
  if (!lost) {
    const session = grant.task.session ? readSessionState(dirs.artifacts) : undefined;
    let report = { ...readReport(dirs.artifacts), ...(session ? { session } : {}) };
    // Stopping (SIGTERM, or paddock local gone): one try, then leave; the lease expires on its own.
    for (let i = 0; i < (opts.signal?.aborted ? 1 : 5) && !accepted; i++) {
      try {
        const r = await post(opts.controller, `/v1/leases/${grant.id}/complete`, { worker: id, ...report });
        if (r.status === 200) accepted = true;
        else if (r.status === 413 && report.results !== '') {
          // Still too large for this controller: keep the outcome and counts, never re-run the agent for it.
          log(`run ${grant.run}: the controller refused the report as too large; sending the outcome alone`);
          report = { status: shortenStatus(report.status, 4096, `the controller refused the full report (HTTP 413): results.jsonl (${Buffer.byteLength(report.results)} bytes) dropped`), results: '', truncated: true };
          i--;
        } else if (r.status === 409) {
          log(`run ${grant.run}: the controller dropped the report (the lease was no longer current)`);
          break;
        } else throw new Error(`HTTP ${r.status}`);
      } catch (err) {
        log(`run ${grant.run}: cannot report (${(err as Error).message}); retrying`);
        await sleep(500 * (i + 1));
      }
    }
    if (accepted) log(`run ${grant.run}: reported ${String(report.status.outcome)}`);
  }
  if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  return accepted;
}

/** status.json and results.jsonl, shortened to the controller's limits (what was cut is said in them). */
function readReport(artifacts: string): { status: Record<string, unknown>; results: string; truncated?: boolean } {
  let status: Record<string, unknown>;
  try {
    status = JSON.parse(fs.readFileSync(path.join(artifacts, 'status.json'), 'utf8'));
  } catch (err) {
    status = { outcome: 'internal_error', message: `the worker could not read status.json: ${(err as Error).message}` };
  }
  let results = '';
  try {
    results = fs.readFileSync(path.join(artifacts, 'results.jsonl'), 'utf8');
  } catch {
    // none
  }
  status = shortenStatus(status);
  if (Buffer.byteLength(results) > MAX_RESULT_BYTES) {
    const cut = results.slice(0, MAX_RESULT_BYTES);
    return { status, results: cut.slice(0, cut.lastIndexOf('\n') + 1), truncated: true };
  }
  return { status, results };
}

function isWritableDir(dir: string): boolean {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return fs.statSync(dir).isDirectory();
  } catch {
    return false;
  }
}
