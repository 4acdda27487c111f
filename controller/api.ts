/**
 * The controller's HTTP APIs, on two listeners (ports) so that a NetworkPolicy can
 * keep agent code away from the task API. Every /v1/ route needs a bearer token
 * (auth.ts: who may do what); a POST needs `Content-Type: application/json`
 * (415 otherwise: a web page can send text/plain across origins, not JSON).
 * 401: no or a bad token; 403: the caller may not (nothing was changed).
 *
 * The task API (`--port`, default 8080; the `paddock-controller` Service, port 80 -> http):
 * for people and tools; warm workers and task Jobs (agent pods) are not admitted to it.
 *
 *   GET    /healthz                      200 "ok" on every replica (liveness and readiness; followers too)
 *   POST   /v1/tasks                     body: a task spec (task.schema.json). 201 created / 200 updated,
 *                                        400 { problems } when it does not validate, 422 when its pool is unknown
 *                                        or its harness's CLI cannot enforce its agent policy { problems }
 *   GET    /v1/tasks                     { tasks: [TaskView] } of the pools the caller may list
 *   GET    /v1/tasks/:name               TaskView (phase, current run, attempt, outcome, priority, queue position), 404
 *   GET    /v1/tasks/:name/results       { run, phase, status, results, truncated, changes, delivery }, 404 (no run yet: 409)
 *   GET    /v1/tasks/:name/patch[?source=S]  the run's patch of a source (git apply it to X-Paddock-Base), 404, 409, 410 patchTooLarge or patchWithheld
 *   DELETE /v1/tasks/:name               cancel: the task and its runs are removed (a running agent is stopped)
 *   GET    /v1/sessions                  { sessions: [SessionView] } of the pools the caller may list
 *   GET    /v1/sessions/:name            SessionView (turns, how it resumes and its CLI state size, patch sizes, its tasks), 404
 *   DELETE /v1/sessions/:name            removes the stored state (the next task must create the session), 404
 *
 * The worker lease API (`--worker-port`, default 8081; Service port 8081 -> workers): for
 * warm worker pods only, each with its pod's projected ServiceAccount token. It hands out
 * runs of the worker's own pool only, and only of a warm pool.
 *
 *   GET  /healthz                        200 "ok"
 *   POST /v1/leases                      { pool, worker, waitMs } -> 200 LeaseGrant | 204 nothing to do,
 *                                        403 another pool's, 404 when the pool is not a warm pool
 *   POST /v1/leases/:id/renew            { worker } -> 200 | 409 (the lease is no longer yours: stop the run) | 403 another's lease
 *   POST /v1/leases/:id/complete         { worker, status, results, truncated?, patches? } -> 200 | 409 (report dropped) | 403;
 *                                        patches: source -> gzip+base64 patch (core/protocol.ts caps their size)
 *
 * Each listener serves only its own routes (404 for the other's). With more than one
 * controller replica only the leader serves /v1/: followers forward requests to it
 * (503 with Retry-After: 1 while no leader is known).
 */
import * as http from 'http';
import { AddressInfo } from 'net';
import { TaskSpec, validateSpec } from '../policy/specs';
import { ApiAuth, bearerToken, PADDOCK_API_GROUP, TaskAccess, TASKS_RESOURCE, UserInfo } from './auth';
import type { Controller } from './controller';
import { MAX_PATCH_GZIP_BYTES } from '../core/protocol';

/** Largest request body by default (a worker's report: results and status are capped at 512 + 64 KiB by the worker). */
const MAX_BODY = 2 * 1024 * 1024;
const MAX_WAIT_MS = 60_000;

/** Which routes a listener serves: the task API (`tasks`) or the warm workers' lease API (`workers`). */
export type ApiRoutes = 'tasks' | 'workers';

export interface ApiOptions {
  readonly port: number;
  /** The routes this listener serves; the other listener's answer 404 here. */
  readonly routes: ApiRoutes;
  /** @default '0.0.0.0' */
  readonly host?: string;
  /** Whether this replica leads (serves /v1/). @default - always */
  readonly isLeader?: () => boolean;
  /** Largest request body; larger ones get 413. @default 2 MiB */
  readonly maxBodyBytes?: number;
  /** @default - see ApiTimeouts */
  readonly timeouts?: ApiTimeouts;
  /** The leader's URL for this listener (followers forward to it). @default - followers answer 503 */
  readonly leaderUrl?: () => string | undefined;
  /** Who may call: TokenReview + SubjectAccessReview in the cluster, one token in local mode. */
  readonly auth: ApiAuth;
}

