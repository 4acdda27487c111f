/**
 * The controller's HTTP APIs, on two listeners (ports) so that a NetworkPolicy can
 * keep agent code away from the task API:
 *
 * The task API (`--port`, default 8080; the `paddock-controller` Service, port 80 -> http):
 * for people and tools; warm workers and task Jobs (agent pods) are not admitted to it.
 *
 *   GET  /healthz                        200 "ok" on every replica (liveness and readiness; followers too)
 *   POST /v1/tasks                       body: a task spec (task.schema.json). 201 created / 200 updated,
 *                                        400 { problems } when it does not validate, 422 when its pool is unknown
 *                                        or its harness's CLI cannot enforce its agent policy { problems }
 *   GET  /v1/tasks                       { tasks: [TaskView] }
 *   GET  /v1/tasks/:name                 TaskView (phase, current run, attempt, outcome), 404
 *   GET  /v1/tasks/:name/results         { run, phase, status, results, truncated }, 404 (no run yet: 409)
 *   GET  /v1/sessions                    { sessions: [SessionView] }
 *   GET  /v1/sessions/:name              SessionView (turns, patch sizes, its tasks), 404
 *   DELETE /v1/sessions/:name            removes the stored state (the next task must create the session), 404
 *
 * The worker lease API (`--worker-port`, default 8081; Service port 8081 -> workers): for
 * warm worker pods only. It hands out runs of the named pool only, and only of a warm pool,
 * so a worker (or the agent beside it) can lease nothing it could not run anyway.
 *
 *   GET  /healthz                        200 "ok"
 *   POST /v1/leases                      warm workers: { pool, worker, waitMs } -> 200 LeaseGrant | 204 nothing to do,
 *                                        404 when the pool does not exist or is not a warm pool
 *   POST /v1/leases/:id/renew            { worker } -> 200 | 409 (the lease is no longer yours: stop the run)
 *   POST /v1/leases/:id/complete         { worker, status, results, truncated? } -> 200 | 409 (report dropped)
 *
 * Each listener serves only its own routes (404 for the other's). With more than one
 * controller replica only the leader serves /v1/ (others answer 503 with
 * Retry-After: 1; clients and workers retry).
 */
