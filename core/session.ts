/**
 * Sessions: tasks that continue one another. The state of a session is what the next
 * task of it needs: the earlier turns (prompt and final answer), the CLI's own conversation
 * files when its harness resumes natively (HarnessSpec.resume, core/resume.ts; otherwise the
 * turns reach the CLI as a size-capped transcript in the prompt) and the workspace change of the last run (one git patch
 * per source, applied on the same base commit: the change the run recorded, runner/patch.ts). The controller keeps it in the ConfigMap
 * `session-<name>` (it survives pods and controller restarts), hands it to the worker with
 * the lease (a Job: mounts that ConfigMap for its runner, `paddock run --session-state`),
 * and stores what the runner reports after the run (a Job's runner: in its log, below).
 */
import { gunzipSync, gzipSync } from 'zlib';
import type { TaskSpec } from '../policy/specs';
import { LOG_LINE_CHUNK, MAX_PATCH_GZIP_BYTES, type SourceChange } from './protocol';

export interface SessionTurn {
  readonly task: string;
  readonly prompt: string;
  /** The agent's final output (redacted by the runner). */
  readonly output: string;
}

export interface SessionPatch {
  /** The source's commit the patch applies to. */
  readonly base: string;
  /** The run's recorded change of the source (runner/patch.ts), gzip then base64 as a report's `patches`. */
  readonly patch: string;
  /** Size of the patch before compression. */
  readonly bytes: number;
}

/** The CLI's own conversation state (a harness that resumes natively). */
export interface SessionCliState {
  /** The conversation's id, {session_id} of the harness's resume argv (picked on the session's first run). */
  readonly id: string;
  /** The HOME-relative files of the harness's resume.state, packed (packCliState): gzip, then base64. Absent when withheld. */
  readonly state?: string;
  /** Their size before compression. */
  readonly bytes: number;
  readonly files: number;
  /** Why the run's CLI state was not kept (over the cap, or it held a credential): the session cannot continue natively. */
  readonly withheld?: string;
}

export interface SessionState {
  readonly name: string;
  /** The pool of the task that saved it (set by the controller): who may see it, which tasks may continue it. */
  readonly pool?: string;
  /** The harness that ran the last turn. */
  readonly harness: string;
  readonly turns: readonly SessionTurn[];
  /** Per source name: the workspace change of the last run. */
  readonly patches: Readonly<Record<string, SessionPatch>>;
  /**
   * Set by the controller when a run's state could not be saved (over the size cap, or it
   * held something shaped like a credential): the session's next task fails saying so.
   */
  readonly broken?: { readonly task: string; readonly reason: string };
  /** The CLI's conversation files of the last run (a harness that resumes natively). */
  readonly cli?: SessionCliState;
  /** How the next run's CLI gets the earlier turns: "native" (its own state restored, its resume argv) or "transcript" (as context in the prompt). */
  readonly resume: 'native' | 'transcript';
}

/** Largest CLI state, gzipped (it travels base64-encoded in the session's ConfigMap, under MAX_SESSION_BYTES). */
export const MAX_CLI_STATE_GZIP_BYTES = 384 * 1024;
/** Largest CLI state before compression (the runner stops reading past it). */
export const MAX_CLI_STATE_BYTES = 16 * 1024 * 1024;

export interface CliStateFile {
  /** Relative to HOME, '/'-separated. */
  readonly path: string;
  readonly mode: number;
  readonly content: Buffer;
}

/**
 * Pack the CLI's files for the session: a JSON list (text as text, so that it compresses
 * well; anything else base64-encoded), gzipped, base64-encoded.
 */
export function packCliState(files: readonly CliStateFile[]): string {
  const entry = (f: CliStateFile) => {
    const text = f.content.toString('utf8');
    const body = Buffer.from(text, 'utf8').equals(f.content) ? { text } : { content: f.content.toString('base64') };
    return { path: f.path, mode: f.mode & 0o777, ...body };
  };
  return gzipSync(JSON.stringify({ files: files.map(entry) })).toString('base64');
}

