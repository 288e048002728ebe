import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { promisify } from 'node:util';
import t, { Test } from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { RawClient, startupMessage } from '../helpers/raw-client';
import { startSluice, TestSluice } from '../helpers/sluice';
import { makePki, TestPki } from '../helpers/tls';

// TLS to Sluice (sslmode=require and verify-full with a test CA, hostssl rules, SCRAM with
// channel binding, direct TLS) and from Sluice to the nodes (backend_sslmode).

const run = promisify(execFile);
let cluster: TestCluster;
let pki: TestPki;

t.before(async () => {
  pki = await makePki();
  cluster = await createCluster(0);
  await cluster.psql(0, "set password_encryption = 'scram-sha-256'; create role scram_user login password 'scram pw'; create role tls_only login");
  // The node speaks TLS too, and insists on it for tls_only.
  const data = `${cluster.dir}/node0`;
  copyFileSync(pki.cert, `${data}/server.crt`);
  copyFileSync(pki.key, `${data}/server.key`);
  chmodSync(`${data}/server.key`, 0o600);
  await run('chown', ['postgres:postgres', `${data}/server.crt`, `${data}/server.key`]);
  const hba = `${data}/pg_hba.conf`;
  writeFileSync(hba, 'hostssl all tls_only 127.0.0.1/32 trust\nhostnossl all tls_only 127.0.0.1/32 reject\n' + readFileSync(hba, 'utf8'));
  for (const set of ["ssl_cert_file = 'server.crt'", "ssl_key_file = 'server.key'", 'ssl = on']) await cluster.psql(0, `alter system set ${set}`);
  await cluster.psql(0, 'select pg_reload_conf()');
});
t.teardown(async () => {
  await cluster?.destroy();
  pki?.remove();
});

async function withSluice(t: Test, overrides: Record<string, unknown> = {}): Promise<TestSluice> {
  const s = await startSluice(cluster, { ssl: true, ssl_cert: pki.cert, ssl_key: pki.key, ...overrides });
  t.teardown(() => s.stop());
  return s;
}

const USERS = { user: [{ name: 'scram_user', password: 'scram pw' }] };

const psql = (s: TestSluice, conninfo: string, sql: string, password = 'scram pw') =>
  run('psql', ['-X', '-A', '-t', '-c', sql, `host=127.0.0.1 port=${s.port} dbname=postgres ${conninfo}`], { env: { ...process.env, PGPASSWORD: password } });

