/**
 * How `paddock tasks ...` reaches the controller's task API and with which token.
 *
 * Server: `--server URL` (or $PADDOCK_SERVER, which `paddock local --serve`
 * prints); otherwise through the kubeconfig: a port-forward of its own to a
 * ready controller pod (@kubernetes/client-node's PortForward, through the API
 * server, as `kubectl port-forward` does).
 * Token: `--token`, `--token-file` (or $PADDOCK_TOKEN / $PADDOCK_TOKEN_FILE),
 * else the kubeconfig user's bearer token (a token, a token file or an exec
 * plugin). A kubeconfig that authenticates with a client certificate has none:
 * `--token "$(kubectl create token NAME)"` then. The port-forward is the kubeconfig
 * user's: list pods, get and create pods/portforward (ClusterRole PORT_FORWARD_ROLE).
 */
import * as fs from 'fs';
import * as net from 'net';
import { Writable } from 'stream';
import { PORT_FORWARD_ROLE, selectorLabels } from '../core/labels';
import { UsageError } from './args';
import { importEsm } from '../core/import-esm';
import { kubeconfigBearer } from '../core/kubeconfig';

/** Exit codes of `paddock tasks ...` (README). */
export const EXIT = { ok: 0, taskFailed: 1, usage: 2, notFound: 3, timedOut: 4, refused: 5, unreachable: 7 } as const;

/** A failed call, with the exit code it means. */
export class ClientError extends Error {
  constructor(
    message: string,
    public readonly exitCode: number,
  ) {
    super(message);
  }
}

export interface ConnectOptions {
  readonly server?: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly kubeconfig?: string;
  readonly context?: string;
  readonly namespace?: string;
}

export interface TaskApi {
  call(method: string, route: string, body?: unknown): Promise<{ status: number; body: any }>;
  close(): Promise<void>;
}


function readToken(file: string, flag: string): string {
  try {
    const token = fs.readFileSync(file, 'utf8').trim();
    if (!token) throw new UsageError(`${flag} ${file} is empty; give the file that holds the token`);
    return token;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${flag} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give the file that holds the token, e.g. .paddock/local/token`);
  }
}

function explicitToken(opts: ConnectOptions, env: NodeJS.ProcessEnv): string | undefined {
  if (opts.token) return opts.token;
  if (opts.tokenFile) return readToken(opts.tokenFile, '--token-file');
  if (env.PADDOCK_TOKEN) return env.PADDOCK_TOKEN;
  if (env.PADDOCK_TOKEN_FILE) return readToken(env.PADDOCK_TOKEN_FILE, 'PADDOCK_TOKEN_FILE');
  return undefined;
}

export async function connect(opts: ConnectOptions, env: NodeJS.ProcessEnv): Promise<TaskApi> {
  const server = opts.server ?? env.PADDOCK_SERVER;
  const token = explicitToken(opts, env);
  if (server) {
    if (!/^https?:\/\/[^/]+/.test(server)) throw new UsageError(`--server "${server}" is not a URL; write e.g. --server http://127.0.0.1:8080`);
    if (!token) throw new UsageError('give a token for the task API: --token TOKEN or --token-file FILE (paddock local: the token file it prints; a cluster: --token "$(kubectl create token NAME)")');
    return api(server, token, async () => undefined);
  }
  return viaKubeconfig(opts, token);
}

/** How often a 503 with Retry-After is retried before its answer is shown (about 30 s at Retry-After: 1). */
const UNAVAILABLE_RETRIES = 30;

function retryAfterMs(res: Response): number | undefined {
  const header = res.headers.get('retry-after');
  if (res.status !== 503 || header === null || !/^\d{1,3}$/.test(header.trim())) return undefined;
  return Math.min(Number(header) * 1000, 5000);
}

