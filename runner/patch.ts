/**
 * The change of a run: for every source, what the agent changed against the
 * commit the runner checked out, as a binary-safe git patch (`git diff
 * --binary --full-index -M`: new, deleted, renamed and mode-changed files)
 * plus a summary (files, insertions, deletions).
 *
 * The agent controlled the checkout, its `.git` included, so git runs here
 * with a git directory of the runner's own (a bare repository that borrows the
 * checkout's objects through `objects/info/alternates`) and a private index:
 * nothing of the checkout's `.git/config` (hooks, fsmonitor, filters, external
 * diff) is read, and `.git` itself is never part of the change. Files the
 * runner wrote into the work tree (config layers with `base: workdir`, e.g.
 * opencode.json) are left out; so is what the checkout's `.gitignore` ignores.
 *
 * The patch is written to artifacts/patches/<source>.patch; a patch whose
 * gzip is over MAX_PATCH_GZIP_BYTES is not stored (`patchTooLarge`), nor is one
 * that holds a secret the runner knows (`patchWithheld`): redacting it would
 * make it a different change, and delivering it would publish the secret.
 */
import * as fs from 'fs';
import * as path from 'path';
import { gzipSync } from 'zlib';
import { MAX_PATCH_GZIP_BYTES, type SourceChange } from '../core/protocol';
import { runInProcessGroup } from './process-group';

export interface DiffContext {
  readonly git: string;
  /** Environment for git (PATH, HOME). */
  readonly baseEnv: Readonly<Record<string, string>>;
  /** A private scratch directory. */
  readonly scratchDir: string;
  readonly timeoutMs: number;
  readonly log: (line: string) => void;
  /** Whether a text holds a secret the runner knows (its redactor): such a patch is withheld. */
  readonly holdsSecret?: (text: string) => boolean;
}

export interface SourceCheckout {
  readonly name: string;
  /** The repository's root (workspace/<name>, not its subPath). */
  readonly root: string;
  readonly commit: string;
  /** The sparse checkout's directory relative to `root` (only it is compared). @default - the whole tree */
  readonly subPath?: string;
  /** Paths relative to `root` the runner wrote (left out of the change). */
  readonly ownFiles: readonly string[];
}

/** Where a source's patch lands in the artifacts directory. */
export function patchFile(artifactsDir: string, source: string): string {
  return path.join(artifactsDir, 'patches', `${source}.patch`);
}

/** The stored patches of a run's artifacts, gzip+base64 by source (what a report carries). */
export function readPatches(artifactsDir: string, changes: readonly SourceChange[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of changes ?? []) {
    const file = patchFile(artifactsDir, c.source);
    if (!c.patchTooLarge && !c.patchWithheld && c.bytes > 0 && fs.existsSync(file)) out[c.source] = gzipSync(fs.readFileSync(file)).toString('base64');
  }
  return out;
}

/** Compute and write the change of every source; returns the summaries for status.json. */
export async function recordChanges(sources: readonly SourceCheckout[], artifactsDir: string, ctx: DiffContext): Promise<SourceChange[]> {
  const out: SourceChange[] = [];
  let budget = MAX_PATCH_GZIP_BYTES;
  for (const src of sources) {
    const change = await diffSource(src, ctx);
    const file = patchFile(artifactsDir, src.name);
    const gz = gzipSync(change.patch).length;
    const withheld = change.patch.length > 0 && (ctx.holdsSecret?.(change.patch.toString('latin1')) ?? false);
    const tooLarge = !withheld && gz > budget;
    if (!tooLarge && !withheld && change.patch.length > 0) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, change.patch);
      budget -= gz;
    }
    if (tooLarge) ctx.log(`source "${src.name}": the patch is ${gz} bytes gzipped, over the ${MAX_PATCH_GZIP_BYTES}-byte cap; it is not stored (patchTooLarge)`);
    if (withheld) ctx.log(`source "${src.name}": the agent's change holds a credential it was given; the patch is withheld (patchWithheld): not stored, shown or delivered`);
    out.push({
      source: src.name,
      base: src.commit,
      files: change.files,
      insertions: change.insertions,
      deletions: change.deletions,
      bytes: change.patch.length,
      ...(tooLarge ? { patchTooLarge: true } : {}),
      ...(withheld ? { patchWithheld: true } : {}),
    });
  }
  return out;
}

