import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import t, { Test } from 'tap';
import { Client } from 'pg';
import { createCluster, TestCluster } from '../helpers/cluster';
import { startSluice, TestSluice, waitFor } from '../helpers/sluice';

// Client authentication by Sluice: [[user]] and auth_query secrets, md5 and SCRAM, hba rules,
// SCRAM pass-through to the nodes, and pooled connections that never change hands between users.

const run = promisify(execFile);
let cluster: TestCluster;

/** Roles the nodes themselves authenticate by password (their pg_hba lines go first). */
const ROLES = `
  set password_encryption = 'md5';
  create role md5_user login password 'md5 pw';
  set password_encryption = 'scram-sha-256';
  create role scram_user login password 'scram pw';
  create role other_user login password 'other pw';
  create role expired_user login password 'expired pw' valid until '2001-01-01';
  create role nologin_user nologin password 'nologin pw';
  create role auth_reader login password 'reader pw';
  create schema sluice_auth;
  create function sluice_auth.lookup(u text) returns text language sql security definer
    set search_path = pg_catalog as
    $$ select rolpassword from pg_authid where rolname = u and rolcanlogin
         and (rolvaliduntil is null or rolvaliduntil > now()) $$;
  revoke all on function sluice_auth.lookup(text) from public;
  grant usage on schema sluice_auth to auth_reader;
  grant execute on function sluice_auth.lookup(text) to auth_reader;
  -- A decoy: if a client's search_path reached auth_query, this table would answer it.
  create schema decoy;
  create table decoy.pg_authid (rolname name, rolpassword text, rolcanlogin bool, rolvaliduntil timestamptz);
  insert into decoy.pg_authid values ('scram_user', 'md5' || md5('decoy pw' || 'scram_user'), true, null);
  grant usage on schema decoy to public;
  grant select on decoy.pg_authid to public;
`;

t.before(async () => {
  cluster = await createCluster(1);
  await cluster.psql(0, ROLES);
  await waitFor('the standby has the roles', async () => (await cluster.psql(1, "select count(*) from pg_roles where rolname = 'auth_reader'")) === '1', 30_000);
  for (const n of [0, 1]) {
    const hba = `${cluster.dir}/node${n}/pg_hba.conf`;
    const lines = ['md5_user md5', 'scram_user scram-sha-256', 'other_user scram-sha-256', 'expired_user scram-sha-256', 'auth_reader scram-sha-256'];
    writeFileSync(hba, lines.map((l) => `host all ${l.replace(' ', ' 127.0.0.1/32 ')}\n`).join('') + readFileSync(hba, 'utf8'));
    await cluster.psql(n, 'select pg_reload_conf()');
  }
});
t.teardown(() => cluster?.destroy());

async function withSluice(t: Test, overrides: Record<string, unknown> = {}): Promise<TestSluice> {
  const s = await startSluice(cluster, { load_balance_mode: true, ...overrides });
  t.teardown(() => s.stop());
  return s;
}

const verifier = (role: string) => cluster.psql(0, `select rolpassword from pg_authid where rolname = '${role}'`);

/** Backend connections a role has on the primary (a failed login must leave none). */
const connectionsOf = (role: string) => cluster.psql(0, `select count(*) from pg_stat_activity where usename = '${role}'`).then(Number);

const whoAmI = async (s: TestSluice, user: string, password: string, extra: Record<string, unknown> = {}) => {
  const c = await s.client({ user, password, ...extra });
  const { rows } = await c.query('select current_user as u');
  await c.end();
  return rows[0].u as string;
};

const AUTH_QUERY = { auth_user: 'auth_reader', auth_password: 'reader pw', auth_query: 'SELECT sluice_auth.lookup($1)' };

