/**
 * Warm pools' sources, fetched by the controller: it alone mounts the pools' git
 * Secrets, fetches a task's sources with the runner's own fetcher (same credential
 * helper, same egress proxy as the pool's pods) into a scratch directory, and packs the
 * checkouts into the lease (GrantSources). The worker, beside the agent, never sees a git
 * token.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { type GrantSources, MAX_SOURCES_ARCHIVE_BYTES } from '../core/protocol';
import type { HarnessSpec, PoolSpec, TaskSpec } from '../policy/specs';
import { baseEnv } from '../runner/agent-env';
import { resolveCredentials } from '../runner/credentials';
import { poolForPhase } from '../runner/fetch-record';
import { Redactor } from '../runner/redaction';
import { fetchSources, gitCaEnv } from '../runner/sources';
import { RunFailure } from '../runner/status';

export interface SourcesArchiveOptions {
  /** The controller's environment (CA settings for git; the pool's proxy comes from pool.json). */
  readonly env: NodeJS.ProcessEnv;
  /** @default os.tmpdir() */
  readonly tmpDir?: string;
  /** @default 'git' */
  readonly git?: string;
  /** Per git command. @default 600000 */
  readonly timeoutMs?: number;
  readonly log?: (line: string) => void;
}

export async function fetchSourcesArchive(task: TaskSpec, pool: PoolSpec, harness: HarnessSpec, opts: SourcesArchiveOptions): Promise<GrantSources> {
  const started = performance.now();
  const redactor = new Redactor();
  const log = (line: string) => opts.log?.(redactor.redact(line));
  const root = fs.mkdtempSync(path.join(opts.tmpDir ?? os.tmpdir(), 'paddock-sources-'));
  try {
    const workspace = path.join(root, 'workspace');
    const scratch = path.join(root, 'scratch');
    fs.mkdirSync(workspace);
    fs.mkdirSync(scratch, { mode: 0o700 });
    const credentials = resolveCredentials(poolForPhase(pool, 'fetch'), harness, opts.env, redactor);
    const records = await fetchSources(task.sources ?? [], {
      workspace,
      scratchDir: scratch,
      git: opts.git ?? 'git',
      baseEnv: baseEnv(opts.env, path.join(root, 'home'), pool),
      caEnv: gitCaEnv(opts.env),
      credentials: credentials.git,
      timeoutMs: opts.timeoutMs ?? 600_000,
      killGraceMs: 2000,
      redactor,
      log,
    });
    const ms = Math.round(performance.now() - started);
    if (records.length === 0) return { records, ms };
    const { archive, size } = await tarGz(workspace);
    if (size > MAX_SOURCES_ARCHIVE_BYTES) {
      const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
      return {
        records: [],
        ms,
        failure: {
          outcome: 'source_failed',
          message: `task "${task.name}": its sources pack to ${mib(size)}, over the ${mib(MAX_SOURCES_ARCHIVE_BYTES)} a warm lease carries; narrow them (depth, subPath) or run the task in a pool with mode: "job"`,
        },
      };
    }
    return { archive: archive.toString('base64'), records, ms };
  } catch (err) {
    const ms = Math.round(performance.now() - started);
    if (err instanceof RunFailure) return { records: [], ms, failure: { outcome: err.outcome, message: redactor.redact(err.message) } };
    return { records: [], ms, failure: { outcome: 'internal_error', message: redactor.redact(`the controller could not fetch the sources: ${(err as Error).message}`) } };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

function tarGz(dir: string): Promise<{ archive: Buffer; size: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('tar', ['-czf', '-', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let size = 0;
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      // Past the cap the size is all that matters.
      if (size <= MAX_SOURCES_ARCHIVE_BYTES + 1) out.push(c);
    });
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`tar exited ${code}: ${Buffer.concat(err).toString().trim()}`));
      else resolve({ archive: Buffer.concat(out), size });
    });
  });
}
