/**
 * Metrics and Events as runs go through their phases: the controller in-process
 * (in-memory store, a clock the test moves), the lease API on loopback, the test as
 * the warm worker. Queued, started, succeeded, failed, retried, superseded and a lease
 * that expired each show up as an Event on the task's ConfigMap and in /metrics.
 */
import * as fs from 'fs';
import * as path from 'path';
import { ApiServer, startApi } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { startMetrics } from '../../controller/metrics';
import { lifecycleOf } from '../../controller/lifecycle';
import { lifecycleEventObject } from '../../controller/events';
import { jsonLogger } from '../../core/log';
import { makeTmpDir } from '../support/runner-fixtures';
import { localToken, memoryPlatform, slowHarness, taskSpec } from './support/platform';

describe('lifecycle: metrics and Events through every phase', () => {
  let root: string;
  let api: ApiServer | undefined;
  let metrics: ApiServer | undefined;
  let controller: Controller | undefined;
  afterEach(async () => {
    await api?.close();
    await metrics?.close();
    await controller?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('queued -> started -> succeeded; failed -> retried -> failed; an expired lease; a superseded run', async () => {
    root = makeTmpDir('paddock-observe-');
    let now = Date.parse('2026-01-01T00:00:00Z');
    const store = memoryPlatform(slowHarness(path.join(root, 'agent.log'), 10), { tasks: [taskSpec('ok')] });
    controller = new Controller({ store, namespace: 'paddock', leaseTtlMs: 1000, settings: { backoffBaseMs: 10, backoffMaxMs: 10 }, now: () => now, instance: 'ctl-test' });
    await controller.start();
    const { auth, headers } = localToken(root);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth });
    metrics = await startMetrics(controller, { port: 0, host: '127.0.0.1' });
    const post = async (route: string, body: unknown) => {
      const r = await fetch(api!.url + route, { method: 'POST', headers, body: JSON.stringify(body) });
      return { status: r.status, body: r.status === 204 ? undefined : ((await r.json()) as any) };
    };
    const scrape = async () => (await fetch(metrics!.url + '/metrics')).text();
    const leaseFor = async (task: string) => {
      const g = await post('/v1/leases', { pool: 'warm', worker: `w-${task}`, waitMs: 0 });
      expect({ status: g.status, task: g.body?.task?.name }).toEqual({ status: 200, task });
      return g.body;
    };
    const submit = async (...args: Parameters<typeof taskSpec>) => {
      await controller!.submitTask(taskSpec(...args));
      await controller!.reconcileNow();
    };
    const report = (grant: any, outcome: string) => post(`/v1/leases/${grant.id}/complete`, { worker: `w-${grant.task.name}`, status: { outcome, task: grant.task.name }, results: '' });

    const before = await scrape();
    expect(before).toMatch(/paddock_queue_depth\{pool="warm"\} 1/);
    expect(before).toMatch(/paddock_runs_in_flight\{pool="warm"\} 0/);

    // ok: queued, started 5 s later, succeeded 20 s after that.
    now += 5000;
    const ok = await leaseFor('ok');
    expect(await scrape()).toMatch(/paddock_runs_in_flight\{pool="warm"\} 1/);
    now += 20_000;
    expect((await report(ok, 'succeeded')).status).toBe(200);

    // flaky: the agent fails, the task allows one retry, fails again.
    await submit('flaky', { retries: 1 });
    const f1 = await leaseFor('flaky');
    expect((await report(f1, 'failed')).status).toBe(200);
    now += 100;
    await controller.reconcileNow();
    const f2 = await leaseFor('flaky');
    expect(f2.attempt).toBe(2);
    expect((await report(f2, 'failed')).status).toBe(200);

    // lost: the worker stops renewing; the lease is taken back and the run queued again.
    await submit('lost');
    await leaseFor('lost');
    now += 1001;
    await controller.reconcileNow();

    // changed: a new spec supersedes the queued run.
    await submit('changed');
    await submit('changed', { prompt: 'a new prompt' });

    const text = await scrape();
    expect(text).toMatch(/paddock_runs_finished_total\{pool="warm",phase="Succeeded",outcome="succeeded"\} 1/);
    expect(text).toMatch(/paddock_runs_finished_total\{pool="warm",phase="Failed",outcome="failed"\} 1/);
    expect(text).toMatch(/paddock_runs_finished_total\{pool="warm",phase="Superseded",outcome="superseded"\} 1/);
    expect(text).toMatch(/paddock_retries_total\{pool="warm",outcome="failed"\} 1/);
    expect(text).toMatch(/paddock_retries_total\{pool="warm",outcome="infrastructure"\} 1/);
    expect(text).toMatch(/paddock_lease_expiries_total\{pool="warm"\} 1/);
    // Submit-to-start, per attempt: ok waited 5 s (in le=5, not le=1), flaky's two and lost's at once; ok's run took 20 s.
    expect(text).toMatch(/paddock_submit_to_start_seconds_bucket\{le="1",pool="warm"\} 3\n/);
    expect(text).toMatch(/paddock_submit_to_start_seconds_bucket\{le="5",pool="warm"\} 4\n/);
    expect(text).toMatch(/paddock_submit_to_start_seconds_count\{pool="warm"\} 4\n/);
    expect(text).toMatch(/paddock_run_duration_seconds_sum\{pool="warm",phase="Succeeded"\} 20\n/);
    expect(text).toMatch(/paddock_queue_depth\{pool="warm"\} 2/); // lost (again) and changed's new run
    expect(text).toMatch(/paddock_controller_process_cpu_seconds_total/);

    await new Promise((r) => setImmediate(r));
    const events = store.list('Event');
    const story = (task: string) => events.filter((e) => (e.regarding as any).name === `task-${task}`).map((e) => e.reason);
    expect(story('ok')).toEqual(['Queued', 'Started', 'Succeeded']);
    expect(story('flaky')).toEqual(['Queued', 'Started', 'Retried', 'Started', 'Failed']);
    expect(story('lost')).toEqual(['Queued', 'Started', 'LeaseExpired', 'Retried']);
    expect(story('changed')).toEqual(['Queued', 'Superseded', 'Queued']);
    const failed = events.find((e) => e.reason === 'Failed')!;
    expect(failed).toMatchObject({ apiVersion: 'events.k8s.io/v1', kind: 'Event', type: 'Warning', action: 'Finish', reportingController: 'paddock.dev/controller', reportingInstance: 'ctl-test' });
    expect(failed.note).toMatch(/^run flaky-[0-9a-f]{10} \(attempt 2, pool warm\): .*\[outcome failed\]$/);
    expect((failed.regarding as any).uid).toBe(store.list('ConfigMap').find((c) => c.metadata.name === 'task-flaky')!.metadata.uid);
    expect(events.find((e) => e.reason === 'Succeeded')).toMatchObject({ type: 'Normal' });
  });

  test('lifecycleOf: only phase changes are lifecycle steps', () => {
    const cm = (phase: string | undefined, extra: Record<string, string> = {}) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'run-t-1', labels: { 'paddock.dev/task': 't', 'paddock.dev/run': 't-1', 'paddock.dev/pool': 'p', ...(phase ? { 'paddock.dev/phase': phase } : {}) }, annotations: extra },
    });
    expect(lifecycleOf(cm('Queued'), cm('Queued'))).toBeUndefined();
    expect(lifecycleOf(undefined, cm('Running'))).toMatchObject({ reason: 'Started' });
    expect(lifecycleOf(cm('Running'), cm('Queued', { 'paddock.dev/outcome': 'terminated', 'paddock.dev/attempt': '2' }))).toMatchObject({ reason: 'Retried', attempt: 2, outcome: 'terminated' });
    expect(lifecycleOf(cm('Running'), cm(undefined))).toBeUndefined();
  });

  test('lifecycleOf: a delivery that ends is a step (pushed, pull request opened, skipped, failed); pending and repeats are not', () => {
    const cm = (delivery?: Record<string, unknown>) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'run-t-1',
        labels: { 'paddock.dev/task': 't', 'paddock.dev/run': 't-1', 'paddock.dev/pool': 'p', 'paddock.dev/phase': 'Succeeded' },
        annotations: delivery ? { 'paddock.dev/delivery': String(delivery.state) } : {},
      },
      data: delivery && delivery.state !== 'pending' ? { 'delivery.json': JSON.stringify(delivery) } : {},
    });
    const where = { repository: 'https://git.example/acme/work.git', branch: 'paddock/t' };
    const pushed = { ...where, state: 'pushed', commit: 'abcdef0123456789abcdef0123456789abcdef01' };
    expect(lifecycleOf(cm(), cm({ state: 'pending' }))).toBeUndefined();
    expect(lifecycleOf(cm({ state: 'pending' }), cm(pushed))).toMatchObject({ reason: 'Delivered', task: 't', run: 't-1', delivery: 'pushed', message: 'pushed abcdef012345 to https://git.example/acme/work.git branch paddock/t' });
    expect(lifecycleOf(cm(pushed), cm(pushed))).toBeUndefined();
    const pr = { ...pushed, pullRequest: { url: 'https://git.example/acme/work/pull/7', number: 7 } };
    expect(lifecycleOf(cm({ state: 'pending' }), cm(pr))).toMatchObject({ reason: 'PullRequestOpened', message: expect.stringMatching(/; opened https:\/\/git\.example\/acme\/work\/pull\/7$/) });
    expect(lifecycleOf(cm(), cm({ ...where, state: 'skipped', reason: 'the run ended failed' }))).toMatchObject({ reason: 'DeliverySkipped' });
    for (const state of ['conflict', 'denied', 'failed']) {
      const e = lifecycleOf(cm({ state: 'pending' }), cm({ ...where, state, reason: `why ${state}` }))!;
      expect(e).toMatchObject({ reason: 'DeliveryFailed', delivery: state, message: `delivery ${state} (https://git.example/acme/work.git branch paddock/t): why ${state}` });
      const event = lifecycleEventObject('ns', e, { uid: 'u1' }, 'ctl', new Date('2026-01-01T00:00:00Z'));
      expect(event).toMatchObject({ type: 'Warning', reason: 'DeliveryFailed', action: 'Deliver', regarding: { kind: 'ConfigMap', name: 'task-t', uid: 'u1' } });
      expect(event.note).toBe(`run t-1 (attempt 1, pool p): delivery ${state} (https://git.example/acme/work.git branch paddock/t): why ${state} [delivery ${state}]`);
    }
    expect(lifecycleEventObject('ns', lifecycleOf(cm({ state: 'pending' }), cm(pr))!, {}, 'ctl', new Date())).toMatchObject({ type: 'Normal', reason: 'PullRequestOpened', action: 'Deliver' });
  });

  test('JSON logs: one object per line with time, level, component and fields', () => {
    const lines: string[] = [];
    const log = jsonLogger('worker', (l) => lines.push(l), { worker: 'w1' }, () => new Date('2026-01-01T00:00:00Z'));
    log('leased run r1', { run: 'r1' });
    log('cannot reach the controller', {}, 'warn');
    expect(lines).toEqual([
      '{"time":"2026-01-01T00:00:00.000Z","level":"info","component":"worker","worker":"w1","msg":"leased run r1","run":"r1"}\n',
      '{"time":"2026-01-01T00:00:00.000Z","level":"warn","component":"worker","worker":"w1","msg":"cannot reach the controller"}\n',
    ]);
  });
});
