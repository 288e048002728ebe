import t from 'tap';
import { fakeCluster, FakeCluster } from '../helpers/fake-backend';
import { fieldsOf, RawClient, serialize } from '../helpers/raw-client';
import { waitFor } from '../helpers/sluice';
import { statusFacts } from '../../src/http/status';
import { FakeClock } from '../helpers/fake-clock';

// The session core as transcripts (pgpool's pgproto tests are the model): frontend messages in,
// the exact messages each node receives and the exact replies the client gets out, against
// scripted fake nodes (test/helpers/fake-backend.ts). Node 0 is the primary; reads go where
// the weights say. Sluice's own queries (commit positions, function look-ups) are left out of
// the nodes' transcripts; Sluice's replays are in them.

/** A client of the fake cluster: sends frames, waits for ReadyForQuery, reads what came. */
class Session {
  private seen = 0;
  private constructor(readonly c: RawClient) {}

  static async open(f: FakeCluster): Promise<Session> {
    const s = new Session(await RawClient.startup(f.sluice.port));
    s.replies(); // the startup's
    return s;
  }

  get keys(): { pid: number; key: number } {
    const k = this.c.frames.find((x) => x.type === 'K')!.body;
    return { pid: k.readInt32BE(0), key: k.readInt32BE(4) };
  }

  /** Sends the frames; resolves with the replies once `ready` more ReadyForQuery have come. */
  async send(ready: number, ...frames: Buffer[]): Promise<string[]> {
    const want = this.c.readyCount() + ready;
    this.c.send(...frames);
    await this.c.until(() => this.c.readyCount() >= want);
    return this.replies();
  }

  /** The replies since the last look, as text: "D node1", "E 22012", "C SELECT 1", "Z I". */
  replies(): string[] {
    const out = this.c.frames.slice(this.seen).map((f) => {
      if (f.type === 'D') return `D ${f.body.subarray(6).toString()}`;
      if (f.type === 'E') return `E ${fieldsOf(f).get('C')}`;
      if (f.type === 'C') return `C ${f.body.subarray(0, f.body.length - 1).toString()}`;
      if (f.type === 'Z') return `Z ${String.fromCharCode(f.body[0]!)}`;
      return f.type;
    });
    this.seen = this.c.frames.length;
    return out;
  }

  close(): void {
    this.c.close();
  }
}

const q = (sql: string) => serialize.query(sql);

t.test('a pipelined extended batch split by Flush goes to one node, the rest following it', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  s.c.send(serialize.parse({ name: 's1', text: 'select 1' }), serialize.bind({ statement: 's1' }), serialize.execute({}), serialize.flush());
  await s.c.until((x) => x.type === 'C');
  const replies = await s.send(1, serialize.bind({ statement: 's1' }), serialize.execute({}), serialize.sync());
  t.same(replies, ['1', '2', 'D node1', 'C SELECT 1', '2', 'D node1', 'C SELECT 1', 'Z I']);
  t.same(f.nodes[1]!.transcript(), ['P s1 select 1', 'B  s1', 'E ', 'H', 'B  s1', 'E ', 'S']);
  t.same(f.nodes[0]!.transcript(), [], 'the primary got nothing');
  s.close();
});

t.test('a standby that dies before its reply starts: the read is run again on the primary', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  f.nodes[1]!.script = (sql) => (sql === 'select 42' ? 'die' : 'default');
  const s = await Session.open(f);
  t.same(await s.send(1, q('select 42')), ['T', 'D node0', 'C SELECT 1', 'Z I'], 'the answer comes from the primary, as if nothing happened');
  t.same(f.nodes[0]!.transcript(), ['Q select 42']);
  t.same(await s.send(1, q('select 2')), ['T', 'D node0', 'C SELECT 1', 'Z I'], 'the lost standby is not used again');
  s.close();
});