interface Diff {
  readonly patch: Buffer;
  readonly files: number;
  readonly insertions: number;
  readonly deletions: number;
}

async function diffSource(src: SourceCheckout, ctx: DiffContext): Promise<Diff> {
  const gitDir = fs.mkdtempSync(path.join(ctx.scratchDir, `diff-${src.name}-`));
  try {
    const plain: Record<string, string> = { ...ctx.baseEnv, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' };
    const env = { ...plain, GIT_DIR: gitDir, GIT_WORK_TREE: src.root, GIT_INDEX_FILE: path.join(gitDir, 'paddock-index') };
    const git = (args: string[]) => runGit(ctx, env, src.name, args);
    await runGit(ctx, plain, src.name, ['init', '--quiet', '--bare', gitDir]);
    // Our own git dir: its config is ours, the checkout's objects are borrowed read-only.
    fs.writeFileSync(path.join(gitDir, 'objects', 'info', 'alternates'), path.join(src.root, '.git', 'objects') + '\n');
    await git(['read-tree', src.commit]);
    const exclude = src.ownFiles.map((f) => `:(exclude,literal)${f}`);
    // A sparse checkout has only its subPath on disk: compare just that, not the absent rest.
    const scope = src.subPath ? [`:(literal)${src.subPath}`] : ['.'];
    await git(['add', '--all', '--', ...scope, ...exclude]);
    const diff = ['-c', 'core.quotePath=false', 'diff', '--cached', '--no-color', '--no-ext-diff', '--no-textconv', '-M'];
    const patch = await git([...diff, '--binary', '--full-index', src.commit, '--']);
    const numstat = (await git([...diff, '--numstat', '-z', src.commit, '--'])).toString('utf8');
    return { patch, ...countNumstat(numstat) };
  } finally {
    fs.rmSync(gitDir, { recursive: true, force: true });
  }
}

/** `git diff --numstat -z`: "ADD\tDEL\tPATH\0" or, for a rename, "ADD\tDEL\t\0FROM\0TO\0"; binary files count "-". */
export function countNumstat(text: string): { files: number; insertions: number; deletions: number } {
  const parts = text.split('\0');
  let files = 0;
  let insertions = 0;
  let deletions = 0;
  for (let i = 0; i < parts.length; i++) {
    const m = /^(\d+|-)\t(\d+|-)\t(.*)$/.exec(parts[i]);
    if (!m) continue;
    files++;
    if (m[1] !== '-') insertions += Number(m[1]);
    if (m[2] !== '-') deletions += Number(m[2]);
    if (m[3] === '') i += 2; // a rename: FROM and TO follow
  }
  return { files, insertions, deletions };
}

async function runGit(ctx: DiffContext, env: Record<string, string>, source: string, args: string[]): Promise<Buffer> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const r = await runInProcessGroup({
    argv: [ctx.git, ...args],
    // Pathspecs are relative to the work tree.
    cwd: env.GIT_WORK_TREE ?? ctx.scratchDir,
    env,
    timeoutMs: ctx.timeoutMs,
    killGraceMs: 1000,
    onStdout: (c) => out.push(c),
    onStderr: (c) => err.push(c),
  });
  if (r.exitCode !== 0) {
    const why = r.spawnError ? String(r.spawnError.message) : r.timedOut ? `took longer than ${ctx.timeoutMs} ms` : Buffer.concat(err).toString('utf8').trim().split('\n').slice(-2).join(' | ');
    throw new Error(`source "${source}": git ${args.find((a) => !a.startsWith('-') && !a.includes('=')) ?? ''} failed while recording the change: ${why}`);
  }
  return Buffer.concat(out);
}
