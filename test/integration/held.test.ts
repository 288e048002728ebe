import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { RawClient, serialize } from '../helpers/raw-client';
import { clusterWithSluice, waitFor } from '../helpers/sluice';

// A client message Sluice holds for a reason of its own (another node still answering, a lag
// check, a replay, a command it answers itself) must always be let go when the reason ends. The
// hang this guards against: with read_your_writes, the commit position is read on the primary
// right after a write's ReadyForQuery; a local command (SHOW POOL_NODES) arriving meanwhile waited
// for the primary to be free and was never woken when that query ended.

// No health or replication checks: one test stops a standby's postmaster for a few seconds.
const env = clusterWithSluice(2, { weights: [0, 1, 1], read_your_writes: true, health_check_period: 0, sr_check_period: 0 });

t.before(async () => {
  await env.cluster.psql(0, 'create table held_t (v text)');
});

const LOCAL = ['SHOW POOL_NODES', 'SHOW POOL_PROCESSES', 'PGPOOL SHOW port', 'SHOW POOL_VERSION'];

t.test('a local command pipelined right behind a write is answered (read_your_writes on)', async (t) => {
  for (const local of LOCAL) {
    const c = await RawClient.startup(env.sluice.port);
    try {
      // One write: the local command arrives while the write runs, is held behind it, and is
      // let go (deterministically) while the commit position is being read on the primary.
      c.send(serialize.query("insert into held_t values ('x')"), serialize.query(local), serialize.query('select 1'));
      await c.until(() => c.readyCount() === 4, 5_000);
      t.same(c.errors(), [], `${local}: no error`);
      t.equal(c.frames.filter((f) => f.type === 'C').length, 3, `${local}: three commands completed, in order`);
    } finally {
      c.close();
    }
  }
});

t.test('200 sessions of a write then SHOW POOL_NODES, as psql -f sends them, never hang', async (t) => {
  let answered = 0;
  for (let i = 0; i < 200; i++) {
    const c = await env.sluice.client();
    await c.query("insert into held_t values ('y')");
    const r = await Promise.race([
      c.query('SHOW POOL_NODES'),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`session ${i}: SHOW POOL_NODES not answered in 5 s`)), 5_000).unref()),
    ]);
    if (r.rows.length === 3) answered++;
    await c.end();
  }
  t.equal(answered, 200, 'every session got its three nodes listed');
});

t.test('a message held for a reason of Sluice\'s own is reported after 5 s, with what it waits for', async (t) => {
  // SHOW POOL_NODES asks every node whether it is in recovery. A standby whose postmaster is
  // stopped accepts the connection and says nothing: the command waits for connect_timeout (10 s),
  // and the session's message with it, while no node owes the session a reply.
  const pid = Number(readFileSync(join(env.cluster.dir, 'node1', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const c = await RawClient.startup(env.sluice.port);
  process.kill(pid, 'SIGSTOP');
  try {
    c.send(serialize.query('SHOW POOL_NODES'));
    const line = await waitFor('the held-too-long warning', () => env.sluice.logs.find((l) => l.msg === 'client message held too long'), 9_000);
    t.equal(line.waitingFor, "Sluice's answer to SHOW POOL_NODES", 'the log names what the message waits for');
    t.ok((line.heldMs as number) >= 5_000, `held ${String(line.heldMs)} ms`);
    const metrics = (await env.sluice.server.metrics.scrape()).body;
    t.match(metrics, /sluice_client_messages_held_too_long_total\{reason="answering"\} 1/, 'counted once, by reason');
    const held = env.sluice.server.sessions().find((s) => s.waitingFor !== null);
    t.equal(held?.status, 'Execute command', 'SHOW POOL_PROCESSES shows the session executing, not idle');
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await c.until(() => c.readyCount() === 2, 15_000);
  t.equal(env.sluice.logs.filter((l) => l.msg === 'client message held too long').length, 1, 'reported once');
  c.close();
});
