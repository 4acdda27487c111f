/**
 * `paddock tasks` through a kubeconfig (no --server), where it fails before the task API:
 * a user without a bearer token, a user RBAC does not let find the controller, no ready
 * controller pod. A loopback HTTP server plays the API server (a fake: it answers the pod
 * list only); the built CLI runs as a process (@kubernetes/client-node is ESM-only).
 * test/cluster/port-forward.cluster.test.ts proves the path on a real API server.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import { AddressInfo } from 'net';
import * as path from 'path';
import { makeTmpDir } from '../support/runner-fixtures';

jest.setTimeout(60_000);

const PADDOCK = path.resolve(__dirname, '..', '..', 'bin', 'paddock.js');
const TOKEN = 'secret-bearer-token-0123456789';

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [PADDOCK, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function kubeconfig(file: string, server: string, user: string): string {
  // The fake speaks plain HTTP, which the client takes only with insecure-skip-tls-verify.
  const insecure = server.startsWith('http:') ? ['    insecure-skip-tls-verify: true'] : [];
  fs.writeFileSync(file, ['apiVersion: v1', 'kind: Config', 'clusters:', '- name: c', '  cluster:', `    server: ${server}`, ...insecure, 'users:', '- name: u', '  user:', user, 'contexts:', '- name: test', '  context: {cluster: c, user: u}', 'current-context: test', ''].join('\n'));
  return file;
}

/** The fake API server: every request gets `answer`; the requests it saw are kept. */
async function fakeApiServer(answer: { status: number; body: unknown }): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    res.writeHead(answer.status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((r) => server.close(() => r())) };
}

describe('paddock tasks through a kubeconfig, before the task API (fake API server)', () => {
  const dir = makeTmpDir('paddock-kc-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('a client-certificate user has no bearer token: exit 2, and the error says to give --token from kubectl create token', async () => {
    for (const f of ['c.crt', 'c.key']) fs.writeFileSync(path.join(dir, f), 'a placeholder: no request is made\n');
    const kc = kubeconfig(path.join(dir, 'cert.kubeconfig'), 'https://127.0.0.1:1', `    client-certificate: ${path.join(dir, 'c.crt')}\n    client-key: ${path.join(dir, 'c.key')}`);
    const r = await run(['tasks', 'list', '--kubeconfig', kc, '-n', 'team-a']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('paddock tasks list: the kubeconfig\'s user (context "test") has no bearer token (a client certificate?)');
    expect(r.stderr).toContain('--token "$(kubectl -n team-a create token NAME)" for a ServiceAccount bound to paddock-task-submitter');
  });

  test('a kubeconfig that cannot be read: exit 2, naming the file and the way out', async () => {
    const r = await run(['tasks', 'list', '--kubeconfig', path.join(dir, 'missing.kubeconfig')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^paddock tasks list: --kubeconfig \S+missing\.kubeconfig cannot be used: .*ENOENT.*; fix it, pick another \(--kubeconfig, --context\), or give --server URL\n$/);
  });

  test('RBAC refuses the pod list: exit 5, the API server\'s reason and the ClusterRole to bind, no stack, no token', async () => {
    const api = await fakeApiServer({
      status: 403,
      body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403, message: 'pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "paddock"' },
    });
    try {
      const r = await run(['tasks', 'list', '--kubeconfig', kubeconfig(path.join(dir, 'token.kubeconfig'), api.url, `    token: ${TOKEN}`)]);
      expect(api.seen[0]).toMatch(/^GET \/api\/v1\/namespaces\/paddock\/pods\?labelSelector=\S+ Bearer secret-bearer-token/);
      expect(r.code).toBe(5);
      expect(r.stderr).toBe(
        'paddock tasks list: the kubeconfig\'s user may not find the controller\'s pods (pods is forbidden: User "bob" cannot list resource "pods" in API group "" in the namespace "paddock"): ' +
          'bind ClusterRole paddock-controller-port-forward in namespace paddock (kubectl -n paddock create rolebinding NAME --clusterrole paddock-controller-port-forward --user USER, or --serviceaccount NS:NAME); or give --server URL\n',
      );
      expect(r.stderr).not.toContain(TOKEN);
    } finally {
      await api.close();
    }
  });

  test('no ready controller pod: exit 7 and the namespace and selector it looked in', async () => {
    const api = await fakeApiServer({ status: 200, body: { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [] } });
    try {
      const r = await run(['tasks', 'get', 'x', '--kubeconfig', kubeconfig(path.join(dir, 'empty.kubeconfig'), api.url, `    token: ${TOKEN}`), '-n', 'team-b']);
      expect(r.code).toBe(7);
      expect(r.stderr).toMatch(/^paddock tasks get: no ready controller pod in namespace team-b \(selector \S+\); is the platform deployed\? \(--namespace NS\)\n$/);
    } finally {
      await api.close();
    }
  });
});