/** The files of a packed CLI state; throws saying what is wrong with it. */
export function unpackCliState(state: string): CliStateFile[] {
  let parsed: any;
  try {
    parsed = JSON.parse(gunzipSync(Buffer.from(state, 'base64')).toString('utf8'));
  } catch (err) {
    throw new Error(`the CLI state is not a gzipped, base64-encoded file list (${(err as Error).message})`);
  }
  if (!parsed || !Array.isArray(parsed.files)) throw new Error('the CLI state holds no file list');
  return parsed.files.map((f: any, i: number) => {
    if (typeof f?.path !== 'string' || (typeof f?.content !== 'string' && typeof f?.text !== 'string')) throw new Error(`the CLI state's file ${i} has no path or content`);
    const content = typeof f.text === 'string' ? Buffer.from(f.text, 'utf8') : Buffer.from(f.content, 'base64');
    return { path: f.path, mode: typeof f.mode === 'number' ? f.mode & 0o777 : 0o600, content };
  });
}

/** The CLI state of a report, checked field by field (what the controller keeps); undefined when absent or malformed. */
export function cliStateOf(value: unknown): SessionCliState | undefined {
  const v = value as Record<string, unknown> | undefined;
  if (!v || typeof v !== 'object' || typeof v.id !== 'string' || !v.id) return undefined;
  const num = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : 0);
  return {
    id: v.id,
    ...(typeof v.state === 'string' && v.state ? { state: v.state } : {}),
    bytes: num(v.bytes),
    files: num(v.files),
    ...(typeof v.withheld === 'string' && v.withheld ? { withheld: v.withheld } : {}),
  };
}

/** Largest session state (state.json in its ConfigMap; ConfigMaps hold at most 1 MiB). */
export const MAX_SESSION_BYTES = 768 * 1024;
/** Largest transcript handed to the CLI as context; older turns go first. */
export const MAX_TRANSCRIPT_BYTES = 64 * 1024;

export const sessionConfigMapName = (name: string): string => `session-${name}`;

export const sessionOf = (task: Pick<TaskSpec, 'session'> | undefined): string | undefined => task?.session?.name;

/**
 * Why a session task cannot start now, given its session's stored state (undefined: none
 * stored); undefined when it can. One check for a warm lease and a Job alike.
 */
export function sessionStartProblem(task: Pick<TaskSpec, 'session' | 'pool'>, state: Pick<SessionState, 'name' | 'pool' | 'broken'> | undefined): string | undefined {
  const ref = task.session;
  if (!ref) return undefined;
  if (!state) return ref.create ? undefined : `session "${ref.name}" does not exist; set session.create: true on the task that starts it`;
  if (state.broken) {
    return `session "${state.name}" cannot be continued: the state of task "${state.broken.task}" was not saved (${state.broken.reason}); delete it (paddock sessions delete ${state.name}) and start it again with session.create: true`;
  }
  // The API refuses this at submit; a declared task never went through it.
  if (state.pool !== undefined && state.pool !== task.pool) {
    return `session "${state.name}" belongs to pool "${state.pool}"; a task of pool "${task.pool}" cannot continue it: use another session name, or move the task to pool "${state.pool}"`;
  }
  return undefined;
}

/**
 * Job mode: after its patches (core/protocol.ts PATCH_LOG_TAG) the runner prints the
 * session's next state to its log as lines `paddock/v1 session <base64 chunk>` (the whole
 * state the runner wrote, gzipped, without the patches, which travel on their own lines);
 * the termination message says how many (`sessionLogLines`).
 */
export const SESSION_LOG_TAG = 'paddock/v1 session';
/** Largest gzipped session state read back from a Job's log. */
export const MAX_SESSION_LOG_GZIP_BYTES = MAX_SESSION_BYTES;

export function sessionLogLines(state: SessionState): string[] {
  const b64 = gzipSync(JSON.stringify({ ...state, patches: {} })).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += LOG_LINE_CHUNK) lines.push(`${SESSION_LOG_TAG} ${b64.slice(i, i + LOG_LINE_CHUNK)}`);
  return lines;
}

/**
 * The session state in the tail of a Job's log (lines not carrying the tag are skipped):
 * the object as the runner wrote it, or why it cannot be read. Size-checked twice: the
 * gzipped text, and the JSON it unpacks to (at most twice the stored cap, which the
 * controller's saveSession applies to the state it stores).
 */
