/**
 * The hand-over between the step that fetches the sources and the runner that runs the
 * agent, when they are not the same process: the Job's `fetch` init container (which
 * alone mounts the git Secrets) or the warm worker (which unpacks the controller's git
 * bundles). It lives in the artifacts directory, holds no secret, and is read once,
 * before the agent starts.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { PoolSpec } from '../policy/specs';
import { Outcome, RunFailure, SourceRecord } from './status';

export const FETCH_RECORD = 'fetch.json';

/** Which part of a run a process does: all of it, only the sources, or all but the sources. */
export type RunPhaseKind = 'all' | 'fetch' | 'agent';

export type FetchRecord =
  | { readonly ok: true; readonly sources: SourceRecord[]; readonly ms: number }
  | { readonly ok: false; readonly outcome: Outcome; readonly message: string; readonly problems?: string[] };

export function writeFetchRecord(artifacts: string, record: FetchRecord): void {
  fs.writeFileSync(path.join(artifacts, FETCH_RECORD), JSON.stringify(record) + '\n', { mode: 0o644 });
}

/** The fetch step's outcome; its failure becomes this run's failure. */
export function readFetchRecord(artifacts: string): { sources: SourceRecord[]; ms: number } {
  const file = path.join(artifacts, FETCH_RECORD);
  let record: FetchRecord;
  try {
    record = JSON.parse(fs.readFileSync(file, 'utf8')) as FetchRecord;
  } catch (err) {
    throw new RunFailure(
      'internal_error',
      `--phase agent: the fetch step left no readable ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); run \`paddock run --phase fetch\` first (the Job's "fetch" init container does)`,
    );
  }
  if (!record.ok) throw new RunFailure(record.outcome, record.message, record.problems);
  return { sources: record.sources, ms: record.ms };
}

/**
 * The pool as one phase sees it: the fetch step holds only the git credentials, the
 * agent's runner everything but them (their files are not mounted in its container).
 */
export function poolForPhase(pool: PoolSpec | undefined, phase: RunPhaseKind): PoolSpec | undefined {
  if (!pool?.credentials || phase === 'all') return pool;
  const { git, ...rest } = pool.credentials;
  const credentials = phase === 'fetch' ? (git ? { git } : {}) : rest;
  return { ...pool, credentials };
}
