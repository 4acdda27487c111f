/**
 * What the cluster suites use: the running control plane (started by the global setup),
 * kubectl as a user runs it, the API as the controller's ServiceAccount sees it, and the
 * `paddock` command as a process (the built CLI: the product's public surface).
 */
import { ChildProcess, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { apiRequest, ClusterInfo, freePort, kubeconfigYaml, stopGroup, until } from './control-plane';

export { apiRequest, freePort, until } from './control-plane';
export type { ClusterInfo } from './control-plane';

export const ROOT = path.resolve(__dirname, '..', '..', '..');
export const PADDOCK = path.join(ROOT, 'bin', 'paddock.js');
export const DIST = path.join(ROOT, 'dist', 'paddock.k8s.yaml');
/** The namespace of the example platform (dist/). */
export const NS = 'paddock';

export function cluster(): ClusterInfo {
  const file = process.env.PADDOCK_CLUSTER_INFO;
  if (!file) throw new Error('no control plane: run the cluster suites with npm run test:cluster (jest.cluster.config.js starts it)');
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** kubectl as an admin (or with the given kubeconfig). */
export function kubectl(args: string[], opts: { kubeconfig?: string; input?: string; timeoutMs?: number } = {}): CommandResult {
  const c = cluster();
  const r = spawnSync(c.tools.kubectl, [`--kubeconfig=${opts.kubeconfig ?? c.adminKubeconfig}`, ...args], {
    input: opts.input,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 120_000,
    env: { PATH: process.env.PATH, HOME: c.dir },
  });
  return { code: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
}

export function kubectlOk(args: string[], opts: { kubeconfig?: string; input?: string } = {}): string {
  const r = kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** The API as an admin, or with a bearer token. */
export function api(method: string, urlPath: string, body?: unknown, opts: { token?: string; contentType?: string } = {}) {
  return apiRequest(cluster(), method, urlPath, body, opts);
}

export async function get(urlPath: string): Promise<any | undefined> {
  const r = await api('GET', urlPath);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET ${urlPath}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

export async function list(urlPath: string, labelSelector?: string): Promise<any[]> {
  const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
  return ((await get(urlPath + q))?.items ?? []) as any[];
}

/** Deletes a namespace (if there) and waits until the namespace controller has removed it. */
export async function deleteNamespace(ns: string, timeoutMs = 120_000): Promise<void> {
  const r = await api('DELETE', `/api/v1/namespaces/${ns}`);
  if (r.status === 404) return;
  await until(`namespace ${ns} to be gone`, async () => (await api('GET', `/api/v1/namespaces/${ns}`)).status === 404, timeoutMs);
}

/**
 * `kubectl apply --server-side` of dist/ as a GitOps user: strict field validation (an
 * unknown or duplicate field is an error, not a warning), a field manager of its own.
 */
export function applyDist(file = DIST): string {
  return kubectlOk(['apply', '--server-side', '--field-manager=paddock-gitops', '--validate=strict', '-f', file]);
}

/** A token for a ServiceAccount from the TokenRequest API, and a kubeconfig that uses it. */
export async function serviceAccountKubeconfig(ns: string, name: string, file: string): Promise<{ token: string; kubeconfig: string }> {
  const r = await api('POST', `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
  if (r.status !== 201) throw new Error(`TokenRequest for ${ns}/${name}: ${r.status} ${JSON.stringify(r.body)}`);
  const token = r.body.status.token as string;
  const c = cluster();
  fs.writeFileSync(file, kubeconfigYaml(c.server, c.caFile, { token }, ns), { mode: 0o600 });
  return { token, kubeconfig: file };
}

let taskToken: Promise<string> | undefined;

/**
 * Headers for the controller's task API: a TokenRequest token of ServiceAccount
 * `task-submitter`, bound in NS to the synthesized ClusterRole paddock-task-submitter
 * (the controller checks it with TokenReview and SubjectAccessReview).
 */
export async function taskApiHeaders(): Promise<Record<string, string>> {
  taskToken ??= (async () => {
    const sa = await api('POST', `/api/v1/namespaces/${NS}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'task-submitter' } });
    if (sa.status !== 201 && sa.status !== 409) throw new Error(`ServiceAccount task-submitter: ${sa.status} ${JSON.stringify(sa.body)}`);
    const rb = await api('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${NS}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'task-submitter' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'paddock-task-submitter' },
      subjects: [{ kind: 'ServiceAccount', name: 'task-submitter', namespace: NS }],
    });
    if (rb.status !== 201 && rb.status !== 409) throw new Error(`RoleBinding task-submitter: ${rb.status} ${JSON.stringify(rb.body)}`);
    const r = await api('POST', `/api/v1/namespaces/${NS}/serviceaccounts/task-submitter/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: 3600 } });
    if (r.status !== 201) throw new Error(`TokenRequest for task-submitter: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.status.token as string;
  })();
  return { Authorization: `Bearer ${await taskToken}`, 'Content-Type': 'application/json' };
}

/** A warm worker's credential as its pod would have it: a token of pool-POOL for Paddock's worker audience, in `file`. */
export async function workerTokenFile(pool: string, file: string): Promise<string> {
  fs.writeFileSync(file, await poolToken(pool, ['paddock.dev/worker-api']), { mode: 0o600 });
  return file;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly out: string[];
  text(): string;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
  /** kill -9 of the whole process group, and wait for it to be gone. */
  kill9(): Promise<void>;
}

/** A `paddock` process in its own process group (so kill -9 takes its children too). */
/**
 * A PID namespace of bubblewrap's standing in for a container (bwrap is its PID 1, as a
 * pod's init is): what `paddock worker --isolation container` needs, since it kills every
 * process of its uid it can see but itself and its ancestors.
 */
export const CONTAINER_PID_NAMESPACE = ['bwrap', '--unshare-pid', '--die-with-parent', '--dev-bind', '/', '/', '--proc', '/proc'];

export function paddock(args: string[], env: NodeJS.ProcessEnv, cwd = ROOT, wrapper: readonly string[] = []): Proc {
  const out: string[] = [];
  const [command, ...argv] = [...wrapper, process.execPath, PADDOCK, ...args];
  const child = spawn(command, argv, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  child.stdout!.on('data', (d) => out.push(String(d)));
  child.stderr!.on('data', (d) => out.push(String(d)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    out,
    text: () => out.join(''),
    stop: () => stopGroup(child, 8000),
    kill9: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
      await exited;
    },
  };
}

export interface Controller extends Proc {
  readonly url: string;
  readonly workerUrl: string;
  readonly id: string;
}

/** `paddock controller` on the host, as the given kubeconfig's identity. */
export async function startController(kubeconfig: string, id: string, extra: string[] = []): Promise<Controller> {
  const port = await freePort();
  const workerPort = await freePort();
  const metricsPort = await freePort();
  const proc = paddock(['controller', '--namespace', NS, '--port', String(port), '--worker-port', String(workerPort), '--metrics-port', String(metricsPort), '--kubeconfig', kubeconfig, ...extra], {
    PATH: process.env.PATH,
    PADDOCK_POD_NAME: id,
  });
  const url = `http://127.0.0.1:${port}`;
  await until('the controller API', async () => (await fetch(url + '/healthz').catch(() => undefined))?.ok, 30_000, proc.text);
  // /healthz answers while the controller still lists the cluster; the task API answers 503 until it has started.
  if (!extra.includes('--leader-elect')) {
    const headers = await taskApiHeaders();
    await until('the controller to start', async () => (await fetch(url + '/v1/tasks', { headers }).catch(() => undefined))?.status === 200, 60_000, proc.text);
  }
  return { ...proc, url, workerUrl: `http://127.0.0.1:${workerPort}`, id };
}

/**
 * The kubelet stand-in's part of a Job pod: the test writes what the runner writes to
 * /dev/termination-log onto the pod (annotations), and kwok's stage completes the pod with
 * it as the container's termination message (test/cluster/kwok-stages.yaml).
 */
export async function completePod(pod: string, terminationMessage: string, exitCode = 0): Promise<void> {
  const r = await api(
    'PATCH',
    `/api/v1/namespaces/${NS}/pods/${pod}`,
    { metadata: { annotations: { 'paddock.test/termination-message': terminationMessage, 'paddock.test/exit-code': String(exitCode) } } },
    { contentType: 'application/merge-patch+json' },
  );
  if (r.status !== 200) throw new Error(`annotating pod ${pod}: ${r.status} ${JSON.stringify(r.body)}`);
}

/**
 * The runner's report in a Job's termination message, as the runner writes it
 * (runner/termination-message.ts: tag paddock/v1, the compact status, results.jsonl lines).
 * Written out here on purpose: it is the wire format between two programs.
 */
export function runnerReport(status: Record<string, unknown>, resultsJsonl: string): string {
  return JSON.stringify({ t: 'paddock/v1', status, results: resultsJsonl.trim() });
}

export async function jobPods(job: string): Promise<any[]> {
  return list(`/api/v1/namespaces/${NS}/pods`, `batch.kubernetes.io/job-name=${job}`);
}

export function logTail(name: string, lines = 40): string {
  try {
    return fs.readFileSync(path.join(cluster().logs, `${name}.log`), 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/** A TokenRequest token of pool `pool`'s ServiceAccount (for the API server's audience unless given). */
export async function poolToken(pool: string, audiences?: string[]): Promise<string> {
  const r = await api('POST', `/api/v1/namespaces/${NS}/serviceaccounts/pool-${pool}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { ...(audiences ? { audiences } : {}), expirationSeconds: 3600 } });
  if (r.status !== 201) throw new Error(`TokenRequest for pool-${pool}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.status.token as string;
}

export interface HostGateway extends Proc {
  readonly url: string;
}

/**
 * `paddock gateway` on the host as the synthesized paddock-model-gateway ServiceAccount,
 * with dist/'s gateway.json: every provider's upstream at `upstream` (a loopback stand-in)
 * and its key file holding `keys[provider]`.
 */
export async function startHostGateway(dir: string, upstream: string, keys: Record<string, string>): Promise<HostGateway> {
  const docs = parseAllDocuments(fs.readFileSync(DIST, 'utf8')).map((d) => d.toJSON()) as any[];
  const config = JSON.parse(docs.find((d) => d?.kind === 'ConfigMap' && d.metadata.name === 'paddock-model-gateway').data['gateway.json']);
  for (const routes of Object.values<any>(config.pools)) {
    for (const [name, p] of Object.entries<any>(routes.providers)) {
      const keyFile = path.join(dir, `${name}.key`);
      fs.writeFileSync(keyFile, keys[name] ?? `sk-${name}-unused`, { mode: 0o600 });
      Object.assign(p, { upstream, keyFile });
    }
  }
  const configFile = path.join(dir, 'gateway.json');
  fs.writeFileSync(configFile, JSON.stringify(config));
  const { kubeconfig } = await serviceAccountKubeconfig(NS, 'paddock-model-gateway', path.join(dir, 'gateway.kubeconfig'));
  const port = await freePort();
  const proc = paddock(['gateway', '--config', configFile, '--port', String(port), '--host', '127.0.0.1', '--kubeconfig', kubeconfig], { PATH: process.env.PATH });
  const url = `http://127.0.0.1:${port}`;
  await until('the gateway', async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok, 30_000, proc.text);
  return { ...proc, url };
}

