/**
 * Who may call the controller: `paddock controller` (a real process, KubeStore and
 * KubeAuth on @kubernetes/client-node) against a THIN FAKE of the Kubernetes API whose
 * TokenReview and SubjectAccessReview answer from tokens and grants the test sets up
 * (no real API server on this machine). Every refused call is checked to have changed
 * nothing in the store.
 */
import * as fs from 'fs';
import * as path from 'path';
import { makeTmpDir } from '../support/runner-fixtures';
import { FakeKubeApi, startFakeKubeApi } from './support/fake-kube-api';
import { applyPlatform, call, Ctl, startController, stopController, until } from './support/controller-process';

jest.setTimeout(90_000);

const WORKER_AUDIENCE = 'paddock.dev/worker-api';
const task = (name: string, pool: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool, harness: 'codex', prompt: `do ${name}`, ...extra });

describe('fake API (TokenReview/SubjectAccessReview faked): the task API and the lease API refuse whoever may not', () => {
  let fake: FakeKubeApi;
  let dir: string;
  let ctl: Ctl;
  /** Every object's kind/name@resourceVersion: a refused call must leave it as it was. */
  const snapshot = () =>
    (['ConfigMap', 'Job', 'Event'] as const)
      .flatMap((k) => fake.store.list(k).map((o) => `${k}/${o.metadata.name}@${o.metadata.resourceVersion}`))
      .sort()
      .join('\n');
  /** Wait until the controller's own writes (task status, Events) have stopped, then take the snapshot. */
  const settled = async () => {
    let last = snapshot();
    for (let stable = 0; stable < 6; ) {
      await new Promise((r) => setTimeout(r, 100));
      const now = snapshot();
      stable = now === last ? stable + 1 : 0;
      last = now;
    }
    return last;
  };

  beforeAll(async () => {
    fake = await startFakeKubeApi('paddock');
    dir = makeTmpDir('paddock-auth-');
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, fake.kubeconfig());
    applyPlatform(fake, { warmPools: ['alpha', 'beta'] });
    // People: admin may do everything; alice submits to pool alpha only; vic only reads alpha; nobody has no grant.
    fake.addToken('admin', { username: 'admin' });
    fake.addToken('alice', { username: 'alice', groups: ['system:authenticated'] });
    fake.addToken('vic', { username: 'vic' });
    fake.addToken('nobody', { username: 'nobody' });
    for (const verb of ['create', 'get', 'list', 'delete']) fake.grant({ user: 'admin', verb, group: 'paddock.dev', resource: 'tasks' });
    fake.grant({ user: 'admin', verb: 'get', group: 'paddock.dev', resource: 'tasks', subresource: 'results' });
    for (const verb of ['create', 'get', 'list', 'delete']) fake.grant({ user: 'alice', verb, group: 'paddock.dev', resource: 'tasks', names: ['alpha'] });
    fake.grant({ user: 'alice', verb: 'get', group: 'paddock.dev', resource: 'tasks', subresource: 'results', names: ['alpha'] });
    for (const verb of ['get', 'list']) fake.grant({ user: 'vic', verb, group: 'paddock.dev', resource: 'tasks', names: ['alpha'] });
    // Workers: projected tokens of the pools' ServiceAccounts for Paddock's audience, naming their pods.
    const sa = (pool: string, pod: string) => ({ username: `system:serviceaccount:paddock:pool-${pool}`, extra: { 'authentication.kubernetes.io/pod-name': [pod] } });
    fake.addToken('alpha-0', sa('alpha', 'pool-alpha-0'), [WORKER_AUDIENCE]);
    fake.addToken('alpha-1', sa('alpha', 'pool-alpha-1'), [WORKER_AUDIENCE]);
    fake.addToken('beta-0', sa('beta', 'pool-beta-0'), [WORKER_AUDIENCE]);
    // The same ServiceAccount's ordinary API token (audience: the API server) is not a worker credential.
    fake.addToken('alpha-api-token', sa('alpha', 'pool-alpha-0'));
    // Another namespace's pool-alpha is not this platform's.
    fake.addToken('foreign', { username: 'system:serviceaccount:other:pool-alpha' }, [WORKER_AUDIENCE]);
    ctl = await startController(kubeconfig);
    await until('the controller to serve', async () => (await call(ctl.url, 'GET', '/v1/tasks', { token: 'admin' })).status === 200 || undefined, () => ctl.out.join(''));
    expect((await call(ctl.url, 'POST', '/v1/tasks', { token: 'admin', body: task('in-alpha', 'alpha') })).status).toBe(201);
    expect((await call(ctl.url, 'POST', '/v1/tasks', { token: 'admin', body: task('in-beta', 'beta') })).status).toBe(201);
    await until('both runs queued', () => fake.store.list('ConfigMap', 'app.kubernetes.io/component=run').length === 2 || undefined, () => ctl.out.join(''));
  });
  afterAll(async () => {
    await stopController(ctl);
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const taskRoutes: Array<[string, string, unknown?]> = [
    ['POST', '/v1/tasks', task('new-one', 'alpha')],
    ['GET', '/v1/tasks'],
    ['GET', '/v1/tasks/in-alpha'],
    ['GET', '/v1/tasks/in-alpha/results'],
    ['DELETE', '/v1/tasks/in-alpha'],
  ];
  const leaseRoutes: Array<[string, unknown]> = [
    ['/v1/leases', { pool: 'alpha', worker: 'w', waitMs: 0 }],
    ['/v1/leases/some-id/renew', { worker: 'w' }],
    ['/v1/leases/some-id/complete', { worker: 'w', status: { outcome: 'succeeded' }, results: '' }],
  ];

  test('fake API: no token, a malformed header or an unknown token: 401 on every route, nothing changed', async () => {
    const before = await settled();
    for (const [method, route, body] of taskRoutes) {
      for (const token of [undefined, 'not-a-token']) {
        const r = await call(ctl.url, method, route, { token, body });
        expect({ method, route, token, status: r.status }).toEqual({ method, route, token, status: 401 });
      }
      const basic = await fetch(ctl.url + route, { method, headers: { Authorization: 'Basic YWRtaW46YWRtaW4=', 'Content-Type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect({ route, status: basic.status }).toEqual({ route, status: 401 });
    }
    for (const [route, body] of leaseRoutes) {
      for (const token of [undefined, 'not-a-token', 'admin', 'alpha-api-token', 'foreign']) {
        const r = await call(ctl.workerUrl, 'POST', route, { token, body });
        expect({ route, token, status: r.status }).toEqual({ route, token, status: 401 });
      }
    }
    expect((await call(ctl.url, 'GET', '/v1/tasks')).body.error).toMatch(/give a bearer token: "Authorization: Bearer TOKEN"/);
    expect(snapshot()).toBe(before);
  });

  test('fake API: an authenticated caller without a grant (or a worker on the task API): 401/403 on every route, nothing changed', async () => {
    const before = await settled();
    for (const [method, route, body] of taskRoutes) {
      const r = await call(ctl.url, method, route, { token: 'nobody', body });
      expect({ method, route, status: r.status }).toEqual({ method, route, status: 403 });
      // A worker's token is for Paddock's audience, which the API server's TokenReview refuses.
      expect({ method, route, status: (await call(ctl.url, method, route, { token: 'alpha-0', body })).status }).toEqual({ method, route, status: 401 });
    }
    const denied = await call(ctl.url, 'POST', '/v1/tasks', { token: 'nobody', body: task('new-one', 'alpha') });
    expect(denied.body.error).toMatch(/nobody may not create tasks of pool "alpha" \(RBAC: verb "create" on resource "tasks" in group "paddock.dev", resourceName "alpha"/);
    expect(snapshot()).toBe(before);
    // The review asked the API server exactly that.
    expect(fake.reviews).toContainEqual({ user: 'nobody', allowed: false, attributes: expect.objectContaining({ namespace: 'paddock', group: 'paddock.dev', resource: 'tasks', verb: 'create', name: 'alpha' }) });
  });

  test("fake API: alice may submit to, read and cancel pool alpha's tasks, not pool beta's; vic only reads alpha", async () => {
    const before = await settled();
    // Another pool's task: no submit, no read, no results, no cancel, and no moving tasks between pools.
    for (const [method, route, body] of [
      ['POST', '/v1/tasks', task('alices', 'beta')],
      ['GET', '/v1/tasks/in-beta'],
      ['GET', '/v1/tasks/in-beta/results'],
      ['DELETE', '/v1/tasks/in-beta'],
      ['POST', '/v1/tasks', task('in-beta', 'alpha')],
      ['POST', '/v1/tasks', task('in-alpha', 'beta')],
    ] as Array<[string, string, unknown?]>) {
      expect({ method, route, body, status: (await call(ctl.url, method, route, { token: 'alice', body })).status }).toEqual({ method, route, body, status: 403 });
    }
    for (const [method, route, body] of [['POST', '/v1/tasks', task('vics', 'alpha')], ['DELETE', '/v1/tasks/in-alpha']] as Array<[string, string, unknown?]>) {
      expect({ method, route, status: (await call(ctl.url, method, route, { token: 'vic', body })).status }).toEqual({ method, route, status: 403 });
    }
    expect(snapshot()).toBe(before);
    expect((await call(ctl.url, 'GET', '/v1/tasks/in-beta', { token: 'admin' })).body.pool).toBe('beta');
    // Her own pool: list shows alpha's tasks only.
    expect((await call(ctl.url, 'GET', '/v1/tasks', { token: 'alice' })).body.tasks.map((t: any) => t.name)).toEqual(['in-alpha']);
    expect((await call(ctl.url, 'GET', '/v1/tasks', { token: 'vic' })).body.tasks.map((t: any) => t.name)).toEqual(['in-alpha']);
    expect((await call(ctl.url, 'GET', '/v1/tasks/in-alpha', { token: 'vic' })).status).toBe(200);
    expect((await call(ctl.url, 'POST', '/v1/tasks', { token: 'alice', body: task('alices', 'alpha') })).status).toBe(201);
    expect((await call(ctl.url, 'GET', '/v1/tasks/alices', { token: 'alice' })).body).toMatchObject({ name: 'alices', pool: 'alpha' });
    const cancelled = await call(ctl.url, 'DELETE', '/v1/tasks/alices', { token: 'alice' });
    expect(cancelled).toMatchObject({ status: 200, body: { name: 'alices', cancelled: true } });
    await until('the task ConfigMap to go', async () => (await fake.store.get('ConfigMap', 'task-alices')) === undefined || undefined, () => ctl.out.join(''));
  });

  test('fake API: a POST that is not application/json (a cross-site text/plain form) is refused with 415, nothing changed', async () => {
    const before = await settled();
    const plain = await call(ctl.url, 'POST', '/v1/tasks', { token: 'admin', body: JSON.stringify(task('in-alpha', 'beta')), contentType: 'text/plain' });
    expect(plain.status).toBe(415);
    expect(plain.body.error).toMatch(/send the body as JSON with the header "Content-Type: application\/json" \(got "text\/plain"\)/);
    const form = await fetch(ctl.url + '/v1/tasks', { method: 'POST', headers: { Authorization: 'Bearer admin' }, body: new URLSearchParams({ x: '1' }) });
    expect(form.status).toBe(415);
    expect((await call(ctl.workerUrl, 'POST', '/v1/leases', { token: 'alpha-0', body: JSON.stringify({ pool: 'alpha', worker: 'w' }), contentType: 'text/plain' })).status).toBe(415);
    expect(snapshot()).toBe(before);
    expect((await call(ctl.url, 'GET', '/v1/tasks/in-alpha', { token: 'admin' })).body.pool).toBe('alpha');
  });

  test("fake API: a worker of pool alpha cannot lease, renew or report for pool beta, nor for another alpha pod's lease", async () => {
    const before = await settled();
    const lease = (token: string, pool: string) => call(ctl.workerUrl, 'POST', '/v1/leases', { token, body: { pool, worker: token, waitMs: 0 } });
    const wrong = await lease('alpha-0', 'beta');
    expect(wrong.status).toBe(403);
    expect(wrong.body.error).toMatch(/this worker belongs to pool "alpha"; it may lease only that pool's runs, not pool "beta"'s/);
    expect(snapshot()).toBe(before);
    const mine = await lease('alpha-0', 'alpha');
    expect(mine).toMatchObject({ status: 200, body: { task: { name: 'in-alpha', pool: 'alpha' } } });
    const id = mine.body.id;
    const afterLease = await settled();
    // Pool beta's worker, and another pod of pool alpha, may not touch alpha-0's lease.
    for (const token of ['beta-0', 'alpha-1']) {
      for (const op of ['renew', 'complete']) {
        const r = await call(ctl.workerUrl, 'POST', `/v1/leases/${id}/${op}`, { token, body: { worker: 'alpha-0', status: { outcome: 'succeeded', task: 'in-alpha' }, results: '{"forged":true}\n' } });
        expect({ token, op, status: r.status }).toEqual({ token, op, status: 403 });
      }
    }
    expect(snapshot()).toBe(afterLease);
    expect((await call(ctl.url, 'GET', '/v1/tasks/in-alpha', { token: 'admin' })).body.run.phase).toBe('Running');
    // The holder may.
    expect((await call(ctl.workerUrl, 'POST', `/v1/leases/${id}/renew`, { token: 'alpha-0', body: { worker: 'alpha-0' } })).status).toBe(200);
    const done = await call(ctl.workerUrl, 'POST', `/v1/leases/${id}/complete`, { token: 'alpha-0', body: { worker: 'alpha-0', status: { outcome: 'succeeded', task: 'in-alpha' }, results: '{"real":true}\n' } });
    expect(done.status).toBe(200);
    await until('the result', async () => (await call(ctl.url, 'GET', '/v1/tasks/in-alpha/results', { token: 'admin' })).body.phase === 'Succeeded' || undefined, () => ctl.out.join(''));
    expect((await call(ctl.url, 'GET', '/v1/tasks/in-alpha/results', { token: 'alice' })).body.results).toEqual([{ real: true }]);
    // Beta's run was never handed out.
    expect((await call(ctl.url, 'GET', '/v1/tasks/in-beta', { token: 'admin' })).body.run.phase).toBe('Queued');
  });

  test('fake API: the run left Events (events.k8s.io/v1) on its task ConfigMap, JSON logs, and metrics on the metrics port', async () => {
    await until('the Succeeded event', () => fake.store.list('Event').some((e) => e.reason === 'Succeeded' && (e.regarding as any).name === 'task-in-alpha') || undefined, () => ctl.out.join(''));
    const events = fake.store.list('Event').filter((e) => (e.regarding as any).name === 'task-in-alpha');
    expect(events.map((e) => e.reason)).toEqual(expect.arrayContaining(['Queued', 'Started', 'Succeeded']));
    const started = events.find((e) => e.reason === 'Started')!;
    expect(started).toMatchObject({ apiVersion: 'events.k8s.io/v1', type: 'Normal', reportingController: 'paddock.dev/controller', reportingInstance: 'ctl-1', regarding: { kind: 'ConfigMap', namespace: 'paddock', uid: expect.any(String) } });
    expect(fake.requests.some((r) => r.method === 'POST' && r.url.startsWith('/apis/events.k8s.io/v1/namespaces/paddock/events'))).toBe(true);
    // One JSON object per log line.
    const lines = ctl.out.join('').split('\n').filter(Boolean);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    expect(lines.map((l) => JSON.parse(l))).toContainEqual(expect.objectContaining({ component: 'controller', level: 'info', event: 'Succeeded', task: 'in-alpha', pool: 'alpha', replica: 'ctl-1' }));
    const metrics = await (await fetch(ctl.metricsUrl + '/metrics')).text();
    expect(metrics).toMatch(/paddock_runs_finished_total\{pool="alpha",phase="Succeeded",outcome="succeeded"\} 1/);
    expect(metrics).toMatch(/paddock_queue_depth\{pool="beta"\} 1/);
    expect(metrics).toMatch(/paddock_runs_in_flight\{pool="alpha"\} 0/);
  });
});
