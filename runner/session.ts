/**
 * The runner's side of a session (core/session.ts): before the agent, apply the previous
 * run's change to each freshly fetched source; after it, record this run's change and
 * turn as the session's next state (artifacts/session.json, which the warm worker sends
 * to the controller with its report).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { SessionPatch, SessionState } from '../core/session';
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
    fs.writeFileSync(file, saved.patch, { mode: 0o600 });
    await runGit(ctx, env, label, ['apply', '--binary', '--whitespace=nowarn', file], path.join(ctx.workspace, src.name)).catch((err: Error) => {
      throw new RunFailure(
        'source_failed',
        `${label}: the previous run's change does not apply on ${src.commit} (${err.message.split(': ').pop()}); pin the source to ${saved.base} or set session.freshWorkspace: true`,
      );
    });
    ctx.log(`${label}: continued from the previous run's change (${Buffer.byteLength(saved.patch)} bytes)`);
  }
}

/** Each source's change against the commit it was fetched at, untracked files included. */
export async function workspaceChanges(sources: readonly SourceRecord[], ctx: FetchContext): Promise<Record<string, SessionPatch>> {
  const env = untrustedRepoGitEnv(ctx);
  const out: Record<string, SessionPatch> = {};
  for (const src of sources) {
    const dir = path.join(ctx.workspace, src.name);
    const label = `session: source "${src.name}"`;
    await runGit(ctx, env, label, ['add', '--all', '--', '.'], dir);
    const patch = await runGit(ctx, env, label, ['diff', '--cached', '--binary', '--no-color', '--no-ext-diff', src.commit], dir);
    out[src.name] = { base: src.commit, patch };
  }
  return out;
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
