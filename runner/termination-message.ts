/**
 * How a Job's runner hands its report to the controller without any network
 * access or API credentials: the container's termination message, encoded as
 * core/protocol.ts says.
 */
import * as fs from 'fs';
import * as path from 'path';
import { encodeTerminationMessage } from '../core/protocol';

export const TERMINATION_LOG = '/dev/termination-log';

/** In a Job's pod: write the report where the kubelet picks it up. Best effort (never changes the exit code). */
export function writeTerminationMessage(artifactsDir: string, file = TERMINATION_LOG): boolean {
  try {
    const status = JSON.parse(fs.readFileSync(path.join(artifactsDir, 'status.json'), 'utf8'));
    let results = '';
    try {
      results = fs.readFileSync(path.join(artifactsDir, 'results.jsonl'), 'utf8');
    } catch {
      // no results (the agent never ran)
    }
    fs.writeFileSync(file, encodeTerminationMessage(status, results));
    return true;
  } catch {
    return false;
  }
}
