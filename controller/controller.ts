/**
 * The controller: watches task, pool, harness and run ConfigMaps, Jobs and
 * Pods through a ClusterStore (informers: list once, then watch events; no
 * polling), calls the pure `reconcile` on every change (and at the next
 * backoff or lease deadline), and carries out its actions. It also holds the
 * warm pools' leases: workers long-poll for a task, renew the lease while the
 * runner runs, and report the result; a lease not renewed in time is taken
 * back by `reconcile` and the run is queued for another worker. A report on
 * a lease that is no longer current is refused, so no run completes twice.
 */
import { randomUUID } from 'crypto';
import { gunzipSync } from 'zlib';
import { policyFor } from '../core/agent-policy';
import { LABEL_PHASE, LABEL_RUN, LABEL_SESSION, standardLabels } from '../core/labels';
import { cliStateOf, sessionFromLog, sessionPatchesOf, SessionState, sessionConfigMapName, sessionSizeProblem, sessionStartProblem, unpackCliState } from '../core/session';
import { checkNoSecretsInConfigMap } from '../policy/rules';
import type { TaskSpec } from '../policy/specs';
import { afterAttempt, DEFAULT_PRIORITY, DEFAULT_SETTINGS, poolQueue, sessionBlocker, ObservedLease, ObservedPool, ObservedRun, ObservedSession, ObservedState, ObservedTask, pickWarmRun, reconcile, ReconcileSettings, runConfigMapName, runName, verdictOfResult, Action, type RunPatch } from './reconcile';
import {
  ANNOTATION,
  applyRunPatch,
  harnessFromConfigMap,
  harnessSpecOf,
  jobFromObject,
  newRunConfigMap,
  podFromObject,
  poolFromConfigMap,
  poolSpecOf,
  changesOfRunConfigMap,
  patchOfRunConfigMap,
  resultOfRunConfigMap,
  runFromConfigMap,
  selectors,
  taskConfigMap,
  taskFromConfigMap,
  taskStatusPatch,
} from './observe';
import { ClusterStore, Kind, KubeObject, StoreError, WatchEvent } from './store';
import { TaskIndex } from './task-index';
import { LifecycleEvent, lifecycleOf } from './lifecycle';
import { EventRecorder } from './events';
import { AttemptResult, decodeTerminationMessage, type GrantSources, type LeaseGrant, MAX_PATCH_GZIP_BYTES, patchesFromLog, type SourceChange } from '../core/protocol';
import type { HarnessSpec, PoolSpec } from '../policy/specs';
import { fetchSourcesArchive } from './sources-archive';
import { deliveryProblems, resolveDelivery, type ResolvedDelivery } from '../core/delivery';
import type { DeliveryStatus } from './publisher';

export interface ControllerOptions {
  readonly store: ClusterStore;
  readonly namespace: string;
  readonly settings?: Partial<ReconcileSettings>;
  /** A warm lease not renewed for this long goes back to the queue. @default 30000 */
  readonly leaseTtlMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
  /** Progress lines (one per decision). @default - none */
  readonly log?: (line: string) => void;
  /**
   * Fetches a warm task's sources for its lease (the controller holds the git
   * credentials; workers hold none). @default - fetchSourcesArchive with the process's environment
   */
  readonly fetchSources?: (task: TaskSpec, pool: PoolSpec, harness: HarnessSpec) => Promise<GrantSources>;
  /** Record each run's lifecycle as Kubernetes Events (events.k8s.io/v1) on its task's ConfigMap. @default true */
  readonly recordEvents?: boolean;
  /** This replica's name in the Events' reportingInstance. @default "paddock-controller" */
  readonly instance?: string;
  /**
   * Runs the publish step of a finished run whose task asks for delivery
   * (`paddock local`: in this process; the cluster: a publish Job).
   * @default - none: deliveries end `failed` with "no publish step"
   */
  readonly deliver?: Deliverer;
}

/** What the publish step gets: the delivery, the base commit and the patch. */
export interface DeliveryRequest {
  readonly run: string;
  readonly task: TaskSpec;
  readonly delivery: ResolvedDelivery;
  readonly base: string;
  readonly patch: Buffer;
}

export type Deliverer = (req: DeliveryRequest) => Promise<DeliveryStatus>;

/** Agent outcomes a task may deliver with `delivery.onAgentFailure`. */
const DELIVERABLE_FAILURES = new Set(['failed', 'timed_out']);

interface Lease extends ObservedLease {
  readonly pool: string;
  readonly grantedAt: number;
  /** The authenticated identity that holds it (the API lets only it renew or report). */
  readonly holder?: string;
}

interface Waiter {
  readonly pool: string;
  readonly worker: string;
  readonly holder?: string;
  readonly resolve: (grant: LeaseGrant | undefined) => void;
  timer?: NodeJS.Timeout;
}

/** A task's state as the API shows it. */
export interface TaskView {
  readonly name: string;
  readonly phase: string;
  readonly specHash?: string;
  readonly pool?: string;
  readonly message?: string;
  readonly run?: {
    readonly name: string;
    readonly phase: string;
    readonly attempt: number;
    readonly outcome?: string;
    readonly message?: string;
    readonly configMap: string;
    /** What the agent changed per source (the patch: GET /v1/tasks/NAME/patch). */
    readonly changes?: SourceChange[];
    readonly delivery?: DeliveryStatus | { readonly state: 'pending' };
  };
  /** The task's priority (500 unless the spec sets one). */
  readonly priority?: number;
  /** A waiting run's place in its pool's queue: 1 starts next. */
  readonly queue?: { readonly position: number; readonly length: number };
  /** The task's session, and the task whose run it waits for (one task of a session at a time). */
  readonly session?: { readonly name: string; readonly waitingFor?: string };
}

export class Controller {
  public readonly namespace: string;
  private readonly store: ClusterStore;
  private readonly settings: ReconcileSettings;
  public readonly leaseTtlMs: number;
  private readonly now: () => number;
  private readonly log: (line: string) => void;
  private readonly fetchSources: NonNullable<ControllerOptions['fetchSources']>;
  private readonly cache: Record<'task' | 'pool' | 'harness' | 'run' | 'session' | 'job' | 'pod', Map<string, KubeObject>> = {
    session: new Map(),
    task: new Map(),
    pool: new Map(),
    harness: new Map(),
    run: new Map(),
    job: new Map(),
    pod: new Map(),
  };
  private readonly leases = new Map<string, Lease>();
  private waiters: Waiter[] = [];
  private stops: Array<() => void> = [];
  private started = false;
  private busy = false;
  /** The work queue: task keys to reconcile, or everything (start, pools or harnesses changed, an error). */
  private readonly dirty = new Set<string>();
  private allDirty = false;
  private readonly index = new TaskIndex((key) => {
    const cm = this.cache.task.get(this.index.taskConfigMap.get(key) ?? '');
    return (cm ? this.memo(cm, taskFromConfigMap)?.spec?.priority : undefined) ?? DEFAULT_PRIORITY;
  });
  /** Per key: when to reconcile it again (a backoff or a lease ends). */
  private readonly wakes = new Map<string, number>();
  private wakeTimer?: NodeJS.Timeout;
  private wakeTimerAt = Infinity;
  private idle: Array<() => void> = [];
  /** Called after every reconcile pass with what changed (paddock local's progress, tests). */
  public onActions?: (actions: readonly Action[]) => void;
  private readonly lifecycleListeners = new Set<(e: LifecycleEvent) => void>();

