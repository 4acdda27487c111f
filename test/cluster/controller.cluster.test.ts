/**
 * Issue 11, item 2, on the real API server: `paddock controller` runs on the host as its
 * own synthesized ServiceAccount (a TokenRequest token, bound only by the synthesized
 * Role). The declared task's Job from dist/ is adopted; a task submitted through the task
 * API becomes a Job owned by its task ConfigMap; the real Job controller creates the pods
 * (admitted under "restricted"), kwok (the fake kubelet) completes them with the runner's
 * report as termination message, and the controller turns each into a run ConfigMap.
 * Deleting a task takes its Job, pod and runs with it (the real garbage collector). An
 * action outside the Role is denied: least privilege is real, and sufficient.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  api,
  applyDist,
  completePod,
  Controller,
  deleteNamespace,
  get,
  jobPods,
  kubectl,
  list,
  logTail,
  NS,
  runnerReport,
  serviceAccountKubeconfig,
  startController,
  until,
} from './support/cluster';

jest.setTimeout(240_000);

describe('paddock controller as its ServiceAccount on a real API server (pods completed by kwok, a fake kubelet)', () => {
  let ctl: Controller;
  let token: string;
  let kubeconfig: string;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-ctl-'));
  const debug = () => `--- controller\n${ctl?.text()}\n--- kube-controller-manager\n${logTail('kube-controller-manager', 15)}`;

  beforeAll(async () => {
    await deleteNamespace(NS);
    applyDist();
    ({ token, kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-controller', path.join(dir, 'controller.kubeconfig')));
    ctl = await startController(kubeconfig, 'ctl-sa');
  });
  afterAll(async () => {
    await ctl?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the token is the synthesized ServiceAccount (TokenReview), bound by the synthesized Role only', async () => {
    const review = await api('POST', '/apis/authentication.k8s.io/v1/tokenreviews', { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } });
    expect(review.body.status.authenticated).toBe(true);
    expect(review.body.status.user.username).toBe(`system:serviceaccount:${NS}:paddock-controller`);
    const bindings = [...(await list(`/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`)), ...(await list('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings'))];
    const ours = bindings.map((b) => ({ ...b, kind: b.metadata.namespace ? 'RoleBinding' : 'ClusterRoleBinding' })).filter((b) => (b.subjects ?? []).some((s: any) => s.kind === 'ServiceAccount' && s.name === 'paddock-controller' && s.namespace === NS));
    expect(ours.map((b) => `${b.kind}/${b.metadata.name} -> ${b.roleRef.kind}/${b.roleRef.name}`)).toEqual(['RoleBinding/paddock-controller -> Role/paddock-controller']);
  });

  test('the declared task: its Job from dist/ is adopted, kwok completes its pod with the runner report, the run ConfigMap holds it', async () => {
    const job = (await list(`/apis/batch/v1/namespaces/${NS}/jobs`, 'paddock.dev/task=summarize-readme'))[0];
    expect(job).toBeDefined();
    const runCm = `run-${job.metadata.name}`;
    const adopted = await until('the run ConfigMap of the declared Job', async () => get(`/api/v1/namespaces/${NS}/configmaps/${runCm}`), 60_000, debug);
    expect(adopted.metadata.annotations['paddock.dev/adopted']).toBe('true');
    expect(adopted.metadata.labels['paddock.dev/phase']).toBe('Running');
    const [pod] = await until('the Job pod', async () => ((await jobPods(job.metadata.name)).length ? jobPods(job.metadata.name) : undefined), 60_000, debug);
    expect(pod.status.phase).toBe('Running');
    await completePod(pod.metadata.name, runnerReport({ task: 'summarize-readme', harness: 'codex', pool: 'codex', outcome: 'succeeded', runnerExitCode: 0 }, '{"summary":"a README"}\n'));
    // The real Job controller marks the Job complete; the controller records the run.
    await until('the Job to complete', async () => (await get(`/apis/batch/v1/namespaces/${NS}/jobs/${job.metadata.name}`)).status?.conditions?.some((c: any) => c.type === 'Complete' && c.status === 'True'), 60_000, debug);
    const done = await until('the run to succeed', async () => {
      const cm = await get(`/api/v1/namespaces/${NS}/configmaps/${runCm}`);
      return cm?.metadata.labels['paddock.dev/phase'] === 'Succeeded' && cm;
    }, 60_000, debug);
    expect(done.data['results.jsonl']).toBe('{"summary":"a README"}\n');
    expect(JSON.parse(done.data['status.json'])).toMatchObject({ task: 'summarize-readme', outcome: 'succeeded' });
    expect(await list(`/apis/batch/v1/namespaces/${NS}/jobs`, 'paddock.dev/task=summarize-readme')).toHaveLength(1);
  });

  let run: string;
  test('a task submitted through the task API becomes a Job owned by its task ConfigMap; its pod is admitted, completed, recorded', async () => {
    const spec = { apiVersion: 'paddock.dev/v1alpha1', kind: 'Task', name: 'api-task', pool: 'codex', harness: 'codex', model: 'gpt-5-codex', prompt: 'Fix the flaky test', timeoutSeconds: 300 };
    const res = await fetch(`${ctl.url}/v1/tasks`, { method: 'POST', body: JSON.stringify(spec) });
    const created = (await res.json()) as any;
    expect(res.status).toBe(201);
    run = created.run;
    const taskCm = await get(`/api/v1/namespaces/${NS}/configmaps/task-api-task`);
    const job = await until('the Job', () => get(`/apis/batch/v1/namespaces/${NS}/jobs/${run}`), 60_000, debug);
    expect(job.metadata.ownerReferences).toEqual([{ apiVersion: 'v1', kind: 'ConfigMap', name: 'task-api-task', uid: taskCm.metadata.uid, blockOwnerDeletion: true }]);
    const runCm = await until('the run ConfigMap', () => get(`/api/v1/namespaces/${NS}/configmaps/run-${run}`), 60_000, debug);
    expect(runCm.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'ConfigMap', name: 'task-api-task', uid: taskCm.metadata.uid })]);
    // The Job controller's pod passed PodSecurity "restricted" (no FailedCreate) and kwok runs it.
    const [pod] = await until('the Job pod, Running', async () => {
      const pods = await jobPods(run);
      return pods.length > 0 && pods[0].status.phase === 'Running' ? pods : undefined;
    }, 60_000, debug);
    await completePod(pod.metadata.name, runnerReport({ task: 'api-task', harness: 'codex', pool: 'codex', outcome: 'succeeded', runnerExitCode: 0 }, '{"fixed":true}\n{"tests":"green"}\n'));
    await until('the task to succeed (API view)', async () => {
      const view = (await (await fetch(`${ctl.url}/v1/tasks/api-task`)).json()) as any;
      return view.phase === 'Succeeded' && view;
    }, 60_000, debug);
    const results = (await (await fetch(`${ctl.url}/v1/tasks/api-task/results`)).json()) as any;
    expect(results).toMatchObject({ run, phase: 'Succeeded', results: [{ fixed: true }, { tests: 'green' }], truncated: false });
    // kubectl get configmap -l paddock.dev/phase=Succeeded shows it.
    const byLabel = kubectl(['get', 'configmaps', '-n', NS, '-l', 'paddock.dev/task=api-task,paddock.dev/phase=Succeeded', '-o', 'name']);
    expect(byLabel.stdout.trim().split('\n').sort()).toEqual([`configmap/run-${run}`, 'configmap/task-api-task']);
    const events = await list(`/api/v1/namespaces/${NS}/events`);
    expect(events.filter((e) => e.reason === 'FailedCreate').map((e) => e.message)).toEqual([]);
  });

  test('deleting the task takes its Job, its pod and its run ConfigMap with it (the real garbage collector)', async () => {
    expect(run).toBeDefined();
    expect(await get(`/apis/batch/v1/namespaces/${NS}/jobs/${run}`)).toBeDefined();
    const del = kubectl(['delete', 'configmap', '-n', NS, 'task-api-task', '--wait=true']);
    expect(del.code).toBe(0);
    await until('Job, pods and run ConfigMap gone', async () => {
      const job = await get(`/apis/batch/v1/namespaces/${NS}/jobs/${run}`);
      const cm = await get(`/api/v1/namespaces/${NS}/configmaps/run-${run}`);
      const pods = await jobPods(run);
      return !job && !cm && pods.length === 0;
    }, 90_000, () => `${debug()}\n${logTail('kube-controller-manager', 20)}`);
    // And the API forgets it.
    await until('the API to forget the task', async () => (await fetch(`${ctl.url}/v1/tasks/api-task`)).status === 404, 30_000, debug);
  });

  test('an action outside the Role is denied to the controller\'s identity; nothing it needed was denied', async () => {
    const as = (method: string, url: string, body?: unknown) => api(method, url, body, { token });
    expect((await as('GET', `/api/v1/namespaces/${NS}/secrets`)).status).toBe(403);
    expect((await as('POST', `/api/v1/namespaces/${NS}/pods`, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' }, spec: { containers: [{ name: 'c', image: 'x' }] } })).status).toBe(403);
    expect((await as('GET', '/api/v1/namespaces/kube-system/configmaps')).status).toBe(403);
    expect((await as('PATCH', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles/paddock-controller`, { rules: [] }, )).status).toBe(403);
    expect((await as('DELETE', `/api/v1/namespaces/${NS}`)).status).toBe(403);
    // SelfSubjectAccessReview of what it does use: allowed.
    const can = async (verb: string, resource: string, group = '') =>
      (await as('POST', '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews', { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: { namespace: NS, verb, resource, group } } })).body.status.allowed;
    expect(await can('create', 'jobs', 'batch')).toBe(true);
    expect(await can('watch', 'pods')).toBe(true);
    expect(await can('update', 'configmaps')).toBe(true);
    expect(await can('get', 'secrets')).toBe(false);
    expect(await can('create', 'pods')).toBe(false);
    expect(await can('update', 'jobs', 'batch')).toBe(false);
    // The controller itself never hit a 403 while it did all of the above.
    expect(ctl.text()).not.toMatch(/forbidden|403/i);
  });
});
