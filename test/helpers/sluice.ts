import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client, ClientConfig } from 'pg';
import { buildConfig, Config } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import { Server, type ServerOptions } from '../../src/server';
import t from 'tap';
import { createCluster, TestCluster } from './cluster';

export interface TestSluice {
  server: Server;
  port: number;
  config: Config;
  /** Log lines written so far (JSON objects). */
  logs: Record<string, unknown>[];
  client(opts?: ClientConfig): Promise<Client>;
  stop(): Promise<void>;
}

/** The shipped scripts (scripts/), and a hook command line with every pgpool placeholder. */
export const SCRIPTS = join(__dirname, '..', '..', 'scripts');
export const hookCommand = (name: string) => `${join(SCRIPTS, name)} %d %h %p %D %m %H %M %P %r %R %N %S`;

/** Checks every second and the shipped failover scripts: a node's death is acted on in seconds. */
export const FAST_FAILOVER = {
  health_check_period: 1,
  health_check_timeout: 2,
  connect_timeout: 2000,
  sr_check_period: 1,
  failover_command: hookCommand('failover.sh'),
  follow_primary_command: hookCommand('follow_primary.sh'),
};

export const PCP_USER = 'admin';
export const PCP_PASSWORD = 'pcp secret';

/** The config for a cluster: every node as a [[backend]], plus overrides (`weights` sets theirs). */
export function clusterConfig(cluster: TestCluster, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const { weights, ...rest } = overrides as { weights?: number[] };
  const backend = Array.from({ length: cluster.replicas + 1 }, (_, i) => ({
    hostname: '127.0.0.1',
    port: cluster.port(i),
    application_name: `node${i}`,
    data_directory: join(cluster.dir, `node${i}`),
    ...(weights ? { weight: weights[i] } : {}),
  }));
  return {
    listen_addresses: '127.0.0.1',
    port: 0,
    // PCP on a free port, no Unix socket (tests run side by side with a real pgpool's /tmp one).
    pcp_listen_addresses: '127.0.0.1',
    pcp_port: 0,
    pcp_socket_dir: '',
    // No HTTP unless a test asks (several Sluices run side by side in one file).
    http_port: 0,
    pcp_user: [{ name: PCP_USER, md5: createHash('md5').update(PCP_PASSWORD).digest('hex') }],
    work_dir: cluster.dir,
    backend,
    ...rest,
  };
}

/** Sluice in this process, on a free port, in front of the cluster. */
export function startSluice(cluster: TestCluster, overrides: Record<string, unknown> = {}, opts: { discardStatus?: boolean } = {}): Promise<TestSluice> {
  return startSluiceWith(clusterConfig(cluster, overrides), cluster.dir, opts);
}

/** Sluice in this process, on a free port, with this config (as a TOML file would give it). */
export async function startSluiceWith(raw: Record<string, unknown>, dir: string, opts: ServerOptions = {}): Promise<TestSluice> {
  const config = buildConfig(raw, dir);
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const server = await Server.start(config, createLogger('debug', sink), opts);
  const port = server.port;
  const clients: Client[] = [];
  return {
    server,
    port,
    config,
    logs,
    async client(opts = {}) {
      const c = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', ...opts });
      c.on('error', () => undefined);
      await c.connect();
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
      await server.stop('fast');
    },
  };
}

/** Polls until `check` returns a truthy value, or fails at the deadline. Never a fixed sleep. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * One cluster and one Sluice for a whole test file, started before its tests and stopped after.
 * Read the fields inside tests (they are set by the time tests run).
 */
export function clusterWithSluice(replicas: number, overrides: Record<string, unknown> = {}): { cluster: TestCluster; sluice: TestSluice } {
  const env = {} as { cluster: TestCluster; sluice: TestSluice };
  t.before(async () => {
    env.cluster = await createCluster(replicas);
    env.sluice = await startSluice(env.cluster, overrides);
  });
  t.teardown(async () => {
    await env.sluice?.stop();
    await env.cluster?.destroy();
  });
  return env;
}
