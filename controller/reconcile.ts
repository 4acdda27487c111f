/**
 * The controller's decisions, as a pure function of what it observed:
 *
 *   reconcile(observed state, now) -> { actions, wakeAt }
 *
 * No I/O, no clock, no randomness: the controller (controller.ts) builds the
 * observed state from its informer caches (observe.ts), calls this, and carries
 * out the actions in order. It calls it per task key (that task's runs, Jobs, Pods
 * and leases, plus the pools' slots taken elsewhere), as Kubernetes controllers work
 * a queue of keys, so an event costs the same with 100 tasks or 10,000; a full
 * state gives the same decisions for all tasks at once. Everything the controller decides (new runs, Jobs,
 * retries with backoff, queueing at a pool's concurrency limit, superseded
 * runs, deleted tasks, adopted Jobs, expired warm leases) is decided here and
 * tested table-driven in test/controller/reconcile.test.ts.
 *
 * A *run* is one execution of one version of a task: `<task>-<specHash>`, the
 * same name as the Job `AgentTask` synthesizes, so a declared task's Job is
 * adopted by name and never run twice. Its record is the ConfigMap
 * `run-<task>-<specHash>`, owned by the task's ConfigMap.
 */
import type { Job } from 'kubernetes-types/batch/v1';
import { fillJobTemplate } from '../core/job-template';
import type { TaskSpec } from '../policy/specs';
import { EXIT_CODES, Outcome } from '../runner/status';
import type { AttemptResult } from '../core/protocol';
import { sessionConfigMapName, sessionStartProblem, type SessionState } from '../core/session';
import type { DeliveryStatus } from './publisher';

export type RunPhase = 'Queued' | 'Running' | 'Succeeded' | 'Failed' | 'Superseded';
export type PoolMode = 'job' | 'warm';
export const TERMINAL_PHASES: ReadonlySet<RunPhase> = new Set<RunPhase>(['Succeeded', 'Failed', 'Superseded']);

export interface ObservedTask {
  readonly name: string;
  /** task-<name> */
  readonly configMap: string;
  readonly uid?: string;
  /** Absent when task.json is missing or invalid (see problems). */
  readonly spec?: TaskSpec;
  readonly specHash?: string;
  readonly problems?: string[];
  /** ms since the epoch; orders the queue. */
  readonly createdAt: number;
  /** What the task ConfigMap shows now (label paddock.dev/phase, annotation paddock.dev/run). */
  readonly shownPhase?: string;
  readonly shownRun?: string;
  readonly shownMessage?: string;
}

export interface ObservedPool {
  readonly name: string;
  readonly mode: PoolMode;
  readonly concurrency: number;
  readonly capabilities: string[];
  readonly harnesses: string[];
  /** From job-template.yaml of the pool ConfigMap. */
  readonly jobTemplate?: Job;
}

export interface ObservedHarness {
  readonly name: string;
  readonly configMap: string;
  readonly image?: string;
}

export interface JobCondition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export interface ObservedJob {
  readonly name: string;
  readonly active: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly conditions: JobCondition[];
  /** deletionTimestamp is set. */
  readonly deleting: boolean;
}

export interface ObservedPod {
  readonly name: string;
  /** The Job it belongs to (label job-name / batch.kubernetes.io/job-name). */
  readonly job: string;
  readonly phase: string;
  /** status.reason, e.g. "Evicted". */
  readonly reason?: string;
  /** A DisruptionTarget condition is true (eviction, preemption, node drain). */
  readonly disrupted?: boolean;
  readonly waiting?: { readonly reason: string; readonly message?: string };
  readonly terminated?: { readonly exitCode: number; readonly reason?: string; readonly message?: string };
  readonly createdAt: number;
}

export interface ObservedRun {
  /** <task>-<specHash> (the Job's name in job mode). */
  readonly name: string;
  readonly task: string;
  readonly specHash: string;
  readonly pool: string;
  readonly mode: PoolMode;
  readonly phase: RunPhase;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Attempts that ended in an agent failure (for task.retries). */
  readonly agentFailures: number;
  /** Queued runs wait until then (retry backoff), ms since the epoch. */
  readonly notBefore?: number;
  readonly createdAt: number;
  /** The Job was declared (synthesized by AgentTask) and adopted, not created by the controller. */
  readonly adopted?: boolean;
}

