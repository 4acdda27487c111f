/**
 * Priority under load: one warm worker (runWorker, the real runner) leases from the
 * controller while tasks of mixed priority arrive through the task API over HTTP. The
 * stand-in agent logs each start; the order must be priority first, then age. The API
 * shows each waiting task's place in the queue.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ApiServers } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { runWorker } from '../../runner/worker';
import { makeTmpDir } from '../support/runner-fixtures';
import { stringify } from 'yaml';
import { taskConfigMap } from '../../controller/observe';
import { standardLabels } from '../../core/labels';
import { devNull, localToken, memoryPlatform, NS, slowHarness, startLocalControlPlane, taskSpec } from './support/platform';
import { until } from './support/controller-process';

jest.setTimeout(60_000);


describe('priority: one worker, a queue of mixed priorities', () => {
  let root: string;
  let apis: ApiServers | undefined;
  let controller: Controller | undefined;
  let token: ReturnType<typeof localToken>;
  let abort: AbortController;

  beforeEach(() => {
    root = makeTmpDir('paddock-priority-');
    abort = new AbortController();
  });
  afterEach(async () => {
    abort.abort();
    await apis?.close();
    await controller?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('higher priority runs first, equal priorities oldest first; the API shows queue positions', async () => {
    const agentLog = path.join(root, 'agent.log');
    fs.writeFileSync(agentLog, '');
    const store = memoryPlatform(slowHarness(agentLog, 400), { concurrency: 1 });
    ({ controller, apis, token } = await startLocalControlPlane({ store, namespace: 'paddock' }, root));
    const submit = async (name: string, priority?: number) => {
      const res = await fetch(`${apis!.tasks.url}/v1/tasks`, {
        method: 'POST',
        headers: token.headers,
        body: JSON.stringify(taskSpec(name, priority === undefined ? {} : { priority })),
      });
      expect(res.status).toBe(201);
    };
    const view = async (name: string): Promise<any> => (await fetch(`${apis!.tasks.url}/v1/tasks/${name}`, { headers: token.headers })).json();
    const starts = () => fs.readFileSync(agentLog, 'utf8').split('\n').filter((l) => l.startsWith('start ')).map((l) => l.split(' ')[1]);

    // The first task occupies the only worker; the rest queue up behind it.
    await submit('first', 0);
    const worker = runWorker({ controller: apis.workers.url, pool: 'warm', tokenFile: token.tokenFile, id: 'w1', workDir: path.join(root, 'w1'), waitMs: 200, maxRuns: 6, signal: abort.signal, log: () => undefined, stdout: devNull(), stderr: devNull() });
    await until('the first task to start', () => starts().length === 1, () => '', 20_000);
    await submit('low', 100);
    await submit('default-a');
    await submit('urgent', 1000);
    await submit('default-b', 500);
    await submit('high', 900);

    expect(await view('urgent')).toMatchObject({ phase: 'Queued', priority: 1000, queue: { position: 1, length: 5 } });
    expect(await view('default-b')).toMatchObject({ priority: 500, queue: { position: 4, length: 5 } });
    expect(await view('low')).toMatchObject({ priority: 100, queue: { position: 5, length: 5 } });
    expect((await view('first')).queue).toBeUndefined();

    expect(await worker).toBe(6);
    expect(starts()).toEqual(['prompt-first', 'prompt-urgent', 'prompt-high', 'prompt-default-a', 'prompt-default-b', 'prompt-low']);
    expect(await view('low')).toMatchObject({ phase: 'Succeeded' });
  });

  test('a priority out of range is refused at submit, naming the field', async () => {
    const store = memoryPlatform(slowHarness(path.join(root, 'log'), 10));
    ({ controller, apis, token } = await startLocalControlPlane({ store, namespace: 'paddock' }, root));
    const res = await fetch(`${apis.tasks.url}/v1/tasks`, { method: 'POST', headers: token.headers, body: JSON.stringify(taskSpec('t', { priority: 1001 })) });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toMatch(/priority.*1000/);
  });
});


describe('priority in a job pool, reconciled per task key (each freed slot goes to the highest priority waiting)', () => {
  test('concurrency 1: Jobs are created in priority order, then age', async () => {
    const store = memoryPlatform(slowHarness('/dev/null', 10), { mode: 'job', concurrency: 1 });
    const poolCm = (await store.get('ConfigMap', 'pool-warm'))!;
    const template = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: '${JOB_NAME}', labels: { ...standardLabels(NS, 'task'), 'paddock.dev/task': '${TASK_NAME}' } }, spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'runner', image: '${IMAGE}' }] } } } };
    await store.replace({ ...poolCm, data: { ...(poolCm.data as object), 'job-template.yaml': stringify(template) } });
    const c = new Controller({ store, namespace: NS });
    await c.start();
    const created: string[] = [];
    c.onActions = (a) => a.forEach((x) => x.type === 'createJob' && created.push(x.task));
    const tasks: Array<[string, number | undefined]> = [['first', 0], ['low', 100], ['mid-a', undefined], ['top', 1000], ['mid-b', 500]];
    tasks.forEach(([n, priority], i) => {
      const cm = taskConfigMap(NS, taskSpec(n, priority === undefined ? {} : { priority }));
      cm.metadata.annotations = { 'paddock.dev/queued-at': new Date(1_700_000_000_000 + i * 1000).toISOString() };
      store.createSync(cm);
    });
    const settle = () => new Promise((r) => setTimeout(r, 100));
    await settle();
    for (let i = 0; i < 10 && created.length < tasks.length; i++) {
      const job = store.list('Job').find((j) => !(j.status as any)?.succeeded);
      if (!job) break;
      await store.replace({ ...job, status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } });
      await settle();
    }
    // "first" found the pool empty; every freed slot then went to the highest priority waiting.
    expect(created).toEqual(['first', 'top', 'mid-a', 'mid-b', 'low']);
    await c.stop();
  });
});
