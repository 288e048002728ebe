import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePortRun } from './ports';
import { waitFor } from './sluice';

/** A real etcd cluster (Debian's etcd-server) on free ports, one process per member. */
export interface TestEtcd {
  /** Each member's client URL. */
  endpoints: string[];
  /** Stops member i (SIGKILL: as a crash or a cut cable; its data stays for start()). */
  stop(i: number): Promise<void>;
  /** Starts member i again on its data. */
  start(i: number): Promise<void>;
  destroy(): Promise<void>;
}

const ETCD = '/usr/bin/etcd';

/** TLS for the client URLs: etcd's certificate and key, the CA clients' certificates must verify against. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

/** What a client of a TLS etcd presents (the test's certificate serves both sides). */
const tlsOptions = (tls: EtcdTls | undefined): RequestOptions => (tls ? ({ ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) } as RequestOptions) : {});

function healthy(endpoint: string, tls?: EtcdTls): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (tls ? httpsRequest : request)(new URL('/health', endpoint), { timeout: 1000, ...tlsOptions(tls) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** A request to etcd's JSON gateway (as root once auth is on); its answer. */
export function etcdPost(endpoint: string, path: string, body: unknown, opts: { tls?: EtcdTls; token?: string } = {}): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = (opts.tls ? httpsRequest : request)(new URL(path, endpoint), { method: 'POST', timeout: 5000, headers: { 'content-type': 'application/json', ...(opts.token ? { authorization: opts.token } : {}) }, ...tlsOptions(opts.tls) }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text) as Record<string, unknown>) : reject(new Error(`${path}: HTTP ${res.statusCode}: ${text}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${path}: no answer`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/**
 * etcd's authentication turned on: a root user, and `user` (with `password`) allowed to read and
 * write the keys under `prefix` alone, as an operator would set a Sluice group up.
 */
export async function enableEtcdAuth(endpoint: string, user: string, password: string, prefix: string, tls?: EtcdTls): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const post = (path: string, body: unknown) => etcdPost(endpoint, path, body, tls ? { tls } : {});
  await post('/v3/auth/role/add', { name: 'root' });
  await post('/v3/auth/user/add', { name: 'root', password: 'root-secret' });
  await post('/v3/auth/user/grant', { user: 'root', role: 'root' });
  await post('/v3/auth/role/add', { name: user });
  await post('/v3/auth/role/grant', { name: user, perm: { permType: 'READWRITE', key: b64(prefix), range_end: b64(end) } });
  await post('/v3/auth/user/add', { name: user, password });
  await post('/v3/auth/user/grant', { user, role: user });
  await post('/v3/auth/enable', {});
}

/**
 * `size` members with short election timings (a test does not wait a second for a leader); with
 * `tls`, the client URLs are https and ask clients for a certificate signed by `tls.ca`.
 */
export async function startEtcd(size: number, tls?: EtcdTls): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
  const base = await freePortRun(size * 2);
  const client = (i: number) => `${tls ? 'https' : 'http'}://127.0.0.1:${base + 2 * i}`;
  const peer = (i: number) => `http://127.0.0.1:${base + 2 * i + 1}`;
  const initial = Array.from({ length: size }, (_, i) => `e${i}=${peer(i)}`).join(',');
  const procs: (ChildProcess | null)[] = Array.from({ length: size }, () => null);
  const launch = (i: number) => {
    const p = spawn(
      ETCD,
      [
        '--name', `e${i}`,
        '--data-dir', join(dir, `e${i}`),
        '--listen-client-urls', client(i),
        '--advertise-client-urls', client(i),
        '--listen-peer-urls', peer(i),
        '--initial-advertise-peer-urls', peer(i),
        '--initial-cluster', initial,
        '--initial-cluster-token', `sluice-test-${base}`,
        '--heartbeat-interval', '50',
        '--election-timeout', '500',
        '--log-level', 'error',
        ...(tls ? ['--cert-file', tls.cert, '--key-file', tls.key, '--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
      ],
      { stdio: 'ignore' },
    );
    procs[i] = p;
  };
  const stop = async (i: number) => {
    const p = procs[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((resolve) => p.once('exit', resolve));
    p.kill('SIGKILL');
    await gone;
    procs[i] = null;
  };
  for (let i = 0; i < size; i++) launch(i);
  const endpoints = Array.from({ length: size }, (_, i) => client(i));
  try {
    await waitFor('etcd healthy', async () => (await Promise.all(endpoints.map((e) => healthy(e, tls)))).every(Boolean), 30_000);
  } catch (err) {
    for (let i = 0; i < size; i++) await stop(i);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    endpoints,
    stop,
    start: async (i) => {
      launch(i);
      await waitFor(`etcd member ${i} healthy`, () => healthy(client(i), tls), 30_000);
    },
    destroy: async () => {
      for (let i = 0; i < size; i++) await stop(i);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