/** How long a client may take, so slow or stalled clients do not hold connections forever. */
export interface ApiTimeouts {
  /** To send the request line and headers. @default 10000 */
  readonly headersMs?: number;
  /** To send the whole request, body included (a long poll's wait comes after it). @default 30000 */
  readonly requestMs?: number;
  /** A kept-alive connection with no request in flight is closed after this. @default 65000 */
  readonly idleMs?: number;
  /** How often the server checks the header and request deadlines. @default 1000 */
  readonly checkEveryMs?: number;
}

const DEFAULT_TIMEOUTS: Required<ApiTimeouts> = { headersMs: 10_000, requestMs: 30_000, idleMs: 65_000, checkEveryMs: 1000 };

export interface ApiServer {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    public readonly status: number,
    public readonly body: unknown,
  ) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}

export interface ApiServers {
  /** The task API listener. */
  readonly tasks: ApiServer;
  /** The worker lease API listener. */
  readonly workers: ApiServer;
  close(): Promise<void>;
}

/** Both listeners: the task API on `port`, the worker lease API on `workerPort` (0: any free port). */
export async function startApis(
  controller: Controller,
  opts: {
    readonly port: number;
    readonly workerPort: number;
    readonly host?: string;
    readonly isLeader?: () => boolean;
    /** The leader's host (followers forward to it, on the same ports). */
    readonly leaderHost?: () => string | undefined;
    readonly auth: ApiAuth;
    readonly timeouts?: ApiTimeouts;
  },
): Promise<ApiServers> {
  const common = { host: opts.host, isLeader: opts.isLeader, auth: opts.auth, timeouts: opts.timeouts };
  const at = (port: number) => (opts.leaderHost ? () => leaderUrl(opts.leaderHost!(), port) : undefined);
  const tasks = await startApi(controller, { ...common, port: opts.port, routes: 'tasks', leaderUrl: at(opts.port) });
  let workers: ApiServer;
  try {
    workers = await startApi(controller, { ...common, port: opts.workerPort, routes: 'workers', leaderUrl: at(opts.workerPort) });
  } catch (err) {
    await tasks.close();
    throw err;
  }
  return { tasks, workers, close: async () => void (await Promise.all([tasks.close(), workers.close()])) };
}

function leaderUrl(host: string | undefined, port: number): string | undefined {
  if (!host) return undefined;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

export function startApi(controller: Controller, opts: ApiOptions): Promise<ApiServer> {
  const t = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const server = http.createServer({ headersTimeout: t.headersMs, requestTimeout: t.requestMs, keepAliveTimeout: t.idleMs, connectionsCheckingInterval: t.checkEveryMs }, (req, res) => {
    handle(controller, opts, req, res).catch((err) => {
      if (err instanceof HttpError) return send(res, err.status, typeof err.body === 'string' ? { error: err.body } : err.body);
      send(res, 500, { error: `internal error: ${(err as Error).message}` });
    });
  });
  // A socket silent for longer than the longest long poll (plus slack) is dead.
  server.timeout = Math.max(t.idleMs, MAX_WAIT_MS + 10_000);
  return listen(server, opts.port, opts.host);
}

/** Listen on host:port (0: any free port); `close` also ends kept-alive connections. */
export function listen(server: http.Server, port: number, host = '0.0.0.0', onClose: () => void = () => undefined): Promise<ApiServer> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const bound = (server.address() as AddressInfo).port;
      resolve({
        url: `http://${host !== '0.0.0.0' ? host : '127.0.0.1'}:${bound}`,
        port: bound,
        close: () =>
          new Promise<void>((r) => {
            onClose();
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** A worker's patches: source name -> base64, within the cap (a worker is not trusted to have kept it). */
function checkPatches(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'patches: give an object of source name -> base64 gzip');
  let size = 0;
  for (const [k, v] of Object.entries(value)) {
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(k) || typeof v !== 'string' || !/^[A-Za-z0-9+/=]*$/.test(v)) throw new HttpError(400, `patches.${k}: must be a source name -> base64 gzip`);
    size += Math.floor((v.length * 3) / 4);
  }
  if (size > MAX_PATCH_GZIP_BYTES) throw new HttpError(413, `patches: ${size} bytes gzipped, over the ${MAX_PATCH_GZIP_BYTES}-byte cap (mark them patchTooLarge instead)`);
  return value as Record<string, string>;
}

function send(res: http.ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  if (body === undefined) {
    res.writeHead(status, headers);
    res.end();
    return;
  }
  const text = typeof body === 'string' ? body : JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
  res.end(text);
}

async function readJson(req: http.IncomingMessage, maxBody = MAX_BODY): Promise<any> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    // Read a too-large body to its end (up to a bound) so the client gets the 413, not a reset.
    if (size > maxBody * 8) req.destroy();
    if (size <= maxBody) chunks.push(c as Buffer);
  }
  if (size > maxBody) throw new HttpError(413, `request body over ${maxBody} bytes`);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new HttpError(400, `body is not valid JSON: ${(e as Error).message}`);
  }
}

