/**
 * Kubernetes Events (events.k8s.io/v1) for a run's lifecycle and its delivery, on the task's
 * ConfigMap, so `kubectl describe configmap task-NAME` and `kubectl get events`
 * tell the story. Writing an Event never holds up or fails a reconcile: a
 * refused write is logged and dropped.
 */
import { randomBytes } from 'crypto';
import type { LifecycleEvent } from './lifecycle';
import type { ClusterStore, KubeObject } from './store';

export const REPORTING_CONTROLLER = 'paddock.dev/controller';

const WARNING = new Set(['Failed', 'Retried', 'LeaseExpired', 'DeliveryFailed']);
const DELIVERY = new Set(['Delivered', 'PullRequestOpened', 'DeliverySkipped', 'DeliveryFailed']);

/** The Event object for one lifecycle step of a task (its ConfigMap `task-NAME`, uid when known). */
export function lifecycleEventObject(namespace: string, e: LifecycleEvent, task: { readonly uid?: string }, instance: string, now: Date): KubeObject {
  const configMap = `task-${e.task}`;
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${configMap}.${now.getTime().toString(16)}${randomBytes(3).toString('hex')}`, namespace },
    eventTime: now.toISOString().replace('Z', '000Z'),
    type: WARNING.has(e.reason) ? 'Warning' : 'Normal',
    reason: e.reason,
    action: e.reason === 'Queued' || e.reason === 'Retried' ? 'Queue' : e.reason === 'Started' ? 'Start' : e.reason === 'LeaseExpired' ? 'TakeBack' : DELIVERY.has(e.reason) ? 'Deliver' : 'Finish',
    note: `run ${e.run} (attempt ${e.attempt}, pool ${e.pool}): ${e.message}${e.outcome ? ` [outcome ${e.outcome}]` : ''}${e.delivery ? ` [delivery ${e.delivery}]` : ''}`.slice(0, 1024),
    regarding: { apiVersion: 'v1', kind: 'ConfigMap', namespace, name: configMap, ...(task.uid ? { uid: task.uid } : {}) },
    reportingController: REPORTING_CONTROLLER,
    reportingInstance: instance,
  };
}

export class EventRecorder {
  constructor(
    private readonly store: ClusterStore,
    private readonly namespace: string,
    private readonly instance: string,
    private readonly taskUid: (task: string) => string | undefined,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  public record(e: LifecycleEvent): void {
    const obj = lifecycleEventObject(this.namespace, e, { uid: this.taskUid(e.task) }, this.instance, new Date());
    this.store.create(obj).catch((err: Error) => this.log(`event ${e.reason} of task ${e.task} not recorded: ${err.message}`));
  }
}
