/**
 * Fetch the task's `git_https` sources into workspace/<name>, in parallel.
 *
 * - branch, tag or the default branch: `git clone --depth N [--branch X]`;
 * - a full commit SHA: `git init` + `git fetch --depth N origin <sha>` (the server must
 *   allow it: protocol v2, or uploadpack.allowReachableSHA1InWant);
 * - subPath: a cone-mode sparse checkout of that directory, which becomes the agent's
 *   working directory.
 *
 * - an abbreviated SHA (not a tag): the full history is fetched and the SHA resolved
 *   locally (slow on big repositories: give the full SHA);
 *
 * Git runs with a minimal environment (the basics, plus GIT_SSL_CAINFO / GIT_SSL_CAPATH /
 * SSL_CERT_FILE / SSL_CERT_DIR when set on the runner), no system or global config, no prompts. A git
 * credential for the source's host is answered by a one-off credential helper script
 * that reads the mounted password file: the password is never on a command line, in
 * the environment or in a log.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { GitSourceSpec } from '../policy/specs';
import { resolveInside } from './config-layers';
import { GitCredential, gitCredentialFor } from './credentials';
import { runInProcessGroup } from './process-group';
import { Redactor } from './redaction';
import { RunFailure, SourceRecord } from './status';

export interface FetchContext {
  readonly workspace: string;
  /** A private (0700) scratch directory for credential helper scripts. */
  readonly scratchDir: string;
  /** The git program. */
  readonly git: string;
  /** Environment for git: the basics (PATH, HOME, proxies). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** CA settings for git only (GIT_SSL_CAINFO etc., from the runner's env); never the agent's. */
  readonly caEnv?: Readonly<Record<string, string>>;
  readonly credentials: readonly GitCredential[];
  /** Per git command. */
  readonly timeoutMs: number;
  readonly killGraceMs: number;
  readonly signal?: AbortSignal;
  readonly redactor: Redactor;
  readonly log: (line: string) => void;
}

/** Trust settings the runner passes to git (a private git server with an internal CA). */
export const GIT_CA_VARS = ['GIT_SSL_CAINFO', 'GIT_SSL_CAPATH', 'SSL_CERT_FILE', 'SSL_CERT_DIR'] as const;

export function gitCaEnv(runnerEnv: NodeJS.ProcessEnv): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of GIT_CA_VARS) {
    const v = runnerEnv[name];
    if (v) env[name] = v;
  }
  return env;
}

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
const SHORT_SHA = /^[0-9a-f]{7,39}$/i;

export async function fetchSources(sources: readonly GitSourceSpec[], ctx: FetchContext): Promise<SourceRecord[]> {
  if (sources.length === 0) return [];
  // One failure stops the other fetches.
  const stopOthers = new AbortController();
  const onAbort = (): void => stopOthers.abort();
  ctx.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await Promise.all(
      sources.map((s) =>
        fetchOne(s, { ...ctx, signal: stopOthers.signal }).catch((err: unknown) => {
          stopOthers.abort();
          throw err;
        }),
      ),
    );
  } catch (err) {
    // Report the first real failure, not the fetches it cancelled.
    if (ctx.signal?.aborted) throw new RunFailure('terminated', 'the runner was asked to stop while fetching sources');
    throw err;
  } finally {
    ctx.signal?.removeEventListener('abort', onAbort);
  }
}

