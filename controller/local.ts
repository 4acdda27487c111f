/**
 * `paddock local`: the platform from dist/ (the synthesized YAML) on this
 * machine. An in-process store stands in for the API server; this process is
 * the controller (the same Controller and HTTP APIs as in the cluster: the
 * task API and the worker lease API, each on its own 127.0.0.1 port); each pool gets `--workers N` warm workers, local processes
 * (`paddock worker`), which lease the declared tasks and run them with the
 * runner. Locally every pool runs in warm mode (there is no kubelet for Jobs),
 * without the pod sandbox and without the cluster's egress proxy: the
 * workers run as you, with your environment's credentials (e.g.
 * OPENAI_API_KEY for a pool granted it).
 *
 * Exit codes: 0 every selected task succeeded; 1 a task failed; 2 bad
 * arguments, dist/ holds no platform, or another `paddock local` uses the same
 * --out; 4 the overall timeout passed; 5 stopped by SIGTERM/SIGINT.
 *
 * Stopping: the workers get SIGTERM (each stops its run and its agent's process
 * group); a worker also stops when its stdin, a pipe from this process, closes, so
 * even a SIGKILLed `paddock local` leaves no worker retrying forever. `<out>/.lock`
 * holds the pid of the `paddock local` using the folder; a lock whose process is
 * gone is taken over.
 */
import { ChildProcess, spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import type { PoolSpec } from '../policy/specs';
import { startApis } from './api';
import { StaticTokenAuth } from './auth';
import { Controller, type Deliverer } from './controller';
import { patchOfRunConfigMap, resultOfRunConfigMap, taskFromConfigMap } from './observe';
import { publish } from './publisher';
import { gitCaEnv } from '../runner/sources';
import { TERMINAL_PHASES, RunPhase } from './reconcile';
import { KubeObject, MemoryStore } from './store';
import { fetchSourcesArchive } from './sources-archive';
import { withCredentialDir } from '../runner/credentials';
import { stableJson } from '../core/stable-json';

export interface LocalOptions {
  /** Folder with the synthesized YAML. @default "dist" */
  readonly dir?: string;
  /** Warm workers per pool. @default 1 */
  readonly workers?: number;
  /** Only these declared tasks. @default - all */
  readonly tasks?: string[];
  /** Where results and run directories go. @default ".paddock/local" */
  readonly out?: string;
  /** Give up after this long. @default - the longest task timeout + 5 minutes */
  readonly timeoutMs?: number;
  /** A lease not renewed for this long goes to another worker. @default 15000 */
  readonly leaseTtlMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Progress lines. @default stdout */
  readonly log?: (line: string) => void;
  /** Where the workers' output goes. @default 'inherit' */
  readonly workerStdio?: 'inherit' | 'pipe';
  /**
   * A folder holding the pools' Secrets as files, `<secret>/<key>` (like the pods' mounts
   * under /var/run/paddock/secrets): git credentials (used by this controller, never by a
   * worker) and file grants. @default - none: grants of files and git credentials fail
   */
  readonly credentialDir?: string;
  /** Called with each worker process (tests). */
  readonly onWorker?: (child: ChildProcess, pool: string, index: number) => void;
  /** Aborting (the CLI does on SIGTERM/SIGINT) stops the workers and their runs; exit 5 (0 with `serve`). */
  readonly signal?: AbortSignal;
  /** How long stopped workers get before SIGKILL. @default 15000 */
  readonly stopGraceMs?: number;
  /**
   * Keep serving the task API after the declared tasks (if any) finished, for
   * `paddock tasks ...`, until `signal` aborts (SIGTERM/SIGINT). @default false
   */
  readonly serve?: boolean;
  /** Called once the APIs listen (tests): the task API's URL and the token file. */
  readonly onReady?: (ready: { readonly server: string; readonly tokenFile: string }) => void;
}

/**
 * A new random token in `file`, readable by this user only (mode 0600): the
 * workers' and the client's credential in local mode.
 */
export function writeLocalToken(file: string): string {
  const token = randomBytes(32).toString('base64url');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, token + '\n', { mode: 0o600, flag: 'wx' });
  return token;
}

export class LocalError extends Error {}

/** The `paddock` launcher, found from this module (lib/controller or controller/). */
export function paddockBin(): string {
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'bin', 'paddock.js');
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new LocalError('cannot find bin/paddock.js next to this package');
}

