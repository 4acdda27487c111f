/**
 * The protocol between the runner, the warm worker and the controller: what a
 * worker gets with its lease, what an attempt reports, and the size limits on
 * the way. A Job's runner reports through its container's termination message
 * (/dev/termination-log, which the kubelet copies into the pod's status, at most
 * 4096 bytes): the compact status plus as many whole lines of results.jsonl as
 * fit; when lines were cut, `truncated` says so and the controller's run
 * ConfigMap carries the truncation marker.
 */
import type { HarnessSpec, PoolSpec, TaskSpec } from '../policy/specs';
import { stableJson } from './stable-json';
import type { SessionState } from './session';

/** What a warm worker gets with its lease: everything the runner needs. */
export interface LeaseGrant {
  readonly id: string;
  readonly run: string;
  readonly attempt: number;
  readonly task: TaskSpec;
  readonly harness: HarnessSpec;
  readonly pool: PoolSpec;
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  /**
   * The task's sources, fetched by the controller (which alone holds the pool's git
   * credentials): the worker unpacks them instead of fetching, so no git token is ever in
   * a worker pod. Absent from a controller that predates it: the worker fetches itself.
   */
  readonly sources?: GrantSources;
  /** The state of the task's session to continue (none: the task starts its session). */
  readonly session?: SessionState;
}

/** A task's fetched sources on their way to a warm worker. */
export interface GrantSources {
  /**
   * base64 of a gzipped tar of the fetched workspace: each source's checkout with its
   * .git (a git bundle cannot carry the shallow clones the runner makes). Absent when the
   * task has no sources or the fetch failed.
   */
  readonly archive?: string;
  /** What the runner records per source (status.json `sources`). */
  readonly records: ReadonlyArray<{ readonly name: string; readonly dir: string; readonly commit: string }>;
  /** The fetch failed: the worker reports this outcome without running the agent. */
  readonly failure?: { readonly outcome: string; readonly message: string };
  /** How long the fetch took. */
  readonly ms: number;
}

/** Largest sources archive a lease carries (the lease is one JSON response). */
export const MAX_SOURCES_ARCHIVE_BYTES = 64 * 1024 * 1024;

/** The result of one attempt, as the runner reported it (status.json + results.jsonl). */
export interface AttemptResult {
  readonly status: Record<string, unknown> & { readonly outcome?: string };
  readonly resultsJsonl: string;
  /** The report was cut to fit (the termination message's 4 KiB, or the result size cap). */
  readonly truncated?: boolean;
  /** A session task's next session state (a warm worker's report; a Job's runner prints it to its log, see core/session.ts). */
  readonly session?: SessionState;
  /** Source name -> its patch, gzip then base64 (status.changes says which sources changed). */
  readonly patches?: Readonly<Record<string, string>>;
  /** Job mode: the pod whose log carries the patches (see PATCH_LOG_TAG). */
  readonly pod?: string;
}

/** What the agent changed in one source (status.json `changes`). */
export interface SourceChange {
  readonly source: string;
  /** The commit the runner checked out: the patch applies to it. */
  readonly base: string;
  readonly files: number;
  readonly insertions: number;
  readonly deletions: number;
  /** Size of the patch in bytes, before compression. */
  readonly bytes: number;
  /** The patch was over MAX_PATCH_GZIP_BYTES and is not stored; the outcome is unaffected. */
  readonly patchTooLarge?: boolean;
  /**
   * The patch holds a secret the runner knows (a credential the agent was given, e.g. a
   * model key exposed to it): it is not stored, shown or delivered; the outcome is unaffected.
   */
  readonly patchWithheld?: boolean;
}

/**
 * Largest sum of a run's gzipped patches that is stored with the run (binaryData of
 * its ConfigMap, base64: about 342 KiB next to at most 512 KiB of results).
 */
export const MAX_PATCH_GZIP_BYTES = 256 * 1024;

/**
 * Job mode: after its termination message the runner prints each stored patch to
 * its log as lines `paddock/v1 patch <source> <base64 chunk>`; the termination
 * message says how many lines (`patchLogLines`), and the controller reads exactly
 * that tail of the pod's log. No credential and no network path in the Job's pod.
 */
export const PATCH_LOG_TAG = 'paddock/v1 patch';
/** Largest base64 chunk on one such log line (the session state travels the same way, core/session.ts). */
export const LOG_LINE_CHUNK = 16 * 1024;

/** The log lines that carry `patches` (source -> gzip+base64). */
export function patchLogLines(patches: Readonly<Record<string, string>>): string[] {
  const lines: string[] = [];
  for (const [source, b64] of Object.entries(patches)) {
    for (let i = 0; i < b64.length; i += LOG_LINE_CHUNK) lines.push(`${PATCH_LOG_TAG} ${source} ${b64.slice(i, i + LOG_LINE_CHUNK)}`);
  }
  return lines;
}

/** The patches from the tail of a pod's log (lines not carrying the tag are skipped). */
export function patchesFromLog(log: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of log.split('\n')) {
    const m = /^paddock\/v1 patch ([a-z0-9-]+) ([A-Za-z0-9+/=]+)$/.exec(line.trim());
    if (m) out[m[1]] = (out[m[1]] ?? '') + m[2];
  }
  return out;
}

