/**
 * The runner's side of a session (core/session.ts): before the agent, apply the previous
 * run's change to each freshly fetched source; after it, this run's turn and recorded
 * change (runner/patch.ts) are the session's next state (artifacts/session.json; the warm
 * worker sends the turns, the report's patches carry the change).
 */
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';
import type { SessionState } from '../core/session';
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
