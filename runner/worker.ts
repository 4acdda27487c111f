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
import { readPatches } from './patch';
import { POD_PATHS, run } from './run';
import { readSessionState } from './session';
import type { SandboxKind } from './sandbox-bwrap';
import { type GrantSources, type LeaseGrant, MAX_RESULT_BYTES, shortenStatus, type SourceChange } from '../core/protocol';
import { jsonLogger } from '../core/log';
import { spawnSync } from 'child_process';
import { writeFetchRecord } from './fetch-record';
import { Isolation, LEASE_MARKER, reapRun, wipeContents } from './isolation';
import type { Outcome } from './status';

export interface WorkerOptions {
  readonly controller: string;
  readonly pool: string;
  /**
   * The file holding the bearer token for the lease API, read on every request (the
   * kubelet rotates a projected ServiceAccount token; paddock local writes one token).
   */
  readonly tokenFile: string;
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
  /**
   * Which processes are a run's, to kill after it (see isolation.ts): `container` (the
   * synthesized worker: everything of this uid but the worker) or `session` (the run's marker).
   * @default 'session'
   */
  readonly isolation?: Isolation;
  /** Directories whose contents are wiped after every run, besides the run's own (the pod's /tmp and HOME). @default - none */
  readonly wipe?: readonly string[];
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

type Post = (route: string, body: unknown, signal?: AbortSignal) => Promise<{ status: number; body: any }>;

/** POST to the lease API with the current token. */
function poster(base: string, tokenFile: string): Post {
  return async (route, body, signal) => {
    const token = fs.readFileSync(tokenFile, 'utf8').trim();
    const res = await fetch(new URL(route, base), { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify(body), signal });
    return answer(res);
  };
}

export async function answer(res: Response): Promise<{ status: number; body: any }> {
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, body: parsed };
}

/** Something of a finished run survived: the worker must not run another task in this container. */
export class TaintedWorkerError extends Error {}