export function sessionFromLog(log: string): { session?: SessionState; problem?: string } {
  const b64 = log
    .split('\n')
    .map((line) => /^paddock\/v1 session ([A-Za-z0-9+/=]+)$/.exec(line.trim())?.[1])
    .filter((x): x is string => x !== undefined)
    .join('');
  if (!b64) return { problem: 'the runner reported no session state in its log' };
  const gzipped = Buffer.from(b64, 'base64');
  if (gzipped.length > MAX_SESSION_LOG_GZIP_BYTES) return { problem: `the session state is ${gzipped.length} bytes gzipped, over the limit of ${MAX_SESSION_LOG_GZIP_BYTES}; start a new session` };
  try {
    const session = JSON.parse(gunzipSync(gzipped, { maxOutputLength: 2 * MAX_SESSION_BYTES }).toString('utf8'));
    if (!session || typeof session !== 'object' || Array.isArray(session)) throw new Error('not a JSON object');
    return { session: session as SessionState };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return { problem: e.code === 'ERR_BUFFER_TOO_LARGE' ? `the session state is over ${2 * MAX_SESSION_BYTES} bytes, over the limit of ${MAX_SESSION_BYTES}; start a new session` : `the session state in the runner's log cannot be read (${e.message})` };
  }
}

/** The prompt the CLI gets in a session: the earlier turns (capped), then the task's prompt. */
export function promptWithTranscript(state: SessionState | undefined, prompt: string): string {
  if (!state || state.turns.length === 0) return prompt;
  const blocks = state.turns.map((t, i) => `--- turn ${i + 1} (task ${t.task})\nUser:\n${t.prompt}\n\nYou answered:\n${t.output}\n`);
  let kept = blocks.length;
  while (kept > 1 && Buffer.byteLength(blocks.slice(blocks.length - kept).join('\n')) > MAX_TRANSCRIPT_BYTES) kept--;
  let text = blocks.slice(blocks.length - kept).join('\n');
  if (Buffer.byteLength(text) > MAX_TRANSCRIPT_BYTES) text = `…${text.slice(text.length - MAX_TRANSCRIPT_BYTES)}`;
  const omitted = blocks.length - kept;
  return [
    `This task continues session "${state.name}". The earlier turns, oldest first${omitted ? ` (${omitted} older turn${omitted > 1 ? 's' : ''} left out)` : ''}:`,
    '',
    text,
    '--- now',
    prompt,
  ].join('\n');
}

/** Size of the stored state, and the error past the cap. */
export function sessionSizeProblem(state: SessionState): string | undefined {
  const bytes = Buffer.byteLength(JSON.stringify(state));
  if (bytes <= MAX_SESSION_BYTES) return undefined;
  const cli = state.cli?.state ? ` (the CLI's conversation ${state.cli.state.length} of them)` : '';
  return `session "${state.name}": its state is ${bytes} bytes${cli}, over the limit of ${MAX_SESSION_BYTES} (a ConfigMap holds at most 1 MiB); the workspace change or the conversation is too large to carry over: start a new session, or set session.freshWorkspace: true`;
}

/**
 * The workspace a session carries over: each changed source's recorded patch (status.json
 * `changes`, the report's gzip+base64 `patches`). A change that cannot be carried whole
 * (withheld because it holds a credential, over the patch cap, or not recorded) is a
 * problem: the session must not go on from a workspace that silently lacks it.
 */
export function sessionPatchesOf(
  changes: readonly SourceChange[] | undefined,
  patches: Readonly<Record<string, string>> | undefined,
  changesError?: string,
): { patches: Record<string, SessionPatch>; problem?: string } {
  const out: Record<string, SessionPatch> = {};
  const problems: string[] = [];
  if (changesError) problems.push(`the run's change could not be recorded (${changesError})`);
  for (const c of changes ?? []) {
    const where = `the change of source "${c.source}"`;
    if (c.patchWithheld) problems.push(`${where} holds a credential the agent was given (patchWithheld); it is never stored, so the session cannot continue from it`);
    else if (c.patchTooLarge) problems.push(`${where} is over the ${MAX_PATCH_GZIP_BYTES}-byte gzipped cap (patchTooLarge); it is too large to carry over`);
    else if (c.bytes > 0 && !patches?.[c.source]) problems.push(`${where} was not reported with the run`);
    else if (c.bytes > 0) out[c.source] = { base: c.base, patch: patches![c.source], bytes: c.bytes };
  }
  return problems.length ? { patches: out, problem: problems.join('; ') } : { patches: out };
}
