/**
 * `paddock tasks` without --server on the real API server: the CLI lists the controller's
 * pods through the kubeconfig and port-forwards to a ready one's task API port
 * (pods/portforward, a WebSocket through the API server), with the kubeconfig user's bearer
 * token for the task API. The controller pod is one kwok fakes: kwok serves the kubelet API
 * the API server calls and, told by a kwok PortForward object, forwards the pod's port to the
 * `paddock controller` running on the host as its ServiceAccount. What is real: the API
 * server's authentication and RBAC of the pod list and the port-forward, its stream to the
 * kubelet API, and the controller's TokenReview and SubjectAccessReview of the token.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { api, applyDist, cluster, Controller, deleteNamespace, freePort, get, list, NS, paddock, serviceAccountKubeconfig, startController, until } from './support/cluster';

jest.setTimeout(240_000);

const SELECTOR = 'app.kubernetes.io/instance=paddock,app.kubernetes.io/component=controller';

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

describe('paddock tasks through the kubeconfig: a port-forward through the real API server, which kwok (the fake kubelet) forwards to the host-run controller', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-pf-'));
  let ctl: Controller;
  const kubeconfigs: Record<string, { token: string; kubeconfig: string }> = {};
  let controllerPods: string[] = [];
  const debug = () => `--- controller\n${ctl?.text()}`;

  /** `paddock tasks ...` as a person runs it: no --server, no PADDOCK_* variables, HOME without a kubeconfig. */
  async function tasks(args: string[]): Promise<Result> {
    const p = paddock(['tasks', ...args], { PATH: process.env.PATH, HOME: dir });
    const stdout: string[] = [];
    const stderr: string[] = [];
    p.child.stdout!.on('data', (d) => stdout.push(String(d)));
    p.child.stderr!.on('data', (d) => stderr.push(String(d)));
    const code = await new Promise<number | null>((r) => p.child.once('exit', (c) => r(c)));
    return { code, stdout: stdout.join(''), stderr: stderr.join('') };
  }

  /** A ServiceAccount with RoleBindings to the given ClusterRoles (and Roles), and a kubeconfig with its TokenRequest token. */
  async function user(name: string, clusterRoles: string[], roles: string[] = []): Promise<{ token: string; kubeconfig: string }> {
    const sa = await api('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
    expect(sa.status).toBe(201);
    for (const [kind, role] of [...clusterRoles.map((r) => ['ClusterRole', r]), ...roles.map((r) => ['Role', r])]) {
      const rb = await api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: `${name}-${role}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind, name: role },
        subjects: [{ kind: 'ServiceAccount', name, namespace: NS }],
      });
      expect(rb.status).toBe(201);
    }
    return serviceAccountKubeconfig(NS, name, path.join(dir, `${name}.kubeconfig`));
  }

  /** kwok's PortForward for each controller pod: its task API port goes to `port` on the host. */
  async function forwardControllerPodsTo(port: number): Promise<void> {
    for (const pod of controllerPods) {
      const body = { apiVersion: 'kwok.x-k8s.io/v1alpha1', kind: 'PortForward', metadata: { name: pod, namespace: NS }, spec: { forwards: [{ ports: [8080], target: { address: '127.0.0.1', port } }] } };
      const url = `/apis/kwok.x-k8s.io/v1alpha1/namespaces/${NS}/portforwards`;
      const existing = await get(`${url}/${pod}`);
      const r = existing ? await api('PUT', `${url}/${pod}`, { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata.resourceVersion } }) : await api('POST', url, body);
      expect([200, 201]).toContain(r.status);
    }
  }

  beforeAll(async () => {
    await deleteNamespace(NS);
    applyDist();
    const { kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-controller', path.join(dir, 'controller.kubeconfig'));
    ctl = await startController(kubeconfig, 'ctl-pf');
    // The Deployment's pods, Ready by kwok's stage; the CLI picks one of them.
    const pods = await until('the controller pods to be Ready', async () => {
      const items = await list(`/api/v1/namespaces/${NS}/pods`, SELECTOR);
      return items.length > 0 && items.every((p) => p.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) && items;
    }, 60_000, debug);
    controllerPods = pods.map((p) => p.metadata.name);
    expect(pods.map((p) => p.spec.containers.find((c: any) => c.name === 'controller').ports.find((x: any) => x.name === 'http').containerPort)).toEqual(pods.map(() => 8080));
    await forwardControllerPodsTo(Number(new URL(ctl.url).port));
    kubeconfigs.alice = await user('alice', ['paddock-task-submitter', 'paddock-controller-port-forward']);
  });
  afterAll(async () => {
    await ctl?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("submit, list, get with the kubeconfig alone: the port-forward reaches the controller, which authorizes the kubeconfig user's token", async () => {
    const kc = kubeconfigs.alice.kubeconfig;
    expect(fs.readFileSync(kc, 'utf8')).not.toMatch(/client-certificate/);
    const submitted = await tasks(['submit', '--kubeconfig', kc, '--name', 'pf-task', '--pool', 'codex', '--harness', 'codex', '--model', 'gpt-5-codex', '--prompt', 'Fix the flaky test', '-o', 'json']);
    expect(submitted).toMatchObject({ code: 0, stderr: '' });
    const run = JSON.parse(submitted.stdout).run as string;
    expect(run).toMatch(/^pf-task-/);
    // The controller stored it: the task ConfigMap and, soon, its Job.
    expect((await get(`/api/v1/namespaces/${NS}/configmaps/task-pf-task`))?.metadata.labels['paddock.dev/task']).toBe('pf-task');
    await until('the Job of pf-task', () => get(`/apis/batch/v1/namespaces/${NS}/jobs/${run}`), 60_000, debug);
    const listed = await tasks(['list', '--kubeconfig', kc, '-o', 'json']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).tasks.map((t: any) => t.name)).toContain('pf-task');
    const got = await tasks(['get', 'pf-task', '--kubeconfig', kc]);
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(new RegExp(`^pf-task\\t\\w+\\tcodex\\t${run} attempt 1`));
  });

  test("the task API's own RBAC applies to the forwarded call: a viewer may list but not submit (403 from the controller, exit 5)", async () => {
    const bob = await user('bob', ['paddock-task-viewer', 'paddock-controller-port-forward']);
    expect((await tasks(['list', '--kubeconfig', bob.kubeconfig])).code).toBe(0);
    const r = await tasks(['submit', '--kubeconfig', bob.kubeconfig, '--name', 'bob-task', '--pool', 'codex', '--harness', 'codex', '--model', 'gpt-5-codex', '--prompt', 'x']);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^paddock tasks submit: submit "bob-task": HTTP 403: system:serviceaccount:paddock:bob may not /);
    expect(await get(`/api/v1/namespaces/${NS}/configmaps/task-bob-task`)).toBeUndefined();
  });

  test('a user bound to paddock-task-submitter only may not list the pods: exit 5 naming the ClusterRole to bind, no token printed', async () => {
    const carol = await user('carol', ['paddock-task-submitter']);
    const r = await tasks(['list', '--kubeconfig', carol.kubeconfig]);
    expect(r.code).toBe(5);
    expect(r.stderr).toBe(
      `paddock tasks list: the kubeconfig's user may not find the controller's pods (pods is forbidden: User "system:serviceaccount:paddock:carol" cannot list resource "pods" in API group "" in the namespace "paddock"): ` +
        'bind ClusterRole paddock-controller-port-forward in namespace paddock (kubectl -n paddock create rolebinding NAME --clusterrole paddock-controller-port-forward --user USER, or --serviceaccount NS:NAME); or give --server URL\n',
    );
    expect(r.stderr + r.stdout).not.toContain(carol.token);
  });

  test('a user who may list pods but not port-forward: the API server refuses the upgrade, exit 5 naming the ClusterRole, no token printed', async () => {
    const role = await api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'list-pods' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }] });
    expect(role.status).toBe(201);
    const dave = await user('dave', ['paddock-task-submitter'], ['list-pods']);
    const r = await tasks(['list', '--kubeconfig', dave.kubeconfig]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(
      new RegExp(
        `^paddock tasks list: the API server refused the port-forward to pod paddock/(${controllerPods.join('|')}) port 8080 \\(HTTP 403\\): the kubeconfig's user needs get and create on pods/portforward; bind ClusterRole paddock-controller-port-forward in namespace paddock `,
      ),
    );
    expect(r.stderr + r.stdout).not.toContain(dave.token);
  });

  test('a client-certificate user (the admin kubeconfig) has no bearer token: exit 2 with the --token advice; with --token it works', async () => {
    const admin = cluster().adminKubeconfig;
    expect(fs.readFileSync(admin, 'utf8')).toMatch(/client-certificate:/);
    const r = await tasks(['list', '--kubeconfig', admin]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('paddock tasks list: the kubeconfig\'s user (context "test") has no bearer token (a client certificate?); give --token "$(kubectl -n paddock create token NAME)" for a ServiceAccount bound to paddock-task-submitter\n');
    // The advice taken: the pod list and the port-forward as the admin, the task API as alice.
    const withToken = await tasks(['list', '--kubeconfig', admin, '--token', kubeconfigs.alice.token, '-o', 'json']);
    expect(withToken.code).toBe(0);
    expect(JSON.parse(withToken.stdout).tasks.map((t: any) => t.name)).toContain('pf-task');
  });

  test("nothing listens where kwok forwards to: the pod's error, exit 7", async () => {
    const closed = await freePort();
    await forwardControllerPodsTo(closed);
    try {
      const r = await until('kwok to forward to the closed port', async () => {
        const res = await tasks(['list', '--kubeconfig', kubeconfigs.alice.kubeconfig]);
        return res.code !== 0 && res;
      }, 30_000, debug);
      expect(r.code).toBe(7);
      expect(r.stderr).toMatch(new RegExp(`^paddock tasks list: the port-forward to pod paddock/\\S+ port 8080 failed in the pod: .*failed to dial 127\\.0\\.0\\.1:${closed}: .*connection refused`));
    } finally {
      await forwardControllerPodsTo(Number(new URL(ctl.url).port));
    }
    await until('the forward back to the controller', async () => (await tasks(['list', '--kubeconfig', kubeconfigs.alice.kubeconfig])).code === 0, 30_000, debug);
  });
});