t.test('[[user]] secrets: md5 and SCRAM clients, plain and stored verifiers, SCRAM pass-through to both nodes', async (t) => {
  const s = await withSluice(t, {
    // Reads go to the standby alone: the standby's login is one the pass-through must make.
    weights: [0, 1],
    user: [
      { name: 'md5_user', password: await verifier('md5_user') },
      { name: 'scram_user', password: await verifier('scram_user') },
      { name: 'other_user', password: 'other pw' },
    ],
    hba: [{ type: 'host', database: 'all', user: 'all', address: '127.0.0.1/32', method: 'md5' }],
  });
  const onStandby = () => cluster.psql(1, "select count(*) from pg_stat_activity where usename = 'scram_user'").then(Number);
  t.equal(await onStandby(), 0, 'nobody is logged in to the standby as scram_user yet');
  t.equal(await whoAmI(s, 'md5_user', 'md5 pw'), 'md5_user', 'md5 against the stored md5 hash');
  // Only a SCRAM verifier on file: the node is logged in to with the ClientKey the client proved.
  for (let i = 0; i < 3; i++) t.equal(await whoAmI(s, 'scram_user', 'scram pw'), 'scram_user', 'SCRAM pass-through');
  const c = await s.client({ user: 'scram_user', password: 'scram pw' });
  const reads = s.server.selectCount[1]!;
  await c.query('select 1'); // a read: the standby's connection is opened with the same pass-through
  t.equal(s.server.selectCount[1], reads + 1, 'the read ran on the standby');
  t.ok((await onStandby()) >= 1, "the standby has scram_user's sessions: Sluice logged in there with the client's proof");
  await c.end();
  t.equal(await whoAmI(s, 'other_user', 'other pw'), 'other_user', 'a plain [[user]] password');

  const failure = { code: '28P01', message: 'password authentication failed for user "scram_user"' };
  await t.rejects(s.client({ user: 'scram_user', password: 'wrong' }), failure, 'wrong password');
  await t.rejects(s.client({ user: 'nobody', password: 'wrong' }), { code: '28P01', message: 'password authentication failed for user "nobody"' }, 'unknown user: the same error');
  await t.rejects(s.client({ user: 'md5_user', password: 'wrong' }), { code: '28P01' });
  const logged = s.logs.filter((l) => l.msg === 'password authentication failed').map((l) => l.user);
  t.same(logged.sort(), ['md5_user', 'nobody', 'scram_user'], 'each failure is logged with its user');
});

t.test('a failed login opens no backend connection', async (t) => {
  const s = await withSluice(t, { user: [{ name: 'other_user', password: 'other pw' }] });
  for (let i = 0; i < 5; i++) await t.rejects(s.client({ user: 'other_user', password: 'wrong' }), { code: '28P01' });
  t.equal(await connectionsOf('other_user'), 0, 'pg_stat_activity: none for other_user');
  t.equal(s.server.pool.idleCount, 0, 'and nothing pooled');
});

t.test('auth_query as a dedicated user: md5 and SCRAM roles, expired and NOLOGIN roles refused, search_path cannot redirect it', async (t) => {
  const s = await withSluice(t, { ...AUTH_QUERY, hba: [{ type: 'host', database: 'all', user: 'all', address: 'all', method: 'scram-sha-256' }] });
  t.equal(await whoAmI(s, 'scram_user', 'scram pw'), 'scram_user');
  t.equal(await whoAmI(s, 'other_user', 'other pw'), 'other_user');
  // md5 hash on file and method scram-sha-256: as in PostgreSQL, that cannot succeed.
  await t.rejects(s.client({ user: 'md5_user', password: 'md5 pw' }), { code: '28P01' });
  await t.rejects(s.client({ user: 'expired_user', password: 'expired pw' }), { code: '28P01', message: 'password authentication failed for user "expired_user"' }, 'VALID UNTIL in the past');
  await t.rejects(s.client({ user: 'nologin_user', password: 'nologin pw' }), { code: '28P01' }, 'NOLOGIN');
  await t.rejects(s.client({ user: 'ghost', password: 'x' }), { code: '28P01', message: 'password authentication failed for user "ghost"' });
  t.equal(await connectionsOf('expired_user'), 0);

  const md5 = await withSluice(t, { ...AUTH_QUERY, hba: [{ type: 'host', database: 'all', user: 'all', address: 'all', method: 'md5' }] });
  t.equal(await whoAmI(md5, 'md5_user', 'md5 pw'), 'md5_user', 'md5 method with the md5 hash from auth_query');
  t.equal(await whoAmI(md5, 'scram_user', 'scram pw'), 'scram_user', 'md5 method with a SCRAM verifier runs SCRAM');

  // An unqualified auth_query and a client asking for the decoy schema first: the lookup still
  // reads pg_catalog.pg_authid, because the client's startup parameters never reach it.
  const unqualified = await withSluice(t, {
    auth_user: 'postgres',
    auth_query: 'SELECT rolpassword FROM pg_authid WHERE rolname = $1',
    hba: [{ type: 'host', database: 'all', user: 'all', address: 'all', method: 'md5' }],
  });
  const decoy = { options: '-c search_path=decoy,pg_catalog' };
  await t.rejects(unqualified.client({ user: 'scram_user', password: 'decoy pw', ...decoy }), { code: '28P01' }, 'the decoy password is refused');
  t.equal(await whoAmI(unqualified, 'scram_user', 'scram pw', decoy), 'scram_user', 'the real one works');
  // Quotes and semicolons in a user name are data, not SQL.
  await t.rejects(unqualified.client({ user: "x' or '1'='1", password: 'x' }), { code: '28P01' });
  await t.rejects(unqualified.client({ user: "x'; drop table decoy.pg_authid; --", password: 'x' }), { code: '28P01' });
  t.equal(await cluster.psql(0, 'select count(*) from decoy.pg_authid'), '1', 'nothing was injected');
});