  constructor(opts: ControllerOptions) {
    this.store = opts.store;
    this.namespace = opts.namespace;
    this.settings = { ...DEFAULT_SETTINGS, ...opts.settings };
    this.leaseTtlMs = opts.leaseTtlMs ?? 30_000;
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? (() => undefined);
    this.fetchSources = opts.fetchSources ?? ((task, pool, harness) => fetchSourcesArchive(task, pool, harness, { env: process.env, log: this.log }));
    this.deliver = opts.deliver;
    if (opts.recordEvents ?? true) {
      const recorder = new EventRecorder(this.store, this.namespace, opts.instance ?? 'paddock-controller', (task) => this.cache.task.get(`task-${task}`)?.metadata.uid, this.log);
      this.onLifecycle((e) => recorder.record(e));
    }
  }

  /** Be told of every run's lifecycle step (metrics, Events, logs). Returns the unsubscribe. */
  public onLifecycle(listener: (e: LifecycleEvent) => void): () => void {
    this.lifecycleListeners.add(listener);
    return () => this.lifecycleListeners.delete(listener);
  }

  private lifecycle(before: KubeObject | undefined, after: KubeObject): void {
    const e = lifecycleOf(before, after);
    if (!e) return;
    for (const l of this.lifecycleListeners) {
      try {
        l(e);
      } catch (err) {
        this.log(`lifecycle listener failed: ${(err as Error).message}`);
      }
    }
  }

  private readonly deliver?: Deliverer;
  /** Runs whose publish step runs in this process now. */
  private readonly delivering = new Set<string>();

  /** Start the publish step of every finished run that asks for one and has no delivery status yet. */
  /** Start the delivery of finished runs: of the task keys just reconciled, or (undefined) of every run. */
  private deliverFinished(keys?: readonly string[]): void {
    // Per key, not every run: an event's cost must not grow with the number of runs.
    const names = keys ? keys.flatMap((k) => this.index.names('run', k)) : [...this.cache.run.keys()];
    for (const name of names) {
      const cm = this.cache.run.get(name);
      const run = cm ? this.memo(cm, runFromConfigMap) : undefined;
      if (!cm || !run || (run.phase !== 'Succeeded' && run.phase !== 'Failed') || this.delivering.has(run.name)) continue;
      const state = cm.metadata.annotations?.[ANNOTATION.delivery];
      if (state && state !== 'pending') continue;
      const taskCm = this.cache.task.get(`task-${run.task}`);
      const task = taskCm ? this.memo(taskCm, taskFromConfigMap) : undefined;
      if (!task?.spec?.delivery || task.specHash !== run.specHash) continue;
      this.delivering.add(run.name);
      void this.deliverRun(run.name, task.spec, cm)
        .catch((err) => this.log(`run ${run.name}: delivery failed: ${(err as Error).stack ?? err}`))
        .finally(() => this.delivering.delete(run.name));
    }
  }

  private async deliverRun(runName: string, task: TaskSpec, cm: KubeObject): Promise<void> {
    const write = (delivery: DeliveryStatus | { state: 'pending' }) => this.updateRun(runName, (c) => applyRunPatch(c, { delivery }));
    const d = task.delivery!;
    const outcome = cm.metadata.annotations?.[ANNOTATION.outcome] ?? '';
    const target = { repository: d.repository ?? task.sources?.find((s) => s.name === (d.source ?? task.sources?.[0]?.name))?.url ?? '', branch: d.branch };
    const end = async (state: DeliveryStatus['state'], reason: string) => {
      await write({ ...target, state, reason, finishedAt: new Date(this.now()).toISOString() });
      this.log(`run ${runName}: delivery ${state}: ${reason}`);
    };
    if (outcome !== 'succeeded' && !(d.onAgentFailure && DELIVERABLE_FAILURES.has(outcome))) {
      return end('skipped', `the run ended ${outcome || 'without an outcome'}; the task delivers only a succeeded run${DELIVERABLE_FAILURES.has(outcome) ? ' (set delivery.onAgentFailure to deliver anyway)' : ''}`);
    }
    const poolCm = [...this.cache.pool.values()].find((p) => poolFromConfigMap(p)?.name === task.pool);
    let resolved: ResolvedDelivery;
    try {
      resolved = resolveDelivery(task, poolCm ? poolSpecOf(poolCm)?.push : undefined)!;
    } catch (err) {
      return end('failed', (err as Error).message);
    }
    const change = changesOfRunConfigMap(cm).changes?.find((c) => c.source === resolved.source);
    if (!change) return end('failed', `the run recorded no change of source "${resolved.source}" (see status.json changesError)`);
    if (change.patchTooLarge) return end('failed', `the patch of source "${resolved.source}" is over the stored size cap (patchTooLarge); nothing was pushed`);
    if (change.patchWithheld) return end('failed', `the change of source "${resolved.source}" holds a credential the agent was given (patchWithheld); nothing was pushed`);
    const patch = change.bytes > 0 ? patchOfRunConfigMap(cm, resolved.source) : Buffer.alloc(0);
    if (!patch) return end('failed', `the patch of source "${resolved.source}" is not stored with the run`);
    if (!this.deliver) return end('failed', 'this controller has no publish step configured');
    await write({ state: 'pending' });
    const status = await this.deliver({ run: runName, task, delivery: resolved, base: change.base, patch });
    await write(status);
    this.log(`run ${runName}: delivery ${status.state}${status.commit ? ` ${status.commit}` : ''}${status.pullRequest ? ` ${status.pullRequest.url}` : ''}${status.reason ? `: ${status.reason}` : ''}`);
  }