t.test('psql with sslmode=require and verify-full; a CA that did not sign the certificate is refused', async (t) => {
  const s = await withSluice(t, USERS);
  const info = await psql(s, 'user=scram_user sslmode=require', '\\conninfo');
  t.match(info.stdout, /SSL connection \(protocol: TLSv1\.[23]/);
  const full = await psql(s, `user=scram_user sslmode=verify-full sslrootcert=${pki.ca} host=localhost`, 'select current_user');
  t.equal(full.stdout.trim(), 'scram_user');
  const wrong = await psql(s, `user=scram_user sslmode=verify-full sslrootcert=${pki.otherCa}`, 'select 1').catch((e: { stderr: string }) => e);
  t.match((wrong as { stderr: string }).stderr, /certificate verify failed/);
  const plain = await psql(s, 'user=scram_user sslmode=disable', 'select 1');
  t.equal(plain.stdout.trim(), '1', 'plain connections still work without a hostssl rule');
});

t.test('SCRAM-SHA-256-PLUS: psql with channel_binding=require', async (t) => {
  const s = await withSluice(t, USERS);
  const r = await psql(s, 'user=scram_user sslmode=require channel_binding=require', 'select current_user');
  t.equal(r.stdout.trim(), 'scram_user');
  const bad = await psql(s, 'user=scram_user sslmode=require channel_binding=require', 'select 1', 'wrong').catch((e: { stderr: string }) => e);
  t.match((bad as { stderr: string }).stderr, /password authentication failed for user "scram_user"/);
});

t.test('node-postgres verify-full over TLS; hostssl rules admit TLS and refuse plain TCP', async (t) => {
  const s = await withSluice(t, { ...USERS, hba: [{ type: 'hostssl', database: 'all', user: 'all', address: '127.0.0.1/32', method: 'scram-sha-256' }] });
  const c = await s.client({ user: 'scram_user', password: 'scram pw', ssl: { ca: readFileSync(pki.ca), servername: 'localhost' } });
  t.same((await c.query('select current_user as u')).rows, [{ u: 'scram_user' }]);
  await t.rejects(s.client({ user: 'scram_user', password: 'scram pw' }), {
    code: '28000',
    message: 'no pg_hba.conf entry for host "127.0.0.1", user "scram_user", database "postgres", no encryption',
  });
  await t.rejects(s.client({ user: 'scram_user', password: 'nope', ssl: { ca: readFileSync(pki.ca), servername: 'localhost' } }), { code: '28P01' });
});

t.test('pgbench over TLS', async (t) => {
  const s = await withSluice(t);
  const env = { ...process.env, PGSSLMODE: 'require' };
  const args = ['-h', '127.0.0.1', '-p', String(s.port), '-U', 'postgres'];
  await run('pgbench', ['-i', '-q', ...args, 'postgres'], { env });
  const { stdout } = await run('pgbench', ['-C', '-c', '4', '-t', '25', '-S', ...args, 'postgres'], { env });
  t.match(stdout, /number of transactions actually processed: 100\/100/);
  t.match(stdout, /number of failed transactions: 0/);
});

t.test('bytes sent after SSLRequest before the handshake are refused; SSLRequest gets N without ssl', async (t) => {
  const s = await withSluice(t);
  const c = await RawClient.open(s.port);
  const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
  c.send(sslRequest, startupMessage({ user: 'postgres', database: 'postgres' }));
  const err = await c.until((f) => f.type === 'E');
  t.match(err.body.toString(), /received unencrypted data after SSL request/);
  t.match(err.body.toString(), /08P01/);
  await c.waitClosed();

  const off = await startSluice(cluster);
  t.teardown(() => off.stop());
  const n = await new Promise<string>((resolve, reject) => {
    const sock = require('node:net').connect({ host: '127.0.0.1', port: off.port }, () => sock.write(sslRequest));
    sock.once('data', (d: Buffer) => resolve(d.toString()));
    sock.once('error', reject);
    t.teardown(() => sock.destroy());
  });
  t.equal(n, 'N');
});

t.test('a TLS handshake that breaks off ends without a protocol message, as PostgreSQL ends it, and is logged', async (t) => {
  const s = await withSluice(t);
  const sslRequest = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
  // After 'S', bytes that are no TLS handshake: each side's TLS layer may send an alert record
  // (0x15), and nothing else; no ErrorResponse in plain text.
  const brokenOff = (port: number) =>
    new Promise<Buffer>((resolve, reject) => {
      const got: Buffer[] = [];
      const sock = require('node:net').connect({ host: '127.0.0.1', port }, () => sock.write(sslRequest));
      sock.once('data', (d: Buffer) => {
        got.push(d);
        sock.on('data', (more: Buffer) => got.push(more));
        sock.write(Buffer.from('this is not a TLS ClientHello at all\n'));
      });
      sock.once('close', () => resolve(Buffer.concat(got)));
      sock.once('error', () => undefined);
      setTimeout(() => reject(new Error('not closed')), 5_000).unref();
    });
  for (const [who, port] of [['PostgreSQL', cluster.port(0)], ['Sluice', s.port]] as const) {
    const bytes = await brokenOff(port);
    t.equal(bytes.subarray(0, 1).toString(), 'S', `${who}: S, then the handshake`);
    t.ok(bytes.length === 1 || bytes[1] === 0x15, `${who}: then at most a TLS alert, no ErrorResponse (${bytes.subarray(1).toString('hex')})`);
  }
  const line = s.logs.find((l) => l.msg === 'connection refused at startup');
  t.match(line?.reason, /^could not accept SSL connection: /, 'Sluice logs what happened');
});

t.test('direct TLS (sslnegotiation=direct) needs ALPN "postgresql"', async (t) => {
  const s = await withSluice(t);
  const direct = (alpn: string[] | undefined) =>
    new Promise<string>((resolve) => {
      const sock = tlsConnect({ host: '127.0.0.1', port: s.port, rejectUnauthorized: false, ...(alpn ? { ALPNProtocols: alpn } : {}) }, () => {
        sock.write(startupMessage({ user: 'postgres', database: 'postgres' }));
      });
      let got = '';
      sock.on('data', (d: Buffer) => {
        got += d.toString('latin1');
        if (got.includes('Z\0\0\0\x05I')) sock.end();
      });
      sock.on('error', () => undefined);
      sock.on('close', () => resolve(got));
    });
  const ok = await direct(['postgresql']);
  t.match(ok, /Z\0\0\0\x05I/, 'startup completes over direct TLS');
  t.equal(await direct(undefined), '', 'without ALPN the connection is closed');
});

t.test('backend_sslmode: verify-full against the test CA reaches a hostssl-only role; disable does not', async (t) => {
  const s = await startSluice(cluster, { backend_sslmode: 'verify-full', backend_sslrootcert: pki.ca });
  t.teardown(() => s.stop());
  const c = await s.client({ user: 'tls_only' });
  const { rows } = await c.query('select ssl, version from pg_stat_ssl where pid = pg_backend_pid()');
  t.same(rows, [{ ssl: true, version: rows[0].version }]);
  t.match(rows[0].version, /^TLSv1\.[23]$/);

  const plain = await startSluice(cluster, { backend_sslmode: 'disable' });
  t.teardown(() => plain.stop());
  await t.rejects(plain.client({ user: 'tls_only' }), { code: '28000', message: /pg_hba\.conf rejects connection/ });

  // The node cannot be verified, so it cannot be used: the session fails (at once, or once the
  // health check has called the node down and no primary is left).
  const wrongCa = await startSluice(cluster, { backend_sslmode: 'verify-ca', backend_sslrootcert: pki.otherCa, failover_hold_timeout: 1 });
  t.teardown(() => wrongCa.stop());
  await t.rejects(wrongCa.client({ user: 'tls_only' }), { code: /^(08006|57P03)$/ }, 'a node whose certificate does not verify is not used');
});