async function fetchOne(src: GitSourceSpec, ctx: FetchContext): Promise<SourceRecord> {
  const dir = path.join(ctx.workspace, src.name);
  const label = `source "${src.name}" (${src.url})`;
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    throw new RunFailure('source_failed', `${label}: ${dir} already exists and is not empty`);
  }
  const depth = String(src.depth ?? 1);
  const env = gitEnv(src, ctx);
  const git = (args: string[], cwd = ctx.workspace): Promise<string> => runGit(ctx, env, label, args, cwd);
  const what = src.branch ? `branch ${src.branch}` : src.ref ? `ref ${src.ref}` : 'default branch';
  ctx.log(`fetching ${label}: ${what}, depth ${depth}${src.subPath ? `, subPath ${src.subPath}` : ''}`);

  if (src.ref && FULL_SHA.test(src.ref)) {
    await git(['init', '--quiet', '--', dir]);
    await git(['remote', 'add', 'origin', src.url], dir);
    await git(['fetch', '--quiet', '--no-tags', '--depth', depth, 'origin', src.ref], dir);
    if (src.subPath) await git(['sparse-checkout', 'set', '--cone', '--', src.subPath], dir);
    await git(['checkout', '--quiet', '--detach', 'FETCH_HEAD'], dir);
  } else {
    const name = src.branch ?? src.ref;
    const clone = (withDepth: boolean, branch: string | undefined): Promise<string> =>
      git([
        'clone',
        '--quiet',
        ...(withDepth ? ['--depth', depth] : []),
        ...(branch ? ['--branch', branch] : []),
        ...(src.subPath || !withDepth ? ['--no-checkout'] : []),
        '--',
        src.url,
        dir,
      ]);
    let checkout = src.subPath ? 'HEAD' : undefined;
    try {
      await clone(true, name);
    } catch (err) {
      if (!(err instanceof RunFailure) || err.outcome !== 'source_failed' || !src.ref || !SHORT_SHA.test(src.ref)) throw err;
      // Not a tag: an abbreviated SHA, which no server accepts as a want. Fetch the
      // history and resolve it locally; a full SHA would fetch one commit.
      ctx.log(`${label}: "${src.ref}" is no tag; resolving it as an abbreviated SHA (fetches the full history; give the full 40-character SHA to fetch one commit)`);
      fs.rmSync(dir, { recursive: true, force: true });
      await clone(false, undefined).catch(() => {
        throw err;
      });
      const full = await git(['rev-parse', '--verify', '--quiet', `${src.ref}^{commit}`], dir).catch(() => {
        throw new RunFailure('source_failed', `${label}: ref "${src.ref}" is neither a tag nor a commit of the repository`);
      });
      checkout = full.trim();
    }
    if (src.subPath) await git(['sparse-checkout', 'set', '--cone', '--', src.subPath], dir);
    if (checkout) await git(['checkout', '--quiet', ...(checkout === 'HEAD' ? [] : ['--detach']), checkout], dir);
  }

  const commit = readHeadCommit(dir) ?? (await git(['rev-parse', 'HEAD'], dir)).trim();
  let workDir = dir;
  if (src.subPath) {
    workDir = path.join(dir, src.subPath);
    // A symlink in the repository must not lead the agent (and its config files) outside it.
    const real = resolveInside(dir, src.subPath);
    if (!real) {
      throw new RunFailure('source_failed', `${label}: subPath "${src.subPath}" leads outside the repository through a symlink at ${commit}; name a real directory of the repository`);
    }
    if (!isDir(workDir)) {
      throw new RunFailure('source_failed', `${label}: subPath "${src.subPath}" is not a directory at ${commit}`);
    }
  }
  ctx.log(`fetched ${label} at ${commit}`);
  return { name: src.name, dir: path.relative(ctx.workspace, workDir), commit };
}

export function gitEnv(src: Pick<GitSourceSpec, 'name' | 'url'>, ctx: Pick<FetchContext, 'baseEnv' | 'caEnv' | 'credentials' | 'scratchDir'>): Record<string, string> {
  const config: Array<[string, string]> = [
    ['advice.detachedHead', 'false'],
    ['init.defaultBranch', 'main'],
    // Forget any helper from elsewhere, then (maybe) add ours.
    ['credential.helper', ''],
  ];
  const cred = gitCredentialFor(src.url, ctx.credentials);
  if (cred) {
    const url = new URL(src.url);
    if (url.protocol !== 'https:') {
      // Defense in depth (the task schema refuses http:// too): a token never travels in clear.
      throw new RunFailure('source_failed', `source "${src.name}": url "${src.url}" is http://, and pool credential for host "${cred.host}" is never sent in clear; write https://${url.host}${url.pathname}`);
    }
    // Scoped to this source's origin: git asks no helper for any other URL (a redirect elsewhere).
    config.push([`credential.https://${url.host}.helper`, `!${shellQuote(writeCredentialHelper(src.name, url.host, cred, ctx.scratchDir))}`]);
  }
  return configEnv(ctx, config);
}

/**
 * git's environment for a repository the agent has had its hands on: settings given
 * this way outrank the repository's own config, so its hooks and fsmonitor never run.
 */
export function untrustedRepoGitEnv(ctx: FetchContext): Record<string, string> {
  return configEnv(ctx, [
    ['core.hooksPath', '/dev/null'],
    ['core.fsmonitor', 'false'],
    ['credential.helper', ''],
    ['diff.external', ''],
    ['user.name', 'paddock'],
    ['user.email', 'paddock@localhost'],
  ]);
}

