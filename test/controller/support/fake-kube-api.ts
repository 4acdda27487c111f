/**
 * A thin fake of the Kubernetes API server on 127.0.0.1 (there is no API server on
 * these machines): discovery for v1, batch/v1 and coordination.k8s.io/v1, and for
 * namespaced configmaps, jobs, pods and leases: list (with labelSelector and
 * resourceVersion), watch (chunked JSON event lines), get, create (409 when taken),
 * replace (409 on a stale resourceVersion), JSON merge patch, delete (with
 * ownerReference garbage collection); a pod's log (the store's `logs`, tailLines); events.k8s.io/v1 events (create, list); and
 * TokenReview and SubjectAccessReview: tokens the test registers (with their user and
 * audiences) and RBAC-like rules the test grants (verb, resource, subresource,
 * resourceName; no wildcards but an omitted resourceName). Backed by the in-memory
 * store; every request is recorded. Test-only.
 */
import * as http from 'http';
import { AddressInfo } from 'net';
import { Kind, KubeObject, MemoryStore, StoreError } from '../../../controller/store';

const RESOURCES: Record<string, { group: string; kind: Kind }> = {
  configmaps: { group: 'v1', kind: 'ConfigMap' },
  pods: { group: 'v1', kind: 'Pod' },
  jobs: { group: 'batch/v1', kind: 'Job' },
  leases: { group: 'coordination.k8s.io/v1', kind: 'Lease' },
  events: { group: 'events.k8s.io/v1', kind: 'Event' },
};

/** The API server's own audience: what a token gets unless it was requested for another. */
export const API_AUDIENCE = 'https://kubernetes.default.svc';

export interface FakeUser {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: string[];
  readonly extra?: Record<string, string[]>;
}

/** One grant, as an RBAC rule would say it for one user. */
export interface FakeGrant {
  readonly user: string;
  readonly verb: string;
  readonly group: string;
  readonly resource: string;
  readonly subresource?: string;
  /** Omitted: every name. */
  readonly names?: string[];
}

export interface FakeKubeApi {
  readonly url: string;
  readonly store: MemoryStore;
  readonly requests: Array<{ method: string; url: string; contentType?: string }>;
  /** Register a token the TokenReview endpoint accepts. @default audiences [API_AUDIENCE] */
  addToken(token: string, user: FakeUser, audiences?: string[]): void;
  grant(g: FakeGrant): void;
  /** Every SubjectAccessReview asked, with its answer. */
  readonly reviews: Array<{ user: string; attributes: Record<string, string>; allowed: boolean }>;
  /** A kubeconfig file content pointing at this server. */
  kubeconfig(): string;
  close(): Promise<void>;
}

