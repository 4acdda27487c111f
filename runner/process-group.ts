/**
 * Run a program (argv, never a shell) in its own process group, with a timeout and an
 * abort signal. Stopping means SIGTERM to the whole group, then SIGKILL after a grace
 * period, so a grandchild the program spawned dies with it. When the program exits on
 * its own, stragglers left in its group are killed too.
 */
import { spawn } from 'child_process';

export interface GroupRunOptions {
  readonly argv: readonly string[];
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  /** Text written to stdin, which is then closed; without it stdin is /dev/null. */
  readonly stdinText?: string;
  /** Wall-clock limit; on expiry the group is stopped and `timedOut` is set. */
  readonly timeoutMs?: number;
  /** Time between SIGTERM and SIGKILL. */
  readonly killGraceMs: number;
  /** Aborting stops the group and sets `aborted`. */
  readonly signal?: AbortSignal;
  readonly onStdout?: (chunk: Buffer) => void;
  readonly onStderr?: (chunk: Buffer) => void;
}

export interface GroupRunResult {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly timedOut: boolean;
  readonly aborted: boolean;
  /** Set when the program could not be started (e.g. ENOENT). */
  readonly spawnError?: Error;
}

/** How long to wait for the pipes to close after the program exited and its group was killed. */
const PIPE_DRAIN_MS = 1000;

export function runInProcessGroup(opts: GroupRunOptions): Promise<GroupRunResult> {
  return new Promise((resolve) => {
    if (opts.signal?.aborted) {
      resolve({ exitCode: null, signal: null, timedOut: false, aborted: true });
      return;
    }
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(opts.argv[0], opts.argv.slice(1), {
        cwd: opts.cwd,
        env: opts.env,
        detached: true, // setsid: the child leads a new process group
        stdio: [opts.stdinText === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      });
    } catch (err) {
      // Some failures (E2BIG: an argv over the kernel's limit) throw here instead of emitting 'error'.
      resolve({ exitCode: null, signal: null, timedOut: false, aborted: false, spawnError: err as Error });
      return;
    }
    let timedOut = false;
    let aborted = false;
    let stopping = false;
    let settled = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | undefined;
    let drainTimer: NodeJS.Timeout | undefined;

    const killGroup = (sig: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, sig);
      } catch {
        // ESRCH: the group is already gone.
      }
    };
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      killGroup('SIGTERM');
      killTimer = setTimeout(() => killGroup('SIGKILL'), opts.killGraceMs);
    };
    const timeoutTimer =
      opts.timeoutMs !== undefined
        ? setTimeout(() => {
            timedOut = true;
            stop();
          }, opts.timeoutMs)
        : undefined;
    const onAbort = (): void => {
      aborted = true;
      stop();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timeoutTimer);
      clearTimeout(killTimer);
      clearTimeout(drainTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ exitCode, signal: exitSignal, timedOut, aborted, ...(spawnError ? { spawnError } : {}) });
    };

    child.stdout!.on('data', (c: Buffer) => opts.onStdout?.(c));
    child.stderr!.on('data', (c: Buffer) => opts.onStderr?.(c));
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // the program may exit without reading stdin (EPIPE)
      child.stdin.end(opts.stdinText);
    }
    child.on('error', (err) => finish(err));
    child.on('exit', (code, sig) => {
      exitCode = code;
      exitSignal = sig;
      // Stragglers (background children) die with the program.
      killGroup('SIGKILL');
      // A process that escaped the group may still hold the pipes; don't wait forever.
      drainTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, PIPE_DRAIN_MS);
    });
    child.on('close', () => finish());
  });
}