/** Largest results.jsonl + status.json kept in a run ConfigMap (ConfigMaps hold at most 1 MiB). */
export const MAX_RESULT_BYTES = 512 * 1024;

/** Largest status.json in a report or a run ConfigMap; a larger one is shortened (see shortenStatus). */
export const MAX_STATUS_BYTES = 64 * 1024;
/** The status fields a shortened report always keeps. */
const ESSENTIAL_STATUS_FIELDS = ['task', 'harness', 'pool', 'outcome', 'runnerExitCode', 'exitCode', 'signal', 'message', 'counts', 'timings', 'changes', 'changesError', 'patchLogLines', 'sessionLogLines', 'startedAt', 'finishedAt'];

/**
 * Fit a runner's status.json into `max` bytes without losing its outcome: drop listed
 * parse errors, then problems and the command, then everything but the essential
 * fields; `reportShortened` says what was dropped. Never drops the outcome or counts.
 */
export function shortenStatus(status: Record<string, unknown>, max = MAX_STATUS_BYTES, why?: string): Record<string, unknown> {
  const fits = (s: Record<string, unknown>) => Buffer.byteLength(stableJson(s)) <= max;
  if (!why && fits(status)) return status;
  const dropped: string[] = why ? [why] : [];
  let next: Record<string, unknown> = { ...status };
  const note = () => ({ ...next, reportShortened: `status.json was over ${max} bytes: ${dropped.join('; ')}` });
  if (typeof next.message === 'string' && next.message.length > 2000) {
    next.message = `${next.message.slice(0, 2000)}…`;
    dropped.push('message cut to 2000 characters');
  }
  const list = Array.isArray(next.parseErrors) ? (next.parseErrors as unknown[]) : [];
  if (list.length && !fits(note())) {
    let keep = list.length;
    while (keep > 0 && !fits({ ...note(), parseErrors: list.slice(0, keep) })) keep = Math.floor(keep / 2);
    next.parseErrors = list.slice(0, keep);
    next.parseErrorsOmitted = Number(next.parseErrorsOmitted ?? 0) + list.length - keep;
    dropped.push(`kept ${keep} of ${list.length} listed parse errors`);
  }
  for (const field of ['problems', 'command', 'sources']) {
    if (fits(note())) break;
    if (next[field] === undefined) continue;
    delete next[field];
    dropped.push(`${field} left out`);
  }
  if (!fits(note())) {
    next = Object.fromEntries(ESSENTIAL_STATUS_FIELDS.filter((k) => k in next).map((k) => [k, next[k]]));
    if (typeof next.message === 'string') next.message = next.message.slice(0, 500);
    dropped.push('only the essential fields kept');
  }
  return note();
}

export const TERMINATION_MESSAGE_LIMIT = 4096;
const TAG = 'paddock/v1';

const STATUS_KEYS = ['task', 'harness', 'pool', 'outcome', 'runnerExitCode', 'exitCode', 'signal', 'message', 'counts', 'changes', 'patchLogLines', 'sessionLogLines', 'startedAt', 'finishedAt'];

export function encodeTerminationMessage(status: Record<string, unknown>, resultsJsonl: string, limit = TERMINATION_MESSAGE_LIMIT): string {
  const compact: Record<string, unknown> = {};
  for (const k of STATUS_KEYS) if (status[k] !== undefined) compact[k] = status[k];
  if (typeof compact.message === 'string' && compact.message.length > 800) compact.message = compact.message.slice(0, 800) + '…';
  const lines = resultsJsonl.split('\n').filter((l) => l.trim());
  const make = (n: number) => JSON.stringify({ t: TAG, status: compact, results: lines.slice(0, n).join('\n'), ...(n < lines.length ? { truncated: true } : {}) });
  for (let n = lines.length; n >= 0; n--) {
    const text = make(n);
    if (Buffer.byteLength(text) <= limit) return text;
  }
  return JSON.stringify({ t: TAG, status: { outcome: compact.outcome, runnerExitCode: compact.runnerExitCode, ...(compact.patchLogLines ? { patchLogLines: compact.patchLogLines } : {}), ...(compact.sessionLogLines ? { sessionLogLines: compact.sessionLogLines } : {}) }, results: '', truncated: true });
}

export function decodeTerminationMessage(message: string): AttemptResult | undefined {
  try {
    const v = JSON.parse(message);
    if (!v || v.t !== TAG || typeof v.status !== 'object') return undefined;
    return { status: v.status, resultsJsonl: typeof v.results === 'string' && v.results ? v.results + '\n' : '', ...(v.truncated ? { truncated: true } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * Warm workers authenticate to the lease API with their pod's projected
 * ServiceAccount token, bound to this audience (the API server itself refuses
 * it), read from this file on every request (the kubelet rotates it).
 */
export const WORKER_TOKEN_AUDIENCE = 'paddock.dev/worker-api';
export const WORKER_TOKEN_PATH = '/var/run/secrets/paddock.dev/worker/token';
