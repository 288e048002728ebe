import t from 'tap';
import type { Client } from 'pg';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// Replication delay: a standby whose replay is paused while the primary keeps writing stops
// getting reads once over delay_threshold, and gets them back after it catches up; and
// read_your_writes keeps a session's reads after its own writes correct with replay paused.

let cluster: TestCluster;

t.before(async () => {
  cluster = await createCluster(2);
  await cluster.psql(0, 'create table w (id int, pad text)');
  for (const n of [1, 2]) await waitFor(`node ${n} has w`, async () => (await cluster.psql(n, "select count(*) from pg_class where relname = 'w'")) === '1', 20_000);
});
t.teardown(async () => {
  // Never leave a standby paused for the next test.
  for (const n of [1, 2]) await cluster?.psql(n, 'select pg_wal_replay_resume()').catch(() => undefined);
  await cluster?.destroy();
});

async function nodeOf(c: Client, sql: string): Promise<number> {
  const seen: number[] = [];
  const on = (n: { message?: string }) => {
    const m = /^DB node id: (\d+)/.exec(n.message ?? '');
    if (m) seen.push(Number(m[1]));
  };
  c.on('notice', on);
  try {
    await c.query(sql);
  } finally {
    c.off('notice', on);
  }
  return seen[0]!;
}

async function withSluice(overrides: Record<string, unknown>, f: (s: TestSluice) => Promise<void>): Promise<void> {
  const s = await startSluice(cluster, { notice_per_node_statement: true, ...overrides });
  try {
    await f(s);
  } finally {
    await s.stop();
  }
}

const writeBurst = () => cluster.psql(0, "insert into w select g, repeat('x', 200) from generate_series(1, 2000) g");

t.test('a paused standby over delay_threshold gets no reads until it catches up', async (t) => {
  await withSluice({ weights: [0, 1, 0], sr_check_period: 1, delay_threshold: 10_000 }, async (s) => {
    const c = await s.client();
    t.equal(await nodeOf(c, 'select 1'), 1, 'the load-balance node serves reads');
    await cluster.psql(1, 'select pg_wal_replay_pause()');
    await writeBurst();
    await waitFor('node 1 reported delayed', () => s.server.replication.info[1]!.delayed, 15_000);
    t.ok(s.server.replication.info[1]!.delayBytes > 10_000, `delay ${s.server.replication.info[1]!.delayBytes} bytes`);
    t.equal(await nodeOf(c, 'select 2'), 0, 'over the threshold: the primary instead');
    await cluster.psql(1, 'select pg_wal_replay_resume()');
    await waitFor('node 1 caught up', () => !s.server.replication.info[1]!.delayed, 15_000);
    t.equal(await nodeOf(c, 'select 3'), 1, 'back under the threshold: reads return');
  });
});

t.test('prefer_lower_delay_standby sends the reads to the least-delayed standby', async (t) => {
  const opts = { weights: [0, 1, 1], sr_check_period: 1, delay_threshold: 10_000, prefer_lower_delay_standby: true, app_name_redirect_preference_list: 'lagtest:1' };
  await withSluice(opts, async (s) => {
    const c = await s.client({ application_name: 'lagtest' });
    t.equal(await nodeOf(c, 'select 1'), 1);
    await cluster.psql(1, 'select pg_wal_replay_pause()');
    await writeBurst();
    await waitFor('node 1 reported delayed', () => s.server.replication.info[1]!.delayed, 15_000);
    t.equal(await nodeOf(c, 'select 2'), 2, 'the other standby, not the primary');
    await cluster.psql(1, 'select pg_wal_replay_resume()');
    await waitFor('node 1 caught up', () => !s.server.replication.info[1]!.delayed, 15_000);
  });
});

t.test('read_your_writes: a write then an immediate read always sees the write', async (t) => {
  const run = async (readYourWrites: boolean) => {
    let seen = 0;
    let onStandby = 0;
    await withSluice({ weights: [0, 1, 0], read_your_writes: readYourWrites, sr_check_period: 0 }, async (s) => {
      const c = await s.client();
      await c.query('select 1'); // connect the standby before pausing it
      await cluster.psql(1, 'select pg_wal_replay_pause()');
      try {
        for (let i = 0; i < 20; i++) {
          const id = 10_000 + i + (readYourWrites ? 100 : 0);
          await c.query('insert into w values ($1, $2)', [id, 'ryw']);
          const node = await nodeOf(c, `select count(*) from w where id = ${id}`);
          const r = await c.query(`select count(*)::int as n from w where id = ${id}`);
          seen += r.rows[0].n;
          if (node === 1) onStandby++;
        }
      } finally {
        await cluster.psql(1, 'select pg_wal_replay_resume()');
      }
      if (readYourWrites) {
        // Once the standby has replayed the write, reads after it use the standby again.
        await c.query('insert into w values (0, $1)', ['again']);
        const lsn = await cluster.psql(0, 'select pg_current_wal_insert_lsn()');
        await waitFor('standby replayed the write', async () => (await cluster.psql(1, `select pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
        t.equal(await nodeOf(c, 'select 1'), 1, 'a read after the standby caught up goes to it');
      }
    });
    return { seen, onStandby };
  };
  const off = await run(false);
  t.ok(off.seen < 20, `without it, reads on the paused standby miss writes (${off.seen}/20 seen)`);
  const on = await run(true);
  t.equal(on.seen, 20, 'with read_your_writes every read sees its write');
  t.equal(on.onStandby, 0, 'and none of them ran on the paused standby');
});

t.test('read_your_writes covers every connection: a write on one, then a read on another already open, sees it', async (t) => {
  await withSluice({ weights: [0, 1, 0], read_your_writes: true, sr_check_period: 0 }, async (s) => {
    // An application's pool: two connections, both opened (and on the standby) before any write.
    const writer = await s.client();
    const reader = await s.client();
    t.equal(await nodeOf(reader, 'select 1'), 1, 'the reader reads on the standby');
    await writer.query('select 1');
    await cluster.psql(1, 'select pg_wal_replay_pause()');
    let seen = 0;
    try {
      for (let i = 0; i < 20; i++) {
        const id = 20_000 + i;
        await writer.query('insert into w values ($1, $2)', [id, 'pool']);
        const r = await reader.query(`select count(*)::int as n from w where id = ${id}`);
        seen += r.rows[0].n;
      }
    } finally {
      await cluster.psql(1, 'select pg_wal_replay_resume()');
    }
    t.equal(seen, 20, 'every read on the other connection saw the write before it');
    // Once the standby has replayed everything, the reader's reads go back to it.
    const lsn = await cluster.psql(0, 'select pg_current_wal_insert_lsn()');
    await waitFor('standby replayed the writes', async () => (await cluster.psql(1, `select pg_last_wal_replay_lsn() >= '${lsn}'`)) === 't');
    await waitFor('a read on the standby again', async () => (await nodeOf(reader, 'select 2')) === 1);
  });
});
