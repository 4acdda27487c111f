/**
 * Leader election for controller replicas > 1, through a coordination.k8s.io
 * Lease (`paddock-controller`), the way client-go's leaderelection does it:
 * the holder renews `renewTime` every `retryMs`; another replica takes the
 * Lease over only when the record has not changed for `leaseDurationMs` by its
 * own monotonic clock, since it last saw it change (the holder's timestamps are
 * never compared with this replica's clock: clocks differ between nodes). Writes
 * use the Lease's resourceVersion, so two replicas never both win. A leader that
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
  /** Wall clock for the timestamps written into the Lease. @default Date.now */
  readonly now?: () => number;
  /** This replica's monotonic clock, which alone judges expiry. @default performance.now */
  readonly monotonic?: () => number;
  readonly log?: (line: string) => void;
  /** This replica's address (its pod IP), recorded on the Lease so followers can forward requests to the leader. */
  readonly address?: string;
}

/** What identifies one version of the Lease record (a change means the holder is alive). */
const recordOf = (s: Record<string, unknown>): string => JSON.stringify([s.holderIdentity, s.renewTime, s.acquireTime, s.leaseTransitions, s.leaseDurationSeconds]);

/** The Lease annotation holding the leader's address. */
export const LEADER_ADDRESS_ANNOTATION = 'paddock.dev/leader-address';

const micro = (t: number) => new Date(t).toISOString().replace('Z', '000Z');

export class LeaderElector {
  public isLeader = false;
  /** The current leader's address as its Lease says (this replica's own while it leads). */
  public leaderAddress?: string;
  public onChange?: (leading: boolean) => void;
  private timer?: NodeJS.Timeout;
  private lastRenew = 0;
  private stopped = false;
  private readonly duration: number;
  private readonly retry: number;
  private readonly now: () => number;
  private readonly monotonic: () => number;
  /** The record as last seen, and when (monotonic) it was first seen that way. */
  private observed?: { readonly record: string; readonly at: number };

  constructor(private readonly opts: LeaderElectorOptions) {
    this.duration = opts.leaseDurationMs ?? 15_000;
    this.retry = opts.retryMs ?? 2_000;
    this.now = opts.now ?? Date.now;
    this.monotonic = opts.monotonic ?? (() => performance.now());
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
      if (this.isLeader && this.monotonic() - this.lastRenew > this.duration) this.set(false);
    }
    if (this.timer) clearTimeout(this.timer); // a tick called from outside (tests) replaces the scheduled one
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
        const stored = await store.create({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, ...this.addressAnnotation() }, spec });
        this.seen(stored);
        this.won();
      } catch (err) {
        if (!(err instanceof StoreError && err.code === 409)) throw err;
      }
      return;
    }
    const s = (lease.spec ?? {}) as { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number; acquireTime?: string; leaseTransitions?: number };
    const record = recordOf(s);
    if (this.observed?.record !== record) this.observed = { record, at: this.monotonic() };
    // A holder that handed over (stop) writes renewTime at the epoch: free at once.
    const released = !s.holderIdentity || (s.renewTime !== undefined && Date.parse(s.renewTime) === 0);
    const expired = released || this.observed.at + (s.leaseDurationSeconds ?? this.duration / 1000) * 1000 <= this.monotonic();
    if (s.holderIdentity !== identity && !expired) {
      this.leaderAddress = lease.metadata.annotations?.[LEADER_ADDRESS_ANNOTATION];
      this.set(false);
      return;
    }
    const next: KubeObject = {
      ...lease,
      metadata: { ...lease.metadata, annotations: { ...lease.metadata.annotations, ...this.addressAnnotation().annotations } },
      spec: {
        ...s,
        holderIdentity: identity,
        leaseDurationSeconds: spec.leaseDurationSeconds,
        renewTime: micro(now),
        ...(s.holderIdentity !== identity ? { acquireTime: micro(now), leaseTransitions: (s.leaseTransitions ?? 0) + 1 } : {}),
      },
    };
    try {
      const stored = await store.replace(next);
      this.seen(stored);
      this.won();
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 409)) throw err;
    }
  }

  /** Our own write: the record as we wrote it, seen now. */
  private seen(lease: KubeObject): void {
    this.observed = { record: recordOf((lease.spec ?? {}) as Record<string, unknown>), at: this.monotonic() };
  }

  private addressAnnotation(): { annotations?: Record<string, string> } {
    return this.opts.address ? { annotations: { [LEADER_ADDRESS_ANNOTATION]: this.opts.address } } : {};
  }

  private won(): void {
    this.lastRenew = this.monotonic();
    this.leaderAddress = this.opts.address;
    if (!this.isLeader) this.opts.log?.(`leader election: ${this.opts.identity} leads`);
    this.set(true);
  }

  private set(leading: boolean): void {
    if (leading === this.isLeader) return;
    this.isLeader = leading;
    this.onChange?.(leading);
  }
}
