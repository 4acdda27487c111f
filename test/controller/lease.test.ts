/**
 * The warm-pool lease protocol with real processes on loopback: the controller (this
 * process, in-memory store, HTTP API on 127.0.0.1) and `paddock worker` processes
 * (the built CLI) running a stand-in agent. One worker is killed mid-run: its lease
 * expires, another worker finishes the task; no task completes twice, none is lost.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ApiServer, ApiServers, startApi } from '../../controller/api';
import { Controller } from '../../controller/controller';
import { main } from '../../cli/main';
import { makeTmpDir } from '../support/runner-fixtures';
import { addPool, localToken, memoryPlatform, slowHarness, startLocalControlPlane, taskSpec } from './support/platform';

jest.setTimeout(60_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');

function worker(url: string, id: string, root: string, out: string[]): ChildProcess {
  const child = spawn(process.execPath, [PADDOCK, 'worker', '--pool', 'warm', '--controller', url, '--token-file', path.join(root, 'token'), '--id', id, '--work-dir', path.join(root, id), '--wait', '500'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH },
  });
  child.stdout!.on('data', (d) => out.push(`[${id} out] ${d}`));
  child.stderr!.on('data', (d) => out.push(`[${id} err] ${d}`));
  return child;
}

const exited = (c: ChildProcess) => (c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise((r) => c.once('exit', r)));

async function until(what: string, cond: () => boolean, timeoutMs: number, debug: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${debug()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('lease protocol: real worker processes on loopback', () => {
  let root: string;
  let api: ApiServer | undefined;
  let controller: Controller | undefined;
  const workers: ChildProcess[] = [];

  beforeEach(() => {
    root = makeTmpDir('paddock-lease-');
  });
  afterEach(async () => {
    workers.forEach((w) => w.kill('SIGKILL'));
    await Promise.all(workers.map(exited));
    workers.length = 0;
    await api?.close();
    await controller?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('3 workers, 6 tasks, one worker SIGKILLed mid-run: every task succeeds exactly once', async () => {
    const agentLog = path.join(root, 'agent.log');
    fs.writeFileSync(agentLog, '');
    const names = ['t1', 't2', 't3', 't4', 't5', 't6'];
    const store = memoryPlatform(slowHarness(agentLog, 1500), { tasks: names.map((n) => taskSpec(n)) });
    const log: string[] = [];
    controller = new Controller({ store, namespace: 'paddock', leaseTtlMs: 1500, settings: { backoffBaseMs: 50 }, log: (l) => log.push(l) });
    const accepted: string[] = [];
    const complete = controller.complete.bind(controller);
    controller.complete = async (id, w, result) => {
      const r = await complete(id, w, result);
      if (r === 'ok') accepted.push(`${w}:${String(result.status.task)}`);
      return r;
    };
    await controller.start();
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth: localToken(root).auth });
    const out: string[] = [];
    const debug = () => `--- controller\n${log.join('\n')}\n--- agent log\n${fs.readFileSync(agentLog, 'utf8')}\n--- workers\n${out.join('')}`;
    for (const id of ['w1', 'w2', 'w3']) workers.push(worker(api.url, id, root, out));

    // Wait until w1 runs something, then kill it and its agent (as a pod's death would).
    let victimTask = '';
    await until('w1 to lease a task', () => log.some((l) => /leased by worker w1/.test(l)), 20_000, debug);
    const leasedLine = log.find((l) => /leased by worker w1/.test(l))!;
    victimTask = /run (\S+)-[0-9a-f]{10}:/.exec(leasedLine)![1];
    await until('the victim agent to start', () => fs.readFileSync(agentLog, 'utf8').includes(`start prompt-${victimTask} `), 10_000, debug);
    const agentPid = Number(new RegExp(`start prompt-${victimTask} (\\d+)`).exec(fs.readFileSync(agentLog, 'utf8'))![1]);
    workers[0].kill('SIGKILL');
    process.kill(agentPid, 'SIGKILL');

    await until(
      'every task to finish',
      () => names.every((n) => ['Succeeded', 'Failed'].includes(controller!.task(n)?.phase ?? '')),
      40_000,
      debug,
    );

    // All succeeded, each completed exactly once, by a live worker.
    for (const n of names) {
      const view = controller.task(n)!;
      expect({ n, phase: view.phase }).toEqual({ n, phase: 'Succeeded' });
      expect(controller.results(n)!.results).toEqual([expect.objectContaining({ prompt: `prompt-${n}` })]);
    }
    expect(accepted.map((a) => a.split(':')[1]).sort()).toEqual(names);
    expect(accepted.some((a) => a.startsWith('w1:'))).toBe(false);
    // The victim's lease expired and another worker ran it again (attempt 2).
    expect(controller.task(victimTask)!.run!.attempt).toBe(2);
    expect(log.join('\n')).toMatch(new RegExp(`lease \\w+ taken back: not renewed in time`));
    const agentLines = fs.readFileSync(agentLog, 'utf8').trim().split('\n');
    expect(agentLines.filter((l) => l.startsWith(`start prompt-${victimTask} `))).toHaveLength(2);
    expect(agentLines.filter((l) => l.startsWith(`end prompt-${victimTask} `))).toHaveLength(1);
    // Each of the other tasks started exactly once: nothing was run twice.
    for (const n of names.filter((x) => x !== victimTask)) expect(agentLines.filter((l) => l.startsWith(`start prompt-${n} `))).toHaveLength(1);
  });

  test('a report on a lease that was taken back is refused (409), and the run is not completed by it', async () => {
    const agentLog = path.join(root, 'agent.log');
    let now = 1_000_000;
    const store = memoryPlatform(slowHarness(agentLog, 10), { tasks: [taskSpec('only')] });
    controller = new Controller({ store, namespace: 'paddock', leaseTtlMs: 1000, settings: { backoffBaseMs: 10 }, now: () => now });
    await controller.start();
    const { auth, headers } = localToken(root);
    api = await startApi(controller, { port: 0, host: '127.0.0.1', routes: 'workers', auth });
    const post = (route: string, body: unknown) => fetch(api!.url + route, { method: 'POST', headers, body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (r.status === 204 ? undefined : await r.json()) as any }));
    const first = await post('/v1/leases', { pool: 'warm', worker: 'slow-worker', waitMs: 0 });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ run: expect.stringMatching(/^only-/), attempt: 1, task: { name: 'only' }, harness: { name: 'slow' }, pool: { name: 'warm' } });
    expect((await post(`/v1/leases/${first.body.id}/renew`, { worker: 'slow-worker' })).status).toBe(200);
    expect((await post(`/v1/leases/${first.body.id}/renew`, { worker: 'someone-else' })).status).toBe(409);
    // Nothing more to lease while it runs.
    expect((await post('/v1/leases', { pool: 'warm', worker: 'w2', waitMs: 0 })).status).toBe(204);
    now += 1001; // the lease runs out
    await controller.reconcileNow();
    now += 1000; // past the retry backoff
    const second = await post('/v1/leases', { pool: 'warm', worker: 'w2', waitMs: 0 });
    expect(second.body).toMatchObject({ attempt: 2 });
    expect((await post(`/v1/leases/${first.body.id}/renew`, { worker: 'slow-worker' })).status).toBe(409);
    const stale = await post(`/v1/leases/${first.body.id}/complete`, { worker: 'slow-worker', status: { outcome: 'succeeded', task: 'only' }, results: '{"from":"stale"}\n' });
    expect(stale.status).toBe(409);
    expect(controller.task('only')!.phase).toBe('Running');
    const good = await post(`/v1/leases/${second.body.id}/complete`, { worker: 'w2', status: { outcome: 'succeeded', task: 'only' }, results: '{"from":"w2"}\n' });
    expect(good.status).toBe(200);
    expect(controller.results('only')).toMatchObject({ phase: 'Succeeded', results: [{ from: 'w2' }] });
    // A second report on the same lease is refused too.
    expect((await post(`/v1/leases/${second.body.id}/complete`, { worker: 'w2', status: { outcome: 'succeeded' }, results: '' })).status).toBe(409);
  });
});

describe('two listeners: the task API and the worker lease API, each serving only its own routes', () => {
  let root: string;
  let apis: ApiServers | undefined;
  let controller: Controller | undefined;
  beforeEach(() => {
    root = makeTmpDir('paddock-listeners-');
  });
  afterEach(async () => {
    await apis?.close();
    await controller?.stop();
    fs.rmSync(root, { recursive: true, force: true });
  });
  let headers: Record<string, string> = {};
  const call = (base: string, method: string, route: string, body?: unknown) =>
    fetch(base + route, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) }).then(async (r) => ({ status: r.status, body: (r.status === 204 ? undefined : await r.text()) as string | undefined }));

  test('the task API is not served on the worker port, nor the lease API on the task port', async () => {
    const harness = slowHarness(path.join(root, 'agent.log'), 10);
    const store = memoryPlatform(harness, { tasks: [taskSpec('only')] });
    const plane = await startLocalControlPlane({ store, namespace: 'paddock' }, root);
    ({ controller, apis } = plane);
    headers = plane.token.headers;
    const tasks = apis.tasks.url;
    const workers = apis.workers.url;
    expect(apis.tasks.port).not.toBe(apis.workers.port);
    // Both answer health checks.
    expect((await call(tasks, 'GET', '/healthz')).status).toBe(200);
    expect((await call(workers, 'GET', '/healthz')).status).toBe(200);
    // The worker port: no task submission, listing, views or results (an agent in a warm pod reaches only this port).
    const submitted = await call(workers, 'POST', '/v1/tasks', taskSpec('injected'));
    expect(submitted.status).toBe(404);
    expect(submitted.body).toMatch(/served on the other port/);
    expect(controller.task('injected')).toBeUndefined();
    expect(store.list('ConfigMap').some((cm) => cm.metadata.name === 'task-injected')).toBe(false);
    for (const route of ['/v1/tasks', '/v1/tasks/only', '/v1/tasks/only/results']) expect({ route, status: (await call(workers, 'GET', route)).status }).toEqual({ route, status: 404 });
    // The task port: no leases, renewals or reports.
    expect((await call(tasks, 'POST', '/v1/leases', { pool: 'warm', worker: 'w', waitMs: 0 })).status).toBe(404);
    expect(controller.task('only')!.run!.phase).toBe('Queued');
    expect((await call(tasks, 'POST', '/v1/leases/x/renew', { worker: 'w' })).status).toBe(404);
    expect((await call(tasks, 'POST', '/v1/leases/x/complete', { worker: 'w', status: {} })).status).toBe(404);
    // Each port serves its own routes.
    expect((await call(tasks, 'GET', '/v1/tasks/only')).status).toBe(200);
    expect((await call(tasks, 'POST', '/v1/tasks', taskSpec('second'))).status).toBe(201);
    const lease = await call(workers, 'POST', '/v1/leases', { pool: 'warm', worker: 'w', waitMs: 0 });
    expect(lease.status).toBe(200);
    expect(JSON.parse(lease.body!)).toMatchObject({ pool: { name: 'warm' } });
  });

  test('POST /v1/tasks refuses an http:// source with the schema\'s message (one rule with AgentTask and the runner)', async () => {
    const store = memoryPlatform(slowHarness(path.join(root, 'agent.log'), 10));
    const plane = await startLocalControlPlane({ store, namespace: 'paddock' }, root);
    ({ controller, apis } = plane);
    headers = plane.token.headers;
    const sources = [{ name: 'repo', type: 'git_https', url: 'http://git.example.com/org/repo.git' }];
    const r = await call(apis.tasks.url, 'POST', '/v1/tasks', taskSpec('plain', { sources } as any));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body!).problems).toEqual([expect.stringMatching(/^sources\[0\]\.url: must be an https:\/\/ URL .*http:\/\/ is refused .*use https:\/\//)]);
    expect(controller.task('plain')).toBeUndefined();
  });

  test('paddock controller: --worker-port (default 8081) must differ from --port', async () => {
    let stderr = '';
    const io = { stdout: () => undefined, stderr: (t: string) => (stderr += t) };
    expect(await main(['controller', '--namespace', 'x', '--port', '9000', '--worker-port', '9000'], io)).toBe(2);
    expect(stderr).toMatch(/^paddock controller: --worker-port 9000 is the task API's --port too/);
    stderr = '';
    expect(await main(['controller', '--namespace', 'x', '--port', '8081'], io)).toBe(2);
    expect(stderr).toMatch(/^paddock controller: --worker-port 8081 is the task API's --port too; .* e\.g\. --worker-port 8082/);
  });

  test('a lease names its pool: only that pool\'s runs, and only of a warm pool', async () => {
    const harness = slowHarness(path.join(root, 'agent.log'), 10);
    const store = memoryPlatform(harness, { tasks: [taskSpec('mine'), taskSpec('theirs', { pool: 'other' }), taskSpec('jobbed', { pool: 'jobs' })] });
    addPool(store, harness, 'other', 'warm');
    addPool(store, harness, 'jobs', 'job');
    const plane = await startLocalControlPlane({ store, namespace: 'paddock' }, root);
    ({ controller, apis } = plane);
    headers = plane.token.headers;
    const lease = (pool: string) => call(apis!.workers.url, 'POST', '/v1/leases', { pool, worker: 'w', waitMs: 0 });
    // A job pool's runs are Jobs: its name gets nothing from the lease API; nor does an unknown pool.
    expect(await lease('jobs')).toMatchObject({ status: 404, body: expect.stringMatching(/pool \\"jobs\\" is not a warm pool/) });
    expect(await lease('nope')).toMatchObject({ status: 404 });
    // The named warm pool's run, and then nothing, though another warm pool still has a queued run.
    const mine = await lease('warm');
    expect(JSON.parse(mine.body!)).toMatchObject({ task: { name: 'mine', pool: 'warm' }, pool: { name: 'warm' } });
    expect((await lease('warm')).status).toBe(204);
    expect(controller.task('theirs')!.run!.phase).toBe('Queued');
    // The job pool's run was never leased (here it fails for want of a Job template; in the cluster it is a Job).
    expect(controller.task('jobbed')!.run).toMatchObject({ phase: expect.not.stringMatching(/Running/), message: expect.not.stringMatching(/leased/) });
  });
});
