import t from 'tap';
import { EtcdKey, EtcdUnavailable } from '../../src/coord/etcd';
import { MemberInfo, Store, Watchdog, WatchdogTiming } from '../../src/coord/watchdog';
import { createLogger } from '../../src/log/logger';
import { FakeClock } from '../helpers/fake-clock';

// The watchdog's rules against an etcd kept in memory on a fake clock: one leader, a leader that
// cannot renew steps down before its lease can have expired at etcd, wd_priority, a lease that
// expired while away is replaced.

/** etcd's keys and leases; a lease ends `ttl` seconds after its last renewal. */
class MemoryEtcd {
  readonly keys = new Map<string, { value: string; lease: string; rev: number }>();
  /** etcd's revision: grows with every write. */
  revision = 0;
  /** Lease id → when it ends (monotonic ms). */
  readonly leases = new Map<string, number>();
  readonly ttls = new Map<string, number>();
  private next = 1;
  constructor(readonly clock: FakeClock) {}

  grant(ttl: number): string {
    const id = String(this.next++);
    this.ttls.set(id, ttl);
    this.leases.set(id, this.clock.monotonic() + ttl * 1000);
    return id;
  }

  expire(): void {
    for (const [id, until] of this.leases) {
      if (this.clock.monotonic() < until) continue;
      this.leases.delete(id);
      for (const [k, v] of this.keys) if (v.lease === id) this.keys.delete(k);
    }
  }
}

/** One instance's way to that etcd; `reachable = false` cuts it off. */
class Link implements Store {
  reachable = true;
  constructor(private readonly etcd: MemoryEtcd) {}

  private check(): void {
    if (!this.reachable) throw new EtcdUnavailable('cut off');
    this.etcd.expire();
  }

  async grant(ttl: number): Promise<string> {
    this.check();
    return this.etcd.grant(ttl);
  }

  async keepAlive(lease: string): Promise<number> {
    this.check();
    if (!this.etcd.leases.has(lease)) return 0;
    const ttl = this.etcd.ttls.get(lease)!;
    this.etcd.leases.set(lease, this.etcd.clock.monotonic() + ttl * 1000);
    return ttl;
  }

  async revoke(lease: string): Promise<void> {
    this.check();
    this.etcd.leases.set(lease, 0);
    this.etcd.expire();
  }

  async put(key: string, value: string, lease = '0'): Promise<void> {
    this.check();
    this.etcd.keys.set(key, { value, lease, rev: ++this.etcd.revision });
  }

  async putIfHeld(key: string, value: string, holder: string, lease: string): Promise<boolean> {
    this.check();
    if (this.etcd.keys.get(holder)?.lease !== lease) return false;
    await this.put(key, value);
    return true;
  }

  async deleteIfHeld(key: string, lease: string): Promise<boolean> {
    this.check();
    if (this.etcd.keys.get(key)?.lease !== lease) return false;
    this.etcd.keys.delete(key);
    return true;
  }

  async list(prefix: string): Promise<EtcdKey[]> {
    this.check();
    return [...this.etcd.keys].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => a.localeCompare(b)).map(([key, v]) => ({ key, value: v.value, lease: v.lease, createRevision: '1', modRevision: String(v.rev) }));
  }

  async createIfAbsent(key: string, value: string, lease: string): Promise<true | EtcdKey> {
    this.check();
    const there = this.etcd.keys.get(key);
    if (there) return { key, value: there.value, lease: there.lease, createRevision: '1', modRevision: String(there.rev) };
    this.etcd.keys.set(key, { value, lease, rev: ++this.etcd.revision });
    return true;
  }


  close(): void {}
}

const timing: WatchdogTiming = { ttl: 10, loopWaitMs: 1000, retryTimeoutMs: 3000 };
const member = (name: string, priority = 1): MemberInfo => ({ name, host: 'h', port: 1, pcpPort: 2, httpPort: 3, version: 'v', priority, startedAt: 0, slot: 0 });
const log = createLogger('error');

/** Moves the fake clock in small steps, letting each round's promises settle between them. */
async function advance(clock: FakeClock, ms: number, step = 100): Promise<void> {
  for (let done = 0; done < ms; done += step) {
    clock.tick(step);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  }
}

function instance(etcd: MemoryEtcd, name: string, priority = 1) {
  const link = new Link(etcd);
  const changes: { at: number; leads: boolean }[] = [];
  const w = new Watchdog(link, '/g/', member(name, priority), timing, etcd.clock, log, { leadership: (leads) => changes.push({ at: etcd.clock.monotonic(), leads }) });
  return { w, link, changes };
}

/** Two instances on one etcd, both started, and `ms` of rounds run. */
async function pair(ms: number) {
  const clock = new FakeClock();
  const etcd = new MemoryEtcd(clock);
  const a = instance(etcd, 'a');
  const b = instance(etcd, 'b');
  await a.w.start();
  await b.w.start();
  await advance(clock, ms);
  return { clock, etcd, a, b };
}