/** `forwardFailure`: why the port-forward under `base` broke, when it did (a failed fetch says no more). */
function api(base: string, token: string, close: () => Promise<void>, forwardFailure: () => ClientError | undefined = () => undefined): TaskApi {
  return {
    close,
    call: async (method, route, body) => {
      let res: Response;
      // A controller that is starting or electing a leader answers 503 with Retry-After: wait it out, briefly.
      for (let attempt = 1; ; attempt++) {
        try {
          res = await fetch(new URL(route, base), {
            method,
            headers: { Authorization: `Bearer ${token}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
            ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
          });
        } catch (err) {
          throw forwardFailure() ?? new ClientError(`cannot reach the controller at ${base}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`, EXIT.unreachable);
        }
        const wait = retryAfterMs(res);
        if (wait === undefined || attempt >= UNAVAILABLE_RETRIES) break;
        await res.arrayBuffer();
        await new Promise((r) => setTimeout(r, wait));
      }
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // plain text
      }
      return { status: res.status, body: parsed };
    },
  };
}

/** What the API server said in a refusal from @kubernetes/client-node (its body is a Status), without the rest of the exception. */
function statusMessage(err: any): string {
  try {
    const body = typeof err?.body === 'string' ? JSON.parse(err.body) : err?.body;
    if (typeof body?.message === 'string') return body.message;
  } catch {
    // not a Status
  }
  return String(err?.message ?? err).split('\n')[0];
}

/** The RoleBinding that gives the kubeconfig's user what the port-forward needs. */
function bindHint(namespace: string): string {
  return `bind ClusterRole ${PORT_FORWARD_ROLE} in namespace ${namespace} (kubectl -n ${namespace} create rolebinding NAME --clusterrole ${PORT_FORWARD_ROLE} --user USER, or --serviceaccount NS:NAME)`;
}

/** The controller through the kubeconfig: a local port forwarded to a ready controller pod's task API port. */
async function viaKubeconfig(opts: ConnectOptions, token: string | undefined): Promise<TaskApi> {
  const k8s = await importEsm('@kubernetes/client-node').catch(() => {
    throw new UsageError('give --server URL (or set PADDOCK_SERVER): reaching the controller through the kubeconfig needs @kubernetes/client-node, an optional dependency of paddock');
  });
  const kc = new k8s.KubeConfig();
  const which = opts.kubeconfig ? `--kubeconfig ${opts.kubeconfig}` : 'the kubeconfig ($KUBECONFIG or ~/.kube/config)';
  const namespace = opts.namespace ?? 'paddock';
  let bearer = token;
  try {
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    if (opts.context) kc.setCurrentContext(opts.context);
    // Also checks the cluster entry (server, CA, client certificate files).
    const fromKubeconfig = await kubeconfigBearer(kc);
    bearer ??= fromKubeconfig;
  } catch (err) {
    throw new UsageError(`${which} cannot be used: ${String((err as Error).message).split('\n')[0]}; fix it, pick another (--kubeconfig, --context), or give --server URL`);
  }
  if (!bearer) {
    throw new UsageError(`the kubeconfig's user (context "${kc.getCurrentContext()}") has no bearer token (a client certificate?); give --token "$(kubectl -n ${namespace} create token NAME)" for a ServiceAccount bound to paddock-task-submitter`);
  }
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const selector = Object.entries(selectorLabels(namespace, 'controller')).map(([k, v]) => `${k}=${v}`).join(',');
  let pods: any;
  try {
    pods = await core.listNamespacedPod({ namespace, labelSelector: selector });
  } catch (err) {
    const code = (err as { code?: number }).code;
    if (code === 401 || code === 403) {
      throw new ClientError(`the kubeconfig's user may not find the controller's pods (${statusMessage(err)}): ${bindHint(namespace)}; or give --server URL`, EXIT.refused);
    }
    throw new ClientError(`cannot list the controller's pods in namespace ${namespace} through the kubeconfig: ${statusMessage(err)}; or give --server URL`, EXIT.unreachable);
  }
  const ready = (pods.items ?? []).find((p: any) => p.status?.phase === 'Running' && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'));
  if (!ready) throw new ClientError(`no ready controller pod in namespace ${namespace} (selector ${selector}); is the platform deployed? (--namespace NS)`, EXIT.unreachable);
  const podName: string = ready.metadata.name;
  const container = (ready.spec?.containers ?? []).find((c: any) => c.name === 'controller');
  const port = (container?.ports ?? []).find((p: any) => p.name === 'http')?.containerPort ?? 8080;
  const what = `the port-forward to pod ${namespace}/${podName} port ${port}`;
  // Why the last port-forward broke. Only a message of our own is kept: the library's error
  // carries the upgrade request, bearer token included.
  let broken: ClientError | undefined;
  const forward = new k8s.PortForward(kc);
  const sockets = new Set<net.Socket>();
  const local = net.createServer((socket) => {
    sockets.add(socket);
    let ws: { on(event: 'close', f: () => void): void; close(): void } | undefined;
    socket.on('close', () => {
      sockets.delete(socket);
      ws?.close();
    });
    // A broken forward fails the request on this socket; `broken` says why.
    socket.on('error', () => undefined);
    let podErrors = '';
    const errors = new Writable({
      write(chunk: Buffer, _enc, done) {
        // The stream's first frame is its port number alone (the library strips it): nothing to say.
        if (chunk.length === 0) return done();
        podErrors += chunk.toString('utf8');
        broken = new ClientError(`${what} failed in the pod: ${podErrors.trim()}`, EXIT.unreachable);
        socket.destroy();
        done();
      },
    });
    forward.portForward(namespace, podName, [port], socket, errors, socket).then(
      (opened: NonNullable<typeof ws>) => {
        ws = opened;
        if (socket.destroyed) opened.close();
        opened.on('close', () => socket.end());
      },
      (err: { message?: string }) => {
        const status = /Unexpected server response: (\d+)/.exec(String(err?.message))?.[1];
        broken =
          status === '401' || status === '403'
            ? new ClientError(`the API server refused ${what} (HTTP ${status}): the kubeconfig's user needs get and create on pods/portforward; ${bindHint(namespace)}; or give --server URL`, EXIT.refused)
            : new ClientError(`${what} failed: ${status ? `HTTP ${status}` : String(err?.message ?? err).split('\n')[0]}; or give --server URL`, EXIT.unreachable);
        socket.destroy();
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    local.once('error', reject);
    local.listen(0, '127.0.0.1', () => resolve());
  });
  const base = `http://127.0.0.1:${(local.address() as net.AddressInfo).port}`;
  const close = () =>
    new Promise<void>((r) => {
      local.close(() => r());
      // fetch keeps its connections open: end them, or close() waits for them.
      for (const s of sockets) s.destroy();
    });
  return api(base, bearer, close, () => broken);
}

/** An answer that is not a success, as a ClientError with its exit code. */
export function failure(what: string, r: { status: number; body: any }): ClientError {
  const detail = typeof r.body === 'object' && r.body ? (r.body.problems ? `${r.body.error}:\n  ${r.body.problems.join('\n  ')}` : (r.body.error ?? JSON.stringify(r.body))) : String(r.body ?? '');
  const code = r.status === 401 || r.status === 403 ? EXIT.refused : r.status === 404 || r.status === 409 ? EXIT.notFound : r.status === 400 || r.status === 422 ? EXIT.usage : EXIT.unreachable;
  return new ClientError(`${what}: HTTP ${r.status}: ${detail}`, code);
}