function configEnv(ctx: Pick<FetchContext, 'baseEnv' | 'caEnv'>, config: ReadonlyArray<[string, string]>): Record<string, string> {
  const env: Record<string, string> = {
    ...ctx.baseEnv,
    ...ctx.caEnv,
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_CONFIG_COUNT: String(config.length),
  };
  config.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = k;
    env[`GIT_CONFIG_VALUE_${i}`] = v;
  });
  return env;
}

/**
 * A git credential helper that answers `get` with the username and the content of the
 * mounted password file, and only for https://<host> of its own source: a redirect to
 * another host, or a plain-http URL, gets nothing. `printf` is a shell builtin, so the
 * password never appears in any process's argv.
 */
function writeCredentialHelper(sourceName: string, host: string, cred: GitCredential, scratchDir: string): string {
  const file = path.join(scratchDir, `git-credential-${sourceName}.sh`);
  const script = [
    '#!/bin/sh',
    '# paddock: git credential helper for one source; reads a mounted secret file',
    'test "$1" = get || exit 0',
    'protocol= host=',
    'while read -r line && test -n "$line"; do',
    '  case "$line" in protocol=*) protocol=${line#protocol=} ;; host=*) host=${line#host=} ;; esac',
    'done',
    `test "$protocol" = https && test "$host" = ${shellQuote(host)} || exit 0`,
    `printf 'username=%s\n' ${shellQuote(cred.username)}`,
    `printf 'password=%s\n' "$(cat ${shellQuote(cred.passwordFile)})"`,
    '',
  ].join('\n');
  fs.writeFileSync(file, script, { mode: 0o700 });
  return file;
}

export async function runGit(ctx: FetchContext, env: Record<string, string>, label: string, args: string[], cwd: string): Promise<string> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const r = await runInProcessGroup({
    argv: [ctx.git, ...args],
    cwd,
    env,
    timeoutMs: ctx.timeoutMs,
    killGraceMs: ctx.killGraceMs,
    signal: ctx.signal,
    onStdout: (c) => out.push(c),
    onStderr: (c) => err.push(c),
  });
  if (r.aborted) throw new RunFailure('terminated', `${label}: stopped`);
  const stderr = ctx.redactor.redact(Buffer.concat(err).toString('utf8')).trim();
  if (r.spawnError) {
    throw new RunFailure('source_failed', `${label}: cannot run ${ctx.git} (${(r.spawnError as NodeJS.ErrnoException).code ?? r.spawnError.message}); is git installed?`);
  }
  if (r.timedOut) {
    throw new RunFailure('source_failed', `${label}: git ${args[0]} took longer than ${ctx.timeoutMs} ms`);
  }
  if (r.exitCode !== 0) {
    for (const line of stderr.split('\n')) if (line) ctx.log(`git: ${line}`);
    throw new RunFailure('source_failed', `${label}: git ${args[0]} failed (exit ${r.exitCode ?? r.signal}): ${lastLines(stderr)}`);
  }
  return Buffer.concat(out).toString('utf8');
}

/** HEAD's commit read from .git (saves a git process); undefined when not plainly there. */
function readHeadCommit(dir: string): string | undefined {
  try {
    const head = fs.readFileSync(path.join(dir, '.git', 'HEAD'), 'utf8').trim();
    if (FULL_SHA.test(head)) return head;
    const ref = /^ref: (refs\/[^\s]+)$/.exec(head)?.[1];
    if (!ref) return undefined;
    const loose = path.join(dir, '.git', ref);
    if (fs.existsSync(loose)) {
      const sha = fs.readFileSync(loose, 'utf8').trim();
      return FULL_SHA.test(sha) ? sha : undefined;
    }
    const packed = fs.readFileSync(path.join(dir, '.git', 'packed-refs'), 'utf8');
    const line = packed.split('\n').find((l) => l.endsWith(` ${ref}`));
    const sha = line?.split(' ')[0];
    return sha && FULL_SHA.test(sha) ? sha : undefined;
  } catch {
    return undefined;
  }
}

function lastLines(s: string): string {
  const lines = s.split('\n').filter((l) => l.trim());
  return lines.slice(-3).join(' | ') || '(no message)';
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
