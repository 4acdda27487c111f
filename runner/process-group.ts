/**
 * Run a program (argv, never a shell) in its own process group, with a timeout and an
 * abort signal. Stopping means SIGTERM to the whole group, then SIGKILL after a grace
 * period, so a grandchild the program spawned dies with it. When the program exits on
 * its own, stragglers left in its group are killed too.
 *
 * With `supervise`, the program runs under a small supervisor (node, in the program's
 * group) that holds a pipe to this process: if this process dies, even by SIGKILL, the
 * pipe closes and the supervisor stops the whole group, so no agent outlives the worker
 * that ran it (Linux's PR_SET_PDEATHSIG is out of node's reach).
 */
import { ChildProcess, spawn } from 'child_process';

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
  /** Stop the group when this process dies (see above). @default false */
  readonly supervise?: boolean;
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
    let child: ChildProcess;
    const stdin = opts.stdinText === undefined ? 'ignore' : 'pipe';
    try {
      child = opts.supervise
        ? spawn(process.execPath, ['-e', SUPERVISOR, String(opts.killGraceMs), ...opts.argv], {
            cwd: opts.cwd,
            env: opts.env,
            detached: true,
            // fd 3: the lifeline; the supervisor reports a failed start on it.
            stdio: [stdin, 'pipe', 'pipe', 'pipe'],
          })
        : spawn(opts.argv[0], opts.argv.slice(1), {
            cwd: opts.cwd,
            env: opts.env,
            detached: true, // setsid: the child leads a new process group
            stdio: [stdin, 'pipe', 'pipe'],
          });
    } catch (err) {
      // E2BIG (argv over the limit) and a NUL byte in argv or env throw here, not as an 'error' event.
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
      (child.stdio[3] as { destroy?: () => void } | undefined)?.destroy?.();
      resolve({ exitCode, signal: exitSignal, timedOut, aborted, ...(spawnError ? { spawnError } : {}) });
    };

    let reported = '';
    const lifeline = child.stdio[3] as NodeJS.ReadableStream | null | undefined;
    lifeline?.on('data', (c: Buffer) => (reported += c.toString()));
    lifeline?.on('error', () => undefined);
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
      if (code === SUPERVISOR_SPAWN_FAILED && lifeline) {
        // The reason may still be on its way: read fd 3 to its end.
        const report = (): void => {
          try {
            const { code: errno, message } = JSON.parse(reported) as { code?: string; message: string };
            finish(Object.assign(new Error(message), { code: errno }));
          } catch {
            finish(new Error('the agent could not be started'));
          }
        };
        if ((lifeline as unknown as { readableEnded?: boolean }).readableEnded) report();
        else lifeline.once('close', report);
        return;
      }
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

/** The supervisor's exit code when the program could not start (the reason comes on fd 3). */
const SUPERVISOR_SPAWN_FAILED = 199;

/**
 * The supervisor (`node -e`, argv: GRACE_MS PROGRAM ARGS...). It leads the group and runs
 * the program in it with its own stdio; SIGTERM is the program's to handle. When fd 3
 * closes (the runner died), it stops the group: SIGTERM, then SIGKILL after the grace.
 * It exits as the program did.
 */
const SUPERVISOR = `
const { spawn } = require('child_process');
const net = require('net');
const [grace, program, ...args] = process.argv.slice(1);
process.on('SIGTERM', () => {});
process.on('SIGINT', () => {});
const lifeline = new net.Socket({ fd: 3, readable: true, writable: true });
lifeline.on('error', () => {});
let exiting = false;
const failed = (err) => {
  exiting = true;
  lifeline.end(JSON.stringify({ code: err.code, message: err.message }), () => process.exit(${SUPERVISOR_SPAWN_FAILED}));
};
let child;
try {
  child = spawn(program, args, { stdio: 'inherit' });
} catch (err) {
  failed(err);
}
if (child) {
  child.on('error', failed);
  lifeline.on('close', () => {
    if (exiting) return;
    try { process.kill(0, 'SIGTERM'); } catch {}
    setTimeout(() => { try { process.kill(0, 'SIGKILL'); } catch {} }, Number(grace)).unref();
  });
  lifeline.resume();
  child.on('exit', (code, sig) => {
    exiting = true;
    if (sig) {
      process.removeAllListeners(sig);
      process.kill(process.pid, sig);
      setTimeout(() => process.exit(128), 100);
    } else process.exit(code);
  });
}
`;
