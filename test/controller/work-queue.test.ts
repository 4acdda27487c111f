/**
 * The controller reconciles per task key (a work queue, as Kubernetes controllers do):
 * an event about one task looks at that task alone, yet a job pool's concurrency and
 * its oldest-first queue still hold across tasks. Real Controller and MemoryStore; Job
 * completion is written into the store the way the Job controller would report it.
 */
import { stringify } from 'yaml';
import { Controller } from '../../controller/controller';
import { taskConfigMap } from '../../controller/observe';
import { standardLabels } from '../../core/labels';
import { NS, memoryPlatform, slowHarness, taskSpec } from './support/platform';

const JOB_TEMPLATE = {
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: '${JOB_NAME}', labels: { ...standardLabels(NS, 'task'), 'paddock.dev/task': '${TASK_NAME}' } },
  spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'runner', image: '${IMAGE}' }] } } },
};

/** Let the work queue drain (events are handled on the next turns of the event loop); no full pass. */
const settle = () => new Promise((r) => setTimeout(r, 100));

describe('reconcile per task key', () => {
  test('an event about one task reconciles that task only: no full pass, a state of one task', async () => {
    const names = Array.from({ length: 1000 }, (_, i) => `t${i}`);
    const store = memoryPlatform(slowHarness('/dev/null', 10), { tasks: names.map((n) => taskSpec(n)) });
    const c = new Controller({ store, namespace: NS });
    await c.start();
    let full = 0;
    const sizes: number[] = [];
    const observed = c.observed.bind(c);
    const observedTask = c.observedTask.bind(c);
    c.observed = () => (full++, observed());
    c.observedTask = (key) => {
      const s = observedTask(key);
      sizes.push(s.tasks.length + s.runs.length + s.jobs.length + s.pods.length);
      return s;
    };
    const actions: string[] = [];
    c.onActions = (a) => actions.push(...a.map((x) => x.type));
    await c.submitTask(taskSpec('t7', { prompt: 'changed' }));
    for (let i = 0; i < 50 && c.task('t7')?.run?.name === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 100));
    expect(full).toBe(0);
    expect(sizes.length).toBeGreaterThan(0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3); // the task, its old run and its new run
    expect(actions).toEqual(expect.arrayContaining(['updateRun', 'createRun']));
    expect(c.runs().filter((r) => r.task === 't7').map((r) => r.phase).sort()).toEqual(['Queued', 'Superseded']);
    await c.stop();
  });

  test('a job pool of concurrency 2: never more than 2 Jobs, each freed slot goes to the oldest queued task', async () => {
    const store = memoryPlatform(slowHarness('/dev/null', 10), { mode: 'job', concurrency: 2, tasks: [] });
    const poolCm = (await store.get('ConfigMap', 'pool-warm'))!;
    await store.replace({ ...poolCm, data: { ...(poolCm.data as object), 'job-template.yaml': stringify(JOB_TEMPLATE) } });
    const names = ['a1', 'a2', 'a3', 'a4', 'a5'];
    const c = new Controller({ store, namespace: NS });
    await c.start();
    let full = 0;
    const observed = c.observed.bind(c);
    c.observed = () => (full++, observed());
    const created: string[] = [];
    c.onActions = (a) => a.forEach((x) => x.type === 'createJob' && created.push(x.task));
    // Queued one second apart (queued-at orders them), written to the store in another order.
    for (const n of ['a3', 'a5', 'a1', 'a4', 'a2']) {
      const i = names.indexOf(n);
      const cm = taskConfigMap(NS, taskSpec(n));
      cm.metadata.annotations = { 'paddock.dev/queued-at': new Date(1_700_000_000_000 + i * 1000).toISOString() };
      store.createSync(cm);
    }
    await settle();
    const active = () => store.list('Job').filter((j) => !(j.status as any)?.succeeded).length;
    expect(active()).toBe(2);
    while (created.length < names.length || active() > 0) {
      const job = store.list('Job').find((j) => !(j.status as any)?.succeeded);
      if (!job) break;
      await store.replace({ ...job, status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } });
      await settle();
      expect(active()).toBeLessThanOrEqual(2);
    }
    expect(created).toEqual(names);
    for (const n of names) expect(c.task(n)?.phase).toBe('Succeeded');
    expect(full).toBe(0); // all of it through per-key passes
    await c.stop();
  });
});
