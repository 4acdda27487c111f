/**
 * Who may call the controller's APIs, the Kubernetes way.
 *
 * The task API: a bearer token checked with a TokenReview (any token the API
 * server accepts: `kubectl create token`, a kubeconfig's token, an OIDC token),
 * then a SubjectAccessReview per request on Paddock's own resource `tasks` in
 * group `paddock.dev`, with the task's pool as resourceName, so RBAC says who
 * may submit to, read or cancel tasks of which pool:
 *
 *   POST   /v1/tasks                 create  tasks           (name: the pool; a task moved from another pool: create on that one too)
 *   GET    /v1/tasks                 list    tasks           (name: each pool; tasks of the pools the caller may list)
 *   GET    /v1/tasks/NAME            get     tasks           (name: the task's pool)
 *   GET    /v1/tasks/NAME/results    get     tasks/results   (name: the task's pool)
 *   DELETE /v1/tasks/NAME            delete  tasks           (name: the task's pool)
 *   GET    /v1/sessions              list    tasks/sessions  (name: each session's pool)
 *   GET    /v1/sessions/NAME         get     tasks/sessions  (name: the session's pool)
 *   DELETE /v1/sessions/NAME         delete  tasks/sessions  (name: the session's pool)
 *
 * The worker lease API: a warm worker's projected ServiceAccount token, bound
 * to the audience WORKER_TOKEN_AUDIENCE (useless against the API server
 * itself); the ServiceAccount `pool-NAME` of the controller's namespace is
 * the pool's, and a worker gets only that pool's runs. The lease holder is
 * the identity plus the pod (the token names its pod), so only it may renew
 * or report.
 *
 * Local mode: one random token (a file with mode 0600) for the workers and the
 * client; its holder may do everything.
 */
import { createHash, timingSafeEqual } from 'crypto';

import { PADDOCK_API_GROUP, TASKS_RESOURCE } from '../core/labels';

export { PADDOCK_API_GROUP, TASKS_RESOURCE };

export type TaskVerb = 'create' | 'get' | 'list' | 'delete';

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

/** One authorization question: may the user do `verb` on tasks (or tasks/results) of `pool`? */
export interface TaskAccess {
  readonly verb: TaskVerb;
  /** The pool (RBAC resourceName). */
  readonly pool: string;
  /** `results`: a task's results; `sessions`: the sessions of the pool's tasks. */
  readonly subresource?: 'results' | 'sessions';
}

/** A warm worker as the lease API knows it. */
export interface WorkerIdentity {
  /** Who holds a lease: the identity and its pod. Only the holder may renew or report. */
  readonly holder: string;
  /** The one pool whose runs it may lease; undefined: any pool (local mode's single token). */
  readonly pool?: string;
}

export interface ApiAuth {
  /** The task API's caller, or undefined when the token is not valid. */
  user(token: string): Promise<UserInfo | undefined>;
  allowed(user: UserInfo, access: TaskAccess): Promise<boolean>;
  /** The lease API's caller, or undefined when the token is not a warm worker's. */
  worker(token: string): Promise<WorkerIdentity | undefined>;
}

/** The bearer token of an Authorization header, if it has one. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m ? m[1] : undefined;
}

/** `system:serviceaccount:NS:pool-NAME` -> NAME (the pool's ServiceAccount, in the controller's namespace). */
export function poolOfServiceAccount(username: string, namespace: string): string | undefined {
  const prefix = `system:serviceaccount:${namespace}:pool-`;
  return username.startsWith(prefix) && username.length > prefix.length ? username.slice(prefix.length) : undefined;
}

/** The pod a projected ServiceAccount token was issued to (TokenReview's extra, Kubernetes 1.30+). */
export function podOfUser(user: UserInfo): string | undefined {
  return user.extra?.['authentication.kubernetes.io/pod-name']?.[0];
}

/** Local mode: one token, whose holder may do everything. Compared in constant time. */
export class StaticTokenAuth implements ApiAuth {
  private readonly digest: Buffer;
  constructor(
    token: string,
    private readonly username = 'paddock:local',
  ) {
    if (token.length < 16) throw new Error('StaticTokenAuth: the token must have at least 16 characters');
    this.digest = createHash('sha256').update(token).digest();
  }