  /** Start the informers; resolves once every initial list is in and the first pass ran. */
  public async start(): Promise<void> {
    const sel = selectors(this.namespace);
    // A fresh view (a replica that becomes leader again must not keep objects deleted meanwhile).
    Object.values(this.cache).forEach((m) => m.clear());
    this.index.clear();
    this.sessionTasks.clear();
    this.sessionOfTask.clear();
    this.wakes.clear();
    this.leases.clear();
    const watch = async (kind: Kind, selector: string | undefined, bucket: keyof Controller['cache']) => {
      this.stops.push(await this.store.watch(kind, selector, (event, obj) => this.onEvent(bucket, event, obj)));
    };
    await watch('ConfigMap', sel.task, 'task');
    await watch('ConfigMap', sel.pool, 'pool');
    await watch('ConfigMap', sel.harness, 'harness');
    await watch('ConfigMap', sel.run, 'run');
    await watch('ConfigMap', sel.session, 'session');
    await watch('Job', sel.jobs, 'job');
    await watch('Pod', sel.jobs, 'pod');
    // Warm runs that were running before a restart keep their lease for one more TTL.
    for (const cm of this.cache.run.values()) {
      const run = runFromConfigMap(cm);
      const a = cm.metadata.annotations ?? {};
      if (run?.mode === 'warm' && run.phase === 'Running' && a['paddock.dev/lease-id']) {
        const holder = a['paddock.dev/lease-holder'];
        this.leases.set(run.name, { run: run.name, id: a['paddock.dev/lease-id'], worker: a['paddock.dev/worker'] ?? '?', expiresAt: this.now() + this.leaseTtlMs, pool: run.pool, grantedAt: this.now(), ...(holder ? { holder } : {}) });
      }
    }
    this.started = true;
    await this.reconcileNow();
  }

