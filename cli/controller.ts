/**
 * `paddock controller`, `paddock worker` and `paddock local`: flags and signals
 * only; the logic is in controller/ (controller, api, local) and runner/worker.
 *
 * Exit codes: 0 stopped by SIGTERM/SIGINT (controller, worker) or every task
 * succeeded (local); 1 a task failed (local); 2 bad arguments; 4 local timed
 * out; 6 internal error (e.g. the API server cannot be reached at start).
 */
import * as fs from 'fs';
import { startApis } from '../controller/api';
import { KubeAuth } from '../controller/auth';
import { jsonLogger } from '../core/log';
import { WORKER_TOKEN_AUDIENCE, WORKER_TOKEN_PATH } from '../core/protocol';
import { Controller } from '../controller/controller';
import { jobDeliverer } from '../controller/publish-jobs';
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
  'metrics-port': { type: 'string', example: '9090' },
  address: { type: 'string', example: '0.0.0.0' },
  kubeconfig: { type: 'string', example: '~/.kube/config' },
  'leader-elect': { type: 'boolean' },
} as const;

export const controllerCommand: Command<typeof CONTROLLER_OPTIONS> = {
  usage: `Usage: paddock controller [options]

Watches the namespace's tasks, dispatches them to Jobs and warm workers, and
serves the task API (--port) and the warm workers' lease API (--worker-port),
both authenticated with TokenReview and authorized with SubjectAccessReview,
and Prometheus metrics (--metrics-port). Logs are JSON, one event per line.

Options:
  --namespace NS       the platform's namespace        [env PADDOCK_NAMESPACE]
  --port N             the task API's port             [default 8080]
  --worker-port N      the worker lease API's port     [default 8081]
  --metrics-port N     Prometheus /metrics             [default 9090]
  --address ADDR       where the three listen          [default 0.0.0.0]
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
  const metricsPort = positiveInt(values['metrics-port'], '--metrics-port', 9090);
  if (metricsPort === port || metricsPort === workerPort) throw new UsageError(`--metrics-port ${metricsPort} is taken by ${metricsPort === port ? '--port' : '--worker-port'}; give metrics their own port, e.g. --metrics-port 9090`);
  // The Kubernetes client is loaded only here (ESM, see k8s-store.ts).
  const { KubeStore } = await import('../controller/k8s-store');
  const { LeaderElector } = await import('../controller/leader');
  const { startMetrics } = await import('../controller/metrics');
  const store = await KubeStore.connect({ namespace, kubeconfig: values.kubeconfig });
  const identity = env.PADDOCK_POD_NAME ?? env.HOSTNAME ?? `controller-${process.pid}`;
  const json = jsonLogger('controller', (l) => process.stdout.write(l), { replica: identity });
  const log = (line: string) => json(line);
  // Deliveries run as publish Jobs: the push Secret is mounted there, never here or in an agent pod.
  const controller = new Controller({ store, namespace, log, instance: identity, deliver: jobDeliverer(store, { log }) });
  controller.onLifecycle((e) => json(`task ${e.task}: ${e.reason}`, { event: e.reason, task: e.task, run: e.run, pool: e.pool, attempt: e.attempt, ...(e.outcome ? { outcome: e.outcome } : {}), detail: e.message }));
  const elector = values['leader-elect'] ? new LeaderElector({ store, name: 'paddock-controller', identity, log, address: env.PADDOCK_POD_IP }) : undefined;
  const auth = new KubeAuth(store.reviews(), { namespace, workerAudience: WORKER_TOKEN_AUDIENCE });
  const host = values.address ?? '0.0.0.0';
  const api = await startApis(controller, { port, workerPort, host, auth, isLeader: elector ? () => elector.isLeader : undefined, leaderHost: elector ? () => elector.leaderAddress : undefined });
  const metrics = await startMetrics(controller, { port: metricsPort, host });
  log(`paddock controller ${identity}: namespace ${namespace}, task API on :${api.tasks.port}, worker lease API on :${api.workers.port}, metrics on :${metrics.port}${elector ? ', leader election on' : ''}`);
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
    await metrics.close();
  }
  return 0;
}

const WORKER_OPTIONS = {
  pool: { type: 'string', example: 'codex' },
  controller: { type: 'string', example: 'http://paddock-controller.paddock.svc:8081' },
  'token-file': { type: 'string', example: WORKER_TOKEN_PATH },
  id: { type: 'string', example: 'worker-1' },
  'work-dir': { type: 'string', example: '/work' },
  'max-runs': { type: 'string', example: '1' },
  wait: { type: 'string', example: '20000' },
  keep: { type: 'boolean' },
  isolation: { type: 'string', example: 'container' },
  wipe: { type: 'string', multiple: true, example: '/tmp' },
  'parent-lifeline': { type: 'boolean' },
} as const;

export const workerCommand: Command<typeof WORKER_OPTIONS> = {
  usage: `Usage: paddock worker --pool NAME --controller WORKER-API-URL [options]

A warm pool's worker: leases tasks of its pool from the controller (long poll)
and runs each with the runner, one at a time.

Options:
  --pool NAME          the warm pool                   [env PADDOCK_POOL]
  --controller URL     the controller's worker lease API [env PADDOCK_CONTROLLER_URL]
  --token-file FILE    its bearer token, read on every request [env PADDOCK_TOKEN_FILE;
                       default ${WORKER_TOKEN_PATH}, the pod's projected token]
  --id ID              this worker's name              [default: host name and pid]
  --work-dir DIR       where runs get their directories [default: a temp dir]
  --max-runs N         exit after N runs               [default: never]
  --wait MS            how long one lease request waits [default 20000]
  --keep               keep each run's directories (debugging)
  --isolation MODE     which processes are a run's, killed after it: container (all
                       of this uid but the worker: a pod) or session (marked) [default session]
  --wipe DIR           also empty DIR after every run (repeatable; e.g. /tmp, HOME)
  --parent-lifeline    stop when stdin closes (the parent that holds it died; paddock local)
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
    const tokenFile = values['token-file'] ?? env.PADDOCK_TOKEN_FILE ?? WORKER_TOKEN_PATH;
    if (!fs.existsSync(tokenFile)) {
      throw new UsageError(`--token-file ${tokenFile} does not exist; give the file with the lease API's token, e.g. --token-file ${WORKER_TOKEN_PATH} (the pod's projected ServiceAccount token) or paddock local's token file`);
    }
    const abort = new AbortController();
    const off = onSignals(() => abort.abort());
    const lifeline = values['parent-lifeline'] ?? false;
    if (lifeline) {
      // paddock local holds our stdin open; when it closes, the parent is gone (even SIGKILLed): stop as on SIGTERM.
      process.stdin.on('end', () => abort.abort()).on('close', () => abort.abort()).on('error', () => abort.abort()).resume();
    }
    try {
      await runWorker({
        isolation,
        wipe: values.wipe ?? [],
        pool,
        controller: controllerUrl,
        tokenFile,
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
      if (lifeline) process.stdin.destroy(); // or it keeps the process alive
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
  serve: { type: 'boolean' },
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
  --serve              keep serving the task API for paddock tasks until SIGTERM/SIGINT
                       (prints PADDOCK_SERVER and PADDOCK_TOKEN_FILE to export)
  -h, --help           this text

The workers and the client authenticate with one random token, written to
OUT/token with mode 0600 and removed at exit.

Exit codes: 0 every task succeeded (with --serve: stopped by SIGTERM/SIGINT);
1 a task failed; 2 bad arguments; 4 timed out; 5 stopped by SIGTERM/SIGINT.
`,
  options: LOCAL_OPTIONS,
  run: async ({ values }, _io, env) => {
    if (values.serve && values.timeout !== undefined) throw new UsageError('--timeout does not go with --serve (it serves until SIGTERM/SIGINT); give one of them');
    const abort = new AbortController();
    const off = onSignals(() => abort.abort());
    try {
      return await runLocal({
        serve: values.serve ?? false,
        signal: abort.signal,
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
    } finally {
      off();
    }
  },
};
