/**
 * The CLI's own conversation state of a session (a harness whose resume is native,
 * core/resume.ts): after the run, the files its resume.state names are read from the agent's
 * HOME and packed into the session's state; before the next run they are written back.
 *
 * Only what the patterns name, only inside HOME: a symlink is never followed (skipped, and
 * said so), a file the runner itself wrote there (credential or config-layer files, which may
 * hold keys) is never taken, and neither is a file that holds a credential the agent was
 * given (the state is then withheld: the session cannot continue natively, and says why).
 */
import * as fs from 'fs';
import * as path from 'path';
import { CliStateFile, MAX_CLI_STATE_BYTES, MAX_CLI_STATE_GZIP_BYTES, packCliState, SessionCliState, unpackCliState } from '../core/session';
import { leavesHome, statePathCovers } from '../core/resume';
import { resolveInside } from './config-layers';

export interface CollectOptions {
  /** The state patterns, {session_id} filled in (resumeStatePaths). */
  readonly patterns: readonly string[];
  /** HOME-relative files the runner wrote (credentials, config layers): never part of the state. */
  readonly exclude?: readonly string[];
  /** Whether a text holds a credential the agent was given (the redactor's). */
  readonly holdsSecret?: (text: string) => boolean;
  readonly log?: (line: string) => void;
  /** @default MAX_CLI_STATE_BYTES */
  readonly maxBytes?: number;
  /** @default MAX_CLI_STATE_GZIP_BYTES */
  readonly maxGzipBytes?: number;
}

/** Refuse a pattern that leaves HOME (the Harness construct refuses it too; a spec may come from elsewhere). */
function checkPattern(pattern: string): string[] {
  if (leavesHome(pattern)) throw new Error(`harness resume.state "${pattern}" leaves HOME; write a HOME-relative path without "..", e.g. ".codex/sessions"`);
  return pattern.split('/');
}

/** The files the patterns name, in HOME, never through a symlink. */
function findFiles(home: string, patterns: readonly string[], log: (line: string) => void): Array<{ rel: string; abs: string }> {
  const found = new Map<string, string>();
  const skipSymlink = (rel: string) => log(`CLI state: ${rel} is a symlink; not followed, not saved`);
  const walkAll = (rel: string, abs: string): void => {
    const st = fs.lstatSync(abs);
    if (st.isSymbolicLink()) return skipSymlink(rel);
    if (st.isFile()) {
      found.set(rel, abs);
      return;
    }
    if (!st.isDirectory()) return;
    for (const name of fs.readdirSync(abs).sort()) walkAll(`${rel}/${name}`, path.join(abs, name));
  };
  const walk = (segments: readonly string[], rel: string, abs: string): void => {
    if (segments.length === 0) return walkAll(rel, abs);
    const [seg, ...rest] = segments;
    let names: string[];
    try {
      names = seg === '*' ? fs.readdirSync(abs).sort() : [seg];
    } catch {
      return; // not a directory, or gone
    }
    for (const name of names) {
      const nextAbs = path.join(abs, name);
      const nextRel = rel ? `${rel}/${name}` : name;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(nextAbs);
      } catch {
        continue; // the CLI did not write it
      }
      if (st.isSymbolicLink()) {
        skipSymlink(nextRel);
        continue;
      }
      if (rest.length && !st.isDirectory()) continue;
      walk(rest, nextRel, nextAbs);
    }
  };
  for (const pattern of patterns) walk(checkPattern(pattern), '', home);
  return [...found.entries()].map(([rel, abs]) => ({ rel, abs }));
}

/**
 * The CLI's state after a run, for the session. Past a cap or holding a credential, the
 * state is withheld (`withheld` says why; nothing of it is kept).
 */
export function collectCliState(home: string, id: string, opts: CollectOptions): SessionCliState {
  const log = opts.log ?? (() => undefined);
  const maxBytes = opts.maxBytes ?? MAX_CLI_STATE_BYTES;
  const maxGzip = opts.maxGzipBytes ?? MAX_CLI_STATE_GZIP_BYTES;
  const exclude = new Set(opts.exclude ?? []);
  const files: CliStateFile[] = [];
  let bytes = 0;
  for (const { rel, abs } of findFiles(home, opts.patterns, log)) {
    if (exclude.has(rel)) {
      log(`CLI state: ${rel} was written by the runner (credential or config); not saved`);
      continue;
    }
    const st = fs.lstatSync(abs);
    bytes += st.size;
    if (bytes > maxBytes) {
      return { id, bytes, files: files.length + 1, withheld: `the CLI's conversation files are over ${maxBytes} bytes (at ${rel}); too large to carry over` };
    }
    const content = fs.readFileSync(abs);
    if (opts.holdsSecret?.(content.toString('latin1'))) {
      return { id, bytes, files: files.length + 1, withheld: `the CLI's conversation file ${rel} holds a credential the agent was given; it is never stored, so the session cannot continue from it` };
    }
    files.push({ path: rel, mode: st.mode & 0o777, content });
  }
  const state = packCliState(files);
  const gzipBytes = Buffer.from(state, 'base64').length;
  if (gzipBytes > maxGzip) {
    return { id, bytes, files: files.length, withheld: `the CLI's conversation files are ${gzipBytes} bytes gzipped, over the ${maxGzip}-byte cap; too large to carry over` };
  }
  return { id, state, bytes, files: files.length };
}

/**
 * Write the previous run's CLI state into HOME. Every file must fall under one of the
 * harness's state patterns and stay inside HOME (a tampered state cannot write ~/.bashrc).
 */
export function restoreCliState(home: string, state: string, patterns: readonly string[]): number {
  const files = unpackCliState(state);
  for (const f of files) {
    if (leavesHome(f.path)) {
      throw new Error(`the CLI state holds "${f.path}", a path that leaves HOME`);
    }
    if (!patterns.some((p) => statePathCovers(p, f.path))) {
      throw new Error(`the CLI state holds "${f.path}", which none of the harness's resume.state paths (${patterns.join(', ')}) names`);
    }
    const target = resolveInside(home, f.path);
    if (!target) throw new Error(`the CLI state's file "${f.path}" leads outside HOME through a symlink`);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, f.content, { mode: f.mode || 0o600 });
  }
  return files.length;
}