t.test('a standby that dies after its reply started: the client gets 08006 for that statement and goes on', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  f.nodes[1]!.script = (sql) => (sql === 'select 42' ? { partialThenDie: ['half'] } : 'default');
  const s = await Session.open(f);
  t.same(await s.send(1, q('select 42')), ['T', 'D half', 'E 08006', 'Z I'], 'what had come stays; then an error of its own');
  t.same(await s.send(1, q('select 2')), ['T', 'D node0', 'C SELECT 1', 'Z I']);
  s.close();
});

t.test('SET and PREPARE are replayed on a standby before it serves, and only then', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  t.same(await s.send(1, q('set search_path = app')), ['C SET', 'Z I']);
  t.same(await s.send(1, q('prepare p as select 1')), ['C PREPARE', 'Z I']);
  t.same(f.nodes[1]!.transcript(), [], 'nothing on the standby yet');
  t.same(await s.send(1, q('select 1')), ['T', 'D node1', 'C SELECT 1', 'Z I'], 'the client sees its own answer only');
  t.same(f.nodes[1]!.transcript(), ['Q set search_path = app', 'Q prepare p as select 1', 'Q select 1']);
  t.same(f.nodes[0]!.transcript(), ['Q set search_path = app', 'Q prepare p as select 1']);
  s.close();
});

t.test('a SET rolled back to its savepoint is never replayed; one kept is', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  for (const sql of ['begin', 'savepoint a', 'set statement_timeout = 5', 'rollback to a', 'set lock_timeout = 7', 'commit']) await s.send(1, q(sql));
  t.same(await s.send(1, q('select 1')), ['T', 'D node1', 'C SELECT 1', 'Z I']);
  t.same(f.nodes[1]!.transcript(), ['Q set lock_timeout = 7', 'Q select 1']);
  s.close();
});

t.test('a local SHOW POOL_* between pipelined statements is answered in its turn', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  const replies = await s.send(3, q('select 1'), q('SHOW POOL_VERSION'), q('select 2'));
  const z = replies.map((r, i) => (r.startsWith('Z') ? i : -1)).filter((i) => i >= 0);
  t.same(replies.slice(0, z[0]! + 1), ['T', 'D node1', 'C SELECT 1', 'Z I'], 'the first answer first');
  t.match(replies.slice(z[0]! + 1, z[1]! + 1).join(' '), /^T D \S+ .*C [A-Z 0-9]+ Z I$/, 'then the local answer');
  t.same(replies.slice(z[1]! + 1), ['T', 'D node1', 'C SELECT 1', 'Z I'], 'then the last');
  t.same(f.nodes[1]!.transcript(), ['Q select 1', 'Q select 2']);
  s.close();
});

t.test('a cancel during a replay reaches the standby replaying, and the read still gets an answer', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  await s.send(1, q('set search_path = app'));
  f.nodes[1]!.script = (sql) => (sql === 'set search_path = app' ? 'hold' : 'default');
  const answered = s.c.readyCount() + 1;
  s.c.send(q('select 1'));
  const replaying = await f.nodes[1]!.until('the replay held on the standby', () => f.nodes[1]!.sessions().find((c) => c.received.includes('Q set search_path = app')));
  const raw = await RawClient.open(f.sluice.port);
  raw.send(serialize.cancel(s.keys.pid, s.keys.key));
  await f.nodes[1]!.until('the cancel on the standby', () => replaying.cancels > 0);
  raw.close();
  await s.c.until(() => s.c.readyCount() === answered);
  t.same(s.replies().slice(-4), ['T', 'D node0', 'C SELECT 1', 'Z I'], 'the replay failed: the standby is left and the primary answers');
  s.close();
});

t.test('statement-level balancing: the node a read waited for is the node that runs it', async (t) => {
  // The draws alternate between the two standbys: a read decided again after each wait would go
  // to the other one each time.
  let n = 0;
  const f = await fakeCluster(3, { weights: [0, 1, 1], statement_level_load_balance: true }, { rng: () => (n++ % 2 === 0 ? 0.25 : 0.75) });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  await s.send(1, q('set search_path = app'));
  const replies = await s.send(1, q('select 1'));
  const ran = replies.find((r) => r.startsWith('D '))!.slice(2);
  const replayedOn = f.nodes.filter((x) => x.transcript().includes('Q set search_path = app') && x.id > 0).map((x) => x.name);
  t.same(replayedOn, [ran], `the state was replayed on ${ran}, where the read ran, and nowhere else`);
  s.close();
});

