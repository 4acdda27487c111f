/**
 * `paddock controller`, `paddock worker` and `paddock local`: flags and signals
 * only; the logic is in controller/ (controller, api, local) and runner/worker.
 *
 * Exit codes: 0 stopped by SIGTERM/SIGINT (controller, worker) or every task
 * succeeded (local); 1 a task failed (local); 2 bad arguments; 4 local timed
 * out; 6 internal error (e.g. the API server cannot be reached at start).
 */
import { startApis } from '../controller/api';
import { Controller } from '../controller/controller';
import { LocalError, runLocal } from '../controller/local';
import { runWorker, TaintedWorkerError } from '../runner/worker';
import { existingDir, OptionValues, positiveInt, UsageError } from './args';
import type { Command } from './main';

function onSignals(stop: () => void): () => void {
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return () => {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  };
}

const CONTROLLER_OPTIONS = {
  namespace: { type: 'string', example: 'paddock' },
  port: { type: 'string', example: '8080' },
  'worker-port': { type: 'string', example: '8081' },
  kubeconfig: { type: 'string', example: '~/.kube/config' },
  'leader-elect': { type: 'boolean' },
} as const;

export const controllerCommand: Command<typeof CONTROLLER_OPTIONS> = {
  usage: `Usage: paddock controller [options]

Watches the namespace's tasks, dispatches them to Jobs and warm workers, and
serves the task API (--port) and the warm workers' lease API (--worker-port).

Options:
  --namespace NS       the platform's namespace        [env PADDOCK_NAMESPACE]
  --port N             the task API's port             [default 8080]
  --worker-port N      the worker lease API's port     [default 8081]
  --kubeconfig FILE    [default: in-cluster, or the current context]
  --leader-elect       run several replicas: one leads, through a Lease
  -h, --help           this text

Exit codes: 0 stopped by SIGTERM/SIGINT; 2 bad arguments; 6 internal error.
`,
  options: CONTROLLER_OPTIONS,
  run: ({ values }, _io, env) => runController(values, env),
};

