/**
 * The runner's side of a session (core/session.ts): before the agent, apply the previous
 * run's change to each freshly fetched source; after it, this run's turn and recorded
 * change (runner/patch.ts) are the session's next state (artifacts/session.json; the warm
 * worker sends it, a Job's runner prints it to its log; the patches carry the change).
 */
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import type { SessionState } from '../core/session';
import type { TaskSpec } from '../policy/specs';
import { FetchContext, runGit, untrustedRepoGitEnv } from './sources';
import { RunFailure, SourceRecord } from './status';

export const SESSION_FILE = 'session.json';

/** Apply the session's patches on the sources just fetched. */
export async function restoreWorkspace(state: SessionState, sources: readonly SourceRecord[], ctx: FetchContext): Promise<void> {
  const env = untrustedRepoGitEnv(ctx);
  for (const src of sources) {
    const saved = state.patches[src.name];
    if (!saved?.patch) continue;
    const label = `session "${state.name}": source "${src.name}"`;
    if (saved.base !== src.commit) ctx.log(`${label}: the previous run's change was made on ${saved.base}, the source is now at ${src.commit}; applying it anyway`);
    const file = path.join(ctx.scratchDir, `session-${src.name}.patch`);
    // Binary-safe: the patch travels gzipped and base64-encoded, as the run stored it.
    let patch: Buffer;
    try {
      patch = gunzipSync(Buffer.from(saved.patch, 'base64'));
    } catch (err) {
      throw new RunFailure('invalid_spec', `${label}: the previous run's change is not a gzipped, base64-encoded patch (${(err as Error).message}); delete the session and start it again`);
    }
    fs.writeFileSync(file, patch, { mode: 0o600 });
    await runGit(ctx, env, label, ['apply', '--binary', '--whitespace=nowarn', file], path.join(ctx.workspace, src.name)).catch((err: Error) => {
      throw new RunFailure(
        'source_failed',
        `${label}: the previous run's change does not apply on ${src.commit} (${err.message.split(': ').pop()}); pin the source to ${saved.base} or set session.freshWorkspace: true`,
      );
    });
    ctx.log(`${label}: continued from the previous run's change (${patch.length} bytes)`);
  }
}

/** The session's state from a file (`paddock run --session-state`), checked against the task. */
export function readSessionFile(file: string, task: TaskSpec): SessionState {
  const where = `--session-state ${file}`;
  if (!task.session) throw new RunFailure('invalid_spec', `${where}: task "${task.name}" has no session; remove --session-state or give the task session: { name }`);
  let state: SessionState;
  try {
    state = JSON.parse(fs.readFileSync(file, 'utf8')) as SessionState;
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new RunFailure(
      'invalid_spec',
      missing
        ? `${where}: session "${task.session.name}" has no stored state (it was deleted after the task was started?); submit the task again, with session.create: true to start the session anew`
        : `${where}: not a session state (${(err as Error).message}); delete the session (paddock sessions delete ${task.session.name}) and start it again`,
    );
  }
  if (!state || typeof state !== 'object' || state.name !== task.session.name || !Array.isArray(state.turns) || typeof state.patches !== 'object' || state.patches === null) {
    throw new RunFailure('invalid_spec', `${where}: not the state of session "${task.session.name}" (it needs name "${task.session.name}", turns and patches); delete the session (paddock sessions delete ${task.session.name}) and start it again`);
  }
  return state;
}

export function writeSessionState(artifacts: string, state: SessionState): void {
  fs.writeFileSync(path.join(artifacts, SESSION_FILE), JSON.stringify(state));
}

export function readSessionState(artifacts: string): SessionState | undefined {
  try {
    return JSON.parse(fs.readFileSync(path.join(artifacts, SESSION_FILE), 'utf8')) as SessionState;
  } catch {
    return undefined;
  }
}
