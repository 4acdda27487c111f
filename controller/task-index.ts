/**
 * What the controller needs to reconcile one task key without looking at every other
 * task: the task's runs, Jobs and Pods by key, Running runs per pool (concurrency), and
 * the job-mode runs waiting for a slot, per pool (queue order). Updated on every
 * informer event and write-through; each update costs the same whatever the number of
 * tasks.
 */
import { LABEL_TASK } from '../core/labels';
import type { KubeObject } from './store';
import type { ObservedRun } from './reconcile';

export type IndexedBucket = 'task' | 'run' | 'job' | 'pod';

/** Job-mode runs in the queue: the candidates for a free slot of their pool. */
interface Waiting {
  readonly task: string;
  readonly createdAt: number;
  readonly notBefore: number;
}

export class TaskIndex {
  /** @param priorityOf a task key's priority (queue order: higher first, then older first). */
  constructor(private readonly priorityOf: (task: string) => number = () => 500) {}

  /** Whether waiting run `a` goes before `b` in its pool's queue (reconcile's queueOrder). */
  private ahead(a: Waiting & { name: string }, b: Waiting & { name: string }): boolean {
    const pa = this.priorityOf(a.task);
    const pb = this.priorityOf(b.task);
    return pa !== pb ? pa > pb : a.createdAt !== b.createdAt ? a.createdAt < b.createdAt : a.name < b.name;
  }

  private readonly byTask: Record<Exclude<IndexedBucket, 'task'>, Map<string, Set<string>>> = { run: new Map(), job: new Map(), pod: new Map() };
  /** Object name -> task key, per bucket (to move or drop an object's entry). */
  private readonly keyOf: Record<IndexedBucket, Map<string, string>> = { task: new Map(), run: new Map(), job: new Map(), pod: new Map() };
  /** Task key -> its ConfigMap's name. */
  public readonly taskConfigMap = new Map<string, string>();
  private readonly runs = new Map<string, ObservedRun>();
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, Map<string, Waiting>>();
  /** Pools where a run stopped Running since the last take (a slot may be free). */
  private freed = new Set<string>();

  /** The task key an object belongs to; undefined when it names none (a full pass covers it). */
  public keyFor(bucket: IndexedBucket, obj: KubeObject): string | undefined {
    const label = obj.metadata.labels?.[LABEL_TASK];
    if (label) return label;
    // A Pod without the label: through its Job; a Job: through its run (same name).
    const job = bucket === 'pod' ? (obj.metadata.labels?.['batch.kubernetes.io/job-name'] ?? obj.metadata.labels?.['job-name']) : bucket === 'job' ? obj.metadata.name : undefined;
    return job ? (this.keyOf.job.get(job) ?? this.keyOf.run.get(`run-${job}`)) : undefined;
  }

  /** Record an object (or its deletion); `run` is the parsed record of a run ConfigMap. Returns its key. */
  public update(bucket: IndexedBucket, name: string, obj: KubeObject | undefined, run?: ObservedRun): string | undefined {
    const old = this.keyOf[bucket].get(name);
    const key = obj ? this.keyFor(bucket, obj) : old;
    if (bucket === 'task') {
      if (old !== undefined && this.taskConfigMap.get(old) === name) this.taskConfigMap.delete(old);
      if (obj && key) this.taskConfigMap.set(key, name);
    } else {
      if (old !== undefined) this.byTask[bucket].get(old)?.delete(name);
      if (obj && key) {
        let set = this.byTask[bucket].get(key);
        if (!set) this.byTask[bucket].set(key, (set = new Set()));
        set.add(name);
      }
    }
    if (obj && key) this.keyOf[bucket].set(name, key);
    else this.keyOf[bucket].delete(name);
    if (bucket === 'run') this.updateRun(name, obj ? run : undefined);
    return key ?? old;
  }

  private updateRun(cmName: string, run: ObservedRun | undefined): void {
    const before = this.runs.get(cmName);
    if (before?.phase === 'Running') {
      this.running.set(before.pool, (this.running.get(before.pool) ?? 1) - 1);
      if (run?.phase !== 'Running' || run.pool !== before.pool) this.freed.add(before.pool);
    }
    if (before) this.waiting.get(before.pool)?.delete(before.name);
    if (run) {
      this.runs.set(cmName, run);
      if (run.phase === 'Running') this.running.set(run.pool, (this.running.get(run.pool) ?? 0) + 1);
      if (run.phase === 'Queued' && run.mode === 'job') {
        let w = this.waiting.get(run.pool);
        if (!w) this.waiting.set(run.pool, (w = new Map()));
        w.set(run.name, { task: run.task, createdAt: run.createdAt, notBefore: run.notBefore ?? 0 });
      }
    } else this.runs.delete(cmName);
  }

  public names(bucket: Exclude<IndexedBucket, 'task'>, key: string): string[] {
    return [...(this.byTask[bucket].get(key) ?? [])];
  }

  public runningIn(pool: string): number {
    return this.running.get(pool) ?? 0;
  }

  /** Job-mode runs of other tasks in `pool` ahead in the queue (priority, then age) and past their backoff: they get a slot first. */
  public waitingAhead(pool: string, key: string, createdAt: number, now: number): number {
    const mine = { task: key, createdAt, notBefore: 0, name: '' };
    let n = 0;
    for (const [name, w] of this.waiting.get(pool)?.entries() ?? []) {
      if (w.task !== key && w.notBefore <= now && this.ahead({ ...w, name }, mine)) n++;
    }
    return n;
  }

  /**
   * Pools where a slot was freed since the last call, each with the keys of its oldest
   * waiting runs (as many as `free(pool)` says), to reconcile next.
   */
  public takeFreed(free: (pool: string) => number, now: number): string[] {
    const keys: string[] = [];
    for (const pool of this.freed) {
      const slots = free(pool);
      if (slots <= 0) continue;
      const eligible = [...(this.waiting.get(pool)?.entries() ?? [])].filter(([, w]) => w.notBefore <= now);
      eligible.sort(([a, x], [b, y]) => (this.ahead({ ...x, name: a }, { ...y, name: b }) ? -1 : this.ahead({ ...y, name: b }, { ...x, name: a }) ? 1 : 0));
      keys.push(...eligible.slice(0, slots).map(([, w]) => w.task));
    }
    this.freed = new Set();
    return keys;
  }

  public clear(): void {
    for (const m of Object.values(this.byTask)) m.clear();
    for (const m of Object.values(this.keyOf)) m.clear();
    this.taskConfigMap.clear();
    this.runs.clear();
    this.running.clear();
    this.waiting.clear();
    this.freed.clear();
  }
}
