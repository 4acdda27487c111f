/**
 * `paddock gateway`: the model gateway. It holds the model keys, so agent pods need
 * none. Each caller presents its pool's token where its CLI puts an API key
 * (Authorization: Bearer, x-api-key, x-goog-api-key, ?key=); the gateway authenticates
 * it as a pool (a projected ServiceAccount token checked with a TokenReview, audience
 * "paddock-model-gateway"; or a static token file in local mode), serves only
 * <pool>/<provider>/... routes of that pool, strips every caller key, puts the real key
 * in the provider's header and streams both ways (SSE, chunked) without buffering.
 *
 * Our code rather than nginx or haproxy (Debian's): authenticating a caller by a
 * projected ServiceAccount token needs a TokenReview (or JWT verification against the
 * cluster's keys), which neither does without an extra auth service; a static per-pool
 * token would have to come from a Secret the agent pod references, which is what this
 * removes. The proxying itself is node:http piping, no body is read or held.
 *
 * Retry cap: a route `<pool>/<provider>;max-retries=N/...` (the runner writes it for a
 * harness with `gatewayMaxRetries`, for CLIs that have no retry setting) counts each
 * caller's failed answers in a row (5xx, 429, no answer). The one past N retries is
 * answered 424 with a message saying so, which the CLIs take as final: a dead provider
 * fails the run in seconds instead of after the CLI's own retries. A success ends the
 * streak, and so does that final answer (a warm worker's next run starts afresh).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import type { AddressInfo } from 'net';
import { CALLER_KEY_HEADERS, CALLER_KEY_QUERY, GATEWAY_AUDIENCE, MAX_RETRIES_LIMIT, MAX_RETRIES_PARAM, PROVIDER_FAILING_STATUS, providerFailingMessage } from '../core/model-providers';
import { importEsm } from '../core/import-esm';
import { kubeconfigBearer } from '../core/kubeconfig';

export interface GatewayProviderRoute {
  /** e.g. https://api.openai.com */
  readonly upstream: string;
  /** Header the real key goes in, and its value with {key}. */
  readonly header: string;
  readonly value: string;
  /** The mounted Secret key holding the real key. */
  readonly keyFile: string;
}

export interface GatewayPoolRoutes {
  /** Callers authenticated (TokenReview) as this user are this pool, e.g. system:serviceaccount:paddock:pool-codex. */
  readonly serviceAccount?: string;
  /** A file holding this pool's static caller token (local mode, tests). */
  readonly tokenFile?: string;
  readonly providers: Readonly<Record<string, GatewayProviderRoute>>;
}

/** gateway.json (the ConfigMap paddock-model-gateway). */
export interface GatewayConfig {
  readonly pools: Readonly<Record<string, GatewayPoolRoutes>>;
}

export interface TokenReviewer {
  /** The username the token authenticates, for the gateway's audience; undefined when it does not. */
  review(token: string): Promise<string | undefined>;
}

export interface GatewayOptions {
  readonly config: GatewayConfig;
  /** @default 8080 */
  readonly port?: number;
  /** @default '0.0.0.0' */
  readonly host?: string;
  /** @default - the in-cluster API server, when some pool names a serviceAccount */
  readonly reviewer?: TokenReviewer;
  readonly log?: (line: string) => void;
}

export interface Gateway {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A streak with no failure for this long is forgotten (a caller that went away mid-streak). */
const STREAK_IDLE_MS = 10 * 60_000;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length']);

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.log ?? (() => undefined);
  const pools = opts.config.pools;
  const staticTokens = new Map<string, string>();
  for (const [pool, r] of Object.entries(pools)) {
    if (r.tokenFile) staticTokens.set(digest(fs.readFileSync(r.tokenFile, 'utf8').trim()), pool);
  }
  const byUser = new Map(Object.entries(pools).filter(([, r]) => r.serviceAccount).map(([pool, r]) => [r.serviceAccount!, pool]));
  const reviewer = opts.reviewer ?? (byUser.size > 0 ? inClusterReviewer() : undefined);
  const reviewed = new Map<string, { pool?: string; until: number }>();
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  const streaks = new FailureStreaks();

  const callerPool = async (token: string): Promise<string | undefined> => {
    const d = digest(token);
    const known = staticTokens.get(d);
    if (known) return known;
    if (!reviewer) return undefined;
    const cached = reviewed.get(d);
    if (cached && cached.until > Date.now()) return cached.pool;
    const user = await reviewer.review(token);
    const pool = user ? byUser.get(user) : undefined;
    reviewed.set(d, { pool, until: Date.now() + (pool ? 60_000 : 5_000) });
    return pool;
  };