export async function startFakeKubeApi(namespace = 'paddock'): Promise<FakeKubeApi> {
  const store = new MemoryStore(namespace);
  const requests: FakeKubeApi['requests'] = [];
  const watches = new Set<http.ServerResponse>();
  const tokens = new Map<string, { user: FakeUser; audiences: string[] }>();
  const grants: FakeGrant[] = [];
  const reviews: FakeKubeApi['reviews'] = [];
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push({ method: req.method ?? '', url: req.url ?? '', ...(req.headers['content-type'] ? { contentType: String(req.headers['content-type']) } : {}) });
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const status = (code: number, message: string) => json(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason: code === 404 ? 'NotFound' : code === 409 ? 'Conflict' : 'BadRequest', code });
    try {
      if (req.method === 'POST' && url.pathname === '/apis/authentication.k8s.io/v1/tokenreviews') {
        const review = JSON.parse(await readBody(req));
        const known = tokens.get(review.spec?.token);
        const wanted: string[] = review.spec?.audiences?.length ? review.spec.audiences : [API_AUDIENCE];
        const audiences = known ? wanted.filter((a) => known.audiences.includes(a)) : [];
        const status = known && audiences.length ? { authenticated: true, user: known.user, audiences } : { authenticated: false, error: known ? 'token audiences do not match' : 'invalid bearer token' };
        return json(201, { ...review, status });
      }
      if (req.method === 'POST' && url.pathname === '/apis/authorization.k8s.io/v1/subjectaccessreviews') {
        const review = JSON.parse(await readBody(req));
        const a = review.spec?.resourceAttributes ?? {};
        const allowed = grants.some(
          (g) => g.user === review.spec?.user && g.verb === a.verb && g.group === (a.group ?? '') && g.resource === a.resource && (g.subresource ?? '') === (a.subresource ?? '') && (!g.names || g.names.includes(a.name)),
        );
        reviews.push({ user: review.spec?.user, attributes: a, allowed });
        return json(201, { ...review, status: { allowed } });
      }
      // Discovery.
      const disc = /^\/(api\/v1|apis\/([^/]+\/[^/]+))$/.exec(url.pathname);
      if (disc && req.method === 'GET') {
        const gv = disc[2] ?? 'v1';
        const resources = Object.entries(RESOURCES)
          .filter(([, r]) => r.group === gv)
          .map(([name, r]) => ({ name, singularName: r.kind.toLowerCase(), kind: r.kind, namespaced: true, verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] }));
        return json(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: gv, resources });
      }
      const podLog = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/log$/.exec(url.pathname);
      if (podLog && req.method === 'GET') {
        if (podLog[1] !== namespace) return status(404, `namespace ${podLog[1]} not found`);
        const text = await store.readLog(podLog[2], url.searchParams.get('container') ?? '', Number(url.searchParams.get('tailLines') ?? 1e9));
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return res.end(text);
      }
      const m = /^\/(?:api\/v1|apis\/[^/]+\/[^/]+)\/namespaces\/([^/]+)\/([^/]+)(?:\/([^/]+))?$/.exec(url.pathname);
      if (!m || !RESOURCES[m[2]]) return status(404, `no route ${req.method} ${url.pathname}`);
      const [, ns, plural, name] = m;
      if (ns !== namespace) return status(404, `namespace ${ns} not found`);
      const { kind, group } = RESOURCES[plural];
      const body = async (): Promise<any> => JSON.parse((await readBody(req)) || '{}');
      const selector = url.searchParams.get('labelSelector') ?? undefined;
      if (!name && req.method === 'GET' && url.searchParams.get('watch') === 'true') {
        res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
        res.flushHeaders();
        watches.add(res);
        let live = false;
        const stop = await store.watch(kind, selector, (event, obj) => {
          if (!live) return; // the list already delivered these
          res.write(JSON.stringify({ type: event === 'add' ? 'ADDED' : event === 'update' ? 'MODIFIED' : 'DELETED', object: obj }) + '\n');
        });
        live = true;
        res.on('close', () => {
          stop();
          watches.delete(res);
        });
        return;
      }
      if (!name && req.method === 'GET') {
        const items = store.list(kind, selector);
        const rv = String(Math.max(0, ...store.list('ConfigMap').concat(store.list('Job'), store.list('Pod'), store.list('Lease')).map((o) => Number(o.metadata.resourceVersion))));
        return json(200, { kind: `${kind}List`, apiVersion: group, metadata: { resourceVersion: rv }, items });
      }
      if (!name && req.method === 'POST') {
        const obj = (await body()) as KubeObject;
        return json(201, await store.create({ ...obj, kind, apiVersion: group }));
      }
      if (name && req.method === 'GET') {
        const obj = await store.get(kind, name);
        return obj ? json(200, obj) : status(404, `${plural} "${name}" not found`);
      }
      if (name && req.method === 'PUT') {
        const obj = (await body()) as KubeObject;
        return json(200, await store.replace({ ...obj, kind, apiVersion: group }));
      }
      if (name && req.method === 'PATCH') {
        const ct = String(req.headers['content-type'] ?? '');
        if (!ct.startsWith('application/merge-patch+json')) return status(415, `unsupported patch type ${ct}`);
        const patch = await body();
        return json(200, await store.patchMetadata(kind, name, { labels: patch.metadata?.labels, annotations: patch.metadata?.annotations }));
      }
      if (name && req.method === 'DELETE') {
        const existed = await store.get(kind, name);
        if (!existed) return status(404, `${plural} "${name}" not found`);
        await store.delete(kind, name);
        return json(200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      }
      return status(405, `${req.method} not supported`);
    } catch (err) {
      if (err instanceof StoreError) return status(err.code, err.message);
      return status(500, (err as Error).message);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    store,
    requests,
    reviews,
    addToken: (token, user, audiences = [API_AUDIENCE]) => void tokens.set(token, { user, audiences }),
    grant: (g) => void grants.push(g),
    kubeconfig: () =>
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${url}`,
        '    insecure-skip-tls-verify: true',
        'users:',
        '- name: test',
        '  user:',
        '    token: fake-token',
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: test',
        `    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n'),
    close: () =>
      new Promise<void>((r) => {
        for (const w of watches) w.destroy();
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