t.test('one leader; the others see it; a leader that leaves hands over within a loop', async (t) => {
  const { clock, a, b } = await pair(1000);
  t.equal(a.w.isLeader, true);
  t.equal(b.w.isLeader, false);
  t.same(b.w.view().leader, 'a');
  t.same(b.w.view().members.map((m) => m.name), ['a', 'b']);
  await a.w.stop();
  t.same(a.changes.map((c) => c.leads), [true, false], 'a led, then stopped');
  await advance(clock, 1100);
  t.equal(b.w.isLeader, true, 'b leads after the next round');
  t.same(b.w.view().members.map((m) => m.name), ['b'], 'a left the group at once');
  await b.w.stop();
});

t.test('a leader cut off from etcd stops acting before its lease can expire; another takes over after it does', async (t) => {
  const { clock, etcd, a, b } = await pair(2000);
  t.equal(a.w.isLeader, true);
  const lastRenewal = clock.monotonic();
  a.link.reachable = false;
  const leaseEnds = etcd.leases.get([...etcd.keys].find(([k]) => k === '/g/leader')![1].lease)!;
  await advance(clock, 12_000);
  const down = a.changes.find((c) => !c.leads);
  t.ok(down, 'a stepped down');
  t.ok(down!.at < leaseEnds, `before its lease ended at etcd (${down!.at - lastRenewal} ms after the last renewal; it ends ${leaseEnds - lastRenewal} ms after)`);
  t.equal(a.w.view().etcdReachable, false);
  t.equal(b.w.isLeader, true, 'b leads once the lease expired');
  t.ok(b.changes[0]!.at >= leaseEnds, 'and not before: never two leaders');
  // a comes back: its lease is gone, so it joins again as a member, not as leader.
  a.link.reachable = true;
  await advance(clock, 2000);
  t.equal(a.w.isLeader, false);
  t.equal(a.w.view().etcdReachable, true);
  t.same(a.w.view().members.map((m) => m.name), ['a', 'b'], 'a registered again with a new lease');
  await a.w.stop();
  await b.w.stop();
});

t.test('wd_priority: the live instance with the highest priority stands for leader', async (t) => {
  const clock = new FakeClock();
  const etcd = new MemoryEtcd(clock);
  const low = instance(etcd, 'low', 1);
  const high = instance(etcd, 'high', 5);
  // high is a member already (as if registered a moment ago) when low first stands.
  await low.link.put('/g/members/high', JSON.stringify(member('high', 5)), await low.link.grant(10));
  await low.w.start();
  t.equal(low.w.isLeader, false, 'low does not stand while high is a member');
  await high.w.start();
  await advance(clock, 1000);
  t.equal(high.w.isLeader, true);
  await high.w.stop();
  await advance(clock, 1100);
  t.equal(low.w.isLeader, true, 'low stands once high is gone');
  await low.w.stop();
});

t.test('failover by consensus: the leader acts on a majority of live instances, and its view reaches the others', async (t) => {
  const clock = new FakeClock();
  const etcd = new MemoryEtcd(clock);
  const seen = new Map<string, number[]>([['a', []], ['b', []], ['c', []]]);
  const epochs = new Map<string, number>([['a', 5], ['b', 3], ['c', 3]]);
  const agreed: number[][] = [];
  const applied: [string, number][] = [];
  const make = (name: string) =>
    new Watchdog(new Link(etcd), '/g/', member(name), timing, clock, log, {
      leadership: () => undefined,
      seesDown: () => seen.get(name)!,
      agreedDown: (nodes) => agreed.push(nodes.map((n) => n.id)),
      localView: () => ({ epoch: epochs.get(name)!, primary: 0, statuses: ['up', 'up'] }),
      groupView: (v) => {
        applied.push([name, v.epoch]);
        epochs.set(name, v.epoch);
      },
    });
  const [a, b, c] = ['a', 'b', 'c'].map(make) as [Watchdog, Watchdog, Watchdog];
  for (const w of [a, b, c]) await w.start();
  await advance(clock, 2000);
  t.equal(a.isLeader, true);
  t.same(applied.map(([n]) => n).sort(), ['b', 'c'], "the leader's view (epoch 5) reached b and c");
  t.ok(applied.every(([, e]) => e === 5));
  seen.set('c', [1]);
  await advance(clock, 3000);
  t.same(agreed, [], 'one instance of three is not enough');
  seen.set('b', [1]);
  await advance(clock, 2000);
  t.ok(agreed.length > 0 && agreed.every((ids) => ids.length === 1 && ids[0] === 1), 'two of three: the leader fails node 1 over');
  for (const w of [a, b, c]) await w.stop();
});
