/**
 * Leader election judges expiry by this replica's own monotonic clock since it last saw
 * the Lease record change (as client-go does), never by comparing the holder's
 * timestamps with its own wall clock. Two LeaderElectors on one in-memory store, with
 * injected clocks.
 */
import { LeaderElector } from '../../controller/leader';
import { MemoryStore } from '../../controller/store';

function clocks() {
  let t = 1_000_000;
  return { advance: (ms: number) => (t += ms), mono: () => t, wall: (skewMs = 0) => () => 1_700_000_000_000 + t + skewMs };
}

function elector(store: MemoryStore, identity: string, c: ReturnType<typeof clocks>, skewMs = 0): LeaderElector {
  return new LeaderElector({ store, name: 'paddock-controller', identity, leaseDurationMs: 15_000, retryMs: 2_000, now: c.wall(skewMs), monotonic: c.mono });
}

describe('leader election with skewed clocks', () => {
  test('a replica whose clock runs 20 s ahead does not take the Lease from a healthy leader', async () => {
    const store = new MemoryStore('paddock');
    const c = clocks();
    const a = elector(store, 'a', c);
    const b = elector(store, 'b', c, 20_000);
    await a.tick();
    expect(a.isLeader).toBe(true);
    // 60 s of a renewing every 2 s while b looks every 2 s too.
    for (let i = 0; i < 30; i++) {
      c.advance(2_000);
      await a.tick();
      await b.tick();
      expect(b.isLeader).toBe(false);
    }
    expect(a.isLeader).toBe(true);
    await a.stop();
    await b.stop();
  });

  test('a leader that stops renewing loses the Lease once the record sat unchanged for the lease duration, by the watcher\'s clock', async () => {
    const store = new MemoryStore('paddock');
    const c = clocks();
    // The holder's clock runs 20 s behind: its renewTime looks stale at once to a naive replica.
    const a = elector(store, 'a', c, -20_000);
    const b = elector(store, 'b', c);
    await a.tick();
    await b.tick();
    expect(b.isLeader).toBe(false);
    c.advance(14_000); // a is silent, but not for 15 s yet
    await b.tick();
    expect(b.isLeader).toBe(false);
    c.advance(1_000);
    await b.tick();
    expect(b.isLeader).toBe(true);
    const lease = await store.get('Lease', 'paddock-controller');
    expect(lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    await a.stop();
    await b.stop();
  });

  test('a leader that hands over (stop) is replaced at once', async () => {
    const store = new MemoryStore('paddock');
    const c = clocks();
    const a = elector(store, 'a', c);
    const b = elector(store, 'b', c);
    await a.tick();
    await b.tick();
    await a.stop();
    await b.tick();
    expect(b.isLeader).toBe(true);
    await b.stop();
  });
});
