/**
 * Reconcile cost per event as the number of tasks grows: 100, 1,000 and 10,000
 * declared tasks (queued in a warm pool with no workers), then events about single
 * tasks (an annotation change on a random task's ConfigMap), each awaited until the
 * controller's work queue is drained. Per task key, an event's cost must stay flat:
 * the ratio against the 100-task baseline of the same run shows it. For comparison,
 * the cost of one full pass (every task recomputed, what each event cost before the
 * work queue) at the same sizes.
 */
import { Controller } from '../controller/controller';
import { taskConfigMap } from '../controller/observe';
import { reconcile } from '../controller/reconcile';
import type { TaskSpec } from '../policy/specs';
import { platform } from './dispatch';

export interface ReconcileCase {
  readonly tasks: number;
  readonly events: number;
  readonly eventsPerSecond: number;
  readonly msPerEvent: number;
  /** One reconcile of the whole state (observe + decide), ms. */
  readonly fullPassMs: number;
}

const NS = 'paddock';

function spec(name: string): TaskSpec {
  return { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'bench', harness: 'noop', prompt: `prompt ${name}`, timeoutSeconds: 60 };
}

export async function reconcileCase(tasks: number, events = 2000): Promise<ReconcileCase> {
  const store = platform();
  for (let i = 0; i < tasks; i++) store.createSync(taskConfigMap(NS, spec(`t${i}`)));
  const controller = new Controller({ store, namespace: NS });
  await controller.start();
  await controller.whenIdle();
  // Warm up, then measure.
  const touch = async (i: number) => {
    const name = `task-t${(i * 7919) % tasks}`;
    await store.patchMetadata('ConfigMap', name, { annotations: { 'bench.paddock.dev/touch': String(i) } });
    await controller.whenIdle();
  };
  for (let i = 0; i < 200; i++) await touch(i);
  const t0 = performance.now();
  for (let i = 0; i < events; i++) await touch(i + 200);
  const elapsed = performance.now() - t0;
  const passes = tasks >= 10_000 ? 2 : 5;
  const p0 = performance.now();
  for (let i = 0; i < passes; i++) reconcile(controller.observed());
  const fullPassMs = (performance.now() - p0) / passes;
  await controller.stop();
  return { tasks, events, eventsPerSecond: (events / elapsed) * 1000, msPerEvent: elapsed / events, fullPassMs };
}

export async function benchReconcile(): Promise<ReconcileCase[]> {
  await reconcileCase(100, 500); // warm the JIT, so the baseline is not the first run
  const cases: ReconcileCase[] = [];
  for (const n of [100, 1_000, 10_000]) cases.push(await reconcileCase(n));
  return cases;
}

export function reportReconcile(cases: readonly ReconcileCase[]): string[] {
  const base = cases[0];
  return [
    'reconcile: events about one task each (work queue, per task key); ratio against the 100-task baseline of this run',
    '  tasks  events/s  ms/event  ms/event vs 100 tasks  full pass ms (every task, as before)  full pass vs 100 tasks',
    ...cases.map(
      (c) =>
        `  ${String(c.tasks).padStart(5)}  ${c.eventsPerSecond.toFixed(0).padStart(8)}  ${c.msPerEvent.toFixed(3).padStart(8)}  ${(c.msPerEvent / base.msPerEvent).toFixed(2).padStart(21)}  ${c.fullPassMs.toFixed(1).padStart(36)}  ${(c.fullPassMs / base.fullPassMs).toFixed(1).padStart(22)}`,
    ),
  ];
}

if (require.main === module) {
  benchReconcile()
    .then((r) => console.log(reportReconcile(r).join('\n')))
    .catch((err) => {
      console.error(err);
      process.exitCode = 1;
    });
}