async function runController(values: OptionValues<typeof CONTROLLER_OPTIONS>, env: NodeJS.ProcessEnv): Promise<number> {
  const namespace = values.namespace ?? env.PADDOCK_NAMESPACE;
  if (!namespace) throw new UsageError('give --namespace NS (or set PADDOCK_NAMESPACE)');
  const port = positiveInt(values.port, '--port', 8080);
  // The warm workers' lease API has its own port, so a NetworkPolicy can keep agent pods off the task API.
  const workerPort = positiveInt(values['worker-port'], '--worker-port', 8081);
  if (workerPort === port) throw new UsageError(`--worker-port ${workerPort} is the task API's --port too; give the worker lease API its own port, e.g. --worker-port ${port === 8081 ? 8082 : 8081}`);
  // The Kubernetes client is loaded only here (ESM, see k8s-store.ts).
  const { KubeStore } = await import('../controller/k8s-store');
  const { LeaderElector } = await import('../controller/leader');
  const store = await KubeStore.connect({ namespace, kubeconfig: values.kubeconfig });
  const log = (line: string) => process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const controller = new Controller({ store, namespace, log });
  const identity = env.PADDOCK_POD_NAME ?? env.HOSTNAME ?? `controller-${process.pid}`;
  const elector = values['leader-elect'] ? new LeaderElector({ store, name: 'paddock-controller', identity, log }) : undefined;
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

const WORKER_OPTIONS = {
  pool: { type: 'string', example: 'codex' },
  controller: { type: 'string', example: 'http://paddock-controller.paddock.svc:8081' },
  id: { type: 'string', example: 'worker-1' },
  'work-dir': { type: 'string', example: '/work' },
  'max-runs': { type: 'string', example: '1' },
  wait: { type: 'string', example: '20000' },
  keep: { type: 'boolean' },
  isolation: { type: 'string', example: 'container' },
  wipe: { type: 'string', multiple: true, example: '/tmp' },
} as const;

export const workerCommand: Command<typeof WORKER_OPTIONS> = {
  usage: `Usage: paddock worker --pool NAME --controller WORKER-API-URL [options]

A warm pool's worker: leases tasks of its pool from the controller (long poll)
and runs each with the runner, one at a time.

Options:
  --pool NAME          the warm pool                   [env PADDOCK_POOL]
  --controller URL     the controller's worker lease API [env PADDOCK_CONTROLLER_URL]
  --id ID              this worker's name              [default: host name and pid]
  --work-dir DIR       where runs get their directories [default: a temp dir]
  --max-runs N         exit after N runs               [default: never]
  --wait MS            how long one lease request waits [default 20000]
  --keep               keep each run's directories (debugging)
  --isolation MODE     which processes are a run's, killed after it: container (all
                       of this uid but the worker: a pod) or session (marked) [default session]
  --wipe DIR           also empty DIR after every run (repeatable; e.g. /tmp, HOME)
  -h, --help           this text

Exit codes: 0 stopped by SIGTERM/SIGINT or after --max-runs; 2 bad arguments;
3 something of a finished run survived (its container must be replaced).
`,
  options: WORKER_OPTIONS,
  run: async ({ values }, _io, env) => {
    const pool = values.pool ?? env.PADDOCK_POOL;
    const controllerUrl = values.controller ?? env.PADDOCK_CONTROLLER_URL;
    if (!pool) throw new UsageError('give --pool NAME (or set PADDOCK_POOL)');
    if (!controllerUrl) throw new UsageError('give --controller URL, e.g. --controller http://paddock-controller.paddock.svc:8081 (the worker lease API)');
    const isolation = values.isolation ?? 'session';
    if (isolation !== 'container' && isolation !== 'session') throw new UsageError(`--isolation "${isolation}" is unknown; write --isolation container (in a pod) or --isolation session`);
    const abort = new AbortController();
    const off = onSignals(() => abort.abort());
    try {
      await runWorker({
        isolation,
        wipe: values.wipe ?? [],
        pool,
        controller: controllerUrl,
        id: values.id,
        workDir: values['work-dir'],
        keep: values.keep ?? false,
        maxRuns: values['max-runs'] !== undefined ? positiveInt(values['max-runs'], '--max-runs', 1) : undefined,
        waitMs: values.wait !== undefined ? positiveInt(values.wait, '--wait', 20000) : undefined,
        env,
        signal: abort.signal,
      });
    } catch (err) {
      if (!(err instanceof TaintedWorkerError)) throw err;
      return 3;
    } finally {
      off();
    }
    return 0;
  },
};

const LOCAL_OPTIONS = {
  dir: { type: 'string', example: 'dist' },
  workers: { type: 'string', example: '2' },
  task: { type: 'string', multiple: true, example: 'fix-readme' },
  out: { type: 'string', example: '.paddock' },
  timeout: { type: 'string', example: '600' },
  'credential-dir': { type: 'string', example: './secrets' },
} as const;

export const localCommand: Command<typeof LOCAL_OPTIONS> = {
  usage: `Usage: paddock local [options]

Runs the declared tasks of the synthesized platform (dist/*.k8s.yaml) on this
machine: the controller in-process, warm workers as local processes, Jobs as
local runs.

Options:
  --dir DIR            the synthesized YAML            [default dist]
  --workers N          workers per warm pool           [default 1]
  --task NAME          run only this task (repeatable) [default: all]
  --out DIR            where each run's artifacts go   [default .paddock/local]
  --timeout SECONDS    give up after this long
  --credential-dir DIR the pools' Secrets as files DIR/<secret>/<key> (file and git
                       grants; git credentials stay with this controller)
  -h, --help           this text

Exit codes: 0 every task succeeded; 1 a task failed; 2 bad arguments; 4 timed out.
`,
  options: LOCAL_OPTIONS,
  run: async ({ values }, _io, env) => {
    try {
      return await runLocal({
        dir: values.dir,
        workers: positiveInt(values.workers, '--workers', 1),
        tasks: values.task,
        out: values.out,
        timeoutMs: values.timeout !== undefined ? positiveInt(values.timeout, '--timeout', 1) * 1000 : undefined,
        ...(values['credential-dir'] !== undefined ? { credentialDir: existingDir(values['credential-dir'], '--credential-dir') } : {}),
        env,
      });
    } catch (err) {
      if (err instanceof LocalError) throw new UsageError(err.message);
      throw err;
    }
  },
};
