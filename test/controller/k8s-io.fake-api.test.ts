/**
 * The Kubernetes I/O layer (KubeStore on @kubernetes/client-node: informers, create,
 * replace, merge patch, delete) and the `paddock controller` command, against a THIN
 * FAKE of the Kubernetes API on loopback: there is no API server on these machines.
 * The real cluster run is .github/workflows/e2e-kind.yml.
 *
 * client-node is ESM-only, so the controller runs as a plain node process (the built
 * CLI), never inside jest. The fake plays the kubelet's part by hand: it writes the
 * Job's pod with the runner's termination message and marks the Job complete.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Harness } from '../../constructs';
import { makeTmpDir } from '../support/runner-fixtures';
import { FakeKubeApi, startFakeKubeApi } from './support/fake-kube-api';
import { applyPlatform, call, Ctl, freePort, startController, stopController as stop, until } from './support/controller-process';
import { specHashOf } from '../../core/stable-json';
import { encodeTerminationMessage } from '../../core/protocol';

jest.setTimeout(60_000);

const ADMIN = 'admin-token';

describe('KubeStore + paddock controller against a thin fake of the Kubernetes API (no real API server here)', () => {
  let fake: FakeKubeApi;
  let dir: string;
  let kubeconfig: string;
  const ctls: Ctl[] = [];

  beforeEach(async () => {
    fake = await startFakeKubeApi('paddock');
    dir = makeTmpDir('paddock-fake-api-');
    kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(kubeconfig, fake.kubeconfig());
    fake.addToken(ADMIN, { username: 'admin' });
    for (const verb of ['create', 'get', 'list', 'delete']) fake.grant({ user: 'admin', verb, group: 'paddock.dev', resource: 'tasks' });
    fake.grant({ user: 'admin', verb: 'get', group: 'paddock.dev', resource: 'tasks', subresource: 'results' });
  });
  afterEach(async () => {
    for (const c of ctls.splice(0)) await stop(c);
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('fake API: POST /v1/tasks -> task ConfigMap -> run ConfigMap + Job (owned by the task) -> pod report -> results', async () => {
    applyPlatform(fake);
    const ctl = await startController(kubeconfig);
    ctls.push(ctl);
    const debug = () => `${ctl.out.join('')}\n--- requests\n${fake.requests.map((r) => `${r.method} ${r.url}`).join('\n')}`;
    const post = (body: unknown) => call(ctl.url, 'POST', '/v1/tasks', { token: ADMIN, body });
    await until('the controller to lead and list', async () => (await call(ctl.url, 'GET', '/v1/tasks', { token: ADMIN })).status === 200 || undefined, debug);

    // Two listeners: the task API is not served on the worker port, nor the lease API on the task port.
    expect((await fetch(ctl.workerUrl + '/healthz')).status).toBe(200);
    expect((await fetch(ctl.workerUrl + '/v1/tasks', { method: 'POST', body: JSON.stringify({}) })).status).toBe(404);
    expect((await fetch(ctl.workerUrl + '/v1/tasks')).status).toBe(404);
    expect((await fetch(ctl.url + '/v1/leases', { method: 'POST', body: JSON.stringify({ pool: 'codex', worker: 'w' }) })).status).toBe(404);
    // The only pool is a job pool: the lease API gives it nothing.
    fake.addToken('codex-worker', { username: 'system:serviceaccount:paddock:pool-codex' }, ['paddock.dev/worker-api']);
    expect((await call(ctl.workerUrl, 'POST', '/v1/leases', { token: 'codex-worker', body: { pool: 'codex', worker: 'w', waitMs: 0 } })).status).toBe(404);

    // Validated by the task schema, every problem named.
    const bad = await post({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'Bad_Name', pool: 'codex', harness: 'codex', promptt: 'x' });
    expect(bad.status).toBe(400);
    expect(bad.body.problems.join('\n')).toMatch(/prompt: is required/);
    expect(bad.body.problems.join('\n')).toMatch(/promptt: unknown field/);
    expect((await post({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 't1', pool: 'nope', harness: 'codex', prompt: 'x' })).status).toBe(422);

    const spec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 't1', pool: 'codex', harness: 'codex', model: 'gpt-5-codex', prompt: 'Fix it', timeoutSeconds: 300 } as const;
    const created = await post(spec);
    expect(created.status).toBe(201);
    const hash = specHashOf(spec);
    expect(created.body).toMatchObject({ name: 't1', specHash: hash, run: `t1-${hash}` });

    const taskCm = (await fake.store.get('ConfigMap', 'task-t1'))!;
    const job = await until('the Job', () => fake.store.list('Job').find((j) => j.metadata.name === `t1-${hash}`), debug);
    const runCm = await until('the run ConfigMap', () => fake.store.list('ConfigMap').find((c) => c.metadata.name === `run-t1-${hash}`), debug);
    // Owned by the task ConfigMap: deleting the task removes its runs (the API server's GC).
    expect(job.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'ConfigMap', name: 'task-t1', uid: taskCm.metadata.uid })]);
    expect(runCm.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'ConfigMap', name: 'task-t1', uid: taskCm.metadata.uid })]);
    // The pool's Job template, filled with the same function AgentTask uses.
    const podSpec = (job.spec as any).template.spec;
    expect(podSpec.containers[0].image).toBe(Harness.codex().image);
    expect(podSpec.volumes.find((v: any) => v.name === 'task').configMap.name).toBe('task-t1');
    expect((job.spec as any).activeDeadlineSeconds).toBe(300 + 120);

    // The kubelet's part: the pod ran and the runner left its report in the termination message.
    const podLabels = { ...(job.spec as any).template.metadata.labels, 'batch.kubernetes.io/job-name': job.metadata.name, 'job-name': job.metadata.name };
    await fake.store.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${job.metadata.name}-x1`, labels: podLabels },
      status: { phase: 'Succeeded', containerStatuses: [{ name: 'runner', state: { terminated: { exitCode: 0, reason: 'Completed', message: encodeTerminationMessage({ task: 't1', outcome: 'succeeded', runnerExitCode: 0 }, '{"fixed":true}\n') } } }] },
    });
    const current = (await fake.store.get('Job', job.metadata.name))!;
    await fake.store.replace({ ...current, status: { succeeded: 1, conditions: [{ type: 'Complete', status: 'True' }] } });

    await until('the run to succeed', async () => (await fake.store.get('ConfigMap', `run-t1-${hash}`))?.metadata.labels?.['paddock.dev/phase'] === 'Succeeded' || undefined, debug);
    const done = (await fake.store.get('ConfigMap', `run-t1-${hash}`))!;
    expect((done.data as any)['results.jsonl']).toBe('{"fixed":true}\n');
    expect(JSON.parse((done.data as any)['status.json'])).toMatchObject({ outcome: 'succeeded', task: 't1' });
    // Status visible with kubectl get configmap -l paddock.dev/phase=Succeeded.
    await until('the task status label', async () => (await fake.store.get('ConfigMap', 'task-t1'))?.metadata.labels?.['paddock.dev/phase'] === 'Succeeded' || undefined, debug);
    expect(fake.store.list('ConfigMap', 'paddock.dev/task=t1,paddock.dev/phase=Succeeded').map((c) => c.metadata.name).sort()).toEqual([`run-t1-${hash}`, 'task-t1']);
    // ... and through the API.
    const view = (await call(ctl.url, 'GET', '/v1/tasks/t1', { token: ADMIN })).body;
    expect(view).toMatchObject({ name: 't1', phase: 'Succeeded', run: { name: `t1-${hash}`, attempt: 1, outcome: 'succeeded' } });
    const results = (await call(ctl.url, 'GET', '/v1/tasks/t1/results', { token: ADMIN })).body;
    expect(results).toMatchObject({ phase: 'Succeeded', results: [{ fixed: true }], truncated: false });
    expect((await call(ctl.url, 'GET', '/v1/tasks/nope', { token: ADMIN })).status).toBe(404);

    // Informers: one list + one watch per kind and selector, merge patches for status, no polling loop.
    const gets = fake.requests.filter((r) => r.method === 'GET' && /\/(configmaps|jobs|pods)\?/.test(r.url));
    expect(gets.filter((r) => r.url.includes('watch=true')).length).toBeGreaterThanOrEqual(6);
    expect(gets.filter((r) => !r.url.includes('watch=true')).length).toBeLessThanOrEqual(8);
    expect(fake.requests.some((r) => r.method === 'PATCH' && r.contentType?.startsWith('application/merge-patch+json'))).toBe(true);
  });

  test('fake API: a declared task whose Job was applied from dist/ is adopted by name, never run twice', async () => {
    applyPlatform(fake, { declaredTask: true });
    const jobsBefore = fake.store.list('Job').map((j) => j.metadata.name);
    expect(jobsBefore).toHaveLength(1);
    const ctl = await startController(kubeconfig);
    ctls.push(ctl);
    const debug = () => ctl.out.join('');
    const runCm = await until('the run ConfigMap', () => fake.store.list('ConfigMap').find((c) => c.metadata.name === `run-${jobsBefore[0]}`), debug);
    expect(runCm.metadata.labels?.['paddock.dev/phase']).toBe('Running');
    expect(runCm.metadata.annotations?.['paddock.dev/adopted']).toBe('true');
    await new Promise((r) => setTimeout(r, 500));
    expect(fake.requests.filter((r) => r.method === 'POST' && r.url.includes('/jobs'))).toEqual([]);
    expect(fake.store.list('Job').map((j) => j.metadata.name)).toEqual(jobsBefore);
  });

  test('fake API: two replicas with --leader-elect: one leads through the Lease, the follower forwards to it, then takes over', async () => {
    applyPlatform(fake);
    // Two "pods": the same ports on two loopback addresses (their pod IPs).
    const ports = { port: await freePort('127.0.0.2'), workerPort: await freePort('127.0.0.2'), metricsPort: await freePort('127.0.0.2') };
    const a = await startController(kubeconfig, { extra: ['--leader-elect'], id: 'ctl-a', address: '127.0.0.2', ports });
    ctls.push(a);
    await until('a to lead', async () => ((await fake.store.get('Lease', 'paddock-controller'))?.spec as any)?.holderIdentity === 'ctl-a' || undefined, () => a.out.join(''));
    expect((await fake.store.get('Lease', 'paddock-controller'))!.metadata.annotations).toMatchObject({ 'paddock.dev/leader-address': '127.0.0.2' });
    const b = await startController(kubeconfig, { extra: ['--leader-elect'], id: 'ctl-b', address: '127.0.0.3', ports });
    ctls.push(b);
    await until('a to serve', async () => (await call(a.url, 'GET', '/v1/tasks', { token: ADMIN })).status === 200 || undefined, () => a.out.join(''));
    await until('b to learn the leader', async () => (await call(b.url, 'GET', '/v1/tasks', { token: ADMIN })).status === 200 || undefined, () => b.out.join(''));
    // The follower passes requests on, authentication included: a submit through b lands, a bad token is refused.
    expect((await call(b.url, 'POST', '/v1/tasks', { token: ADMIN, body: { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'via-b', pool: 'codex', harness: 'codex', prompt: 'x' } })).status).toBe(201);
    expect((await call(a.url, 'GET', '/v1/tasks/via-b', { token: ADMIN })).body).toMatchObject({ name: 'via-b', pool: 'codex' });
    expect((await call(b.url, 'GET', '/v1/tasks', { token: 'nobody' })).status).toBe(401);
    expect((await fetch(b.url + '/healthz')).status).toBe(200);
    await stop(a);
    await until('b to take over', async () => ((await fake.store.get('Lease', 'paddock-controller'))!.spec as any).holderIdentity === 'ctl-b' || undefined, () => b.out.join(''), 25_000);
    await until('b to serve', async () => (await call(b.url, 'GET', '/v1/tasks/via-b', { token: ADMIN })).status === 200 || undefined, () => b.out.join(''));
    expect(((await fake.store.get('Lease', 'paddock-controller'))!.spec as any).leaseTransitions).toBe(1);
  });
});