/** Returns the number of runs completed (reported and accepted); throws TaintedWorkerError when a run could not be cleaned up. */
export async function runWorker(opts: WorkerOptions): Promise<number> {
  const id = opts.id ?? process.env.HOSTNAME ?? `worker-${process.pid}`;
  const json = jsonLogger('worker', (l) => process.stderr.write(l), { worker: id, pool: opts.pool });
  const log = opts.log ?? ((line: string) => json(line));
  const post = poster(opts.controller, opts.tokenFile);
  const workDir = opts.workDir ?? opts.env?.PADDOCK_WORK_DIR ?? (isWritableDir(POD_PATHS.workspace) ? POD_PATHS.workspace : fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-worker-')));
  fs.mkdirSync(workDir, { recursive: true });
  let done = 0;
  let failures = 0;
  log(`pool ${opts.pool}: leasing from ${opts.controller}`);
  while (!opts.signal?.aborted && (opts.maxRuns === undefined || done < opts.maxRuns)) {
    let grant: LeaseGrant | undefined;
    try {
      const r = await post('/v1/leases', { pool: opts.pool, worker: id, waitMs: opts.waitMs ?? 20_000 }, opts.signal);
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
    if (await execute(grant, opts, id, workDir, log, post)) done++;
  }
  log(`stopping after ${done} run(s)`);
  return done;
}

async function execute(grant: LeaseGrant, opts: WorkerOptions, id: string, workDir: string, log: (line: string) => void, post: Post): Promise<boolean> {
  const dir = path.join(workDir, `${grant.run}-${grant.attempt}-${grant.id.slice(0, 8)}`);
  const dirs = { workspace: path.join(dir, 'workspace'), home: path.join(dir, 'home'), artifacts: path.join(dir, 'artifacts'), tmp: path.join(dir, 'tmp') };
  const stop = new AbortController();
  const onOuterAbort = () => stop.abort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  let lost = false;
  const renew = setInterval(() => {
    post(`/v1/leases/${grant.id}/renew`, { worker: id })
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
  if (grant.sources) unpackSources(grant.sources, dirs);
  try {
    await run({
      // The controller fetched the sources (it holds the git credentials); this pod holds none.
      ...(grant.sources ? { phase: 'agent' as const } : {}),
      // The run's processes carry its lease id, so the worker finds them after it.
      task: { inline: { ...grant.task, env: { ...grant.task.env, [LEASE_MARKER]: grant.id } }, label: `task "${grant.task.name}" (lease ${grant.id.slice(0, 8)})` },
      harness: { inline: grant.harness, label: `harness "${grant.harness.name}"` },
      pool: { inline: grant.pool, label: `pool "${grant.pool.name}"` },
      ...dirs,
      env: opts.env ?? process.env,
      signal: stop.signal,
      // Sandboxed, the agent sees neither the worker's token nor its other runs' directories.
      ...(opts.sandbox ? { sandbox: opts.sandbox, sandboxHide: [opts.tokenFile, workDir] } : {}),
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
    // The session's turns only: its change is the run's recorded one, which the report's patches carry.
    let report = { ...readReport(dirs.artifacts), ...(session ? { session: { ...session, patches: {} } } : {}) };
    // Stopping (SIGTERM, or paddock local gone): one try, then leave; the lease expires on its own.
    for (let i = 0; i < (opts.signal?.aborted ? 1 : 5) && !accepted; i++) {
      try {
        const r = await post(`/v1/leases/${grant.id}/complete`, { worker: id, ...report });
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
  // Nothing of this run may meet the next one: its processes, its files.
  const survivors = await reapRun(opts.isolation ?? 'session', grant.id);
  if (!opts.keep) fs.rmSync(dir, { recursive: true, force: true });
  const unwiped = wipeContents(opts.wipe ?? []);
  if (survivors.length > 0 || unwiped.length > 0) {
    const what = [...(survivors.length ? [`process(es) ${survivors.join(', ')} survived SIGKILL`] : []), ...unwiped.map((u) => `cannot remove ${u}`)].join('; ');
    log(`run ${grant.run}: ${what}; exiting so this container is replaced`);
    throw new TaintedWorkerError(`run ${grant.run}: ${what}`);
  }
  return accepted;
}

/** The controller's fetch, laid out as the fetch step would have left it. */
function unpackSources(sources: GrantSources, dirs: { workspace: string; artifacts: string }): void {
  fs.mkdirSync(dirs.workspace, { recursive: true });
  fs.mkdirSync(dirs.artifacts, { recursive: true });
  if (sources.failure) {
    writeFetchRecord(dirs.artifacts, { ok: false, outcome: sources.failure.outcome as Outcome, message: sources.failure.message });
    return;
  }
  if (sources.archive) {
    const r = spawnSync('tar', ['-xzf', '-', '-C', dirs.workspace, '--no-same-owner'], { input: Buffer.from(sources.archive, 'base64'), stdio: ['pipe', 'ignore', 'pipe'] });
    if (r.error || r.status !== 0) {
      const why = r.error?.message ?? r.stderr.toString().trim();
      writeFetchRecord(dirs.artifacts, { ok: false, outcome: 'internal_error', message: `the worker could not unpack the sources the controller fetched: ${why}` });
      return;
    }
  }
  writeFetchRecord(dirs.artifacts, { ok: true, sources: sources.records.map((r) => ({ ...r })), ms: sources.ms });
}

function readReport(artifacts: string): { status: Record<string, unknown>; results: string; truncated?: boolean; patches?: Record<string, string> } {
  const report = readResults(artifacts);
  const patches = readPatches(artifacts, report.status.changes as SourceChange[] | undefined);
  return Object.keys(patches).length ? { ...report, patches } : report;
}

/** status.json and results.jsonl, shortened to the controller's limits (what was cut is said in them). */
function readResults(artifacts: string): { status: Record<string, unknown>; results: string; truncated?: boolean } {
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
