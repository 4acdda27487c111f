/**
 * Opt-in local sandbox (`--sandbox bwrap`): the agent runs under bubblewrap with the
 * whole file system read-only, except the workspace, its HOME and a private temp dir
 * (its TMPDIR). /tmp itself stays visible but read-only: a tmpfs over it would hide
 * programs that live under /tmp (a checkout there, the CLIs' node_modules). It gets its own PID namespace and dies with the runner; the network is
 * shared (the agent must reach its model). In a pod the pod is the sandbox; this is
 * for trying a harness on a developer machine.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { RunFailure } from './status';

export type SandboxKind = 'none' | 'bwrap';

export interface BwrapMounts {
  readonly workspace: string;
  readonly home: string;
  readonly workdir: string;
  /** The agent's private, writable temp dir; the runner sets TMPDIR to it. */
  readonly tmpdir: string;
  /** Read-only extras the agent must see (e.g. the prompt file when it lives in /tmp). */
  readonly readOnly?: readonly string[];
  /**
   * What the agent must not see though its uid could read it: a directory becomes an empty
   * tmpfs (the run's own directories inside it are bound back), a file reads as empty.
   */
  readonly hidden?: readonly string[];
}

/** Find bwrap on PATH and check it can create a sandbox here; throws a clear message otherwise. */
export function locateBwrap(pathEnv: string | undefined, explicit?: string): string {
  const found = explicit ?? findOnPath('bwrap', pathEnv);
  if (!found) {
    throw new RunFailure(
      'invalid_spec',
      '--sandbox bwrap: bwrap (bubblewrap) is not installed or not on PATH; install it (e.g. `apt-get install bubblewrap`) or run without --sandbox',
    );
  }
  const probe = spawnSync(found, ['--ro-bind', '/', '/', '--unshare-pid', '--die-with-parent', '--', 'true'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: 10_000,
  });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.message : probe.stderr.toString().trim() || `exit ${probe.status}`;
    throw new RunFailure(
      'invalid_spec',
      `--sandbox bwrap: ${found} cannot create a sandbox here (${why}); it needs unprivileged user namespaces or a setuid bwrap`,
    );
  }
  return found;
}

/** The argv that runs `argv` inside the sandbox. */
export function wrapWithBwrap(bwrap: string, argv: readonly string[], m: BwrapMounts): string[] {
  const args = [bwrap, '--ro-bind', '/', '/', '--dev', '/dev', '--proc', '/proc'];
  for (const p of m.hidden ?? []) {
    if (!fs.existsSync(p)) continue;
    if (fs.statSync(p).isDirectory()) args.push('--tmpfs', p);
    else args.push('--ro-bind', '/dev/null', p);
  }
  for (const dir of [m.workspace, m.home, m.tmpdir]) args.push('--bind', dir, dir);
  for (const p of m.readOnly ?? []) args.push('--ro-bind', p, p);
  args.push('--unshare-pid', '--die-with-parent', '--chdir', m.workdir, '--', ...argv);
  return args;
}

function findOnPath(name: string, pathEnv: string | undefined): string | undefined {
  for (const dir of (pathEnv ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
