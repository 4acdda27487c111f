/**
 * How a Job's runner hands its report to the controller without any network
 * access or API credentials: the container's termination message
 * (/dev/termination-log, which the kubelet copies into the pod's status, at
 * most 4096 bytes). The report is the compact status plus as many whole lines
 * of results.jsonl as fit; when lines were cut, `truncated` says so and the
 * controller's run ConfigMap carries the truncation marker.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { AttemptResult } from '../controller/reconcile';

export const TERMINATION_LOG = '/dev/termination-log';
export const TERMINATION_MESSAGE_LIMIT = 4096;
const TAG = 'paddock/v1';

const STATUS_KEYS = ['task', 'harness', 'pool', 'outcome', 'runnerExitCode', 'exitCode', 'signal', 'message', 'counts', 'startedAt', 'finishedAt'];

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
  return JSON.stringify({ t: TAG, status: { outcome: compact.outcome, runnerExitCode: compact.runnerExitCode }, results: '', truncated: true });
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
