// Failover comparison: the same cluster (a primary and two streaming standbys, one synchronous
// standby required), the same load and the same kill -9 of the primary, through Sluice and
// through pgpool-II (Debian package pgpool2) when installed, one after the other on fresh
// clusters. Both run scripts/failover.sh and scripts/follow_primary.sh with the same
// placeholders. Measured: write outage (kill to the first acknowledged write), acknowledged
// writes missing on the new primary, idle sessions dropped, pgbench -S clients aborted.
//
//   npm run build && node bench/failover.mjs
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const root = join(import.meta.dirname, '..');
const scripts = join(root, 'scripts');
const ARGS = '%d %h %p %D %m %H %M %P %r %R %N %S';
const IDLE = 20;

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
const until = async (what, check, ms = 60_000) => {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => false);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};
const client = async (port) => {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  c.on('error', () => undefined);
  await c.connect();
  return c;
};
const psql = async (port, sql) => (await run('psql', ['-X', '-At', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-c', sql])).stdout.trim();

async function cluster() {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-failover-'));
  chmodSync(dir, 0o777);
  let base = await freePort();
  await run('bash', [join(scripts, 'cluster.sh'), 'create', join(dir, 'cluster'), String(base), '2'], { env: { ...process.env, PG_FAST: '1' } });
  await psql(base, "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (node1, node2)'");
  await psql(base, 'ALTER SYSTEM SET synchronous_commit = on');
  await psql(base, 'SELECT pg_reload_conf()');
  await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(base), '-U', 'postgres', 'postgres']);
  await psql(base, 'create table probe (id int primary key)');
  return { dir, base, data: (n) => join(dir, 'cluster', `node${n}`) };
}

async function startSluice(c) {
  const port = await freePort();
  const backends = [0, 1, 2]
    .map((n) => `[[backend]]\nhostname = "127.0.0.1"\nport = ${c.base + n}\ndata_directory = "${c.data(n)}"\napplication_name = "node${n}"\n`)
    .join('\n');
  writeFileSync(
    join(c.dir, 'sluice.toml'),
    `listen_addresses = "127.0.0.1"\nport = ${port}\nwork_dir = "${c.dir}"\nlog_min_messages = "warning"\nnum_init_children = 64\n` +
      `health_check_period = 1\nhealth_check_timeout = 2\nconnect_timeout = 2000\nsr_check_period = 1\nsearch_primary_node_timeout = 60\n` +
      `failover_command = "${scripts}/failover.sh ${ARGS}"\nfollow_primary_command = "${scripts}/follow_primary.sh ${ARGS}"\n\n${backends}`,
  );
  const p = spawn('node', [join(root, 'dist', 'cli.js'), '-f', join(c.dir, 'sluice.toml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await until('sluice listening', async () => (await client(port)).end().then(() => true));
  return { port, stop: () => new Promise((r) => (p.exitCode !== null ? r() : (p.once('exit', r), p.kill('SIGINT')))) };
}

async function startPgpool(c) {
  const port = await freePort();
  const backends = [0, 1, 2]
    .map((n) => `backend_hostname${n} = '127.0.0.1'\nbackend_port${n} = ${c.base + n}\nbackend_weight${n} = 1\nbackend_data_directory${n} = '${c.data(n)}'\nbackend_flag${n} = 'ALLOW_TO_FAILOVER'\nbackend_application_name${n} = 'node${n}'\n`)
    .join('');
  const conf = join(c.dir, 'pgpool.conf');
  writeFileSync(
    conf,
    `backend_clustering_mode = 'streaming_replication'\nlisten_addresses = '127.0.0.1'\nport = ${port}\nsocket_dir = '${c.dir}'\n` +
      `pcp_listen_addresses = ''\npcp_port = ${await freePort()}\npcp_socket_dir = '${c.dir}'\nnum_init_children = 64\nmax_pool = 2\n` +
      `load_balance_mode = on\nsr_check_period = 1\nsr_check_user = 'postgres'\nhealth_check_period = 1\nhealth_check_timeout = 2\n` +
      `health_check_user = 'postgres'\nconnect_timeout = 2000\nsearch_primary_node_timeout = 60\n` +
      `failover_command = '${scripts}/failover.sh ${ARGS}'\nfollow_primary_command = '${scripts}/follow_primary.sh ${ARGS}'\n` +
      `pid_file_name = '${c.dir}/pgpool.pid'\nlogdir = '${c.dir}'\nlog_min_messages = warning\n${backends}`,
  );
  writeFileSync(join(c.dir, 'pcp.conf'), '');
  await run('chown', ['-R', 'postgres:', c.dir]).catch(() => undefined);
  const asRoot = process.getuid?.() === 0;
  const cmd = asRoot ? ['runuser', ['-u', 'postgres', '--', 'pgpool', '-n', '-D', '-f', conf, '-F', join(c.dir, 'pcp.conf')]] : ['pgpool', ['-n', '-D', '-f', conf, '-F', join(c.dir, 'pcp.conf')]];
  // Its own process group: pgpool's children are stopped with it even if the parent goes first.
  const p = spawn(cmd[0], cmd[1], { stdio: 'ignore', detached: true });
  await until('pgpool listening', async () => (await client(port)).end().then(() => true));
  const stop = async () => {
    const stopCmd = asRoot ? ['runuser', ['-u', 'postgres', '--', 'pgpool', '-f', conf, '-m', 'fast', 'stop']] : ['pgpool', ['-f', conf, '-m', 'fast', 'stop']];
    await run(stopCmd[0], stopCmd[1]).catch(() => undefined);
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  };
  return { port, stop };
}

async function measure(name, start) {
  const c = await cluster();
  const proxy = await start(c);
  try {
    const idle = [];
    for (let i = 0; i < IDLE; i++) {
      const s = await client(proxy.port);
      await s.query(`set application_name = 'idle${i}'`);
      idle.push(s);
    }
    const acked = [];
    const ackTimes = [];
    let killDone = Infinity;
    let stop = false;
    const writer = (async () => {
      let s = null;
      for (let id = 1; !stop; id++) {
        try {
          s ??= await client(proxy.port);
          const sent = Date.now();
          await s.query('insert into probe values ($1)', [id]);
          acked.push(id);
          // A write sent before the kill and acknowledged just after says nothing of the outage.
          ackTimes.push(sent > killDone ? Date.now() : 0);
        } catch {
          await s?.end().catch(() => undefined);
          s = null;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      await s?.end().catch(() => undefined);
    })();
    const bench = run('pgbench', ['-S', '-n', '-c', '4', '-j', '2', '-T', '12', '-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'postgres', 'postgres']).then(
      (r) => r.stdout + r.stderr,
      (e) => `${e.stdout}${e.stderr}`,
    );
    await until('writes flowing', async () => acked.length >= 20);
    const killed = Date.now();
    await run('bash', [join(scripts, 'cluster.sh'), 'kill', join(c.dir, 'cluster'), '0']);
    killDone = Date.now();
    let outage = null;
    try {
      await until('a write after the kill', async () => ackTimes.some((t) => t > 0), 60_000);
      outage = ackTimes.find((t) => t > 0) - killed;
    } catch {
      /* no write came back: reported as such */
    }
    const benchOut = await bench;
    stop = true;
    await writer;
    let primary = null;
    for (const n of [1, 2]) if ((await psql(c.base + n, 'select pg_is_in_recovery()').catch(() => '')) === 'f') primary = n;
    const present = primary === null ? 0 : Number(await psql(c.base + primary, `select count(*) from probe where id in (${acked.join(',') || 0})`));
    let dropped = 0;
    for (const s of idle) {
      const ok = await s.query('select 1').then(() => true, () => false);
      if (!ok) dropped++;
      await s.end().catch(() => undefined);
    }
    const aborted = (benchOut.match(/client \d+ aborted/g) ?? []).length;
    return { name, outageMs: outage, acked: acked.length, lost: acked.length - present, idleDropped: `${dropped}/${IDLE}`, pgbenchAborted: `${aborted}/4`, newPrimary: primary };
  } finally {
    await proxy.stop().catch(() => undefined);
    await run('bash', [join(scripts, 'cluster.sh'), 'destroy', join(c.dir, 'cluster')]).catch(() => undefined);
    await run('rm', ['-rf', c.dir]);
  }
}

const results = [await measure('sluice', startSluice)];
const havePgpool = await run('sh', ['-c', 'command -v pgpool']).then(() => true, () => false);
if (havePgpool) results.push(await measure('pgpool', startPgpool));
else console.log('pgpool-II not installed (apt-get install pgpool2): Sluice only');
console.table(results);