import * as http from 'http';
import { AddressInfo } from 'net';
import { TaskSpec, validateSpec } from '../policy/specs';
import type { Controller } from './controller';

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
  opts: { readonly port: number; readonly workerPort: number; readonly host?: string; readonly isLeader?: () => boolean; readonly timeouts?: ApiTimeouts },
): Promise<ApiServers> {
  const tasks = await startApi(controller, { port: opts.port, host: opts.host, isLeader: opts.isLeader, routes: 'tasks', timeouts: opts.timeouts });
  let workers: ApiServer;
  try {
    workers = await startApi(controller, { port: opts.workerPort, host: opts.host, isLeader: opts.isLeader, routes: 'workers', timeouts: opts.timeouts });
  } catch (err) {
    await tasks.close();
    throw err;
  }
  return { tasks, workers, close: async () => void (await Promise.all([tasks.close(), workers.close()])) };
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
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      const port = (server.address() as AddressInfo).port;
      const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
      resolve({
        url: `http://${host}:${port}`,
        port,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
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
  if (opts.isLeader && !opts.isLeader()) return send(res, 503, { error: 'this controller replica is not the leader; retry' }, { 'Retry-After': '1' });
  if (!controller.isStarted) return send(res, 503, { error: 'the controller is starting; retry' }, { 'Retry-After': '1' });

  if (parts[1] === 'tasks') {
    if (parts.length === 2 && method === 'POST') {
      const spec = await readJson(req, opts.maxBodyBytes);
      const problems = validateSpec('Task', spec);
      if (problems.length) throw new HttpError(400, { error: 'invalid task spec', problems });
      const t = spec as TaskSpec;
      const observedPools = controller.observed().pools;
      const pools = observedPools.map((p) => p.name);
      if (!pools.includes(t.pool)) throw new HttpError(422, { error: `pool "${t.pool}" does not exist`, pools });
      const pool = observedPools.find((p) => p.name === t.pool)!;
      if (t.session && pool.mode !== 'warm') {
        throw new HttpError(422, { error: `session "${t.session.name}": pool "${t.pool}" runs tasks as Jobs; sessions run in warm pools (mode: "warm") only, whose workers hand the session state back to the controller` });
      }
      const policyProblems = controller.policyProblems(t);
      if (policyProblems.length) throw new HttpError(422, { error: 'the agent policy cannot be enforced', problems: policyProblems });
      const r = await controller.submitTask(t);
      return send(res, r.created ? 201 : 200, { name: t.name, specHash: r.specHash, run: r.run, configMap: `task-${t.name}` });
    }
    if (parts.length === 2 && method === 'GET') {
      return send(res, 200, { tasks: controller.taskNames().sort().map((n) => controller.task(n)) });
    }
    if (parts.length === 3 && method === 'GET') {
      const view = controller.task(parts[2]);
      if (!view) throw new HttpError(404, `task "${parts[2]}" not found`);
      return send(res, 200, view);
    }
    if (parts.length === 4 && parts[3] === 'results' && method === 'GET') {
      if (!controller.task(parts[2])) throw new HttpError(404, `task "${parts[2]}" not found`);
      const r = controller.results(parts[2]);
      if (!r) throw new HttpError(409, `task "${parts[2]}" has no run yet`);
      return send(res, 200, r);
    }
  }
  if (parts[1] === 'sessions') {
    if (parts.length === 2 && method === 'GET') return send(res, 200, { sessions: controller.sessionNames().map((n) => controller.sessionView(n)) });
    if (parts.length === 3 && method === 'GET') {
      const view = controller.sessionView(parts[2]);
      if (!view) throw new HttpError(404, `session "${parts[2]}" not found`);
      return send(res, 200, view);
    }
    if (parts.length === 3 && method === 'DELETE') {
      if (!(await controller.deleteSession(parts[2]))) throw new HttpError(404, `session "${parts[2]}" not found`);
      return send(res, 200, { deleted: parts[2] });
    }
  }
  if (parts[1] === 'leases' && method === 'POST') {
    const body = await readJson(req, opts.maxBodyBytes);
    if (parts.length === 2) {
      if (typeof body.pool !== 'string' || typeof body.worker !== 'string') throw new HttpError(400, 'give { "pool": NAME, "worker": ID }');
      // Only runs of the named pool, and only of a warm pool (a job pool's runs are Jobs).
      const pool = controller.observed().pools.find((p) => p.name === body.pool);
      if (!pool || pool.mode !== 'warm') throw new HttpError(404, `pool "${body.pool}" is not a warm pool`);
      const waitMs = Math.min(Math.max(0, Number(body.waitMs ?? 0) || 0), MAX_WAIT_MS);
      let closed = false;
      req.on('close', () => (closed = true));
      const grant = await controller.lease(body.pool, body.worker, waitMs);
      if (!grant) return send(res, 204);
      if (closed || res.destroyed) {
        // The worker went away while waiting: the lease expires and the run is queued again.
        return;
      }
      return send(res, 200, grant);
    }
    if (parts.length === 4 && parts[3] === 'renew') {
      return controller.renew(parts[2], String(body.worker)) ? send(res, 200, { ttlMs: controller.leaseTtlMs }) : send(res, 409, { error: 'the lease is no longer yours; stop the run' });
    }
    if (parts.length === 4 && parts[3] === 'complete') {
      if (typeof body.status !== 'object' || body.status === null) throw new HttpError(400, 'give { "worker", "status": {...}, "results": "<jsonl>" }');
      const r = await controller.complete(parts[2], String(body.worker), {
        status: body.status,
        resultsJsonl: String(body.results ?? ''),
        ...(body.truncated ? { truncated: true } : {}),
        ...(body.session && typeof body.session === 'object' ? { session: body.session } : {}),
      });
      return r === 'ok' ? send(res, 200, { ok: true }) : send(res, 409, { error: 'the lease is no longer current; the report was dropped' });
    }
  }
  throw new HttpError(404, `no route ${method} ${url.pathname}`);
}