  public async stop(): Promise<void> {
    this.started = false;
    for (const s of this.stops) s();
    this.stops = [];
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    for (const w of this.waiters) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(undefined);
    }
    this.waiters = [];
    while (this.busy) await new Promise<void>((r) => this.idle.push(r));
  }

  private onEvent(bucket: keyof Controller['cache'], event: WatchEvent, obj: KubeObject): void {
    const key = event === 'delete' ? this.forget(bucket, obj.metadata.name) : this.put(bucket, obj);
    // Pools and harnesses concern every task (rare); anything else only its own task.
    if (this.started) this.schedule(bucket === 'pool' || bucket === 'harness' ? undefined : (key ?? null));
  }

  /** Into the cache and the index (informer events and our own write-through); returns the object's task key. */
  private put(bucket: keyof Controller['cache'], obj: KubeObject): string | undefined {
    this.cache[bucket].set(obj.metadata.name, obj);
    if (bucket === 'pool' || bucket === 'harness' || bucket === 'session') return undefined;
    const key = this.index.update(bucket, obj.metadata.name, obj, bucket === 'run' ? this.memo(obj, runFromConfigMap) : undefined);
    if (bucket === 'task' && key) this.indexSession(key, this.memo(obj, taskFromConfigMap));
    return key;
  }

  private forget(bucket: keyof Controller['cache'], name: string): string | undefined {
    this.cache[bucket].delete(name);
    if (bucket === 'pool' || bucket === 'harness' || bucket === 'session') return undefined;
    const key = this.index.update(bucket, name, undefined);
    if (bucket === 'task' && key) this.indexSession(key, undefined);
    return key;
  }

  /** Queue a task key (undefined: everything; null: an object of no known task, so everything too). */
  private schedule(key?: string | null): void {
    if (typeof key === 'string') this.dirty.add(key);
    else this.allDirty = true;
    if (this.busy) return;
    this.busy = true;
    setImmediate(() => void this.loop());
  }

  /** Resolves once the work queue is drained (tests, the benchmark). */
  public whenIdle(): Promise<void> {
    return this.busy ? new Promise<void>((r) => this.idle.push(r)) : Promise.resolve();
  }

  /** Reconcile every task (a full pass) until nothing changed meanwhile. */
  public async reconcileNow(): Promise<void> {
    this.allDirty = true;
    if (this.busy) {
      await new Promise<void>((r) => this.idle.push(r));
      return;
    }
    this.busy = true;
    await this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.started && (this.allDirty || this.dirty.size > 0)) {
        await this.pass();
      }
    } catch (err) {
      this.log(`reconcile failed: ${(err as Error).stack ?? err}`);
      // Try again shortly: a transient API error must not stop the loop.
      if (this.started) this.wakeAt(undefined, this.now() + 1000);
    } finally {
      this.busy = false;
      const idle = this.idle;
      this.idle = [];
      idle.forEach((r) => r());
    }
  }

  /** Parsed records per object version: a task's spec is validated and hashed once, not on every pass. */
  private readonly parsed = new WeakMap<KubeObject, unknown>();
  private memo<T>(obj: KubeObject, parse: (o: KubeObject) => T): T {
    if (this.parsed.has(obj)) return this.parsed.get(obj) as T;
    const value = parse(obj);
    this.parsed.set(obj, value);
    return value;
  }

  /** The pools, parsed (the API checks a task's or a worker's pool with it; cheap: no tasks involved). */
  public pools(): ObservedPool[] {
    return [...this.cache.pool.values()].map((o) => this.memo(o, poolFromConfigMap)).filter((p): p is ObservedPool => p !== undefined);
  }

  /**
   * The part of the state one task key needs: its task, runs, Jobs, Pods and leases, all
   * pools and harnesses (few), and per pool the slots taken by other tasks (from the index).
   */
  public observedTask(key: string): ObservedState {
    const defined = <T>(xs: Array<T | undefined>) => xs.filter((x): x is T => x !== undefined);
    const get = <T>(bucket: 'run' | 'job' | 'pod', parse: (o: KubeObject) => T) =>
      this.index.names(bucket, key).map((n) => this.cache[bucket].get(n)).filter((o): o is KubeObject => o !== undefined).map((o) => this.memo(o, parse));
    const cmName = this.index.taskConfigMap.get(key);
    const taskCm = cmName ? this.cache.task.get(cmName) : undefined;
    const runs = defined(get('run', runFromConfigMap));
    const now = this.now();
    const pools = this.pools();
    const slotsTakenElsewhere: Record<string, number> = {};
    for (const p of pools) {
      const mine = runs.filter((r) => r.pool === p.name);
      const running = mine.filter((r) => r.phase === 'Running').length;
      const queued = mine.filter((r) => r.phase === 'Queued' && r.mode === 'job');
      const ahead = queued.length ? this.index.waitingAhead(p.name, key, Math.min(...queued.map((r) => r.createdAt)), now) : 0;
      const taken = this.index.runningIn(p.name) - running + ahead;
      if (taken) slotsTakenElsewhere[p.name] = taken;
    }
    const task = taskCm ? this.memo(taskCm, taskFromConfigMap) : undefined;
    const session = task?.spec?.session?.name;
    const stored = session ? this.observedSession(session) : undefined;
    return {
      now,
      tasks: defined([task]),
      pools,
      harnesses: defined([...this.cache.harness.values()].map((o) => this.memo(o, harnessFromConfigMap))),
      jobs: get('job', jobFromObject),
      pods: defined(get('pod', podFromObject)),
      runs,
      leases: defined(runs.map((r) => this.leases.get(r.name))),
      settings: this.settings,
      slotsTakenElsewhere,
      ...(stored ? { sessions: [stored] } : {}),
      ...(session ? { sessionPeers: this.sessionPeers(session, key) } : {}),
    };
  }

  /** Task keys by session name (the session lock looks only at these), and each key's session. */
  private readonly sessionTasks = new Map<string, Set<string>>();
  private readonly sessionOfTask = new Map<string, string>();

  private indexSession(key: string, task: ObservedTask | undefined): void {
    const before = this.sessionOfTask.get(key);
    const session = task?.spec?.session?.name;
    if (before === session) return;
    if (before !== undefined) {
      const keys = this.sessionTasks.get(before)!;
      keys.delete(key);
      if (keys.size === 0) this.sessionTasks.delete(before);
      this.sessionOfTask.delete(key);
    }
    if (session === undefined) return;
    if (!this.sessionTasks.has(session)) this.sessionTasks.set(session, new Set());
    this.sessionTasks.get(session)!.add(key);
    this.sessionOfTask.set(key, session);
  }

  /** The other tasks of a session, and their runs: what holds its lock. */
  private sessionPeers(session: string, key: string): { tasks: ObservedTask[]; runs: ObservedRun[] } {
    const keys = [...(this.sessionTasks.get(session) ?? [])].filter((k) => k !== key);
    const tasks = keys.map((k) => this.cache.task.get(this.index.taskConfigMap.get(k) ?? '')).filter((o): o is KubeObject => o !== undefined).map((o) => this.memo(o, taskFromConfigMap)).filter((t): t is ObservedTask => t !== undefined);
    const runs = keys.flatMap((k) => this.index.names('run', k)).map((n) => this.cache.run.get(n)).filter((o): o is KubeObject => o !== undefined).map((o) => this.memo(o, runFromConfigMap)).filter((r): r is ObservedRun => r !== undefined);
    return { tasks, runs };
  }

  private observedSession(name: string): ObservedSession | undefined {
    const cm = this.cache.session.get(sessionConfigMapName(name));
    if (!cm) return undefined;
    return this.memo(cm, () => {
      const s = this.session(name);
      return s ? { name: s.name, ...(s.pool !== undefined ? { pool: s.pool } : {}), ...(s.broken ? { broken: s.broken } : {}) } : undefined;
    });
  }

  /** Every task and run, parsed (memoized): the pools' queues and the sessions' order. */
  private queueState(): Pick<ObservedState, 'tasks' | 'runs'> {
    const defined = <T>(xs: Array<T | undefined>) => xs.filter((x): x is T => x !== undefined);
    return {
      tasks: defined([...this.cache.task.values()].map((o) => this.memo(o, taskFromConfigMap))),
      runs: defined([...this.cache.run.values()].map((o) => this.memo(o, runFromConfigMap))),
    };
  }

  /** The state reconcile sees, from the informer caches. */
  public observed(): ObservedState {
    const defined = <T>(xs: Array<T | undefined>) => xs.filter((x): x is T => x !== undefined);
    const all = <T>(bucket: keyof Controller['cache'], parse: (o: KubeObject) => T) => [...this.cache[bucket].values()].map((o) => this.memo(o, parse));
    return {
      now: this.now(),
      tasks: defined(all('task', taskFromConfigMap)),
      pools: defined(all('pool', poolFromConfigMap)),
      harnesses: defined(all('harness', harnessFromConfigMap)),
      jobs: all('job', jobFromObject),
      pods: defined(all('pod', podFromObject)),
      runs: defined(all('run', runFromConfigMap)),
      leases: [...this.leases.values()],
      settings: this.settings,
      sessions: defined([...this.cache.session.values()].map((cm) => cm.metadata.labels?.[LABEL_SESSION]).map((name) => (name ? this.observedSession(name) : undefined))),
    };
  }

  /** One full pass (everything at once, as before the work queue), or each queued key on its own. */
  private async pass(): Promise<void> {
    const all: Action[] = [];
    /** The task keys this pass reconciled (undefined: every task). */
    let reconciled: readonly string[] | undefined;
    if (this.allDirty) {
      this.allDirty = false;
      this.dirty.clear();
      this.wakes.clear();
      const state = this.observed();
      const { actions, wakeAt } = reconcile(state, decodeTerminationMessage);
      for (const action of actions) await this.execute(action, state);
      all.push(...actions);
      if (wakeAt !== undefined) this.wakeAt(undefined, wakeAt);
      this.index.takeFreed(() => 0, this.now()); // the full pass saw every queue
      reconciled = undefined;
    } else {
      // Oldest task first, as a full pass orders its queue.
      const age = (key: string) => {
        const cm = this.cache.task.get(this.index.taskConfigMap.get(key) ?? '');
        return cm ? this.memo(cm, taskFromConfigMap)?.createdAt ?? 0 : 0;
      };
      const keys = [...this.dirty].map((k) => [age(k), k] as const).sort(([x, a], [y, b]) => x - y || (a < b ? -1 : a > b ? 1 : 0)).map(([, k]) => k);
      reconciled = keys;
      this.dirty.clear();
      for (const key of keys) {
        this.wakes.delete(key);
        const state = this.observedTask(key);
        const { actions, wakeAt } = reconcile(state, decodeTerminationMessage);
        for (const action of actions) await this.execute(action, state);
        all.push(...actions);
        if (wakeAt !== undefined) this.wakeAt(key, wakeAt);
      }
      // A slot freed in a job pool: the oldest runs waiting for one go next.
      const pools = new Map(this.pools().map((p) => [p.name, p]));
      for (const key of this.index.takeFreed((pool) => (pools.get(pool)?.concurrency ?? 0) - this.index.runningIn(pool), this.now())) this.dirty.add(key);
    }
    if (all.length) this.onActions?.(all);
    this.serveWaiters();
    this.deliverFinished(reconciled);
  }

  /** Reconcile `key` (undefined: everything) at `t`; one timer for the earliest. */
  private wakeAt(key: string | undefined, t: number): void {
    if (key === undefined) this.wakes.set('\0all', t);
    else this.wakes.set(key, Math.min(t, this.wakes.get(key) ?? Infinity));
    if (t >= this.wakeTimerAt) return;
    this.armWakeTimer(t);
  }

  private armWakeTimer(t: number): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimerAt = t;
    this.wakeTimer = setTimeout(() => {
      this.wakeTimerAt = Infinity;
      const now = this.now();
      let next = Infinity;
      for (const [key, at] of this.wakes) {
        if (at <= now + 5) {
          this.wakes.delete(key);
          this.schedule(key === '\0all' ? undefined : key);
        } else next = Math.min(next, at);
      }
      if (next < Infinity) this.armWakeTimer(next);
    }, Math.max(0, t - this.now()) + 5);
    this.wakeTimer.unref?.();
  }

  private async execute(action: Action, state: ObservedState): Promise<void> {
    const ns = this.namespace;
    switch (action.type) {
      case 'createRun': {
        const cmName = this.index.taskConfigMap.get(action.run.task);
        const taskCm = cmName ? this.cache.task.get(cmName) : undefined;
        const task = state.tasks.find((t) => t.name === action.run.task);
        const cm = newRunConfigMap(ns, action.run, { configMap: taskCm?.metadata.name ?? `task-${action.run.task}`, uid: taskCm?.metadata.uid, harness: task?.spec?.harness }, action.message);
        const created = await this.write(() => this.store.create(cm), 'run');
        if (created) this.lifecycle(undefined, created);
        this.log(`task ${action.run.task}: run ${action.run.name} ${action.run.phase === 'Running' ? 'adopted its existing Job' : `queued in pool ${action.run.pool} (${action.run.mode} mode)`}`);
        return;
      }
      case 'updateRun': {
        const logged = await this.fromPodLog(action.patch);
        // From the cache: a run adopted in this very pass is not in `state`.
        const runCm = this.cache.run.get(runConfigMapName(action.run));
        const run = runCm ? this.memo(runCm, runFromConfigMap) : undefined;
        const task = run ? state.tasks.find((t) => t.name === run.task) : undefined;
        // A Job's run: its session's next state is saved as a warm worker's is, before the run ends.
        const patch = run?.mode === 'job' && logged.patch.result?.pod ? await this.withSavedSession(task?.spec, run.pool, run.task, logged.patch, logged.sessionProblem) : logged.patch;
        const updated = await this.updateRun(action.run, (cm) => applyRunPatch(cm, patch));
        if (updated && patch.phase) this.log(`run ${action.run}: ${patch.phase}${patch.message ? ` - ${patch.message}` : ''}`);
        // The session's lock is free: its next task may go (it is another task's key).
        const session = task?.spec?.session?.name;
        if (updated && session && patch.phase && patch.phase !== 'Running') for (const k of this.sessionTasks.get(session) ?? []) if (k !== run!.task) this.dirty.add(k);
        return;
      }
      case 'createJob': {
        const taskCm = this.cache.task.get(`task-${action.task}`);
        const job: KubeObject = JSON.parse(JSON.stringify(action.job));
        job.metadata.namespace = ns;
        if (taskCm?.metadata.uid) {
          job.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'ConfigMap', name: taskCm.metadata.name, uid: taskCm.metadata.uid, blockOwnerDeletion: true }];
        }
        await this.write(() => this.store.create(job), 'job');
        return;
      }
      case 'deleteJob':
        await this.store.delete('Job', action.name);
        this.log(`Job ${action.name} deleted: ${action.reason}`);
        return;
      case 'cancelLease': {
        const lease = this.leases.get(action.run);
        if (lease?.id === action.id) this.leases.delete(action.run);
        const runCm = this.cache.run.get(runConfigMapName(action.run));
        if (lease && lease.expiresAt <= this.now() && runCm) {
          const run = runFromConfigMap(runCm);
          if (run) this.lifecycleListeners.forEach((l) => l({ reason: 'LeaseExpired', task: run.task, run: run.name, pool: run.pool, attempt: run.attempt, message: `worker ${lease.worker}: ${action.reason}` }));
        }
        this.log(`run ${action.run}: lease ${action.id.slice(0, 8)} taken back: ${action.reason}`);
        return;
      }
      case 'deleteRun':
        await this.store.delete('ConfigMap', runConfigMapName(action.run));
        this.forget('run', runConfigMapName(action.run));
        return;
      case 'setTaskStatus': {
        const p = taskStatusPatch(action.phase, action.run, action.message);
        try {
          const obj = await this.store.patchMetadata('ConfigMap', `task-${action.task}`, p);
          this.put('task', obj);
        } catch (err) {
          if (!(err instanceof StoreError && err.code === 404)) throw err;
        }
        return;
      }
    }
  }

  /**
   * Job mode: what a runner printed after its termination message, from the tail of the
   * pod's log: the patches, then the session's next state (or why it cannot be read).
   */
  private async fromPodLog(patch: RunPatch): Promise<{ patch: RunPatch; sessionProblem?: string }> {
    const result = patch.result;
    const patchLines = Number(result?.status.patchLogLines ?? 0) || 0;
    const sessionLines = Number(result?.status.sessionLogLines ?? 0) || 0;
    if (!result?.pod || result.patches || result.session || !(patchLines > 0 || sessionLines > 0)) return { patch };
    let log: string;
    try {
      if (!this.store.readLog) throw new Error('this store cannot read pod logs');
      log = await this.store.readLog(result.pod, 'runner', patchLines + sessionLines);
    } catch (err) {
      this.log(`pod ${result.pod}: cannot read its log: ${(err as Error).message}`);
      return { patch, ...(sessionLines > 0 ? { sessionProblem: `the session state could not be read from pod ${result.pod}'s log (${(err as Error).message})` } : {}) };
    }
    let next: AttemptResult = result;
    if (patchLines > 0) {
      const patches = patchesFromLog(log);
      const size = Object.values(patches).reduce((n, b64) => n + Math.floor((b64.length * 3) / 4), 0);
      if (size > MAX_PATCH_GZIP_BYTES) this.log(`pod ${result.pod}: cannot read the patches from its log: ${size} bytes gzipped, over the ${MAX_PATCH_GZIP_BYTES}-byte cap`);
      else next = { ...next, patches };
    }
    if (sessionLines > 0) {
      const read = sessionFromLog(log);
      if (read.problem) return { patch: { ...patch, result: next }, sessionProblem: `pod ${result.pod}: ${read.problem}` };
      next = { ...next, session: read.session };
    }
    return { patch: { ...patch, result: next } };
  }

  /** Create, tolerating "already exists" (a cache that lags behind our own write); write through to the cache. */
  private async write(create: () => Promise<KubeObject>, bucket: 'run' | 'job'): Promise<KubeObject | undefined> {
    try {
      const obj = await create();
      this.put(bucket, obj);
      return obj;
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 409)) throw err;
      return undefined;
    }
  }

  /** Read-modify-write of a run ConfigMap with optimistic concurrency. */
  private async updateRun(run: string, change: (cm: KubeObject) => KubeObject | undefined): Promise<KubeObject | undefined> {
    const name = runConfigMapName(run);
    for (let i = 0; i < 5; i++) {
      const cm = await this.store.get('ConfigMap', name);
      if (!cm) return undefined;
      const next = change(cm);
      if (!next) return undefined;
      try {
        const stored = await this.store.replace(next);
        this.put('run', stored);
        this.lifecycle(cm, stored);
        return stored;
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 409)) throw err;
      }
    }
    throw new Error(`run ${run}: could not update its ConfigMap (conflicts)`);
  }

  // ---- warm leases ----

  /** A worker of `pool` asks for a task; waits up to `waitMs` for one. */
  public lease(pool: string, worker: string, waitMs: number, holder?: string): Promise<LeaseGrant | undefined> {
    const grant = this.tryGrant(pool, worker, holder);
    if (grant) return grant.then((g) => g);
    if (waitMs <= 0 || !this.started) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const w: Waiter = { pool, worker, holder, resolve };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(undefined);
      }, waitMs);
      this.waiters.push(w);
    });
  }

  private serveWaiters(): void {
    for (const w of [...this.waiters]) {
      const grant = this.tryGrant(w.pool, w.worker, w.holder);
      if (!grant) continue;
      this.waiters = this.waiters.filter((x) => x !== w);
      if (w.timer) clearTimeout(w.timer);
      grant.then(w.resolve, () => w.resolve(undefined));
    }
  }

  /** Picks and reserves a run synchronously (no double grant), then records it. */
  private tryGrant(pool: string, worker: string, holder?: string): Promise<LeaseGrant | undefined> | undefined {
    const state = this.observed();
    const run = pickWarmRun(state, pool, new Set(this.leases.keys()));
    if (!run) return undefined;
    const task = state.tasks.find((t) => t.name === run.task)?.spec;
    const poolCm = [...this.cache.pool.values()].find((cm) => poolFromConfigMap(cm)?.name === pool);
    const poolSpec = poolCm ? poolSpecOf(poolCm) : undefined;
    const harnessCm = task ? [...this.cache.harness.values()].find((cm) => harnessSpecOf(cm)?.name === task.harness) : undefined;
    const harness = harnessCm ? harnessSpecOf(harnessCm) : undefined;
    const now = this.now();
    if (!task || !poolSpec || !harness) {
      const why = !task ? 'its task is gone' : !poolSpec ? `pool "${pool}" has no pool.json` : `harness "${task.harness}" has no ConfigMap`;
      void this.updateRun(run.name, (cm) => applyRunPatch(cm, { phase: 'Failed', outcome: 'invalid_spec', message: why, finishedAt: now })).then(() => this.schedule(run.task));
      return undefined;
    }
    const session = task.session ? this.session(task.session.name) : undefined;
    // The same check as before a Job (reconcile): the session exists or the task starts it, and it is not broken.
    const why = sessionStartProblem(task, session);
    if (why) {
      void this.updateRun(run.name, (cm) => applyRunPatch(cm, { phase: 'Failed', outcome: 'invalid_spec', message: why, finishedAt: now })).then(() => this.schedule(run.task));
      return undefined;
    }
    const lease: Lease = { run: run.name, id: randomUUID(), worker, expiresAt: now + this.leaseTtlMs, pool, grantedAt: now, ...(holder ? { holder } : {}) };
    this.leases.set(run.name, lease);
    return (async () => {
      await this.updateRun(run.name, (cm) => {
        const next = applyRunPatch(cm, { phase: 'Running', startedAt: now, notBefore: null, message: `attempt ${run.attempt}: leased by worker ${worker}` });
        // The holder too, so that after a controller restart only it may still renew or report.
        next.metadata.annotations = { ...next.metadata.annotations, 'paddock.dev/lease-id': lease.id, 'paddock.dev/worker': worker, ...(holder ? { 'paddock.dev/lease-holder': holder } : {}) };
        return next;
      });
      this.log(`run ${run.name}: Running - attempt ${run.attempt} leased by worker ${worker}`);
      this.schedule(run.task);
      // The fetch happens on the worker's behalf: keep its lease alive meanwhile.
      const keep = setInterval(() => this.renew(lease.id, worker), Math.max(100, Math.floor(this.leaseTtlMs / 3)));
      let sources: GrantSources;
      try {
        sources = await this.fetchSources(task, poolSpec, harness);
      } finally {
        clearInterval(keep);
      }
      if (!this.renew(lease.id, worker)) return undefined; // taken back meanwhile (task changed or deleted)
      if (sources.failure) this.log(`run ${run.name}: the sources could not be fetched: ${sources.failure.message}`);
      return { id: lease.id, run: run.name, attempt: run.attempt, task, harness, pool: poolSpec, ttlMs: this.leaseTtlMs, renewEveryMs: Math.max(100, Math.floor(this.leaseTtlMs / 3)), sources, ...(session ? { session } : {}) };
    })();
  }

  private leaseById(id: string): Lease | undefined {
    return [...this.leases.values()].find((l) => l.id === id);
  }

  /** Whose a current lease is (the API refuses renewals and reports from anyone else). */
  public leaseHolder(id: string): { readonly pool: string; readonly holder?: string } | undefined {
    const lease = this.leaseById(id);
    return lease ? { pool: lease.pool, ...(lease.holder ? { holder: lease.holder } : {}) } : undefined;
  }

  /** Extend a lease; false when it is no longer this worker's (the worker must stop the run). */
  public renew(id: string, worker: string): boolean {
    const lease = this.leaseById(id);
    if (!lease || lease.worker !== worker) return false;
    if (lease.expiresAt <= this.now()) return false; // expired: reconcile takes it back
    this.leases.set(lease.run, { ...lease, expiresAt: this.now() + this.leaseTtlMs });
    return true;
  }

  /** A worker's report. 'gone': the lease is not current (expired, superseded, task deleted); the report is dropped. */
  public async complete(id: string, worker: string, result: AttemptResult): Promise<'ok' | 'gone'> {
    const lease = this.leaseById(id);
    if (!lease || lease.worker !== worker) return 'gone';
    this.leases.delete(lease.run);
    const runCm = this.cache.run.get(runConfigMapName(lease.run));
    const run = runCm ? runFromConfigMap(runCm) : undefined;
    if (!run || run.phase !== 'Running') return 'gone';
    const taskCmName = this.index.taskConfigMap.get(run.task);
    const taskCm = taskCmName ? this.cache.task.get(taskCmName) : undefined;
    const task = taskCm ? this.memo(taskCm, taskFromConfigMap)?.spec : undefined;
    const patch = await this.withSavedSession(task, lease.pool, run.task, afterAttempt(run, task, verdictOfResult(result), this.now(), this.settings));
    await this.updateRun(lease.run, (cm) => {
      const next = applyRunPatch(cm, patch);
      const a = { ...next.metadata.annotations };
      delete a['paddock.dev/lease-id'];
      delete a['paddock.dev/lease-holder'];
      next.metadata.annotations = a;
      return next;
    });
    this.log(`run ${lease.run}: ${patch.phase} - ${patch.message ?? ''} (worker ${worker})`);
    this.schedule(run.task);
    return 'ok';
  }

  // ---- sessions ----

  /** A session's stored state, or undefined when it does not exist (or is unreadable). */
  public session(name: string): SessionState | undefined {
    const cm = this.cache.session.get(sessionConfigMapName(name));
    try {
      return cm ? (JSON.parse(String((cm.data as Record<string, string>)?.['state.json'])) as SessionState) : undefined;
    } catch {
      return undefined;
    }
  }

  public sessionNames(): string[] {
    return [...this.cache.session.values()].map((cm) => cm.metadata.labels?.[LABEL_SESSION]).filter((x): x is string => Boolean(x)).sort();
  }

  /** What the API shows of a session: its turns (without the patches' text), how its CLI resumes (the size of its conversation state) and its waiting tasks. */
  public sessionView(name: string): { name: string; pool?: string; broken?: { task: string; reason: string }; harness: string; resume: string; cli?: { bytes: number; files: number; stored: number }; turns: Array<{ task: string }>; patches: Record<string, { base: string; bytes: number }>; bytes: number; tasks: string[] } | undefined {
    const state = this.session(name);
    if (!state) return undefined;
    const tasks = this.queueState().tasks.filter((t) => t.spec?.session?.name === name).sort((a, b) => a.createdAt - b.createdAt).map((t) => t.name);
    return {
      name,
      ...(state.pool ? { pool: state.pool } : {}),
      ...(state.broken ? { broken: state.broken } : {}),
      harness: state.harness,
      resume: state.resume,
      ...(state.cli?.state ? { cli: { bytes: state.cli.bytes, files: state.cli.files, stored: state.cli.state.length } } : {}),
      turns: state.turns.map((t) => ({ task: t.task })),
      patches: Object.fromEntries(Object.entries(state.patches).map(([k, p]) => [k, { base: p.base, bytes: p.bytes }])),
      bytes: Buffer.byteLength(JSON.stringify(state)),
      tasks,
    };
  }

  public async deleteSession(name: string): Promise<boolean> {
    if (!this.cache.session.has(sessionConfigMapName(name))) return false;
    await this.store.delete('ConfigMap', sessionConfigMapName(name));
    this.cache.session.delete(sessionConfigMapName(name));
    return true;
  }

  /**
   * A session task's attempt ended: its session's next state goes first (the session's next
   * task waits for this run to end). Only a run's last attempt saves it: a retry starts from
   * the state its first attempt had. A report without a session state (the agent never ran)
   * saves nothing; one whose state could not be carried (`sessionProblem`, a Job's log) marks
   * the session broken.
   */
  private async withSavedSession(task: TaskSpec | undefined, pool: string, taskName: string, patch: RunPatch, sessionProblem?: string): Promise<RunPatch> {
    const result = patch.result;
    if (!task?.session || !result || !patch.phase || patch.phase === 'Queued' || !(result.session || sessionProblem)) return patch;
    const unsaved = await this.saveSession(task.session.name, pool, taskName, result, sessionProblem);
    return unsaved ? { ...patch, message: `${patch.message ?? ''}; session state not saved: ${unsaved}` } : patch;
  }

  /** Store a session's next state; returns why it was not stored (over the size cap, or it holds a secret). */
  private async saveSession(name: string, pool: string, task: string, result: AttemptResult, reportProblem?: string): Promise<string | undefined> {
    const reported = result.session ?? ({} as Partial<SessionState>);
    // The workspace carried over is the run's recorded change (the report's patches, never a withheld one).
    const carried = sessionPatchesOf(result.status.changes as SourceChange[] | undefined, result.patches, typeof result.status.changesError === 'string' ? result.status.changesError : undefined);
    // The turns and the CLI's conversation state are taken from the runner's; the pool is the lease's (who may see the session).
    const cli = cliStateOf(reported.cli);
    const state: SessionState = {
      name,
      pool,
      harness: String(reported.harness ?? ''),
      turns: Array.isArray(reported.turns) ? reported.turns : [],
      patches: carried.patches,
      ...(cli?.state ? { cli } : {}),
      resume: cli?.state ? 'native' : 'transcript',
    };
    const configMap = (s: SessionState): KubeObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: sessionConfigMapName(name), namespace: this.namespace, labels: standardLabels(this.namespace, 'session', { [LABEL_SESSION]: name }) },
      data: { 'state.json': JSON.stringify(s) },
    });
    // Scanned as the synth-time ConfigMap rule scans, the patches and the CLI's files unpacked: a credential in a transcript, a patch or the CLI's conversation is never stored.
    const unpacked: Record<string, string> = {};
    const unreadable: string[] = cli?.withheld ? [`the CLI's conversation state was not kept: ${cli.withheld}`] : [];
    try {
      (cli?.state ? unpackCliState(cli.state) : []).forEach((f, i) => (unpacked[`cli-${i}`] = f.content.toString('utf8')));
    } catch (err) {
      unreadable.push((err as Error).message);
    }
    for (const [source, p] of Object.entries(state.patches)) {
      try {
        unpacked[`patch-${source}`] = gunzipSync(Buffer.from(p.patch, 'base64')).toString('utf8');
      } catch {
        unreadable.push(`the change of source "${source}" is not a gzipped, base64-encoded patch`);
      }
    }
    const scanned: KubeObject = { ...configMap({ ...state, patches: {} }), data: { 'state.json': JSON.stringify({ ...state, patches: {}, cli: undefined }), ...unpacked } };
    const problem = reportProblem ?? carried.problem ?? (unreadable.join('; ') || undefined) ?? sessionSizeProblem(state) ?? (checkNoSecretsInConfigMap(scanned, []).join('; ') || undefined);
    // Not saved: the session is marked broken (its last good state kept), so that its next task
    // fails saying so rather than silently continuing from a state that misses this turn.
    const next: SessionState = problem ? { ...(this.session(name) ?? { name, harness: state.harness, turns: [], patches: {}, resume: 'transcript' }), pool, broken: { task, reason: problem } } : state;
    const cm = configMap(next);
    const existing = await this.store.get('ConfigMap', cm.metadata.name);
    const stored = existing ? await this.store.replace({ ...cm, metadata: { ...cm.metadata, resourceVersion: existing.metadata.resourceVersion } }) : await this.store.create(cm);
    this.cache.session.set(stored.metadata.name, stored);
    return problem;
  }

  // ---- the API's view ----

  /**
   * Why the task's agent policy (over its pool's and harness's) cannot be enforced by the
   * harness's CLI; empty when it can (or when the harness is not known yet: the runner checks again).
   */
  public policyProblems(spec: TaskSpec): string[] {
    const harnessCm = [...this.cache.harness.values()].find((cm) => harnessSpecOf(cm)?.name === spec.harness);
    const harness = harnessCm ? harnessSpecOf(harnessCm) : undefined;
    if (!harness) return [];
    const poolCm = [...this.cache.pool.values()].find((cm) => poolFromConfigMap(cm)?.name === spec.pool);
    return policyFor(harness, poolCm ? poolSpecOf(poolCm) : undefined, spec).problems;
  }

  /** Create or update a task ConfigMap (the spec was validated by the caller). */
  public async submitTask(spec: TaskSpec): Promise<{ created: boolean; specHash: string; run: string }> {
    const cm = taskConfigMap(this.namespace, spec);
    const specHash = cm.metadata.labels!['paddock.dev/spec-hash'];
    const existing = await this.store.get('ConfigMap', cm.metadata.name);
    if (existing) {
      const next = { ...existing, metadata: { ...existing.metadata, labels: { ...existing.metadata.labels, ...cm.metadata.labels } }, data: cm.data };
      const stored = await this.store.replace(next);
      this.put('task', stored);
    } else {
      const stored = await this.store.create(cm);
      this.put('task', stored);
    }
    this.schedule(spec.name);
    return { created: !existing, specHash, run: runName(spec.name, specHash) };
  }

  /** Cancel: remove the task's ConfigMap; its runs and Jobs go with it (owner references), a warm run's lease is taken back. */
  public async cancelTask(name: string): Promise<{ name: string; cancelled: true; phase?: string; run?: string }> {
    const view = this.task(name);
    await this.store.delete('ConfigMap', `task-${name}`);
    this.forget('task', `task-${name}`);
    this.log(`task ${name}: cancelled${view?.run ? ` (run ${view.run.name} was ${view.run.phase})` : ''}`);
    this.schedule(name);
    return { name, cancelled: true, ...(view?.run ? { phase: view.run.phase, run: view.run.name } : {}) };
  }

  public task(name: string): TaskView | undefined {
    const cm = this.cache.task.get(`task-${name}`);
    if (!cm) return undefined;
    const t = taskFromConfigMap(cm);
    const shownRun = cm.metadata.annotations?.[ANNOTATION.run];
    const current = t?.specHash ? runName(name, t.specHash) : shownRun;
    const runCm = current ? this.cache.run.get(runConfigMapName(current)) : undefined;
    const run = runCm ? runFromConfigMap(runCm) : undefined;
    const ra = runCm?.metadata.annotations ?? {};
    // Tasks and runs only (no reconcile pass): what the queue position and the session lock read.
    const observed = run?.phase === 'Queued' ? this.queueState() : undefined;
    const queue = observed && run ? poolQueue(observed, run.pool) : [];
    const blocker = observed && run && t?.spec?.session ? sessionBlocker(observed.tasks, observed.runs, (r) => (this.leases.has(r.name) ? 'Running' : r.phase), run) : undefined;
    const position = queue.findIndex((r) => r.name === run?.name) + 1;
    return {
      name,
      phase: run?.phase ?? cm.metadata.labels?.[LABEL_PHASE] ?? 'Pending',
      ...(t?.specHash ? { specHash: t.specHash } : {}),
      ...(t?.spec ? { pool: t.spec.pool } : {}),
      ...(t?.problems ? { message: t.problems.join('; ') } : cm.metadata.annotations?.[ANNOTATION.message] ? { message: cm.metadata.annotations[ANNOTATION.message] } : {}),
      ...(run && runCm
        ? {
            run: {
              name: run.name,
              phase: run.phase,
              attempt: run.attempt,
              ...(ra[ANNOTATION.outcome] ? { outcome: ra[ANNOTATION.outcome] } : {}),
              ...(ra[ANNOTATION.message] ? { message: ra[ANNOTATION.message] } : {}),
              configMap: runCm.metadata.name,
              ...changesOfRunConfigMap(runCm),
            },
          }
        : {}),
      ...(t?.spec ? { priority: t.spec.priority ?? DEFAULT_PRIORITY } : {}),
      ...(position > 0 ? { queue: { position, length: queue.length } } : {}),
      ...(t?.spec?.session ? { session: { name: t.spec.session.name, ...(blocker ? { waitingFor: blocker.task } : {}) } } : {}),
    };
  }

  public results(name: string): { run: string; phase: string; status?: unknown; results: unknown[]; truncated: boolean } | undefined {
    const view = this.task(name);
    if (!view?.run) return undefined;
    const cm = this.cache.run.get(view.run.configMap);
    if (!cm) return undefined;
    return { run: view.run.name, phase: view.run.phase, ...resultOfRunConfigMap(cm), ...changesOfRunConfigMap(cm) };
  }

  /** The current run's patch of a source (the only one by default). */
  public patch(name: string, source?: string): { run: string; source: string; patch?: Buffer; change?: SourceChange } | undefined {
    const view = this.task(name);
    const cm = view?.run ? this.cache.run.get(view.run.configMap) : undefined;
    if (!view?.run || !cm) return undefined;
    const changes = view.run.changes ?? [];
    const change = source === undefined ? (changes.length === 1 ? changes[0] : undefined) : changes.find((c) => c.source === source);
    const which = change?.source ?? source ?? '';
    return { run: view.run.name, source: which, ...(change ? { change } : {}), ...(change ? { patch: change.bytes === 0 ? Buffer.alloc(0) : patchOfRunConfigMap(cm, which) } : {}) };
  }

  /** Problems of a task's delivery against its pool's push credentials (for the task API). */
  public deliveryProblems(spec: TaskSpec): string[] {
    const poolCm = [...this.cache.pool.values()].find((p) => poolFromConfigMap(p)?.name === spec.pool);
    return deliveryProblems(spec, poolCm ? poolSpecOf(poolCm)?.push : undefined);
  }

  public taskNames(): string[] {
    return [...this.cache.task.values()].map((cm) => cm.metadata.labels?.['paddock.dev/task']).filter((x): x is string => Boolean(x));
  }

  /** Runs by phase (paddock local's summary). */
  public runs(): Array<{ name: string; task: string; phase: string; configMap: string }> {
    return [...this.cache.run.values()].map((cm) => ({ name: cm.metadata.labels?.[LABEL_RUN] ?? '', task: cm.metadata.labels?.['paddock.dev/task'] ?? '', phase: cm.metadata.labels?.[LABEL_PHASE] ?? '', configMap: cm.metadata.name }));
  }

  public get isStarted(): boolean {
    return this.started;
  }
}