  private matches(token: string): boolean {
    return timingSafeEqual(createHash('sha256').update(token).digest(), this.digest);
  }

  public async user(token: string): Promise<UserInfo | undefined> {
    return this.matches(token) ? { username: this.username } : undefined;
  }

  public async allowed(): Promise<boolean> {
    return true;
  }

  public async worker(token: string): Promise<WorkerIdentity | undefined> {
    return this.matches(token) ? { holder: this.username } : undefined;
  }
}

/** Remembers answers for a short while, so a busy client or a polling worker does not cost a review per request. */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
    private readonly max = 10_000,
  ) {}

  public async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit && hit.until > this.now()) return hit.value;
    const value = await load();
    if (this.entries.size >= this.max) this.entries.clear();
    this.entries.set(key, { value, until: this.now() + this.ttlMs });
    return value;
  }
}

/** A cache key for a token that does not keep the token itself in memory. */
export function tokenKey(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The two reviews, as the API server answers them (k8s-store.ts sends them with @kubernetes/client-node). */
export interface ReviewApi {
  /** TokenReview; `audiences` unset: the API server's own. */
  tokenReview(token: string, audiences?: readonly string[]): Promise<{ readonly authenticated?: boolean; readonly user?: UserInfo; readonly audiences?: readonly string[]; readonly error?: string }>;
  /** SubjectAccessReview with resourceAttributes. */
  subjectAccessReview(
    user: UserInfo,
    resource: { readonly namespace: string; readonly group: string; readonly resource: string; readonly subresource?: string; readonly verb: string; readonly name: string },
  ): Promise<{ readonly allowed?: boolean; readonly denied?: boolean; readonly reason?: string }>;
}

export interface KubeAuthOptions {
  readonly namespace: string;
  /** The audience warm workers' projected tokens are bound to. */
  readonly workerAudience: string;
  /** How long an answer is remembered. @default 10000 */
  readonly cacheMs?: number;
  readonly now?: () => number;
}

/** TokenReview + SubjectAccessReview against the API server. */
export class KubeAuth implements ApiAuth {
  private readonly users: TtlCache<UserInfo | undefined>;
  private readonly workers: TtlCache<WorkerIdentity | undefined>;
  private readonly decisions: TtlCache<boolean>;

  constructor(
    private readonly api: ReviewApi,
    private readonly opts: KubeAuthOptions,
  ) {
    const ttl = opts.cacheMs ?? 10_000;
    this.users = new TtlCache(ttl, opts.now);
    this.workers = new TtlCache(ttl, opts.now);
    this.decisions = new TtlCache(ttl, opts.now);
  }

  public user(token: string): Promise<UserInfo | undefined> {
    return this.users.get(tokenKey(token), async () => {
      const r = await this.api.tokenReview(token);
      return r.authenticated && r.user?.username ? r.user : undefined;
    });
  }

  public allowed(user: UserInfo, access: TaskAccess): Promise<boolean> {
    const attrs = { namespace: this.opts.namespace, group: PADDOCK_API_GROUP, resource: TASKS_RESOURCE, verb: access.verb, name: access.pool, ...(access.subresource ? { subresource: access.subresource } : {}) };
    const key = JSON.stringify([user.username, user.uid, user.groups, attrs]);
    return this.decisions.get(key, async () => (await this.api.subjectAccessReview(user, attrs)).allowed === true);
  }

  public worker(token: string): Promise<WorkerIdentity | undefined> {
    return this.workers.get(tokenKey(token), async () => {
      const r = await this.api.tokenReview(token, [this.opts.workerAudience]);
      // A token for another audience (e.g. the API server's) is not a worker's.
      if (!r.authenticated || !r.user?.username || !(r.audiences ?? []).includes(this.opts.workerAudience)) return undefined;
      const pool = poolOfServiceAccount(r.user.username, this.opts.namespace);
      if (!pool) return undefined;
      const pod = podOfUser(r.user);
      return { holder: pod ? `${r.user.username}/${pod}` : r.user.username, pool };
    });
  }
}