t.test('hba: first match wins; reject, address, database and user lists, password only over TLS', async (t) => {
  const s = await withSluice(t, {
    user: [
      { name: 'scram_user', password: 'scram pw' },
      { name: 'other_user', password: 'other pw' },
    ],
    hba: [
      { type: 'host', database: 'all', user: 'other_user', address: '127.0.0.1/32', method: 'reject' },
      { type: 'hostssl', database: 'all', user: 'all', address: 'all', method: 'scram-sha-256' },
      { type: 'host', database: 'postgres', user: 'postgres', address: '10.0.0.0/8', method: 'trust' },
      { type: 'host', database: 'template1', user: 'scram_user', address: '127.0.0.1', method: 'password' },
      { type: 'host', database: 'postgres', user: 'scram_user,postgres', address: '127.0.0.0/8', method: 'scram-sha-256' },
    ],
  });
  await t.rejects(s.client({ user: 'other_user', password: 'other pw' }), {
    code: '28000',
    message: 'pg_hba.conf rejects connection for host "127.0.0.1", user "other_user", database "postgres", no encryption',
  });
  t.equal(await whoAmI(s, 'scram_user', 'scram pw'), 'scram_user');
  await t.rejects(s.client({ user: 'postgres', password: 'none' }), { code: '28P01' }, 'postgres has no secret under a scram rule');
  await t.rejects(s.client({ user: 'scram_user', password: 'scram pw', database: 'template0' }), {
    code: '28000',
    message: 'no pg_hba.conf entry for host "127.0.0.1", user "scram_user", database "template0", no encryption',
  }, 'hostssl does not match a plain connection; nothing else matches');
  await t.rejects(s.client({ user: 'scram_user', password: 'scram pw', database: 'template1' }), {
    code: '28000',
    message: 'password authentication over an unencrypted connection is not allowed',
  });
  t.equal(await connectionsOf('other_user'), 0);

  const cleartext = await withSluice(t, {
    allow_password_without_ssl: true,
    user: [{ name: 'scram_user', password: await verifier('scram_user') }],
    hba: [{ type: 'host', database: 'all', user: 'all', address: 'all', method: 'password' }],
  });
  t.equal(await whoAmI(cleartext, 'scram_user', 'scram pw', { database: 'template1' }), 'scram_user', 'password method checked against a SCRAM verifier');
  await t.rejects(cleartext.client({ user: 'scram_user', password: 'nope' }), { code: '28P01' });
});

t.test('two users never receive each other\'s pooled connection', async (t) => {
  const s = await withSluice(t, {
    max_pool: 2,
    user: [
      { name: 'scram_user', password: 'scram pw' },
      { name: 'other_user', password: 'other pw' },
    ],
  });
  const users = [
    { user: 'scram_user', password: 'scram pw' },
    { user: 'other_user', password: 'other pw' },
    { user: 'postgres', password: '' },
  ];
  const seen = new Map<number, string>();
  let checks = 0;
  for (let round = 0; round < 20; round++) {
    const clients = await Promise.all(users.concat(users).map((u) => s.client(u.password ? u : { user: u.user })));
    await Promise.all(
      clients.map(async (c, i) => {
        const want = users[i % users.length]!.user;
        const { rows } = await c.query('select current_user as u, session_user as s, pg_backend_pid() as pid');
        t.equal(rows[0].u, want);
        t.equal(rows[0].s, want);
        const owner = seen.get(rows[0].pid) ?? want;
        seen.set(rows[0].pid, owner);
        if (owner !== want) t.fail(`backend ${rows[0].pid} served ${owner} and then ${want}`);
        checks++;
      }),
    );
    await Promise.all(clients.map((c: Client) => c.end()));
  }
  t.equal(checks, 120);
  t.ok(seen.size < checks, `connections were reused (${seen.size} backends for ${checks} sessions)`);
});

