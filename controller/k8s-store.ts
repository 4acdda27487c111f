/**
 * The ClusterStore against a real API server, through @kubernetes/client-node.
 *
 * Why it is loaded this way: client-node 1.x is ESM-only, this package compiles
 * to CommonJS, and TypeScript turns `import()` into `require()` under CommonJS.
 * So the module is loaded with a real dynamic `import()` (kept from the
 * compiler by `new Function`), in this file only, when `paddock controller`
 * starts. Nothing else (reconcile, the lease protocol, `paddock local`, jest
 * suites) loads the client. 1.4 rather than 2.x: 2.x needs Node >= 22 (undici 8);
 * 0.x pulls the deprecated `request`.
 *
 * Informers: `makeInformer` lists once and then watches (it re-lists and
 * re-watches after an error), per kind and label selector. Writes go through
 * the generic KubernetesObjectApi (create, replace with resourceVersion,
 * JSON merge patch of labels/annotations, delete with Background
 * propagation, so the garbage collector removes owned objects).
 */
import type { ReviewApi } from './auth';
import type { ClusterStore, Kind, KubeObject, WatchHandler } from './store';
import { StoreError } from './store';
import { importEsm } from '../core/import-esm';


const API_VERSION: Record<Kind, string> = { ConfigMap: 'v1', Job: 'batch/v1', Pod: 'v1', Lease: 'coordination.k8s.io/v1', Event: 'events.k8s.io/v1' };
const PLURAL: Record<Kind, string> = { ConfigMap: 'configmaps', Job: 'jobs', Pod: 'pods', Lease: 'leases', Event: 'events' };

export interface KubeStoreOptions {
  readonly namespace: string;
  /** @default - in-cluster service account, else $KUBECONFIG / ~/.kube/config */
  readonly kubeconfig?: string;
  /** Log lines (watch errors and restarts). */
  readonly log?: (line: string) => void;
}

/** Plain JSON (the client returns class instances with Date fields), kind and apiVersion filled in. */
function plain(kind: Kind, obj: unknown): KubeObject {
  const o = JSON.parse(JSON.stringify(obj)) as KubeObject;
  o.kind = o.kind ?? kind;
  o.apiVersion = o.apiVersion ?? API_VERSION[kind];
  return o;
}

/** What we send: no server-owned timestamps or managed fields. */
function outgoing(obj: KubeObject): KubeObject {
  const o = JSON.parse(JSON.stringify(obj)) as KubeObject;
  delete o.metadata.creationTimestamp;
  delete o.metadata.deletionTimestamp;
  delete (o.metadata as unknown as Record<string, unknown>).managedFields;
  delete o.status;
  return o;
}

function toStoreError(err: unknown): unknown {
  const code = (err as { code?: number; statusCode?: number })?.code ?? (err as { statusCode?: number })?.statusCode;
  if (typeof code === 'number' && code >= 400 && code < 600) {
    const body = (err as { body?: unknown }).body;
    let message = (err as Error).message;
    try {
      message = (typeof body === 'string' ? JSON.parse(body) : (body as { message?: string }))?.message ?? message;
    } catch {
      // keep the client's message
    }
    return new StoreError(code, message);
  }
  return err;
}

export class KubeStore implements ClusterStore {
  public static async connect(opts: KubeStoreOptions): Promise<KubeStore> {
    const k8s = await importEsm('@kubernetes/client-node').catch((err: NodeJS.ErrnoException) => {
      if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
      // An optional dependency: agent images leave it out.
      throw new Error('paddock controller needs @kubernetes/client-node, an optional dependency of paddock: install it, or run the paddock-controller image');
    });
    const kc = new k8s.KubeConfig();
    if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
    else kc.loadFromDefault();
    return new KubeStore(k8s, kc, opts);
  }

  private readonly api: any;

  private constructor(
    private readonly k8s: any,
    private readonly kc: any,
    private readonly opts: KubeStoreOptions,
  ) {
    this.api = k8s.KubernetesObjectApi.makeApiClient(kc);
  }

  private path(kind: Kind): string {
    const v = API_VERSION[kind];
    const prefix = v.includes('/') ? `/apis/${v}` : `/api/${v}`;
    return `${prefix}/namespaces/${this.opts.namespace}/${PLURAL[kind]}`;
  }

