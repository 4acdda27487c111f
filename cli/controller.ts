/**
 * `paddock controller`, `paddock worker` and `paddock local`: argv parsing only;
 * the logic is in controller.ts / api.ts / worker.ts / local.ts.
 *
 * Exit codes: 0 stopped by SIGTERM/SIGINT (controller, worker) or every task
 * succeeded (local); 1 a task failed (local); 2 bad arguments; 4 local timed
 * out; 6 internal error (e.g. the API server cannot be reached at start).
 */
import { startApis } from '../controller/api';
import { UsageError } from './usage-error';
import { Controller } from '../controller/controller';
import { LocalError, runLocal } from '../controller/local';
import { runWorker } from '../runner/worker';

/** Bad arguments: the CLI prints the message and exits 2. */
export class CommandUsageError extends UsageError {}


function parse(args: readonly string[], valued: string[], flags: string[] = []): { values: Map<string, string[]>; flags: Set<string> } {
  const values = new Map<string, string[]>();
  const set = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (flags.includes(arg)) {
      set.add(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (!valued.includes(name)) throw new CommandUsageError(`unknown argument "${arg}"; known: ${[...valued, ...flags].join(', ')}`);
    const value = name !== arg ? arg.slice(eq + 1) : args[++i];
    if (value === undefined) throw new CommandUsageError(`${name} needs a value`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  return { values, flags: set };
}

function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CommandUsageError(`${name} "${value}" must be a positive integer, e.g. ${name} 4`);
  return n;
}

function onSignals(stop: () => void): () => void {
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  };
}

export async function controllerCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, flags } = parse(args, ['--namespace', '--port', '--worker-port', '--kubeconfig'], ['--leader-elect']);
  const namespace = values.get('--namespace')?.[0] ?? env.PADDOCK_NAMESPACE;
  if (!namespace) throw new CommandUsageError('give --namespace NS (or set PADDOCK_NAMESPACE)');
  const port = positiveInt(values.get('--port')?.[0], '--port', 8080);
  // The warm workers' lease API has its own port, so a NetworkPolicy can keep agent pods off the task API.
  const workerPort = positiveInt(values.get('--worker-port')?.[0], '--worker-port', 8081);
  if (workerPort === port) throw new CommandUsageError(`--worker-port ${workerPort} is the task API's --port too; give the worker lease API its own port, e.g. --worker-port ${port === 8081 ? 8082 : 8081}`);
  // The Kubernetes client is loaded only here (ESM, see k8s-store.ts).
  const { KubeStore } = await import('../controller/k8s-store');
  const { LeaderElector } = await import('../controller/leader');
  const store = await KubeStore.connect({ namespace, kubeconfig: values.get('--kubeconfig')?.[0] });
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const controller = new Controller({ store, namespace, log });
  const identity = env.PADDOCK_POD_NAME ?? env.HOSTNAME ?? `controller-${process.pid}`;
  const elector = flags.has('--leader-elect') ? new LeaderElector({ store, name: 'paddock-controller', identity, log }) : undefined;
  const api = await startApis(controller, { port, workerPort, isLeader: elector ? () => elector.isLeader : undefined });
  log(`paddock controller ${identity}: namespace ${namespace}, task API on :${api.tasks.port}, worker lease API on :${api.workers.port}${elector ? ', leader election on' : ''}`);
  let resolveStop!: () => void;
  const stopped = new Promise<void>((r) => (resolveStop = r));
  const off = onSignals(() => resolveStop());
  try {
    if (elector) {
      elector.onChange = (leading) => (leading ? void controller.start() : void controller.stop());
      await elector.start();
    } else {
      await controller.start();
    }
    await stopped;
  } finally {
    off();
    // Leave within a few seconds of SIGTERM even if a watch connection lingers (the kubelet waits 30 s).
    setTimeout(() => process.exit(0), 3000).unref();
    await elector?.stop();
    await controller.stop();
    await api.close();
  }
  return 0;
}

export async function workerCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, flags } = parse(args, ['--pool', '--controller', '--id', '--work-dir', '--max-runs', '--wait'], ['--keep', '--parent-lifeline']);
  const pool = values.get('--pool')?.[0] ?? env.PADDOCK_POOL;
  const controllerUrl = values.get('--controller')?.[0] ?? env.PADDOCK_CONTROLLER_URL;
  if (!pool) throw new CommandUsageError('give --pool NAME (or set PADDOCK_POOL)');
  if (!controllerUrl) throw new CommandUsageError('give --controller URL, e.g. --controller http://paddock-controller.paddock.svc:8081 (the worker lease API)');
  const abort = new AbortController();
  const off = onSignals(() => abort.abort());
  if (flags.has('--parent-lifeline')) {
    // paddock local holds our stdin open; when it closes, the parent is gone (even SIGKILLed): stop as on SIGTERM.
    process.stdin.on('end', () => abort.abort()).on('close', () => abort.abort()).on('error', () => abort.abort()).resume();
  }
  try {
    await runWorker({
      pool,
      controller: controllerUrl,
      id: values.get('--id')?.[0],
      workDir: values.get('--work-dir')?.[0],
      keep: flags.has('--keep'),
      maxRuns: values.has('--max-runs') ? positiveInt(values.get('--max-runs')![0], '--max-runs', 1) : undefined,
      waitMs: values.has('--wait') ? positiveInt(values.get('--wait')![0], '--wait', 20000) : undefined,
      env,
      signal: abort.signal,
    });
  } finally {
    off();
    if (flags.has('--parent-lifeline')) process.stdin.destroy(); // or it keeps the process alive
  }
  return 0;
}

export async function localCommand(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parse(args, ['--dir', '--workers', '--task', '--out', '--timeout']);
  const abort = new AbortController();
  const off = onSignals(() => abort.abort());
  try {
    return await runLocal({
      signal: abort.signal,
      dir: values.get('--dir')?.[0],
      workers: positiveInt(values.get('--workers')?.[0], '--workers', 1),
      tasks: values.get('--task'),
      out: values.get('--out')?.[0],
      timeoutMs: values.has('--timeout') ? positiveInt(values.get('--timeout')![0], '--timeout', 1) * 1000 : undefined,
      env,
    });
  } catch (err) {
    if (err instanceof LocalError) throw new CommandUsageError(err.message);
    throw err;
  } finally {
    off();
  }
}
