/**
 * Leader election for controller replicas > 1, through a coordination.k8s.io
 * Lease (`paddock-controller`), the way client-go's leaderelection does it:
 * the holder renews `renewTime` every `retryMs`; another replica takes the
 * Lease over only when it was not renewed for `leaseDurationMs`. Writes use
 * the Lease's resourceVersion, so two replicas never both win. A leader that
 * cannot renew before `leaseDurationMs` passes steps down.
 */
import type { ClusterStore, KubeObject } from './store';
import { StoreError } from './store';

export interface LeaderElectorOptions {
  readonly store: ClusterStore;
  readonly name: string;
  readonly identity: string;
  /** @default 15000 */
  readonly leaseDurationMs?: number;
  /** @default 2000 */
  readonly retryMs?: number;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

const micro = (t: number) => new Date(t).toISOString().replace('Z', '000Z');

export class LeaderElector {
  public isLeader = false;
  public onChange?: (leading: boolean) => void;
  private timer?: NodeJS.Timeout;
  private lastRenew = 0;
  private stopped = false;
  private readonly duration: number;
  private readonly retry: number;
  private readonly now: () => number;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.duration = opts.leaseDurationMs ?? 15_000;
    this.retry = opts.retryMs ?? 2_000;
    this.now = opts.now ?? Date.now;
  }

  public async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
  }

  public async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.isLeader) {
      // Hand over at once: an expired renewTime lets the next replica take it.
      try {
        const lease = await this.opts.store.get('Lease', this.opts.name);
        if (lease && (lease.spec as any)?.holderIdentity === this.opts.identity) {
          await this.opts.store.replace({ ...lease, spec: { ...(lease.spec as object), renewTime: micro(0) } });
        }
      } catch {
        // it expires on its own
      }
      this.set(false);
    }
  }

  /** One attempt to acquire or renew; public for tests. */
  public async tick(): Promise<void> {
    try {
      await this.tryAcquireOrRenew();
    } catch (err) {
      this.opts.log?.(`leader election: ${(err as Error).message}`);
      if (this.isLeader && this.now() - this.lastRenew > this.duration) this.set(false);
    }
    if (!this.stopped) {
      this.timer = setTimeout(() => void this.tick(), this.retry);
      this.timer.unref?.();
    }
  }

  private async tryAcquireOrRenew(): Promise<void> {
    const { store, name, identity } = this.opts;
    const now = this.now();
    const spec = { holderIdentity: identity, leaseDurationSeconds: Math.ceil(this.duration / 1000), acquireTime: micro(now), renewTime: micro(now), leaseTransitions: 0 };
    const lease = await store.get('Lease', name);
    if (!lease) {
      try {
        await store.create({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name }, spec });
        this.won(now);
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 409)) throw err;
      }
      return;
    }
    const s = (lease.spec ?? {}) as { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number; acquireTime?: string; leaseTransitions?: number };
    const renewed = s.renewTime ? Date.parse(s.renewTime) : 0;
    const expired = renewed + (s.leaseDurationSeconds ?? this.duration / 1000) * 1000 <= now;
    if (s.holderIdentity !== identity && !expired) {
      this.set(false);
      return;
    }
    const next: KubeObject = {
      ...lease,
      spec: {
        ...s,
        holderIdentity: identity,
        leaseDurationSeconds: spec.leaseDurationSeconds,
        renewTime: micro(now),
        ...(s.holderIdentity !== identity ? { acquireTime: micro(now), leaseTransitions: (s.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      await store.replace(next);
      this.won(now);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 409)) throw err;
    }
  }

  private won(now: number): void {
    this.lastRenew = now;
    if (!this.isLeader) this.opts.log?.(`leader election: ${this.opts.identity} leads`);
    this.set(true);
  }

  private set(leading: boolean): void {
    if (leading === this.isLeader) return;
    this.isLeader = leading;
    this.onChange?.(leading);
  }
}