  const server = http.createServer((req, res) => {
    const fail = (status: number, message: string) => {
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `paddock model gateway: ${message}` } }));
    };
    const url = new URL(req.url ?? '/', 'http://gateway');
    if (url.pathname === '/healthz') return fail(200, 'ok');
    const [, pool, segment, ...rest] = url.pathname.split('/');
    const [provider, ...params] = (segment ?? '').split(';');
    const route = pools[pool]?.providers[provider];
    const token = callerToken(req, url);
    if (!token) return fail(401, 'no caller token; the agent presents its pool token as its API key');
    callerPool(token)
      .then((caller) => {
        if (!caller) return fail(401, 'the caller token is not a pool of this platform');
        if (caller !== pool) return fail(403, `pool "${caller}" may not use the routes of pool "${pool}"`);
        if (!route) return fail(404, `pool "${pool}" has no provider "${provider}"; its providers: ${Object.keys(pools[pool].providers).join(', ')}`);
        const cap = maxRetriesOf(params);
        if (typeof cap === 'string') return fail(400, cap);
        let key: string;
        try {
          key = readKey(route.keyFile);
        } catch (err) {
          log(`pool ${pool}, provider ${provider}: cannot read ${route.keyFile} (${(err as NodeJS.ErrnoException).code})`);
          return fail(502, `the key of provider "${provider}" is not available`);
        }
        url.searchParams.delete(CALLER_KEY_QUERY);
        const target = new URL(route.upstream.replace(/\/$/, '') + '/' + rest.join('/') + url.search);
        const headers: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(req.headers)) {
          if (!HOP_BY_HOP.has(name) && !(CALLER_KEY_HEADERS as readonly string[]).includes(name)) headers[name] = value;
        }
        if (req.headers['content-length']) headers['content-length'] = req.headers['content-length'];
        headers[route.header] = route.value.replace('{key}', key);
        const streak = `${digest(token)} ${pool}/${provider}`;
        /** A failed answer when the caller's retries are used up: answer it as final instead. */
        const final = (): boolean => {
          if (cap === undefined) return false;
          const failures = streaks.fail(streak);
          if (failures <= cap) return false;
          streaks.end(streak);
          log(`pool ${pool}, provider ${provider}: ${failures} failed request${failures === 1 ? '' : 's'} in a row from one caller (max-retries ${cap}); answered ${PROVIDER_FAILING_STATUS}, final`);
          if (!res.headersSent) res.writeHead(PROVIDER_FAILING_STATUS, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ type: 'error', error: { type: 'paddock_provider_failing', message: providerFailingMessage(provider, failures, cap) } }));
          return true;
        };
        const secure = target.protocol === 'https:';
        const up = (secure ? https : http).request(target, { method: req.method, headers, agent: secure ? agents.https : agents.http });
        up.on('response', (r) => {
          const status = r.statusCode ?? 502;
          if (status >= 500 || status === 429) {
            if (final()) return void r.resume();
          } else if (cap !== undefined) {
            streaks.end(streak);
          }
          const out: http.OutgoingHttpHeaders = {};
          for (const [name, value] of Object.entries(r.headers)) if (!HOP_BY_HOP.has(name) || name === 'content-length') out[name] = value;
          res.writeHead(status, out);
          res.flushHeaders();
          r.pipe(res);
        });
        up.on('error', (err) => {
          if (res.headersSent || !final()) fail(502, `upstream ${target.host}: ${err.message}`);
        });
        req.pipe(up);
      })
      .catch((err) => fail(503, `cannot authenticate the caller: ${(err as Error).message}`));
  });
  server.on('connection', (s) => s.setNoDelay(true));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, opts.host ?? '0.0.0.0', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host && opts.host !== '0.0.0.0' ? opts.host : '127.0.0.1';
  log(`model gateway on ${host}:${port}: pools ${Object.keys(pools).join(', ') || 'none'}`);
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        agents.http.destroy();
        agents.https.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The route's `;max-retries=N`, undefined without one, or what is wrong with the parameters. */
function maxRetriesOf(params: string[]): number | undefined | string {
  let cap: number | undefined;
  for (const p of params) {
    const [name, value] = p.split('=');
    if (name !== MAX_RETRIES_PARAM || !/^\d+$/.test(value ?? '') || Number(value) > MAX_RETRIES_LIMIT) {
      return `route parameter "${p}" is not understood; the only one is ${MAX_RETRIES_PARAM}=N with N from 0 to ${MAX_RETRIES_LIMIT}, e.g. <pool>/<provider>;${MAX_RETRIES_PARAM}=2/...`;
    }
    cap = Number(value);
  }
  return cap;
}

