/**
 * A session in a job pool on the real API server: `paddock controller` as its synthesized
 * ServiceAccount, the Job controller, PodSecurity "restricted", and kwok (the fake kubelet)
 * running the pods. The test plays the runner's part at the wire: the termination message
 * (kwok's stage puts it on the pod) and the pod's log (a kwok Logs object serves it from a
 * file), which carries the session's new state. Proves the lock (the second task's Job only
 * after the first run ended and its state was saved), that the second Job mounting the
 * session ConfigMap is admitted, and that the state comes back through pods/log under the
 * controller's own Role.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { sessionLogLines, type SessionState } from '../../core/session';
import { api, applyDist, completePod, Controller, deleteNamespace, get, jobPods, logTail, NS, runnerReport, serviceAccountKubeconfig, startController, taskApiHeaders, until } from './support/cluster';

jest.setTimeout(240_000);

describe('a session in a job pool on a real API server (pods run by kwok, a fake kubelet; the test writes the runner\'s report and log)', () => {
  let ctl: Controller;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-job-session-'));
  const debug = () => `--- controller\n${ctl?.text()}\n--- kwok\n${logTail('kwok', 15)}`;

  beforeAll(async () => {
    await deleteNamespace(NS);
    applyDist();
    const { kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-controller', path.join(dir, 'controller.kubeconfig'));
    ctl = await startController(kubeconfig, 'ctl-session');
  });
  afterAll(async () => {
    await ctl?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const view = async (name: string): Promise<any> => (await fetch(`${ctl.url}/v1/tasks/${name}`, { headers: await taskApiHeaders() })).json();
  const runningPod = (job: string) =>
    until(`the pod of ${job}, Running`, async () => {
      const pods = await jobPods(job);
      return pods.length > 0 && pods[0].status.phase === 'Running' ? pods[0] : undefined;
    }, 60_000, debug);
  const state = (turns: string[]): SessionState => ({ name: 'notes', harness: 'codex', turns: turns.map((t) => ({ task: t, prompt: `do ${t}`, output: `did ${t}` })), patches: {}, resume: 'transcript' });

  /** What the runner leaves: its log (served by kwok from a file, CRI format) ending in the session's lines, and its report. */
  async function finish(pod: string, task: string, session: SessionState): Promise<void> {
    const lines = sessionLogLines(session);
    const file = path.join(dir, `${pod}.log`);
    const at = new Date().toISOString();
    fs.writeFileSync(file, ['[paddock] outcome succeeded', ...lines].map((l) => `${at} stdout F ${l}`).join('\n') + '\n');
    const logs = { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'Logs', metadata: { name: pod, namespace: NS }, spec: { logs: [{ containers: ['runner'], logsFile: file }] } };
    expect((await api('POST', `/apis/kwok.x-k8s.io/v1alpha1/namespaces/${NS}/logs`, logs)).status).toBe(201);
    // kwok serves it through the API server before the pod ends (the controller reads it then).
    await until(`kwok to serve the log of ${pod}`, async () => {
      const r = await api('GET', `/api/v1/namespaces/${NS}/pods/${pod}/log?container=runner&tailLines=${lines.length}`);
      return r.status === 200 && String(r.body).includes('paddock/v1 session');
    }, 60_000, debug);
    await completePod(pod, runnerReport({ task, harness: 'codex', pool: 'codex', outcome: 'succeeded', runnerExitCode: 0, sessionLogLines: lines.length }, ''));
  }

  test('the second task\'s Job waits for the first run and its saved state, mounts it, and its own state comes back through pods/log', async () => {
    const spec = (name: string, session: object) => ({ apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name, pool: 'codex', harness: 'codex', model: 'gpt-5-codex', prompt: `do ${name}`, timeoutSeconds: 300, session });
    const submit = async (body: object) => (await fetch(`${ctl.url}/v1/tasks`, { method: 'POST', headers: await taskApiHeaders(), body: JSON.stringify(body) })).json() as Promise<any>;
    const one = await submit(spec('s-one', { name: 'notes', create: true }));
    const two = await submit(spec('s-two', { name: 'notes' }));
    expect([one.run, two.run]).toEqual([expect.stringMatching(/^s-one-/), expect.stringMatching(/^s-two-/)]);

    const job1 = await until('the first Job', () => get(`/apis/batch/v1/namespaces/${NS}/jobs/${one.run}`), 60_000, debug);
    expect(JSON.stringify(job1.spec.template.spec)).not.toContain('session');
    const pod1 = await runningPod(one.run);
    // The second waits, shown as such, and has no Job.
    const waiting = await until('the second task to be queued', async () => {
      const v = await view('s-two');
      return v.phase === 'Queued' && v;
    }, 60_000, debug);
    expect(waiting).toMatchObject({ phase: 'Queued', session: { name: 'notes', waitingFor: 's-one' } });
    expect(await get(`/apis/batch/v1/namespaces/${NS}/jobs/${two.run}`)).toBeUndefined();

    await finish(pod1.metadata.name, 's-one', state(['s-one']));
    const job2 = await until('the second Job', () => get(`/apis/batch/v1/namespaces/${NS}/jobs/${two.run}`), 60_000, debug);
    // By then the first run ended and its state was saved: read back through pods/log.
    expect((await view('s-one')).phase).toBe('Succeeded');
    const saved = await get(`/api/v1/namespaces/${NS}/configmaps/session-notes`);
    expect(JSON.parse(saved.data['state.json']).turns.map((t: any) => t.task)).toEqual(['s-one']);
    // The state goes into the pod as the session's ConfigMap, in the runner's container only.
    const podSpec = job2.spec.template.spec;
    expect(podSpec.volumes).toContainEqual({ name: 'paddock-session', configMap: { name: 'session-notes', optional: true, items: [{ key: 'state.json', path: 'state.json' }], defaultMode: 420 } });
    const runner = podSpec.containers.find((c: any) => c.name === 'runner');
    expect(runner.args).toEqual(['run', '--phase', 'agent', '--session-state', '/etc/paddock/session/state.json']);
    expect(runner.volumeMounts).toContainEqual({ name: 'paddock-session', mountPath: '/etc/paddock/session', readOnly: true });
    expect(JSON.stringify(podSpec.initContainers)).not.toContain('session');
    // Admitted under PodSecurity "restricted" and run.
    const pod2 = await runningPod(two.run);

    await finish(pod2.metadata.name, 's-two', state(['s-one', 's-two']));
    await until('the second task to succeed', async () => (await view('s-two')).phase === 'Succeeded', 60_000, debug);
    const after = await get(`/api/v1/namespaces/${NS}/configmaps/session-notes`);
    expect(JSON.parse(after.data['state.json'])).toMatchObject({ name: 'notes', pool: 'codex', turns: [{ task: 's-one', output: 'did s-one' }, { task: 's-two', output: 'did s-two' }] });
    // All of it under the controller's own Role: nothing was forbidden.
    expect(ctl.text()).not.toMatch(/forbidden|403|cannot read its log/i);
  });
});
