/**
 * Credentials granted to the pool (pool.json `credentials`): env vars the pod got from
 * Secrets, secret files mounted into the pod, and git credentials for private sources.
 * All are read and checked before any side effect; every value is registered with the
 * redactor; each missing one is an error that names it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { SECRETS_MOUNT } from '../core/labels';
import type { HarnessSpec, PoolSpec } from '../policy/specs';
import { safeJoin, writeFileReplacingLinks } from './config-layers';
import { Redactor } from './redaction';
import { RunFailure } from './status';

export interface CredentialFile {
  /** Relative to the agent's HOME. */
  readonly path: string;
  readonly source: string;
  readonly content: string;
}

export interface GitCredential {
  readonly host: string;
  readonly username: string;
  readonly passwordFile: string;
}

export interface Credentials {
  /** Env vars handed to the agent, name to value. */
  readonly env: Readonly<Record<string, string>>;
  readonly files: readonly CredentialFile[];
  /** Used by the source fetcher only; never reaches the agent. */
  readonly git: readonly GitCredential[];
  /** Local mode: harness credentialEnv names that were not set (a warning, not an error). */
  readonly missingOptional: readonly string[];
}

const DEFAULT_GIT_USERNAME = 'x-access-token';

/**
 * With a pool: exactly the pool's credentials, each required. Without one (local mode):
 * the harness's `credentialEnv` names that are set in the runner's environment.
 */
export function resolveCredentials(
  pool: PoolSpec | undefined,
  harness: HarnessSpec,
  runnerEnv: NodeJS.ProcessEnv,
  redactor: Redactor,
): Credentials {
  const env: Record<string, string> = {};
  const files: CredentialFile[] = [];
  const git: GitCredential[] = [];
  const problems: string[] = [];
  const missingOptional: string[] = [];

  if (!pool) {
    for (const name of harness.credentialEnv ?? []) {
      const value = runnerEnv[name];
      if (value === undefined || value === '') {
        missingOptional.push(name);
      } else {
        env[name] = value;
        redactor.add(value);
      }
    }
    return { env, files, git, missingOptional };
  }

  const creds = pool.credentials ?? {};
  (creds.env ?? []).forEach((c, i) => {
    const value = runnerEnv[c.name];
    if (value === undefined || value === '') {
      problems.push(`pool.credentials.env[${i}]: ${c.name} is not set in the runner's environment${fromSecret(c)}`);
    } else {
      env[c.name] = value;
      redactor.add(value);
    }
  });
  (creds.files ?? []).forEach((c, i) => {
    try {
      const content = fs.readFileSync(c.source, 'utf8');
      files.push({ path: c.path, source: c.source, content });
      redactor.addFileContent(content);
    } catch (err) {
      problems.push(`pool.credentials.files[${i}]: cannot read ${c.source} (${errCode(err)})${fromSecret(c)}`);
    }
  });
  (creds.git ?? []).forEach((c, i) => {
    try {
      const password = fs.readFileSync(c.passwordFile, 'utf8');
      redactor.add(password);
      git.push({ host: c.host, username: c.username ?? DEFAULT_GIT_USERNAME, passwordFile: c.passwordFile });
    } catch (err) {
      problems.push(`pool.credentials.git[${i}]: cannot read ${c.passwordFile} (${errCode(err)})${fromSecret(c)}`);
    }
  });
  if (problems.length > 0) {
    throw new RunFailure('invalid_spec', `credentials granted to pool "${pool.name}" are missing:\n  - ${problems.join('\n  - ')}`, problems);
  }
  return { env, files, git, missingOptional };
}

/** Copy the secret files into HOME, mode 0400 (directories 0700). */
export function writeCredentialFiles(files: readonly CredentialFile[], home: string): string[] {
  return files.map((f) => {
    const target = safeJoin(home, f.path);
    writeFileReplacingLinks(target, f.content, 0o400);
    return target;
  });
}

/** The git credential for a source URL: an exact host:port match first, then the hostname. */
export function gitCredentialFor(url: string, git: readonly GitCredential[]): GitCredential | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  return git.find((g) => g.host.toLowerCase() === u.host.toLowerCase()) ?? git.find((g) => g.host.toLowerCase() === u.hostname.toLowerCase());
}

function fromSecret(c: { secret?: string; key?: string }): string {
  return c.secret ? ` (the pod should get it from Secret "${c.secret}"${c.key ? ` key "${c.key}"` : ''})` : '';
}

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? String(err);
}

/** The pods' Secret mounts (SECRETS_MOUNT/<secret>/<key>) resolved in a local folder. */
export function withCredentialDir(spec: PoolSpec, credentialDir: string | undefined): PoolSpec {
  if (!credentialDir || !spec.credentials) return spec;
  const local = (p: string) => (p.startsWith(`${SECRETS_MOUNT}/`) ? path.join(credentialDir, p.slice(SECRETS_MOUNT.length + 1)) : p);
  const { files, git, ...rest } = spec.credentials;
  return {
    ...spec,
    credentials: {
      ...rest,
      ...(files ? { files: files.map((f) => ({ ...f, source: local(f.source) })) } : {}),
      ...(git ? { git: git.map((g) => ({ ...g, passwordFile: local(g.passwordFile) })) } : {}),
    },
  };
}