/** Every object in the folder's *.yaml / *.yml / *.json files. */
export function readManifests(dir: string): KubeObject[] {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LocalError(`${dir} is not a folder; synthesize the platform first (npm run synth writes dist/)`);
  }
  const files = fs.readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();
  const objects: KubeObject[] = [];
  for (const f of files) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) throw new LocalError(`${path.join(dir, f)}: ${doc.errors[0].message}`);
      const v = doc.toJS();
      if (v && typeof v === 'object' && v.kind && v.metadata?.name) objects.push(v as KubeObject);
    }
  }
  return objects;
}

/** Load the platform's ConfigMaps into a store: pools turned warm, without the cluster's egress proxy. */
export function loadPlatform(objects: KubeObject[], only?: string[], credentialDir?: string): { store: MemoryStore; namespace: string; tasks: string[]; pools: string[]; allPools: string[]; notes: string[] } {
  const cms = objects.filter((o) => o.kind === 'ConfigMap');
  const component = (o: KubeObject) => o.metadata.labels?.['app.kubernetes.io/component'];
  const pools = cms.filter((o) => component(o) === 'pool');
  const taskCms = cms.filter((o) => component(o) === 'task');
  if (pools.length === 0) throw new LocalError('no pool ConfigMaps (pool-*) found: is this a synthesized Paddock platform?');
  const namespace = pools[0].metadata.namespace ?? 'paddock';
  const store = new MemoryStore(namespace);
  const notes: string[] = [];
  const declared = taskCms.map((cm) => cm.metadata.labels?.['paddock.dev/task'] ?? '').filter(Boolean);
  const unknown = (only ?? []).filter((t) => !declared.includes(t));
  if (unknown.length) throw new LocalError(`no declared task ${unknown.map((t) => `"${t}"`).join(', ')}; declared: ${declared.join(', ') || 'none'}`);
  const selected = only?.length ? only : declared;
  const poolNames: string[] = [];
  for (const cm of pools) {
    const spec = JSON.parse(((cm.data ?? {}) as Record<string, string>)['pool.json']) as PoolSpec;
    const { egress, ...rest } = spec;
    if (egress?.proxy) notes.push(`pool ${spec.name}: its egress proxy (${egress.proxy}) exists only in the cluster; local workers connect directly`);
    if (spec.mode !== 'warm') notes.push(`pool ${spec.name}: mode "${spec.mode ?? 'job'}" in the cluster; locally its tasks run on warm workers`);
    // No model gateway locally: the keys it would hold come from this machine's environment.
    const { gateway, ...noGateway } = withCredentialDir(rest, credentialDir);
    if (gateway) notes.push(`pool ${spec.name}: its model gateway exists only in the cluster; local workers pass ${gateway.credentials.map((c) => c.env).join(', ')} from your environment to the agent`);
    const viaEnv = gateway ? { credentials: { ...noGateway.credentials, env: [...(noGateway.credentials?.env ?? []), ...gateway.credentials.map((c) => ({ name: c.env }))] } } : {};
    const local: PoolSpec = { ...noGateway, ...viaEnv, mode: 'warm' };
    store.createSync({ ...cm, metadata: { ...cm.metadata, namespace }, data: { ...(cm.data as object), 'pool.json': stableJson(local) } });
    poolNames.push(spec.name);
  }
  for (const cm of cms) {
    const c = component(cm);
    if (c === 'harness') store.createSync(cm);
    if (c === 'task' && selected.includes(cm.metadata.labels?.['paddock.dev/task'] ?? '')) store.createSync(cm);
  }
  const taskPools = new Set(store.list('ConfigMap').map((cm) => taskFromConfigMap(cm)?.spec?.pool).filter((p): p is string => Boolean(p)));
  return { store, namespace, tasks: selected, pools: poolNames.filter((p) => taskPools.has(p)), allPools: poolNames, notes };
}

/** Environment variable holding the push token in `paddock local` (the cluster mounts the pool's push Secret). */
export const LOCAL_PUSH_TOKEN_ENV = 'PADDOCK_PUSH_TOKEN';

/**
 * Locally the publish step runs in this process (no agent code runs here): the push
 * token comes from $PADDOCK_PUSH_TOKEN, through a 0600 file, like the mounted Secret.
 */