/** Failed answers in a row per caller and route. */
class FailureStreaks {
  private readonly streaks = new Map<string, { failures: number; last: number }>();

  /** Counts one more failure; returns the streak's length. */
  fail(key: string): number {
    const now = Date.now();
    const s = this.streaks.get(key);
    const failures = s && now - s.last < STREAK_IDLE_MS ? s.failures + 1 : 1;
    this.streaks.set(key, { failures, last: now });
    if (this.streaks.size > 10_000) for (const [k, v] of this.streaks) if (now - v.last >= STREAK_IDLE_MS) this.streaks.delete(k);
    return failures;
  }

  end(key: string): void {
    this.streaks.delete(key);
  }
}

/** The caller's token, from wherever its CLI puts an API key. */
function callerToken(req: http.IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  const bearer = auth && /^Bearer\s+(.+)$/i.exec(auth)?.[1];
  const found = bearer || req.headers['x-api-key'] || req.headers['x-goog-api-key'] || req.headers['api-key'] || url.searchParams.get(CALLER_KEY_QUERY);
  const token = Array.isArray(found) ? found[0] : found;
  return token ? String(token).trim() : undefined;
}

const keys = new Map<string, { value: string; until: number }>();
/** Keys are re-read every 30 s: a rotated Secret takes effect without a restart. */
function readKey(file: string): string {
  const cached = keys.get(file);
  if (cached && cached.until > Date.now()) return cached.value;
  const value = fs.readFileSync(file, 'utf8').trim();
  keys.set(file, { value, until: Date.now() + 30_000 });
  return value;
}

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** TokenReview against the API server, with the gateway's own ServiceAccount (system:auth-delegator). */
export function tokenReviewer(api: { url: string; token: () => string; ca?: string }): TokenReviewer {
  return {
    review: async (token) => {
      const body = JSON.stringify({ apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences: [GATEWAY_AUDIENCE] } });
      const target = new URL('/apis/authentication.k8s.io/v1/tokenreviews', api.url);
      const text = await new Promise<string>((resolve, reject) => {
        const req = (target.protocol === 'https:' ? https : http).request(
          target,
          { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${api.token()}` }, ...(api.ca ? { ca: api.ca } : {}), timeout: 10_000 },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => (res.statusCode === 201 || res.statusCode === 200 ? resolve(Buffer.concat(chunks).toString()) : reject(new Error(`TokenReview: HTTP ${res.statusCode}`))));
          },
        );
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('TokenReview timed out')));
        req.end(body);
      });
      const status = JSON.parse(text)?.status;
      if (!status?.authenticated) return undefined;
      if (Array.isArray(status.audiences) && !status.audiences.includes(GATEWAY_AUDIENCE)) return undefined;
      return typeof status.user?.username === 'string' ? status.user.username : undefined;
    },
  };
}

/**
 * TokenReview as the kubeconfig's current user, for a gateway outside the cluster (or a
 * test on the host). The credential is read once at start: give a kubeconfig with a
 * token or client certificate, not a short-lived exec plugin.
 */
export async function kubeconfigReviewer(file: string): Promise<TokenReviewer> {
  const k8s = await importEsm('@kubernetes/client-node').catch(() => {
    throw new Error('--kubeconfig needs @kubernetes/client-node, an optional dependency of paddock');
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) throw new Error(`${file}: its current context names no cluster server`);
  const token = await kubeconfigBearer(kc);
  if (!token) throw new Error(`${file}: its current user has no bearer token; give the gateway ServiceAccount's, e.g. kubectl create token paddock-model-gateway`);
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64').toString() : cluster.caFile ? fs.readFileSync(cluster.caFile, 'utf8') : undefined;
  return tokenReviewer({ url: cluster.server, token: () => token, ...(ca ? { ca } : {}) });
}

function inClusterReviewer(): TokenReviewer {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (!host) throw new Error('pools authenticate by ServiceAccount but KUBERNETES_SERVICE_HOST is not set (not in a pod?)');
  return tokenReviewer({ url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`, token: () => fs.readFileSync(`${SA_DIR}/token`, 'utf8').trim(), ca: fs.readFileSync(`${SA_DIR}/ca.crt`, 'utf8') });
}
