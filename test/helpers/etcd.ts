import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
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

function healthy(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(new URL('/health', endpoint), { timeout: 1000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('"true"')));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** `size` members with short election timings (a test does not wait a second for a leader). */
export async function startEtcd(size: number): Promise<TestEtcd> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-etcd-'));
  const base = await freePortRun(size * 2);
  const client = (i: number) => `http://127.0.0.1:${base + 2 * i}`;
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
    await waitFor('etcd healthy', async () => (await Promise.all(endpoints.map(healthy))).every(Boolean), 30_000);
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
      await waitFor(`etcd member ${i} healthy`, () => healthy(client(i)), 30_000);
    },
    destroy: async () => {
      for (let i = 0; i < size; i++) await stop(i);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