export function localDeliverer(env: NodeJS.ProcessEnv, out: string, log: (line: string) => void): Deliverer {
  return async (req) => {
    const token = env[LOCAL_PUSH_TOKEN_ENV];
    const base = { repository: req.delivery.repository, branch: req.delivery.branch, base: req.base };
    if (!token) return { ...base, state: 'failed', reason: `set ${LOCAL_PUSH_TOKEN_ENV} to the push token for ${req.delivery.credential.host}; paddock local reads it from there` };
    const dir = fs.mkdtempSync(path.join(out, 'publish-'));
    fs.chmodSync(dir, 0o700);
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, token, { mode: 0o600 });
    try {
      return await publish({ delivery: req.delivery, base: req.base, patch: req.patch, tokenFile, caEnv: gitCaEnv(env), workDir: dir, log: (l) => log(`publish ${req.run}: ${l}`) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
}

export async function runLocal(opts: LocalOptions = {}): Promise<number> {
  const log = opts.log ?? ((line: string) => process.stdout.write(`[paddock local] ${line}\n`));
  const dir = path.resolve(opts.dir ?? 'dist');
  const out = path.resolve(opts.out ?? path.join('.paddock', 'local'));
  const workers = opts.workers ?? 1;
  const loaded = loadPlatform(readManifests(dir), opts.tasks, opts.credentialDir && path.resolve(opts.credentialDir));
  const { store, namespace, tasks, notes } = loaded;
  // Serving: every pool gets workers, for the tasks `paddock tasks submit` brings.
  const pools = opts.serve ? loaded.allPools : loaded.pools;
  if (tasks.length === 0 && !opts.serve) {
    log(`no declared tasks in ${dir}; nothing to run`);
    return 0;
  }
  notes.forEach((n) => log(`note: ${n}`));
  fs.mkdirSync(out, { recursive: true });
  const unlock = lockOut(out);
  try {
    return await runLocked(opts, { log, dir, out, workers, store, namespace, tasks, pools });
  } finally {
    unlock();
  }
}

async function runLocked(
  opts: LocalOptions,
  ctx: { log: (line: string) => void; dir: string; out: string; workers: number; store: MemoryStore; namespace: string; tasks: string[]; pools: string[] },
): Promise<number> {
  const { log, out, workers, store, namespace, tasks, pools } = ctx;
  const env = opts.env ?? process.env;
  const controller = new Controller({
    store,
    namespace,
    leaseTtlMs: opts.leaseTtlMs ?? 15_000,
    settings: { backoffBaseMs: 1000, backoffMaxMs: 10_000 },
    log,
    // As in the cluster, this controller fetches the sources with the git credentials; the workers get none.
    fetchSources: (task, pool, harness) => fetchSourcesArchive(task, pool, harness, { env, log }),
    // The publish step runs in this process, apart from the workers (they never see the push credential).
    deliver: localDeliverer(env, out, log),
  });
  await controller.start();
  // One random token for the workers and the client, in a file only you can read.
  const tokenFile = path.join(out, 'token');
  const auth = new StaticTokenAuth(writeLocalToken(tokenFile));
  // As in the cluster: the task API and the workers' lease API on separate listeners (loopback only).
  const api = await startApis(controller, { port: 0, workerPort: 0, host: '127.0.0.1', auth });
  log(`controller: task API on ${api.tasks.url}, worker lease API on ${api.workers.url} (namespace ${namespace}); ${tasks.length} task(s): ${tasks.join(', ') || 'none'}; ${workers} worker(s) per pool: ${pools.join(', ')}`);
  if (opts.serve) log(`for paddock tasks: export PADDOCK_SERVER=${api.tasks.url} PADDOCK_TOKEN_FILE=${tokenFile}`);
  opts.onReady?.({ server: api.tasks.url, tokenFile });
  const children: ChildProcess[] = [];
  const bin = paddockBin();
  for (const pool of pools) {
    for (let i = 0; i < workers; i++) {
      const id = `${pool}-${i + 1}`;
      const child = spawn(process.execPath, [bin, 'worker', '--pool', pool, '--controller', api.workers.url, '--token-file', tokenFile, '--id', id, '--work-dir', path.join(out, 'work', id), '--keep', '--parent-lifeline'], {
        // The push token stays in this process: workers run agent code.
        env: Object.fromEntries(Object.entries(env).filter(([k]) => k !== LOCAL_PUSH_TOKEN_ENV)),
        // stdin: the lifeline (never written; it closes when this process dies).
        stdio: ['pipe', opts.workerStdio ?? 'inherit', opts.workerStdio ?? 'inherit'],
      });
      children.push(child);
      opts.onWorker?.(child, pool, i);
    }
  }
  const maxTaskTimeout = Math.max(...store.list('ConfigMap').map((cm) => (taskFromConfigMap(cm)?.spec?.timeoutSeconds ?? 0) * 1000), 0);
  const deadline = Date.now() + (opts.timeoutMs ?? maxTaskTimeout + 300_000);
  const finished = () =>
    tasks.every((t) => {
      const v = controller.task(t);
      const wantsDelivery = Boolean(taskFromConfigMap(store.list('ConfigMap').find((cm) => cm.metadata.name === `task-${t}`)!)?.spec?.delivery);
      const delivered = !wantsDelivery || (v?.run?.delivery !== undefined && v.run.delivery.state !== 'pending');
      return v?.run && TERMINAL_PHASES.has(v.run.phase as RunPhase) && v.run.phase !== 'Superseded' && delivered;
    }) || tasks.some((t) => controller.task(t)?.phase === 'Invalid');
  let timedOut = false;
  await new Promise<void>((resolve) => {
    const check = () => {
      if (opts.signal?.aborted || (!opts.serve && finished())) return resolve();
      if (!opts.serve && Date.now() > deadline) {
        timedOut = true;
        return resolve();
      }
      setTimeout(check, 200);
    };
    check();
  });
  if (opts.signal?.aborted) {
    log('stopping: SIGTERM to the workers (each stops its run and its agent)');
    await stopWorkers(children, opts.stopGraceMs ?? 15_000);
    await api.close();
    await controller.stop();
    fs.rmSync(tokenFile, { force: true });
    // Serving ends with a signal: that is the normal way to stop.
    return opts.serve ? 0 : 5;
  }
  let failed = 0;
  for (const t of tasks) {
    const view = controller.task(t);
    const r = controller.results(t);
    if (view?.run && r) {
      const runDir = path.join(out, view.run.name);
      fs.mkdirSync(runDir, { recursive: true });
      const cm = store.list('ConfigMap').find((o) => o.metadata.name === view.run!.configMap)!;
      const data = (cm.data ?? {}) as Record<string, string>;
      if (data['status.json']) fs.writeFileSync(path.join(runDir, 'status.json'), data['status.json']);
      fs.writeFileSync(path.join(runDir, 'results.jsonl'), data['results.jsonl'] ?? '');
      const { results, truncated } = resultOfRunConfigMap(cm);
      for (const c of view.run.changes ?? []) {
        const patch = patchOfRunConfigMap(cm, c.source);
        if (patch) fs.writeFileSync(path.join(runDir, `${c.source}.patch`), patch);
      }
      if (data['delivery.json']) fs.writeFileSync(path.join(runDir, 'delivery.json'), data['delivery.json']);
      const delivery = view.run.delivery;
      const delivered = delivery && 'repository' in delivery ? `; delivery ${delivery.state}${delivery.commit ? ` ${delivery.commit.slice(0, 12)} to ${delivery.branch}` : ''}${delivery.pullRequest ? ` (${delivery.pullRequest.url})` : ''}${delivery.reason ? `: ${delivery.reason}` : ''}` : '';
      log(`task ${t}: ${view.run.phase}${view.run.outcome ? ` (${view.run.outcome})` : ''} after ${view.run.attempt} attempt(s), ${results.length} result(s)${truncated ? ' (truncated)' : ''}${delivered}; results: ${runDir}`);
      if (view.run.phase !== 'Succeeded') failed++;
    } else {
      log(`task ${t}: ${view?.phase ?? 'unknown'}${view?.message ? ` - ${view.message}` : ''}`);
      failed++;
    }
  }
  log(`run directories of the workers (workspace, HOME, artifacts): ${path.join(out, 'work')}`);
  await stopWorkers(children, opts.stopGraceMs ?? 15_000);
  await api.close();
  await controller.stop();
  fs.rmSync(tokenFile, { force: true });
  if (timedOut) {
    log(`timed out before every task finished`);
    return 4;
  }
  return failed ? 1 : 0;
}

/** SIGTERM, wait, then SIGKILL what is left (a worker's agent dies with it: see runner/process-group.ts). */
async function stopWorkers(children: readonly ChildProcess[], graceMs: number): Promise<void> {
  const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r())));
  for (const c of children) c.kill('SIGTERM');
  const timer = setTimeout(() => children.forEach((c) => c.kill('SIGKILL')), graceMs);
  await Promise.all(children.map(exited));
  clearTimeout(timer);
}

/** Take `<out>/.lock` (our pid) or fail naming its live holder; a stale lock is taken over. Returns the release. */
export function lockOut(out: string): () => void {
  const file = path.join(out, '.lock');
  for (let i = 0; i < 3; i++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(file, 'utf8').trim() === String(process.pid)) fs.rmSync(file);
        } catch {
          // gone already
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0 && processExists(holder)) {
      throw new LocalError(`--out ${out} is in use by another paddock local (pid ${holder}, ${file}); wait for it to finish, stop it, or give another --out`);
    }
    fs.rmSync(file, { force: true }); // stale: its process is gone
  }
  throw new LocalError(`cannot take the lock ${file}; remove it if no paddock local is running`);
}

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc: kill(0) said it exists
  }
}
