/**
 * Sessions: tasks that continue one another. The state of a session is what the next
 * task of it needs: the earlier turns (prompt and final answer, a size-capped transcript
 * given to the CLI as context) and the workspace change of the last run (one git patch
 * per source, applied on the same base commit: the change the run recorded, runner/patch.ts). The controller keeps it in the ConfigMap
 * `session-<name>` (it survives pods and controller restarts), hands it to the worker with
 * the lease, and stores what the runner reports after the run.
 */
import type { TaskSpec } from '../policy/specs';
import { MAX_PATCH_GZIP_BYTES, type SourceChange } from './protocol';

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
  /** How the CLI got the earlier turns: "transcript" (as context in the prompt). */
  readonly resume: 'transcript';
}

/** Largest session state (state.json in its ConfigMap; ConfigMaps hold at most 1 MiB). */
export const MAX_SESSION_BYTES = 768 * 1024;
/** Largest transcript handed to the CLI as context; older turns go first. */
export const MAX_TRANSCRIPT_BYTES = 64 * 1024;

export const sessionConfigMapName = (name: string): string => `session-${name}`;

export const sessionOf = (task: Pick<TaskSpec, 'session'> | undefined): string | undefined => task?.session?.name;

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
  return `session "${state.name}": its state is ${bytes} bytes, over the limit of ${MAX_SESSION_BYTES} (a ConfigMap holds at most 1 MiB); the workspace change is too large to carry over: start a new session, or set session.freshWorkspace: true`;
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