t.test('psql and pgbench authenticate through Sluice with md5 and SCRAM', async (t) => {
  const s = await withSluice(t, {
    user: [{ name: 'md5_user', password: 'md5 pw' }],
    ...AUTH_QUERY,
    hba: [
      { type: 'host', database: 'all', user: 'md5_user', address: 'all', method: 'md5' },
      { type: 'host', database: 'all', user: 'all', address: 'all', method: 'scram-sha-256' },
    ],
  });
  await cluster.psql(0, 'grant all on schema public to md5_user, scram_user');
  const psql = (user: string, password: string) =>
    run('psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(s.port), '-U', user, '-d', 'postgres', '-c', 'select current_user'], { env: { ...process.env, PGPASSWORD: password } });
  t.equal((await psql('md5_user', 'md5 pw')).stdout.trim(), 'md5_user');
  t.equal((await psql('scram_user', 'scram pw')).stdout.trim(), 'scram_user');
  const bad = await psql('scram_user', 'bad').catch((e: { stderr: string }) => e);
  t.match((bad as { stderr: string }).stderr, /FATAL: {2}password authentication failed for user "scram_user"/);

  for (const [user, password] of [['md5_user', 'md5 pw'], ['scram_user', 'scram pw']] as const) {
    const env = { ...process.env, PGPASSWORD: password };
    const args = ['-h', '127.0.0.1', '-p', String(s.port), '-U', user];
    await run('pgbench', ['-i', '-q', '-s', '1', ...args, 'postgres'], { env });
    const { stdout } = await run('pgbench', ['-C', '-c', '4', '-t', '25', '-S', ...args, 'postgres'], { env });
    t.match(stdout, /number of failed transactions: 0/, `${user}: pgbench -C, a login per transaction`);
    t.match(stdout, /number of transactions actually processed: 100\/100/);
    await cluster.psql(0, 'drop table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers');
  }
});

t.test('secrets are never shown: PGPOOL SHOW, pcp_pool_status, sluicectl pool-status', async (t) => {
  const { pcpPassFile, pcp, sluicectl } = await import('../helpers/pcp');
  const s = await withSluice(t, {
    ...AUTH_QUERY,
    health_check_password: 'hc secret',
    sr_check_password: 'sr secret',
    recovery_password: 'rec secret',
    user: [{ name: 'other_user', password: 'other pw' }],
    hba: [
      { type: 'host', database: 'all', user: 'postgres', address: 'all', method: 'trust' },
      { type: 'host', database: 'all', user: 'all', address: 'all', method: 'scram-sha-256' },
    ],
  });
  const c = await s.client({ user: 'postgres' });
  const all = JSON.stringify((await c.query('PGPOOL SHOW ALL')).rows);
  const one = JSON.stringify((await c.query('PGPOOL SHOW auth_password')).rows);
  const pass = pcpPassFile();
  const status = (await pcp('pcp_pool_status', s.server.pcpPort, pass)).stdout;
  const ctl = (await sluicectl(s.server.pcpPort, pass, 'pool-status', '--json')).stdout;
  for (const [where, text] of [['PGPOOL SHOW ALL', all], ['PGPOOL SHOW auth_password', one], ['pcp_pool_status', status], ['sluicectl pool-status', ctl]]) {
    t.notMatch(text, /reader pw|hc secret|sr secret|rec secret|other pw/, `${where}: no password`);
  }
  t.match(all, /auth_password/, 'the key is listed');
  t.match(status, /auth_password/);
});

t.test('authentication_timeout ends a client that stalls before or during the exchange', async (t) => {
  const { RawClient, startupMessage } = await import('../helpers/raw-client');
  const s = await withSluice(t, { authentication_timeout: 1, user: [{ name: 'scram_user', password: 'scram pw' }] });
  const silent = await RawClient.open(s.port);
  const stalled = await RawClient.open(s.port);
  stalled.send(startupMessage({ user: 'scram_user', database: 'postgres' }));
  const sasl = await stalled.until((f) => f.type === 'R');
  t.equal(sasl.body.readInt32BE(0), 10, 'AuthenticationSASL, then the client says nothing');
  const started = Date.now();
  await silent.waitClosed(5000);
  await stalled.waitClosed(5000);
  t.ok(Date.now() - started < 4000, 'both closed after about a second');
  t.equal(await connectionsOf('scram_user'), 0);
});
