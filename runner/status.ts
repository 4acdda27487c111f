/**
 * The outcome of a run, its exit code and the `status.json` artifact.
 *
 * | outcome          | exit | meaning                                                                 |
 * |------------------|------|-------------------------------------------------------------------------|
 * | `succeeded`      | 0    | the agent exited 0                                                      |
 * | `failed`         | 1    | the agent exited non-zero, was killed by a signal, or could not start (e.g. not on PATH, or an argv the kernel refuses: E2BIG) |
 * | `invalid_spec`   | 2    | a spec is unreadable, not JSON or schema-invalid (each bad field named), the specs do not fit together, a config layer does not parse, a granted credential is missing, a bad `paddock run` option, or `--sandbox bwrap` without a working bwrap; nothing was fetched, written or run |
 * | `source_failed`  | 3    | a source could not be fetched (missing repo, branch, tag, SHA or subPath; auth; git timeout), or a fetched repo's symlink would lead the subPath, workdir or a config write outside |
 * | `timed_out`      | 4    | the agent ran past `timeoutSeconds`; its process group got SIGTERM, then SIGKILL |
 * | `terminated`     | 5    | the runner got SIGTERM/SIGINT (e.g. pod eviction); the agent's process group was stopped the same way |
 * | `internal_error` | 6    | a bug or an environment fault in the runner itself (e.g. artifacts not writable) |
 *
 * Every outcome writes `artifacts/status.json` (when the artifacts directory is
 * writable) and, once the agent ran, `results.jsonl`, `agent.stdout.log` and
 * `agent.stderr.log`, all redacted. A run that succeeded with unparseable ```result
 * blocks is still `succeeded`; `counts.parseErrors` and `parseErrors` say which.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { SourceChange } from '../core/protocol';

export type Outcome =
  | 'succeeded'
  | 'failed'
  | 'invalid_spec'
  | 'source_failed'
  | 'timed_out'
  | 'terminated'
  | 'internal_error';

export const EXIT_CODES: Readonly<Record<Outcome, number>> = {
  succeeded: 0,
  failed: 1,
  invalid_spec: 2,
  source_failed: 3,
  timed_out: 4,
  terminated: 5,
  internal_error: 6,
};

export type Phase = 'load' | 'sources' | 'config' | 'agent' | 'results' | 'changes';

export interface ParseErrorRecord {
  /** 1-based index of the ```result block in the final output (0 when the final output itself could not be read). */
  readonly block: number;
  readonly message: string;
  /** The first characters of the block, redacted. */
  readonly excerpt: string;
}

export interface SourceRecord {
  readonly name: string;
  /** Directory the agent sees, relative to the workspace (includes subPath). */
  readonly dir: string;
  readonly commit: string;
}

export interface RunStatus {
  readonly task: string | null;
  readonly harness: string | null;
  readonly pool: string | null;
  readonly outcome: Outcome;
  /** The runner's own exit code (see the table above). */
  readonly runnerExitCode: number;
  /** The agent's exit code; null when it did not run or was killed by a signal. */
  readonly exitCode: number | null;
  /** The signal that ended the agent, if any (e.g. SIGTERM after a timeout). */
  readonly signal: string | null;
  /** What went wrong, in one sentence (absent on success). */
  readonly message?: string;
  /** Every problem found in the specs, each naming its field (invalid_spec). */
  readonly problems?: string[];
  /** Wall time per phase in milliseconds; phases that did not run are absent. */
  readonly timings: Partial<Record<Phase | 'total', number>>;
  readonly counts: { readonly results: number; readonly parseErrors: number };
  /** The first MAX_PARSE_ERRORS (100) parse errors; `counts.parseErrors` counts them all. */
  readonly parseErrors: ParseErrorRecord[];
  /** Parse errors counted but not listed (over the limit). */
  readonly parseErrorsOmitted?: number;
  readonly sources: SourceRecord[];
  /** The agent's argv as executed, credentials redacted (absent when it did not run). */
  readonly command?: string[];
  /** The agent's stdout was over the capture limit: only its tail was searched for results. */
  readonly outputTruncated?: boolean;
  /** Bytes at the start of stdout that were not searched for results. */
  readonly outputDroppedBytes?: number;
  /** Bytes left out of the middle of agent.stdout.log / agent.stderr.log (their size limit). */
  readonly logDroppedBytes?: { readonly stdout: number; readonly stderr: number };
  /** What the agent changed in each source (its patch: artifacts/patches/<source>.patch). */
  readonly changes?: SourceChange[];
  /** Why the change could not be recorded (the outcome is unaffected). */
  readonly changesError?: string;
  readonly startedAt: string;
  readonly finishedAt: string;
}

export function exitCodeOf(outcome: Outcome): number {
  return EXIT_CODES[outcome];
}

export function writeStatus(artifactsDir: string, status: RunStatus): string {
  const file = path.join(artifactsDir, 'status.json');
  fs.writeFileSync(file, JSON.stringify(status, null, 2) + '\n');
  return file;
}

/** Thrown by a phase to end the run with a given outcome. */
export class RunFailure extends Error {
  constructor(
    public readonly outcome: Outcome,
    message: string,
    public readonly problems?: string[],
  ) {
    super(message);
    this.name = 'RunFailure';
  }
}
