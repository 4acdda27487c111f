/**
 * A run's lifecycle as the outside sees it: queued, started, retried,
 * succeeded, failed, superseded (and a warm lease that expired). The
 * controller derives one from every write of a run ConfigMap (the phase
 * before and after); metrics.ts counts them, events.ts turns them into
 * Kubernetes Events on the task's ConfigMap, and the JSON log prints them.
 */
import { LABEL_PHASE, LABEL_POOL, LABEL_RUN, LABEL_TASK } from '../core/labels';
import { ANNOTATION } from './observe';
import type { KubeObject } from './store';

export type LifecycleReason = 'Queued' | 'Started' | 'Retried' | 'Succeeded' | 'Failed' | 'Superseded' | 'LeaseExpired';

export interface LifecycleEvent {
  readonly reason: LifecycleReason;
  readonly task: string;
  readonly run: string;
  readonly pool: string;
  readonly attempt: number;
  readonly message: string;
  /** The runner's outcome (Succeeded, Failed, Retried). */
  readonly outcome?: string;
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
  if (!now || was === now) return undefined;
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