t.test('a paused session holds its next statement and goes on at resume', async (t) => {
  const f = await fakeCluster(2, { weights: [0, 1] });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  f.sluice.server.gate.close();
  s.c.send(q('select 1'));
  await waitFor('the session held by the pause', () => f.sluice.server.sessions().some((x) => x.waitingFor === 'Sluice to be resumed'));
  t.same(f.nodes[1]!.transcript(), [], 'nothing sent while paused');
  const facts = statusFacts(f.sluice.server) as { sessions: { held: number; waiting: unknown[] } };
  t.same([facts.sessions.held, facts.sessions.waiting], [1, [{ session: f.sluice.server.sessions()[0]!.id, waitingFor: 'Sluice to be resumed' }]], 'the status page names the wait');
  f.sluice.server.gate.open();
  await s.c.until(() => s.c.readyCount() === 2);
  t.same(s.replies().slice(-4), ['T', 'D node1', 'C SELECT 1', 'Z I']);
  s.close();
});

t.test('a Query held across a reconnect: the primary dies while the session is idle, the next statement waits for the new one', async (t) => {
  const f = await fakeCluster(2, { weights: [1, 0], search_primary_node_timeout: 10, failover_hold_timeout: 10 });
  t.teardown(() => f.stop());
  const s = await Session.open(f);
  await s.send(1, q('set search_path = app'));
  // Node 1 is promoted as node 0 goes: it answers pg_is_in_recovery() = false from now on.
  const [old, next] = f.nodes as [typeof f.nodes[0], typeof f.nodes[0]];
  await old.stop();
  next.standby = false;
  // Once Sluice has seen its connection go and the node fail its check, the next statement comes.
  await waitFor('node 0 detached', () => f.sluice.server.cluster.topology.nodes[0]!.status === 'down');
  t.same(await s.send(1, q('select 1')), ['T', 'D node1', 'C SELECT 1', 'Z I'], 'the statement waited and ran on the new primary');
  t.same(next.transcript(), ['Q set search_path = app', 'Q select 1'], "the session's state first");
  s.close();
});

t.test('transaction mode: a client waiting for a connection is told why after 5 s, and served when one is free', async (t) => {
  const clock = new FakeClock();
  const f = await fakeCluster(1, { pool_mode: 'transaction', default_pool_size: 1 }, { clock });
  t.teardown(() => f.stop());
  const a = await Session.open(f);
  const b = await Session.open(f);
  t.same(await a.send(1, q('begin')), ['C BEGIN', 'Z T'], 'a holds the one connection');
  b.c.send(q('select 1'));
  await waitFor('b in line', () => f.sluice.server.poolCounts()[0]!.waiting === 1);
  clock.tick(4_999);
  t.notOk(b.c.frames.slice(-1).some((x) => x.type === 'N'), 'no word before 5 s');
  clock.tick(1);
  await b.c.until(() => b.c.frames.some((x) => x.type === 'N'));
  const notice = b.c.frames.find((x) => x.type === 'N')!;
  t.equal(fieldsOf(notice).get('M'), 'waiting for a server connection');
  t.match(fieldsOf(notice).get('D'), /All 1 server connections of this pool/);
  await a.send(1, q('commit'));
  await b.c.until(() => b.c.readyCount() === 2);
  t.same(b.replies().slice(-5), ['N', 'T', 'D node0', 'C SELECT 1', 'Z I'], 'then its statement ran');
  t.same(f.nodes[0]!.transcript(), ['Q begin', 'Q commit', 'Q select 1'], 'one connection served both, in turn');
  a.close();
  b.close();
});