  private header(kind: Kind, name: string): KubeObject {
    return { apiVersion: API_VERSION[kind], kind, metadata: { name, namespace: this.opts.namespace } };
  }

  public async watch(kind: Kind, labelSelector: string | undefined, handler: WatchHandler): Promise<() => void> {
    const list = async () => {
      try {
        return await this.api.list(API_VERSION[kind], kind, this.opts.namespace, undefined, undefined, undefined, undefined, labelSelector);
      } catch (err) {
        throw toStoreError(err);
      }
    };
    const informer = this.k8s.makeInformer(this.kc, this.path(kind), list, labelSelector);
    let stopped = false;
    informer.on('add', (o: unknown) => handler('add', plain(kind, o)));
    informer.on('update', (o: unknown) => handler('update', plain(kind, o)));
    informer.on('delete', (o: unknown) => handler('delete', plain(kind, o)));
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      this.opts.log?.(`watch ${kind} (${labelSelector ?? 'all'}): ${(err as Error)?.message ?? err}; restarting in 1 s`);
      setTimeout(() => {
        if (!stopped) informer.start().catch(() => undefined);
      }, 1000);
    });
    await informer.start();
    return () => {
      stopped = true;
      void informer.stop();
    };
  }

  /** TokenReview and SubjectAccessReview, as the controller's ServiceAccount (ClusterRole system:auth-delegator). */
  public reviews(): ReviewApi {
    const authn = this.kc.makeApiClient(this.k8s.AuthenticationV1Api);
    const authz = this.kc.makeApiClient(this.k8s.AuthorizationV1Api);
    return {
      tokenReview: async (token, audiences) => {
        try {
          const r = await authn.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, ...(audiences ? { audiences: [...audiences] } : {}) } } });
          return JSON.parse(JSON.stringify(r.status ?? {}));
        } catch (err) {
          throw toStoreError(err);
        }
      },
      subjectAccessReview: async (user, resource) => {
        const spec = { user: user.username, ...(user.uid ? { uid: user.uid } : {}), ...(user.groups ? { groups: [...user.groups] } : {}), ...(user.extra ? { extra: user.extra } : {}), resourceAttributes: resource };
        try {
          const r = await authz.createSubjectAccessReview({ body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec } });
          return JSON.parse(JSON.stringify(r.status ?? {}));
        } catch (err) {
          throw toStoreError(err);
        }
      },
    };
  }

  public async get(kind: Kind, name: string): Promise<KubeObject | undefined> {
    try {
      return plain(kind, await this.api.read(this.header(kind, name)));
    } catch (err) {
      const e = toStoreError(err);
      if (e instanceof StoreError && e.code === 404) return undefined;
      throw e;
    }
  }

  public async create(obj: KubeObject): Promise<KubeObject> {
    try {
      return plain(obj.kind as Kind, await this.api.create(outgoing({ ...obj, metadata: { ...obj.metadata, namespace: this.opts.namespace } })));
    } catch (err) {
      throw toStoreError(err);
    }
  }

  public async replace(obj: KubeObject): Promise<KubeObject> {
    try {
      return plain(obj.kind as Kind, await this.api.replace(outgoing(obj)));
    } catch (err) {
      throw toStoreError(err);
    }
  }

  public async patchMetadata(kind: Kind, name: string, patch: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> }): Promise<KubeObject> {
    const body = { ...this.header(kind, name), metadata: { name, namespace: this.opts.namespace, ...patch } } as unknown as KubeObject;
    try {
      return plain(kind, await this.api.patch(body, undefined, undefined, 'paddock-controller', undefined, this.k8s.PatchStrategy.MergePatch));
    } catch (err) {
      throw toStoreError(err);
    }
  }

  public async readLog(pod: string, container: string, tailLines: number): Promise<string> {
    try {
      const core = this.kc.makeApiClient(this.k8s.CoreV1Api);
      return String(await core.readNamespacedPodLog({ name: pod, namespace: this.opts.namespace, container, tailLines }));
    } catch (err) {
      throw toStoreError(err);
    }
  }

  public async delete(kind: Kind, name: string): Promise<void> {
    try {
      await this.api.delete(this.header(kind, name), undefined, undefined, undefined, undefined, 'Background');
    } catch (err) {
      const e = toStoreError(err);
      if (e instanceof StoreError && e.code === 404) return;
      throw e;
    }
  }
}
