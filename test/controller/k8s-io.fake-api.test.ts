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
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import { AgentPool, AgentTask, Harness, Platform, synthesize } from '../../constructs';
import type { KubeObject } from '../../controller/store';
import { makeTmpDir } from '../support/runner-fixtures';
import { FakeKubeApi, startFakeKubeApi } from './support/fake-kube-api';
import { specHashOf } from '../../core/stable-json';
import { encodeTerminationMessage } from '../../core/protocol';
import { keyedPool } from '../support/synth';

jest.setTimeout(60_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function until<T>(what: string, get: () => T | undefined | Promise<T | undefined>, debug: () => string, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await get();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${debug()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The synthesized platform's ConfigMaps and Jobs, as `kubectl apply -f dist/` would create them. */
function applyPlatform(fake: FakeKubeApi, declaredTask: boolean): void {
  const app = Testing.app();
  const chart = new Chart(app, 'test', { disableResourceNameHashes: true });
  const platform = new Platform(chart, 'platform', { namespace: 'paddock' });
  const pool = keyedPool(platform, 'codex', { harnesses: [Harness.codex()], concurrency: 5 });
  if (declaredTask) new AgentTask(platform, 'declared', { pool, prompt: 'declared prompt' });
  for (const o of synthesize(chart) as KubeObject[]) {
    if (o.kind === 'ConfigMap' || o.kind === 'Job') fake.store.createSync(o);
  }
}

interface Ctl {
  child: ChildProcess;
  url: string;
  workerUrl: string;
  out: string[];
}

async function startController(fake: FakeKubeApi, kubeconfig: string, extra: string[] = [], id = 'ctl-1'): Promise<Ctl> {
  const port = await freePort();
  const workerPort = await freePort();
  const out: string[] = [];
  const child = spawn(process.execPath, [PADDOCK, 'controller', '--namespace', 'paddock', '--port', String(port), '--worker-port', String(workerPort), '--kubeconfig', kubeconfig, ...extra], {
    env: { PATH: process.env.PATH, PADDOCK_POD_NAME: id },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const url = `http://127.0.0.1:${port}`;
  await until('the controller API', async () => (await fetch(url + '/healthz').then((r) => r.ok).catch(() => false)) || undefined, () => out.join(''));
  return { child, url, workerUrl: `http://127.0.0.1:${workerPort}`, out };
}

const stop = async (c: Ctl | undefined) => {
  if (!c || c.child.exitCode !== null) return;
  c.child.kill('SIGTERM');
  const killer = setTimeout(() => c.child.kill('SIGKILL'), 8000);
  await new Promise((r) => c.child.once('exit', r));
  clearTimeout(killer);
};

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
  });
  afterEach(async () => {
    for (const c of ctls.splice(0)) await stop(c);
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('fake API: POST /v1/tasks -> task ConfigMap -> run ConfigMap + Job (owned by the task) -> pod report -> results', async () => {
    applyPlatform(fake, false);
    const ctl = await startController(fake, kubeconfig);
    ctls.push(ctl);
    const debug = () => `${ctl.out.join('')}\n--- requests\n${fake.requests.map((r) => `${r.method} ${r.url}`).join('\n')}`;
    const post = (body: unknown) => fetch(ctl.url + '/v1/tasks', { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));
    await until('the controller to lead and list', async () => (await fetch(ctl.url + '/v1/tasks')).status === 200 || undefined, debug);

    // Two listeners: the task API is not served on the worker port, nor the lease API on the task port.
    expect((await fetch(ctl.workerUrl + '/healthz')).status).toBe(200);
    expect((await fetch(ctl.workerUrl + '/v1/tasks', { method: 'POST', body: JSON.stringify({}) })).status).toBe(404);
    expect((await fetch(ctl.workerUrl + '/v1/tasks')).status).toBe(404);
    expect((await fetch(ctl.url + '/v1/leases', { method: 'POST', body: JSON.stringify({ pool: 'codex', worker: 'w' }) })).status).toBe(404);
    // The only pool is a job pool: the lease API gives it nothing.
    expect((await fetch(ctl.workerUrl + '/v1/leases', { method: 'POST', body: JSON.stringify({ pool: 'codex', worker: 'w', waitMs: 0 }) })).status).toBe(404);

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
    const view = (await (await fetch(ctl.url + '/v1/tasks/t1')).json()) as any;
    expect(view).toMatchObject({ name: 't1', phase: 'Succeeded', run: { name: `t1-${hash}`, attempt: 1, outcome: 'succeeded' } });
    const results = (await (await fetch(ctl.url + '/v1/tasks/t1/results')).json()) as any;
    expect(results).toMatchObject({ phase: 'Succeeded', results: [{ fixed: true }], truncated: false });
    expect((await fetch(ctl.url + '/v1/tasks/nope')).status).toBe(404);

    // Informers: one list + one watch per kind and selector, merge patches for status, no polling loop.
    const gets = fake.requests.filter((r) => r.method === 'GET' && /\/(configmaps|jobs|pods)\?/.test(r.url));
    expect(gets.filter((r) => r.url.includes('watch=true')).length).toBeGreaterThanOrEqual(6);
    expect(gets.filter((r) => !r.url.includes('watch=true')).length).toBeLessThanOrEqual(8);
    expect(fake.requests.some((r) => r.method === 'PATCH' && r.contentType?.startsWith('application/merge-patch+json'))).toBe(true);
  });

  test('fake API: a declared task whose Job was applied from dist/ is adopted by name, never run twice', async () => {
    applyPlatform(fake, true);
    const jobsBefore = fake.store.list('Job').map((j) => j.metadata.name);
    expect(jobsBefore).toHaveLength(1);
    const ctl = await startController(fake, kubeconfig);
    ctls.push(ctl);
    const debug = () => ctl.out.join('');
    const runCm = await until('the run ConfigMap', () => fake.store.list('ConfigMap').find((c) => c.metadata.name === `run-${jobsBefore[0]}`), debug);
    expect(runCm.metadata.labels?.['paddock.dev/phase']).toBe('Running');
    expect(runCm.metadata.annotations?.['paddock.dev/adopted']).toBe('true');
    await new Promise((r) => setTimeout(r, 500));
    expect(fake.requests.filter((r) => r.method === 'POST' && r.url.includes('/jobs'))).toEqual([]);
    expect(fake.store.list('Job').map((j) => j.metadata.name)).toEqual(jobsBefore);
  });

  test('fake API: two replicas with --leader-elect: one leads through the Lease, the other answers 503 until it takes over', async () => {
    applyPlatform(fake, false);
    const a = await startController(fake, kubeconfig, ['--leader-elect'], 'ctl-a');
    ctls.push(a);
    await until('a to lead', async () => (await fake.store.get('Lease', 'paddock-controller'))?.spec && ((await fake.store.get('Lease', 'paddock-controller'))!.spec as any).holderIdentity === 'ctl-a', () => a.out.join(''));
    const b = await startController(fake, kubeconfig, ['--leader-elect'], 'ctl-b');
    ctls.push(b);
    expect((await fetch(a.url + '/v1/tasks')).status).toBe(200);
    const follower = await fetch(b.url + '/v1/tasks');
    expect(follower.status).toBe(503);
    expect(follower.headers.get('retry-after')).toBe('1');
    expect((await fetch(b.url + '/healthz')).status).toBe(200);
    await stop(a);
    await until('b to take over', async () => ((await fake.store.get('Lease', 'paddock-controller'))!.spec as any).holderIdentity === 'ctl-b' || undefined, () => b.out.join(''), 10_000);
    await until('b to serve', async () => (await fetch(b.url + '/v1/tasks')).status === 200 || undefined, () => b.out.join(''));
    expect(((await fake.store.get('Lease', 'paddock-controller'))!.spec as any).leaseTransitions).toBe(1);
  });
});
