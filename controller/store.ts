/**
 * What the controller needs of the Kubernetes API, as one small interface:
 * list+watch (informers), get, create, replace, merge-patch metadata, delete.
 *
 * Two implementations: `MemoryStore` (here; `paddock local`, the benchmark and
 * the unit tests: an in-process stand-in for the API server with
 * resourceVersions, conflicts, ownerReference garbage collection and watch
 * events) and `KubeStore` (k8s-store.ts: @kubernetes/client-node informers
 * against a real API server).
 */
import { randomUUID } from 'crypto';

export type Kind = 'ConfigMap' | 'Job' | 'Pod' | 'Lease' | 'Event';

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export type WatchEvent = 'add' | 'update' | 'delete';
export type WatchHandler = (event: WatchEvent, obj: KubeObject) => void;

export interface ClusterStore {
  /** List, then watch: `handler` gets an `add` per existing object, then every change. Resolves once the list is in. */
  watch(kind: Kind, labelSelector: string | undefined, handler: WatchHandler): Promise<() => void>;
  get(kind: Kind, name: string): Promise<KubeObject | undefined>;
  /** Throws StoreError 409 when the name is taken. */
  create(obj: KubeObject): Promise<KubeObject>;
  /** Replace; with metadata.resourceVersion set, throws StoreError 409 when it changed meanwhile. */
  replace(obj: KubeObject): Promise<KubeObject>;
  /** Merge labels and annotations (null removes a key). */
  patchMetadata(kind: Kind, name: string, patch: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> }): Promise<KubeObject>;
  /** Background propagation: owned objects are removed by the garbage collector. 404 is not an error. */
  delete(kind: Kind, name: string): Promise<void>;
  /** The last `tailLines` lines of a pod's container log (a Job runner's patches, see core/protocol.ts). */
  readLog?(pod: string, container: string, tailLines: number): Promise<string>;
}

export class StoreError extends Error {
  constructor(
    public readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}

/** `a=b,c=d` (equality only, which is what the controller uses). */
export function matchesSelector(labels: Record<string, string> | undefined, selector: string | undefined): boolean {
  if (!selector) return true;
  return selector
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .every((term) => {
      const [k, v] = term.split('=');
      return (labels ?? {})[k] === v;
    });
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The in-process API server stand-in. Objects are copied in and out, as over the wire. */
export class MemoryStore implements ClusterStore {
  private readonly objects = new Map<string, KubeObject>();
  private readonly watchers = new Set<{ kind: Kind; selector?: string; handler: WatchHandler }>();
  private version = 0;

  constructor(private readonly namespace = 'paddock') {}

  private key(kind: string, name: string): string {
    return `${kind}/${name}`;
  }

  /** Container logs by `pod/container` (what a kubelet would keep; set by tests). */
  public readonly logs = new Map<string, string>();

  public async readLog(pod: string, container: string, tailLines: number): Promise<string> {
    const text = this.logs.get(`${pod}/${container}`);
    if (text === undefined) throw new StoreError(404, `no log of pod "${pod}" container "${container}"`);
    return text.replace(/\n$/, '').split('\n').slice(-tailLines).join('\n') + '\n';
  }

  /** Every object of a kind (for tests and `paddock local`). */
  public list(kind: Kind, labelSelector?: string): KubeObject[] {
    return [...this.objects.values()].filter((o) => o.kind === kind && matchesSelector(o.metadata.labels, labelSelector)).map(clone);
  }

  public async watch(kind: Kind, labelSelector: string | undefined, handler: WatchHandler): Promise<() => void> {
    const w = { kind, selector: labelSelector, handler };
    for (const o of this.list(kind, labelSelector)) handler('add', o);
    this.watchers.add(w);
    return () => {
      this.watchers.delete(w);
    };
  }

  public async get(kind: Kind, name: string): Promise<KubeObject | undefined> {
    const o = this.objects.get(this.key(kind, name));
    return o ? clone(o) : undefined;
  }

  public async create(obj: KubeObject): Promise<KubeObject> {
    return this.createSync(obj);
  }

  /** Load objects (e.g. from dist/) without going through the event loop. */
  public createSync(obj: KubeObject): KubeObject {
    const key = this.key(obj.kind, obj.metadata.name);
    if (this.objects.has(key)) throw new StoreError(409, `${obj.kind} "${obj.metadata.name}" already exists`);
    const stored = clone(obj);
    stored.metadata.namespace = stored.metadata.namespace ?? this.namespace;
    stored.metadata.uid = randomUUID();
    stored.metadata.resourceVersion = String(++this.version);
    stored.metadata.creationTimestamp = new Date().toISOString();
    delete stored.metadata.deletionTimestamp;
    this.objects.set(key, stored);
    this.emit('add', stored);
    return clone(stored);
  }

  public async replace(obj: KubeObject): Promise<KubeObject> {
    const key = this.key(obj.kind, obj.metadata.name);
    const old = this.objects.get(key);
    if (!old) throw new StoreError(404, `${obj.kind} "${obj.metadata.name}" not found`);
    if (obj.metadata.resourceVersion && obj.metadata.resourceVersion !== old.metadata.resourceVersion) {
      throw new StoreError(409, `${obj.kind} "${obj.metadata.name}" was modified (resourceVersion ${obj.metadata.resourceVersion} is stale)`);
    }
    const stored = clone(obj);
    stored.metadata.namespace = old.metadata.namespace;
    stored.metadata.uid = old.metadata.uid;
    stored.metadata.creationTimestamp = old.metadata.creationTimestamp;
    stored.metadata.resourceVersion = String(++this.version);
    this.objects.set(key, stored);
    this.emit('update', stored);
    return clone(stored);
  }

  public async patchMetadata(kind: Kind, name: string, patch: { labels?: Record<string, string | null>; annotations?: Record<string, string | null> }): Promise<KubeObject> {
    const old = this.objects.get(this.key(kind, name));
    if (!old) throw new StoreError(404, `${kind} "${name}" not found`);
    const next = clone(old);
    for (const field of ['labels', 'annotations'] as const) {
      const p = patch[field];
      if (!p) continue;
      const merged: Record<string, string> = { ...(next.metadata[field] ?? {}) };
      for (const [k, v] of Object.entries(p)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      next.metadata[field] = merged;
    }
    delete next.metadata.resourceVersion;
    return this.replace(next);
  }

  public async delete(kind: Kind, name: string): Promise<void> {
    this.deleteSync(kind, name);
  }

  /** Remove an object and, like the garbage collector, everything it owns. */
  public deleteSync(kind: Kind, name: string): void {
    const key = this.key(kind, name);
    const old = this.objects.get(key);
    if (!old) return;
    this.objects.delete(key);
    this.emit('delete', old);
    const uid = old.metadata.uid;
    for (const o of [...this.objects.values()]) {
      if (o.metadata.ownerReferences?.some((r) => r.uid === uid)) this.deleteSync(o.kind as Kind, o.metadata.name);
    }
  }

  private emit(event: WatchEvent, obj: KubeObject): void {
    for (const w of [...this.watchers]) {
      if (w.kind === obj.kind && matchesSelector(obj.metadata.labels, w.selector)) w.handler(event, clone(obj));
    }
  }
}