/** A request may change state only with a JSON body: a web page can POST text/plain across origins, not application/json. */
function requireJson(req: http.IncomingMessage, method: string): void {
  if (method !== 'POST') return;
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, `send the body as JSON with the header "Content-Type: application/json" (got ${type ? `"${type}"` : 'none'})`);
}

function tokenOf(req: http.IncomingMessage): string {
  const token = bearerToken(req.headers.authorization);
  if (!token) throw new HttpError(401, 'give a bearer token: "Authorization: Bearer TOKEN" (e.g. from kubectl create token, or paddock local\'s token file)');
  return token;
}

/** Send this request on to the leader as it is; its answer goes back unchanged. */
function forward(req: http.IncomingMessage, res: http.ServerResponse, target: string): Promise<void> {
  return new Promise((resolve) => {
    const url = new URL(req.url ?? '/', target);
    const upstream = http.request(url, { method: req.method, headers: { ...req.headers, host: url.host, [FORWARDED]: '1' } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      answer.on('end', resolve);
    });
    upstream.on('error', (err) => {
      send(res, 503, { error: `this controller replica is not the leader and cannot reach it (${err.message}); retry` }, { 'Retry-After': '1' });
      resolve();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
}

const FORWARDED = 'x-paddock-forwarded';

async function handle(controller: Controller, opts: ApiOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://controller');
  const parts = url.pathname.split('/').filter(Boolean);
  const method = req.method ?? 'GET';
  if (url.pathname === '/healthz') return send(res, 200, 'ok\n');
  const own = opts.routes === 'tasks' ? 'tasks' : 'leases';
  const served = opts.routes === 'tasks' ? ['tasks', 'sessions'] : ['leases'];
  if (parts[0] !== 'v1' || !served.includes(parts[1])) {
    const other = parts[0] === 'v1' && ['tasks', 'sessions', 'leases'].includes(parts[1]);
    throw new HttpError(404, `no route ${method} ${url.pathname} on the ${opts.routes === 'tasks' ? 'task API' : 'worker lease API'}${other ? ' (it is served on the other port)' : ''}; see /v1/${own}`);
  }
  if (opts.isLeader && !opts.isLeader()) {
    // Followers pass requests on to the leader (once: a forwarded request is not forwarded again).
    const leader = opts.leaderUrl?.();
    if (leader && !req.headers[FORWARDED]) return forward(req, res, leader);
    return send(res, 503, { error: 'this controller replica is not the leader; retry' }, { 'Retry-After': '1' });
  }
  requireJson(req, method);
  if (!controller.isStarted) return send(res, 503, { error: 'the controller is starting; retry' }, { 'Retry-After': '1' });
  if (parts[1] === 'tasks' || parts[1] === 'sessions') return handleTasks(controller, opts, req, res, parts, method);
  return handleLeases(controller, opts, req, res, parts, method);
}

async function handleTasks(controller: Controller, opts: ApiOptions, req: http.IncomingMessage, res: http.ServerResponse, parts: string[], method: string): Promise<void> {
  const user = await opts.auth.user(tokenOf(req));
  if (!user) throw new HttpError(401, 'the bearer token is not valid (expired, revoked, or not for this cluster)');
  const may = async (access: TaskAccess) => {
    if (!(await opts.auth.allowed(user, access))) {
      const what = `${access.verb} ${TASKS_RESOURCE}${access.subresource ? `/${access.subresource}` : ''}`;
      throw new HttpError(403, `${user.username} may not ${what} of pool "${access.pool}" (RBAC: verb "${access.verb}" on resource "${TASKS_RESOURCE}${access.subresource ? `/${access.subresource}` : ''}" in group "${PADDOCK_API_GROUP}", resourceName "${access.pool}"; e.g. bind ClusterRole paddock-task-submitter or paddock-task-viewer)`);
    }
  };
  /** The named task's pool, once the caller may see it. */
  const existing = async (name: string, access: Omit<TaskAccess, 'pool'>) => {
    const view = controller.task(name);
    if (!view) throw new HttpError(404, `task "${name}" not found`);
    await may({ ...access, pool: view.pool ?? '' });
    return view;
  };
  if (parts[1] === 'sessions') return handleSessions(controller, opts, user, may, res, parts, method);
  if (parts.length === 2 && method === 'POST') {
    const spec = await readJson(req, opts.maxBodyBytes);
    const problems = validateSpec('Task', spec);
    if (problems.length) throw new HttpError(400, { error: 'invalid task spec', problems });
    const t = spec as TaskSpec;
    await may({ verb: 'create', pool: t.pool });
    // Moving a task to another pool stops its run there: the caller must be allowed in that pool too.
    const before = controller.task(t.name)?.pool;
    if (before !== undefined && before !== t.pool) await may({ verb: 'create', pool: before });
    const pools = controller.pools().map((p) => p.name);
    if (!pools.includes(t.pool)) throw new HttpError(422, { error: `pool "${t.pool}" does not exist`, pools });
    // A session's transcript and change stay in its pool: a task of another pool may not continue it.
    const sessionPool = t.session ? controller.sessionView(t.session.name)?.pool : undefined;
    if (t.session && sessionPool !== undefined && sessionPool !== t.pool) {
      throw new HttpError(422, { error: `session "${t.session.name}" belongs to pool "${sessionPool}"; a task of pool "${t.pool}" cannot continue it: use another session name, or submit the task to pool "${sessionPool}"` });
    }
    const policyProblems = controller.policyProblems(t);
    if (policyProblems.length) throw new HttpError(422, { error: 'the agent policy cannot be enforced', problems: policyProblems });
    const deliveryProblems = controller.deliveryProblems(t);
    if (deliveryProblems.length) throw new HttpError(422, { error: 'the delivery cannot be carried out', problems: deliveryProblems });
    const r = await controller.submitTask(t);
    return send(res, r.created ? 201 : 200, { name: t.name, specHash: r.specHash, run: r.run, configMap: `task-${t.name}` });
  }
  if (parts.length === 2 && method === 'GET') {
    const pools = controller.pools().map((p) => p.name);
    const visible = new Set<string>();
    for (const pool of pools) if (await opts.auth.allowed(user, { verb: 'list', pool })) visible.add(pool);
    if (visible.size === 0 && pools.length > 0) await may({ verb: 'list', pool: pools[0] });
    const tasks = controller.taskNames().sort().map((n) => controller.task(n)!).filter((v) => v && visible.has(v.pool ?? ''));
    return send(res, 200, { tasks });
  }
  if (parts.length === 3 && method === 'GET') return send(res, 200, await existing(parts[2], { verb: 'get' }));
  if (parts.length === 3 && method === 'DELETE') {
    await existing(parts[2], { verb: 'delete' });
    return send(res, 200, await controller.cancelTask(parts[2]));
  }
  if (parts.length === 4 && parts[3] === 'patch' && method === 'GET') {
    await existing(parts[2], { verb: 'get', subresource: 'results' });
    const p = controller.patch(parts[2], new URL(req.url ?? '/', 'http://controller').searchParams.get('source') ?? undefined);
    if (!p) throw new HttpError(409, `task "${parts[2]}" has no finished run yet`);
    if (!p.change) throw new HttpError(404, `run ${p.run} has no change of source "${p.source || '?'}"; name one with ?source=NAME`);
    if (p.change.patchWithheld) throw new HttpError(410, `the change of source "${p.source}" holds a credential the agent was given; its patch is withheld (patchWithheld)`);
    if (p.change.patchTooLarge || !p.patch) throw new HttpError(410, `the patch of source "${p.source}" was over the size cap and is not stored (patchTooLarge)`);
    res.writeHead(200, { 'Content-Type': 'text/x-diff', 'X-Paddock-Base': p.change.base });
    res.end(p.patch);
    return;
  }
  if (parts.length === 4 && parts[3] === 'results' && method === 'GET') {
    await existing(parts[2], { verb: 'get', subresource: 'results' });
    const r = controller.results(parts[2]);
    if (!r) throw new HttpError(409, `task "${parts[2]}" has no run yet`);
    return send(res, 200, r);
  }
  throw new HttpError(404, `no route ${method} /${parts.join('/')}`);
}

/**
 * Sessions are authorized as the subresource `tasks/sessions` of the session's pool (the pool
 * of the task that saved it): its state is that pool's tasks' transcript and change.
 */
async function handleSessions(controller: Controller, opts: ApiOptions, user: UserInfo, may: (access: TaskAccess) => Promise<void>, res: http.ServerResponse, parts: string[], method: string): Promise<void> {
  const existing = async (name: string, verb: 'get' | 'delete') => {
    const view = controller.sessionView(name);
    if (!view) throw new HttpError(404, `session "${name}" not found`);
    await may({ verb, pool: view.pool ?? '', subresource: 'sessions' });
    return view;
  };
  if (parts.length === 2 && method === 'GET') {
    const visible = new Map<string, boolean>();
    const sessions = [];
    for (const name of controller.sessionNames()) {
      const view = controller.sessionView(name);
      if (!view) continue;
      const pool = view.pool ?? '';
      if (!visible.has(pool)) visible.set(pool, await opts.auth.allowed(user, { verb: 'list', pool, subresource: 'sessions' }));
      if (visible.get(pool)) sessions.push(view);
    }
    return send(res, 200, { sessions });
  }
  if (parts.length === 3 && method === 'GET') return send(res, 200, await existing(parts[2], 'get'));
  if (parts.length === 3 && method === 'DELETE') {
    await existing(parts[2], 'delete');
    if (!(await controller.deleteSession(parts[2]))) throw new HttpError(404, `session "${parts[2]}" not found`);
    return send(res, 200, { deleted: parts[2] });
  }
  throw new HttpError(404, `no route ${method} /${parts.join('/')}`);
}

async function handleLeases(controller: Controller, opts: ApiOptions, req: http.IncomingMessage, res: http.ServerResponse, parts: string[], method: string): Promise<void> {
  const worker = await opts.auth.worker(tokenOf(req));
  if (!worker) throw new HttpError(401, "the bearer token is not a warm worker's (its pod's projected ServiceAccount token, audience paddock.dev/worker-api)");
  if (method !== 'POST') throw new HttpError(404, `no route ${method} /${parts.join('/')}`);
  const body = await readJson(req, opts.maxBodyBytes);
  if (parts.length === 2) {
    if (typeof body.pool !== 'string' || typeof body.worker !== 'string') throw new HttpError(400, 'give { "pool": NAME, "worker": ID }');
    // A worker leases only runs of its own pool (its ServiceAccount's), and only of a warm pool.
    if (worker.pool !== undefined && worker.pool !== body.pool) throw new HttpError(403, `this worker belongs to pool "${worker.pool}"; it may lease only that pool's runs, not pool "${body.pool}"'s`);
    const pool = controller.pools().find((p) => p.name === body.pool);
    if (!pool || pool.mode !== 'warm') throw new HttpError(404, `pool "${body.pool}" is not a warm pool`);
    const waitMs = Math.min(Math.max(0, Number(body.waitMs ?? 0) || 0), MAX_WAIT_MS);
    let closed = false;
    req.on('close', () => (closed = true));
    const grant = await controller.lease(body.pool, body.worker, waitMs, worker.holder);
    if (!grant) return send(res, 204);
    if (closed || res.destroyed) {
      // The worker went away while waiting: the lease expires and the run is queued again.
      return;
    }
    return send(res, 200, grant);
  }
  if (parts.length === 4 && (parts[3] === 'renew' || parts[3] === 'complete')) {
    // Only the lease's holder (the same pod's token) may renew it or report on it.
    const held = controller.leaseHolder(parts[2]);
    if (held && held.holder !== worker.holder) throw new HttpError(403, `lease ${parts[2].slice(0, 8)} is held by another worker; only its holder may ${parts[3] === 'renew' ? 'renew it' : 'report on it'}`);
    if (parts[3] === 'renew') {
      return controller.renew(parts[2], String(body.worker)) ? send(res, 200, { ttlMs: controller.leaseTtlMs }) : send(res, 409, { error: 'the lease is no longer yours; stop the run' });
    }
    if (typeof body.status !== 'object' || body.status === null) throw new HttpError(400, 'give { "worker", "status": {...}, "results": "<jsonl>" }');
    const patches = body.patches === undefined ? undefined : checkPatches(body.patches);
    const r = await controller.complete(parts[2], String(body.worker), {
      status: body.status,
      resultsJsonl: String(body.results ?? ''),
      ...(body.truncated ? { truncated: true } : {}),
      ...(patches ? { patches } : {}),
      ...(body.session && typeof body.session === 'object' ? { session: body.session } : {}),
    });
    return r === 'ok' ? send(res, 200, { ok: true }) : send(res, 409, { error: 'the lease is no longer current; the report was dropped' });
  }
  throw new HttpError(404, `no route ${method} /${parts.join('/')}`);
}
