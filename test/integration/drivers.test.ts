import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t, { Test } from 'tap';
import { clusterWithSluice, startSluice, TestSluice } from '../helpers/sluice';

// JDBC (pgjdbc) and psycopg (3 and 2) applications, run once directly against the primary and
// once through Sluice with reads balanced over two standbys: each prints a transcript of what it
// saw (results, SQLSTATEs, notifications, cancels), and the two must be identical. The drivers
// come from Debian (libpostgresql-jdbc-java, python3-psycopg, python3-psycopg2; .ci/run installs
// them), so the Python is Debian's own.

const run = promisify(execFile);
const FIXTURES = join(__dirname, '..', 'fixtures', 'drivers');
const JDBC_JAR = '/usr/share/java/postgresql.jar';
const PYTHON = '/usr/bin/python3';
const env = clusterWithSluice(2, { weights: [0, 1, 1] });

async function transcript(cmd: string, args: string[]): Promise<string> {
  // A probe that fails still has a transcript: its output and error are what get compared.
  const r: { stdout?: string; stderr?: string } = await run(cmd, args, { timeout: 120_000, maxBuffer: 16 << 20 }).catch((e: { stdout?: string; stderr?: string; message: string }) => ({
    stdout: e.stdout,
    stderr: e.stderr || e.message,
  }));
  return r.stderr ? `${r.stdout ?? ''}\n--- stderr ---\n${r.stderr}` : (r.stdout ?? '');
}

async function sideBySide(t: Test, cmd: string, args: (port: number) => string[], expect: RegExp[], sluice: TestSluice = env.sluice): Promise<void> {
  const direct = await transcript(cmd, args(env.cluster.port(0)));
  for (const re of expect) t.match(direct, re, `the probe exercises ${re.source}`);
  const before = sluice.server.selectCount[1]! + sluice.server.selectCount[2]!;
  const through = await transcript(cmd, args(sluice.port));
  t.equal(through, direct, 'the same transcript through Sluice as directly');
  t.ok(sluice.server.selectCount[1]! + sluice.server.selectCount[2]! > before, 'some reads went to the standbys');
}

/** A second Sluice in transaction mode, for the same probes: a few server connections for all their sessions. */
async function transactionMode(t: Test): Promise<TestSluice> {
  const s = await startSluice(env.cluster, { weights: [0, 1, 1], pool_mode: 'transaction', default_pool_size: 4 });
  t.teardown(() => s.stop());
  return s;
}

t.test('JDBC (pgjdbc): the same transcript through Sluice as directly', { skip: !existsSync(JDBC_JAR) && `${JDBC_JAR} missing` }, async (t) => {
  await sideBySide(t, 'java', (port) => ['-cp', JDBC_JAR, join(FIXTURES, 'DriverProbe.java'), String(port)], [
    /select 6 \[name 6\|6\.25\|\{"t6","u"\}/, // a server-side prepared statement with binary results
    /batch 200 rows/,
    /fetched 95 rows, sum 4560/,
    /copy out 5000 rows, same text true/,
    /notification probe_channel hello from the notifier's pid true/,
    /timeout: 57014 within 5 s true/,
    /unknown database: 3D000/,
  ]);
});

t.test('psycopg 3 and psycopg2: the same transcript through Sluice as directly', { skip: !existsSync(PYTHON) && `${PYTHON} missing` }, async (t) => {
  await sideBySide(t, PYTHON, (port) => [join(FIXTURES, 'psycopg_probe.py'), String(port)], [
    /prepared on the server True/,
    /pipeline error 23505/,
    /server-side cursor sum 1275/,
    /notifications \[\('py_channel', 'hi', True\)\]/,
    /cancel: 57014 within 5 s True/,
    /psycopg2 notifies \[\('p2_channel', 'from psycopg2'\)\]/,
  ]);
});

t.test('JDBC in transaction mode: the same transcript as directly', { skip: !existsSync(JDBC_JAR) && `${JDBC_JAR} missing` }, async (t) => {
  await sideBySide(t, 'java', (port) => ['-cp', JDBC_JAR, join(FIXTURES, 'DriverProbe.java'), String(port)], [], await transactionMode(t));
});

t.test('psycopg 3 and psycopg2 in transaction mode: the same transcript as directly', { skip: !existsSync(PYTHON) && `${PYTHON} missing` }, async (t) => {
  await sideBySide(t, PYTHON, (port) => [join(FIXTURES, 'psycopg_probe.py'), String(port)], [], await transactionMode(t));
});