/** A session's stored state, as far as starting its next task needs it (ConfigMap session-<name>). */
export type ObservedSession = Pick<SessionState, 'name' | 'pool' | 'broken'>;

export interface ObservedLease {
  readonly run: string;
  readonly id: string;
  readonly worker: string;
  readonly expiresAt: number;
}

export interface ReconcileSettings {
  /** Attempts after infrastructure failures (evicted, image pull, lost worker). @default 3 */
  readonly infraRetries: number;
  /** First retry delay; doubles per attempt. @default 10000 */
  readonly backoffBaseMs: number;
  /** @default 300000 */
  readonly backoffMaxMs: number;
}

export const DEFAULT_SETTINGS: ReconcileSettings = { infraRetries: 3, backoffBaseMs: 10_000, backoffMaxMs: 300_000 };

export interface ObservedState {
  readonly now: number;
  readonly tasks: readonly ObservedTask[];
  readonly pools: readonly ObservedPool[];
  readonly harnesses: readonly ObservedHarness[];
  readonly jobs: readonly ObservedJob[];
  readonly pods: readonly ObservedPod[];
  readonly runs: readonly ObservedRun[];
  readonly leases: readonly ObservedLease[];
  readonly settings?: Partial<ReconcileSettings>;
  /**
   * For a partial state (the controller reconciles one task key at a time): per pool,
   * the slots held outside `runs` (Running runs of other tasks, and their older queued
   * runs, which get a slot first).
   * @default - none: the state is complete
   */
  readonly slotsTakenElsewhere?: Readonly<Record<string, number>>;
  /**
   * The stored sessions of the tasks' sessions (at least those; a task whose session is
   * not here has none stored yet).
   * @default - none stored
   */
  readonly sessions?: readonly ObservedSession[];
  /**
   * For a partial state: the other tasks of the sessions of `tasks`, and their runs, for
   * the session lock only (never acted on).
   * @default - none: `tasks` and `runs` hold them
   */
  readonly sessionPeers?: { readonly tasks: readonly ObservedTask[]; readonly runs: readonly ObservedRun[] };
}

/** Fields of a run record that change. */
export interface RunPatch {
  readonly phase?: RunPhase;
  readonly attempt?: number;
  readonly agentFailures?: number;
  /** null clears it. */
  readonly notBefore?: number | null;
  readonly adopted?: boolean;
  readonly mode?: PoolMode;
  /** Why the run is where it is, in one sentence. */
  readonly message?: string;
  /** The runner's outcome of the last attempt. */
  readonly outcome?: string;
  /** The last attempt's report, stored in the run ConfigMap. */
  readonly result?: AttemptResult;
  /** The delivery of the run's change (delivery.json). */
  readonly delivery?: DeliveryStatus | { readonly state: 'pending' };
  readonly startedAt?: number;
  readonly finishedAt?: number;
}

export type Action =
  | { readonly type: 'createRun'; readonly run: ObservedRun; readonly message?: string }
  | { readonly type: 'updateRun'; readonly run: string; readonly patch: RunPatch }
  | { readonly type: 'createJob'; readonly run: string; readonly task: string; readonly job: Job }
  | { readonly type: 'deleteJob'; readonly name: string; readonly reason: string }
  | { readonly type: 'cancelLease'; readonly run: string; readonly id: string; readonly reason: string }
  | { readonly type: 'deleteRun'; readonly run: string; readonly reason: string }
  | { readonly type: 'setTaskStatus'; readonly task: string; readonly phase: string; readonly run?: string; readonly message?: string };

export interface ReconcileResult {
  readonly actions: Action[];
  /** When to reconcile again even if nothing changes (a backoff or a lease ends), ms since the epoch. */
  readonly wakeAt?: number;
}

export function runName(task: string, specHash: string): string {
  return `${task}-${specHash}`;
}

export function runConfigMapName(run: string): string {
  return `run-${run}`;
}

