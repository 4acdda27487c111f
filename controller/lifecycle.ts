/**
 * A run's lifecycle as the outside sees it: queued, started, retried,
 * succeeded, failed, superseded (and a warm lease that expired), then its
 * delivery: pushed, a pull/merge request opened, skipped or failed. The
 * controller derives one from every write of a run ConfigMap (the phase
 * before and after); metrics.ts counts them, events.ts turns them into
 * Kubernetes Events on the task's ConfigMap, and the JSON log prints them.
 */
import { LABEL_PHASE, LABEL_POOL, LABEL_RUN, LABEL_TASK } from '../core/labels';
import { ANNOTATION } from './observe';
import type { KubeObject } from './store';

export type LifecycleReason =
  | 'Queued'
  | 'Started'
  | 'Retried'
  | 'Succeeded'
  | 'Failed'
  | 'Superseded'
  | 'LeaseExpired'
  // The delivery's end (annotation paddock.dev/delivery): conflict, denied and failed are DeliveryFailed.
  | 'Delivered'
  | 'PullRequestOpened'
  | 'DeliverySkipped'
  | 'DeliveryFailed';

export interface LifecycleEvent {
  readonly reason: LifecycleReason;
  readonly task: string;
  readonly run: string;
  readonly pool: string;
  readonly attempt: number;
  readonly message: string;
  /** The runner's outcome (Succeeded, Failed, Retried). */
  readonly outcome?: string;
  /** The delivery's state (the Delivery* and PullRequestOpened steps): pushed, skipped, conflict, denied, failed. */
  readonly delivery?: string;
  /** ms since the epoch */
  readonly queuedAt?: number;
  readonly startedAt?: number;
  readonly finishedAt?: number;
}

const ms = (v: string | undefined) => (v ? Date.parse(v) || undefined : undefined);

/** What a write of a run ConfigMap means, if anything: `before` undefined for a new run. */
export function lifecycleOf(before: KubeObject | undefined, after: KubeObject): LifecycleEvent | undefined {
  const l = after.metadata.labels ?? {};
  const a = after.metadata.annotations ?? {};
  const was = before?.metadata.labels?.[LABEL_PHASE];
  const now = l[LABEL_PHASE];
  if (now && was === now) return deliveryStepOf(before, after);
  if (!now) return undefined;
  const attempt = Number(a[ANNOTATION.attempt] ?? 1) || 1;
  const reason: LifecycleReason | undefined =
    now === 'Queued' ? (was === undefined ? 'Queued' : 'Retried') : now === 'Running' ? 'Started' : now === 'Succeeded' || now === 'Failed' || now === 'Superseded' ? now : undefined;
  if (!reason) return undefined;
  const ts = (k: string) => ms(a[k]);
  return {
    reason,
    task: l[LABEL_TASK] ?? '',
    run: l[LABEL_RUN] ?? '',
    pool: l[LABEL_POOL] ?? '',
    attempt,
    message: a[ANNOTATION.message] ?? `${now}`,
    ...(a[ANNOTATION.outcome] && reason !== 'Queued' && reason !== 'Started' ? { outcome: a[ANNOTATION.outcome] } : {}),
    ...(ts(ANNOTATION.queuedAt) ? { queuedAt: ts(ANNOTATION.queuedAt) } : {}),
    ...(ts(ANNOTATION.startedAt) ? { startedAt: ts(ANNOTATION.startedAt) } : {}),
    ...(ts(ANNOTATION.finishedAt) ? { finishedAt: ts(ANNOTATION.finishedAt) } : {}),
  };
}

/** A delivery that just ended (pending or absent before, a final state now), if any. */
function deliveryStepOf(before: KubeObject | undefined, after: KubeObject): LifecycleEvent | undefined {
  const state = after.metadata.annotations?.[ANNOTATION.delivery];
  if (!state || state === 'pending' || before?.metadata.annotations?.[ANNOTATION.delivery] === state) return undefined;
  const l = after.metadata.labels ?? {};
  let d: { reason?: string; repository?: string; branch?: string; commit?: string; pullRequest?: { url?: string } } = {};
  try {
    d = JSON.parse(((after.data ?? {}) as Record<string, string>)['delivery.json'] ?? '{}');
  } catch {
    // the state alone
  }
  const where = `${d.repository ?? '?'} branch ${d.branch ?? '?'}`;
  const reason: LifecycleReason = state === 'pushed' ? (d.pullRequest?.url ? 'PullRequestOpened' : 'Delivered') : state === 'skipped' ? 'DeliverySkipped' : 'DeliveryFailed';
  const message =
    state === 'pushed'
      ? `pushed ${d.commit ? d.commit.slice(0, 12) : 'the change'} to ${where}${d.pullRequest?.url ? `; opened ${d.pullRequest.url}` : ''}`
      : `delivery ${state} (${where})${d.reason ? `: ${d.reason}` : ''}`;
  return {
    reason,
    task: l[LABEL_TASK] ?? '',
    run: l[LABEL_RUN] ?? '',
    pool: l[LABEL_POOL] ?? '',
    attempt: Number(after.metadata.annotations?.[ANNOTATION.attempt] ?? 1) || 1,
    message,
    delivery: state,
  };
}
