/**
 * How a Job's runner hands its report to the controller without any network
 * access or API credentials: the container's termination message, encoded as
 * core/protocol.ts says.
 */
import * as fs from 'fs';
import * as path from 'path';
import { encodeTerminationMessage, patchLogLines } from '../core/protocol';
import { sessionLogLines } from '../core/session';
import { readPatches } from './patch';
import { readSessionState } from './session';

export const TERMINATION_LOG = '/dev/termination-log';

/**
 * In a Job's pod: write the report where the kubelet picks it up, and return the
 * log lines carrying the patches and the session's next state (session.json, whole),
 * for the caller to print last (the message says how many of each). Best effort:
 * never changes the exit code; undefined when it failed.
 */
export function writeTerminationMessage(artifactsDir: string, file = TERMINATION_LOG): string[] | undefined {
  try {
    const raw = JSON.parse(fs.readFileSync(path.join(artifactsDir, 'status.json'), 'utf8'));
    const lines = patchLogLines(readPatches(artifactsDir, raw.changes));
    const session = readSessionState(artifactsDir);
    const sessionLines = session ? sessionLogLines(session) : [];
    const status = { ...raw, ...(lines.length ? { patchLogLines: lines.length } : {}), ...(sessionLines.length ? { sessionLogLines: sessionLines.length } : {}) };
    let results = '';
    try {
      results = fs.readFileSync(path.join(artifactsDir, 'results.jsonl'), 'utf8');
    } catch {
      // no results (the agent never ran)
    }
    fs.writeFileSync(file, encodeTerminationMessage(status, results));
    return [...lines, ...sessionLines];
  } catch {
    return undefined;
  }
}