/** Pods in these waiting states will not start without outside help: an infrastructure failure. */
const STUCK_WAITING = new Set(['ImagePullBackOff', 'ErrImagePull', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError']);
/** Runner outcomes that say the infrastructure, not the agent, ended the attempt. */
const INFRA_OUTCOMES = new Set<string>(['terminated', 'internal_error']);
/** Runner outcomes that no retry can fix (the spec or the sources are wrong). */
const FINAL_OUTCOMES = new Set<string>(['invalid_spec', 'source_failed']);

/** What a finished or stuck attempt means. */
export type Verdict =
  | { readonly kind: 'running' }
  | { readonly kind: 'succeeded'; readonly result?: AttemptResult }
  | { readonly kind: 'agent_failed'; readonly outcome: string; readonly message: string; readonly result?: AttemptResult }
  | { readonly kind: 'final_failed'; readonly outcome: string; readonly message: string; readonly result?: AttemptResult }
  | { readonly kind: 'infra_failed'; readonly message: string; readonly result?: AttemptResult };

/** Classify a runner report (warm mode: what the worker sent; job mode: the termination message). */
export function verdictOfResult(result: AttemptResult): Verdict {
  const outcome = String(result.status.outcome ?? 'internal_error');
  const message = String(result.status.message ?? `the runner reported ${outcome}`);
  if (outcome === 'succeeded') return { kind: 'succeeded', result };
  if (INFRA_OUTCOMES.has(outcome)) return { kind: 'infra_failed', message: `${outcome}: ${message}`, result };
  if (FINAL_OUTCOMES.has(outcome)) return { kind: 'final_failed', outcome, message, result };
  return { kind: 'agent_failed', outcome, message, result };
}

const OUTCOME_BY_EXIT = new Map<number, Outcome>(Object.entries(EXIT_CODES).map(([k, v]) => [v, k as Outcome]));

/** Classify a Job from its status and its pods. */
export function verdictOfJob(job: ObservedJob, pods: readonly ObservedPod[], decodeMessage: (m: string) => AttemptResult | undefined): Verdict {
  const pod = [...pods].sort((a, b) => b.createdAt - a.createdAt)[0];
  const term = pod?.terminated;
  const decoded = term?.message ? decodeMessage(term.message) : undefined;
  // Which pod: its log's tail carries the run's patches.
  const result = decoded && pod ? { ...decoded, pod: pod.name } : decoded;
  const complete = job.succeeded > 0 || job.conditions.some((c) => c.type === 'Complete' && c.status === 'True');
  if (complete) return { kind: 'succeeded', result };
  if (pod && (pod.reason === 'Evicted' || pod.disrupted)) {
    return { kind: 'infra_failed', message: `pod ${pod.name} was ${pod.reason === 'Evicted' ? 'evicted' : 'disrupted (preempted, drained or evicted)'}`, result };
  }
  if (pod?.waiting && STUCK_WAITING.has(pod.waiting.reason)) {
    return { kind: 'infra_failed', message: `pod ${pod.name} cannot start: ${pod.waiting.reason}${pod.waiting.message ? ` (${pod.waiting.message})` : ''}` };
  }
  const failedCond = job.conditions.find((c) => c.type === 'Failed' && c.status === 'True');
  if (!failedCond && job.failed === 0) return { kind: 'running' };
  if (failedCond?.reason === 'DeadlineExceeded') {
    return { kind: 'agent_failed', outcome: 'timed_out', message: 'the Job ran past its deadline (task timeout + grace)', result };
  }
  if (result) return verdictOfResult(result);
  if (term) {
    const outcome = OUTCOME_BY_EXIT.get(term.exitCode);
    if (outcome) {
      return verdictOfResult({ status: { outcome, message: `the runner exited ${term.exitCode} (${outcome})${term.reason ? `, ${term.reason}` : ''}` }, resultsJsonl: '' });
    }
    return { kind: 'infra_failed', message: `the runner container ended with exit code ${term.exitCode}${term.reason ? ` (${term.reason})` : ''}` };
  }
  return { kind: 'infra_failed', message: `Job ${job.name} failed${failedCond?.reason ? ` (${failedCond.reason})` : ''} and left no pod to say why` };
}

/** The run's next state after an attempt ended (or was lost). */
export function afterAttempt(run: ObservedRun, task: TaskSpec | undefined, verdict: Verdict, now: number, settings: ReconcileSettings): RunPatch {
  const base = { finishedAt: now, ...('result' in verdict && verdict.result ? { result: verdict.result } : {}) };
  switch (verdict.kind) {
    case 'running':
      return {};
    case 'succeeded':
      return { ...base, phase: 'Succeeded', outcome: 'succeeded', message: `attempt ${run.attempt} succeeded`, notBefore: null };
    case 'final_failed':
      return { ...base, phase: 'Failed', outcome: verdict.outcome, message: verdict.message, notBefore: null };
    case 'agent_failed': {
      const allowed = task?.retries ?? 0;
      const failures = run.agentFailures + 1;
      if (failures <= allowed) {
        return {
          ...base,
          phase: 'Queued',
          attempt: run.attempt + 1,
          agentFailures: failures,
          outcome: verdict.outcome,
          notBefore: now + backoff(failures, settings),
          message: `attempt ${run.attempt}: ${verdict.message}; the task allows ${allowed} retr${allowed === 1 ? 'y' : 'ies'}, retrying`,
        };
      }
      return {
        ...base,
        phase: 'Failed',
        agentFailures: failures,
        outcome: verdict.outcome,
        message: `${verdict.message}${allowed > 0 ? ` (after ${allowed} retr${allowed === 1 ? 'y' : 'ies'})` : ''}`,
        notBefore: null,
      };
    }
    case 'infra_failed': {
      const infraAttempts = run.attempt - run.agentFailures;
      if (infraAttempts <= settings.infraRetries) {
        return {
          ...base,
          phase: 'Queued',
          attempt: run.attempt + 1,
          outcome: 'infrastructure',
          notBefore: now + backoff(infraAttempts, settings),
          message: `attempt ${run.attempt} failed for an infrastructure reason (${verdict.message}); retrying`,
        };
      }
      return {
        ...base,
        phase: 'Failed',
        outcome: 'infrastructure',
        message: `${verdict.message}; gave up after ${settings.infraRetries} infrastructure retr${settings.infraRetries === 1 ? 'y' : 'ies'}`,
        notBefore: null,
      };
    }
  }
}

export function backoff(n: number, settings: ReconcileSettings): number {
  return Math.min(settings.backoffBaseMs * 2 ** Math.max(0, n - 1), settings.backoffMaxMs);
}

function byAge<T extends { createdAt: number; name: string }>(a: T, b: T): number {
  return a.createdAt - b.createdAt || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

export const DEFAULT_PRIORITY = 500;

/**
 * A pool's queue order: higher task priority first, then older first. The priority is read
 * from the task's spec and the age is the run's, so a retried run keeps both its place in
 * the order and its priority.
 */
export function queueOrder(tasks: readonly ObservedTask[]): (a: ObservedRun, b: ObservedRun) => number {
  const priority = new Map(tasks.map((t) => [t.name, t.spec?.priority ?? DEFAULT_PRIORITY]));
  const of = (r: ObservedRun) => priority.get(r.task) ?? DEFAULT_PRIORITY;
  return (a, b) => of(b) - of(a) || byAge(a, b);
}

/**
 * Sessions run one task at a time, in submission order: the run that keeps `run` waiting
 * (a run of its session that is running, or queued from a task submitted earlier), if any.
 */
export function sessionBlocker(tasks: readonly ObservedTask[], runs: readonly ObservedRun[], phaseOf: (r: ObservedRun) => RunPhase, run: ObservedRun): ObservedRun | undefined {
  const byName = new Map(tasks.map((t) => [t.name, t]));
  const mine = byName.get(run.task);
  const session = mine?.spec?.session?.name;
  if (!mine || !session) return undefined;
  const before = (t: ObservedTask) => t.createdAt < mine.createdAt || (t.createdAt === mine.createdAt && t.name < mine.name);
  return runs.find((r) => {
    if (r.name === run.name || r.task === run.task) return false;
    const t = byName.get(r.task);
    if (t?.spec?.session?.name !== session || t.specHash === undefined || r.specHash !== t.specHash) return false;
    const phase = phaseOf(r);
    return phase === 'Running' || (phase === 'Queued' && before(t));
  });
}

/** The queued runs of a pool in the order they start (backoff included: a run in backoff keeps its place). */
export function poolQueue(state: Pick<ObservedState, 'tasks' | 'runs'>, pool: string): ObservedRun[] {
  const taskNames = new Set(state.tasks.map((t) => t.name));
  return state.runs.filter((r) => r.pool === pool && r.phase === 'Queued' && taskNames.has(r.task)).sort(queueOrder(state.tasks));
}

/**
 * The next queued run a warm worker of `pool` may lease: in queue order (queueOrder), past
 * its backoff, within the pool's concurrency. `leased`: runs leased since the state was
 * observed.
 */
export function pickWarmRun(state: ObservedState, pool: string, leased: ReadonlySet<string> = new Set()): ObservedRun | undefined {
  const p = state.pools.find((x) => x.name === pool);
  // Only a warm pool's workers lease, and only that pool's runs.
  if (!p || p.mode !== 'warm') return undefined;
  const running = state.runs.filter((r) => r.pool === pool && (r.phase === 'Running' || leased.has(r.name))).length;
  if (running >= p.concurrency) return undefined;
  const phaseOf = (r: ObservedRun): RunPhase => (leased.has(r.name) ? 'Running' : r.phase);
  return poolQueue(state, pool).find((r) => r.mode === 'warm' && !leased.has(r.name) && (r.notBefore ?? 0) <= state.now && !sessionBlocker(state.tasks, state.runs, phaseOf, r));
}

export function reconcile(state: ObservedState, decodeMessage: (m: string) => AttemptResult | undefined = () => undefined): ReconcileResult {
  const settings: ReconcileSettings = { ...DEFAULT_SETTINGS, ...state.settings };
  const now = state.now;
  const actions: Action[] = [];
  const wake: number[] = [];
  const tasks = new Map(state.tasks.map((t) => [t.name, t]));
  const pools = new Map(state.pools.map((p) => [p.name, p]));
  const harnesses = new Map(state.harnesses.map((h) => [h.name, h]));
  const jobs = new Map(state.jobs.map((j) => [j.name, j]));
  const leases = new Map(state.leases.map((l) => [l.run, l]));
  const podsOf = (job: string) => state.pods.filter((p) => p.job === job);
  const sessions = new Map((state.sessions ?? []).map((s) => [s.name, s]));
  const peers = state.sessionPeers ?? { tasks: [], runs: [] };
  /** Run phases after this pass, for concurrency counting and task status. */
  const phases = new Map(state.runs.map((r) => [r.name, r.phase]));
  const runs = new Map(state.runs.map((r) => [r.name, r]));
  const setPhase = (run: ObservedRun, patch: RunPatch): void => {
    if (Object.keys(patch).length === 0) return;
    actions.push({ type: 'updateRun', run: run.name, patch });
    if (patch.phase) phases.set(run.name, patch.phase);
    if (patch.phase === 'Queued' && patch.notBefore) wake.push(patch.notBefore);
  };

  // 1. Runs of deleted tasks: stop them and remove their records (the API server's
  //    garbage collector removes owned Jobs and ConfigMaps too; this covers the rest).
  for (const run of state.runs) {
    if (tasks.has(run.task)) continue;
    const lease = leases.get(run.name);
    if (lease) actions.push({ type: 'cancelLease', run: run.name, id: lease.id, reason: `task "${run.task}" was deleted` });
    actions.push({ type: 'deleteRun', run: run.name, reason: `task "${run.task}" was deleted` });
    phases.delete(run.name);
  }

  // 2. Per task: the run of its current spec; supersede older runs.
  const newRuns: ObservedRun[] = [];
  for (const task of [...state.tasks].sort(byAge)) {
    if (!task.spec || !task.specHash) continue;
    const current = runName(task.name, task.specHash);
    for (const run of state.runs) {
      if (run.task !== task.name || run.name === current || TERMINAL_PHASES.has(run.phase)) continue;
      setPhase(run, { phase: 'Superseded', message: `the task's spec changed; ${current} replaces this run`, finishedAt: now, notBefore: null });
      const job = jobs.get(run.name);
      if (run.mode === 'job' && job && !job.deleting && verdictOfJob(job, podsOf(job.name), decodeMessage).kind === 'running') {
        actions.push({ type: 'deleteJob', name: job.name, reason: `superseded by ${current}` });
      }
      const lease = leases.get(run.name);
      if (lease) actions.push({ type: 'cancelLease', run: run.name, id: lease.id, reason: `superseded by ${current}` });
    }
    if (runs.has(current)) continue;
    const pool = pools.get(task.spec.pool);
    const existing = jobs.get(current);
    if (!pool && !existing) continue; // reported in task status below
    const adopt = existing !== undefined && !existing.deleting;
    const run: ObservedRun = {
      name: current,
      task: task.name,
      specHash: task.specHash,
      pool: task.spec.pool,
      mode: adopt ? 'job' : pool!.mode,
      phase: adopt ? 'Running' : 'Queued',
      attempt: 1,
      agentFailures: 0,
      createdAt: now,
      ...(adopt ? { adopted: true } : {}),
    };
    actions.push({ type: 'createRun', run, message: adopt ? `adopted the existing Job ${current}` : `queued in pool "${run.pool}"` });
    newRuns.push(run);
    runs.set(run.name, run);
    phases.set(run.name, run.phase);
  }

  // 3. Running runs: look at their Job or lease.
  for (const run of [...state.runs, ...newRuns]) {
    if (!tasks.has(run.task) || phases.get(run.name) !== 'Running') continue;
    const task = tasks.get(run.task)!;
    if (run.mode === 'job') {
      const job = jobs.get(run.name);
      if (!job) {
        if (!newRuns.includes(run)) setPhase(run, afterAttempt(run, task.spec, { kind: 'infra_failed', message: `Job ${run.name} disappeared` }, now, settings));
        continue;
      }
      const verdict = verdictOfJob(job, podsOf(job.name), decodeMessage);
      const patch = afterAttempt(run, task.spec, verdict, now, settings);
      setPhase(run, patch);
      // A retry needs the name: the old Job goes first (the API server removes its pod).
      if (patch.phase === 'Queued' && !job.deleting) actions.push({ type: 'deleteJob', name: job.name, reason: `retrying ${run.name}: ${patch.message}` });
    } else {
      const lease = leases.get(run.name);
      if (lease && lease.expiresAt > now) {
        wake.push(lease.expiresAt);
        continue;
      }
      if (lease) actions.push({ type: 'cancelLease', run: run.name, id: lease.id, reason: 'not renewed in time' });
      const why = lease ? `worker ${lease.worker} did not renew its lease in time` : 'no worker holds a lease on it';
      setPhase(run, afterAttempt(run, task.spec, { kind: 'infra_failed', message: why }, now, settings));
    }
  }

  // 4. Queued runs in job pools: create Jobs in queue order, within each pool's concurrency.
  const running = (pool: string) => [...phases.entries()].filter(([name, phase]) => phase === 'Running' && runs.get(name)?.pool === pool).length;
  const queued = [...runs.values()].filter((r) => phases.get(r.name) === 'Queued' && tasks.has(r.task)).sort(queueOrder(state.tasks));
  const slots = new Map<string, number>();
  for (const run of queued) {
    const latest = actions.filter((a): a is Extract<Action, { type: 'updateRun' }> => a.type === 'updateRun' && a.run === run.name).pop();
    const notBefore = latest?.patch.notBefore !== undefined ? latest.patch.notBefore : run.notBefore;
    const task = tasks.get(run.task)!;
    const pool = pools.get(run.pool);
    if (!pool || run.mode !== 'job') continue;
    const job = jobs.get(run.name);
    if (job) {
      // Left from the attempt before (deleting): wait. Otherwise it is ours already (adopt).
      if (job.deleting || latest?.patch.phase === 'Queued') continue;
      if (verdictOfJob(job, podsOf(job.name), decodeMessage).kind === 'running') {
        setPhase(run, { phase: 'Running', message: `adopted the existing Job ${job.name}` });
      } else {
        actions.push({ type: 'deleteJob', name: job.name, reason: `a finished Job of an earlier attempt of ${run.name}` });
      }
      continue;
    }
    if (notBefore && notBefore > now) {
      wake.push(notBefore);
      continue;
    }
    if (!slots.has(pool.name)) slots.set(pool.name, pool.concurrency - running(pool.name) - (state.slotsTakenElsewhere?.[pool.name] ?? 0));
    if (slots.get(pool.name)! <= 0) continue;
    // A session's run that was Running when observed still holds the lock in this pass: its
    // state is saved as its end is recorded (after this pass), and the next Job must get it.
    const lockPhase = (r: ObservedRun): RunPhase => (r.phase === 'Running' ? 'Running' : (phases.get(r.name) ?? r.phase));
    if (sessionBlocker([...state.tasks, ...peers.tasks], [...runs.values(), ...peers.runs], lockPhase, run)) continue;
    const session = task.spec!.session ? sessions.get(task.spec!.session.name) : undefined;
    const problem = sessionStartProblem(task.spec!, session);
    if (problem) {
      setPhase(run, { phase: 'Failed', outcome: 'invalid_spec', message: problem, finishedAt: now });
      continue;
    }
    const built = buildJob(task, pool, harnesses, session);
    if ('problem' in built) {
      setPhase(run, { phase: 'Failed', outcome: 'invalid_spec', message: built.problem, finishedAt: now });
      continue;
    }
    slots.set(pool.name, slots.get(pool.name)! - 1);
    actions.push({ type: 'createJob', run: run.name, task: task.name, job: built.job });
    setPhase(run, { phase: 'Running', startedAt: now, notBefore: null, message: `attempt ${run.attempt}: Job ${run.name} created` });
  }
  // Warm runs past their backoff: workers may lease them now; nothing to do but wake up then.
  for (const run of queued) {
    if (run.mode === 'warm' && run.notBefore && run.notBefore > now) wake.push(run.notBefore);
  }

  // 5. Task status, as `kubectl get configmap -l paddock.dev/phase=...` shows it.
  for (const task of state.tasks) {
    let phase: string;
    let run: string | undefined;
    let message: string | undefined;
    if (!task.spec || !task.specHash) {
      phase = 'Invalid';
      message = (task.problems ?? ['task.json is missing']).join('; ');
    } else {
      run = runName(task.name, task.specHash);
      const p = phases.get(run);
      if (p) {
        phase = p;
      } else {
        phase = 'Pending';
        message = `pool "${task.spec.pool}" does not exist (pools: ${state.pools.map((x) => x.name).join(', ') || 'none'})`;
        run = undefined;
      }
    }
    if (task.shownPhase !== phase || task.shownRun !== run || (message !== undefined && task.shownMessage !== message)) {
      actions.push({ type: 'setTaskStatus', task: task.name, phase, ...(run ? { run } : {}), ...(message ? { message } : {}) });
    }
  }

  const future = wake.filter((t) => t > now);
  return { actions, ...(future.length ? { wakeAt: Math.min(...future) } : {}) };
}

/** Where a session task's Job mounts its session's stored state (ConfigMap session-<name>). */
export const SESSION_MOUNT = { volume: 'paddock-session', path: '/etc/paddock/session', file: 'state.json' } as const;

/**
 * Fill the pool's Job template for a task (the same function AgentTask uses at synth time).
 * A task continuing a stored session gets its state: the ConfigMap mounted into the runner's
 * container, named by `--session-state`.
 */
export function buildJob(task: ObservedTask, pool: ObservedPool, harnesses: ReadonlyMap<string, ObservedHarness>, session?: ObservedSession): { job: Job } | { problem: string } {
  const spec = task.spec!;
  if (!pool.jobTemplate) return { problem: `pool "${pool.name}" has no job-template.yaml in its ConfigMap` };
  if (!pool.harnesses.includes(spec.harness)) {
    return { problem: `pool "${pool.name}" does not run harness "${spec.harness}" (it runs ${pool.harnesses.join(', ')})` };
  }
  const harness = harnesses.get(spec.harness);
  if (!harness) return { problem: `harness "${spec.harness}" has no ConfigMap (harness-${spec.harness})` };
  if (!harness.image) return { problem: `harness "${spec.harness}" has no image to run a Job with` };
  const job = fillJobTemplate(
    pool.jobTemplate,
    {
      jobName: runName(task.name, task.specHash!),
      task: task.name,
      taskConfigMap: task.configMap,
      harness: harness.name,
      harnessConfigMap: harness.configMap,
      image: harness.image,
      specHash: task.specHash!,
    },
    spec.timeoutSeconds ?? 1800,
  );
  return { job: session ? withSessionState(job, session.name) : job };
}

function withSessionState(job: Job, session: string): Job {
  const podSpec = job.spec!.template.spec!;
  const runner = podSpec.containers.find((c) => c.name === 'runner') ?? podSpec.containers[0];
  // Optional: a session deleted before the pod starts leaves the file missing, and the runner says so.
  const volume = { name: SESSION_MOUNT.volume, configMap: { name: sessionConfigMapName(session), optional: true, items: [{ key: SESSION_MOUNT.file, path: SESSION_MOUNT.file }] } };
  const mount = { name: SESSION_MOUNT.volume, mountPath: SESSION_MOUNT.path, readOnly: true };
  const containers = podSpec.containers.map((c) =>
    c === runner ? { ...c, args: [...(c.args ?? []), '--session-state', `${SESSION_MOUNT.path}/${SESSION_MOUNT.file}`], volumeMounts: [...(c.volumeMounts ?? []), mount] } : c,
  );
  return { ...job, spec: { ...job.spec!, template: { ...job.spec!.template, spec: { ...podSpec, containers, volumes: [...(podSpec.volumes ?? []), volume] } } } };
}
