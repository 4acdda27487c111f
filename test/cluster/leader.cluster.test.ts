/**
 * Issue 11, item 4, on the real API server: a platform with two controller replicas (the
 * library's Platform with controller.replicas: 2, which adds --leader-elect and the Role's
 * leases rule) applied server-side; two `paddock controller --leader-elect` processes on the
 * host as the synthesized ServiceAccount. One leads through the coordination.k8s.io Lease;
 * kill -9 of the leader mid-run: the other takes the Lease over, no task is lost (one
 * accepted just before the kill too), none runs twice; a restarted controller that takes
 * over again picks up a run that is in flight. Pods are completed by kwok (a fake kubelet).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Chart } from 'cdk8s';
import { stringify } from 'yaml';
import { AgentPool, CredentialSecret, Harness, Platform, synthesize } from '../../index';
import { applyDist, completePod, Controller, deleteNamespace, get, jobPods, list, NS, runnerReport, serviceAccountKubeconfig, startController, until } from './support/cluster';

jest.setTimeout(300_000);

const LEASE = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases/paddock-controller`;

describe('two controller replicas with Lease leader election on a real API server (pods completed by kwok)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-leader-'));
  const ctls: Controller[] = [];
  let kubeconfig: string;

  afterAll(async () => {
    for (const c of ctls) await c.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const holder = async () => (await get(LEASE))?.spec?.holderIdentity as string | undefined;
  const submit = async (ctl: Controller, name: string) => {
    const spec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'codex', harness: 'codex', model: 'gpt-5-codex', prompt: `task ${name}`, timeoutSeconds: 600 };
    const res = await fetch(`${ctl.url}/v1/tasks`, { method: 'POST', body: JSON.stringify(spec) });
    expect(res.status).toBe(201);
    return ((await res.json()) as any).run as string;
  };
  const runningPod = async (run: string, debug: () => string) =>
    (
      await until(`a Running pod of Job ${run}`, async () => {
        const pods = await jobPods(run);
        return pods.length === 1 && pods[0].status.phase === 'Running' && pods;
      }, 60_000, debug)
    )[0];
  const finish = async (run: string, task: string, debug: () => string) => {
    const pod = await runningPod(run, debug);
    await completePod(pod.metadata.name, runnerReport({ task, harness: 'codex', pool: 'codex', outcome: 'succeeded', runnerExitCode: 0 }, `{"task":"${task}"}\n`));
    return until(`run ${run} to succeed`, async () => {
      const cm = await get(`/api/v1/namespaces/${NS}/configmaps/run-${run}`);
      return cm?.metadata.labels['paddock.dev/phase'] === 'Succeeded' && cm;
    }, 60_000, debug);
  };

  test('one leader by Lease; kill -9 of the leader mid-run: the other takes over, no task lost, none run twice; a restarted one picks up runs in flight', async () => {
    await deleteNamespace(NS);
    // The platform, synthesized with the library as a user's own chart would.
    const app = new App({ outdir: dir });
    const chart = new Chart(app, 'paddock', { disableResourceNameHashes: true });
    const platform = new Platform(chart, 'platform', { namespace: NS, controller: { replicas: 2 } });
    const pool = new AgentPool(platform, 'codex', { harnesses: [Harness.codex()] });
    CredentialSecret.fromSecretName(platform, 'openai', 'openai-api', ['OPENAI_API_KEY']).grantTo(pool);
    const objects = synthesize(chart) as any[];
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'paddock-controller');
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.template.spec.containers[0].args).toContain('--leader-elect');
    const file = path.join(dir, 'platform.yaml');
    fs.writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
    applyDist(file);
    ({ kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-controller', path.join(dir, 'controller.kubeconfig')));

    const a = await startController(kubeconfig, 'ctl-a', ['--leader-elect']);
    ctls.push(a);
    const b = await startController(kubeconfig, 'ctl-b', ['--leader-elect']);
    ctls.push(b);
    const debug = () => ctls.map((c) => `--- ${c.id}\n${c.text()}`).join('\n');
    const first = await until('a leader', holder, 30_000, debug);
    const leader = first === 'ctl-a' ? a : b;
    const follower = leader === a ? b : a;
    // The follower serves health but not the task API.
    await until('the follower to answer 503', async () => (await fetch(`${follower.url}/v1/tasks`)).status === 503, 10_000, debug);
    expect((await fetch(`${follower.url}/healthz`)).status).toBe(200);
    const transitions = (await get(LEASE)).spec.leaseTransitions ?? 0;

    // In flight: a task whose Job's pod is running; and one accepted right before the kill.
    const inFlight = await submit(leader, 'in-flight');
    await runningPod(inFlight, debug);
    const lastMinute = await submit(leader, 'last-minute');
    await leader.kill9();

    const took = await until('the follower to take the Lease over', async () => (await holder()) === follower.id, 40_000, debug);
    expect(took).toBe(true);
    expect((await get(LEASE)).spec.leaseTransitions).toBe(transitions + 1);
    await until('the new leader to serve the task API', async () => (await fetch(`${follower.url}/v1/tasks`)).status === 200, 20_000, debug);
    await finish(inFlight, 'in-flight', debug);
    await finish(lastMinute, 'last-minute', debug);

    // Restart the killed replica; it follows. Then the leader steps down (SIGTERM hands the
    // Lease over at once) while a run is in flight: the restarted one leads and finishes it.
    const restarted = await startController(kubeconfig, `${leader.id}-restarted`, ['--leader-elect']);
    ctls.push(restarted);
    await until('the restarted replica to follow', async () => (await fetch(`${restarted.url}/v1/tasks`)).status === 503, 20_000, debug);
    const afterRestart = await submit(follower, 'after-restart');
    await runningPod(afterRestart, debug);
    await follower.stop();
    await until('the restarted replica to lead', async () => (await holder()) === restarted.id, 40_000, debug);
    await finish(afterRestart, 'after-restart', debug);

    // No task lost, none run twice: one Job and one run (attempt 1) per task, each Succeeded once.
    for (const [task, run] of [['in-flight', inFlight], ['last-minute', lastMinute], ['after-restart', afterRestart]]) {
      const jobs = await list(`/apis/batch/v1/namespaces/${NS}/jobs`, `paddock.dev/task=${task}`);
      expect(jobs.map((j) => j.metadata.name)).toEqual([run]);
      const runs = await list(`/api/v1/namespaces/${NS}/configmaps`, `paddock.dev/task=${task},paddock.dev/run`);
      expect(runs.map((r) => [r.metadata.name, r.metadata.labels['paddock.dev/phase']])).toEqual([[`run-${run}`, 'Succeeded']]);
      expect(JSON.parse(runs[0].data['status.json'])).toMatchObject({ task, outcome: 'succeeded' });
      const view = (await (await fetch(`${restarted.url}/v1/tasks/${task}`)).json()) as any;
      expect(view).toMatchObject({ phase: 'Succeeded', run: { name: run, attempt: 1 } });
    }
    expect(debug()).not.toMatch(/forbidden/i);
  });
});
