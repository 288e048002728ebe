import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePortRun } from './ports';

const run = promisify(execFile);
const SCRIPT = join(__dirname, '..', '..', 'scripts', 'cluster.sh');

export interface TestCluster {
  dir: string;
  basePort: number;
  replicas: number;
  port(node: number): number;
  sh(...args: string[]): Promise<string>;
  /** Runs SQL on a node directly (not through Sluice) with psql. */
  psql(node: number, sql: string): Promise<string>;
  destroy(): Promise<void>;
}

/** A real primary + replicas on free ports in a fresh temporary folder, fsync off. */
export async function createCluster(replicas = 2, opts: { maxConnections?: number; sockets?: boolean } = {}): Promise<TestCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const basePort = await freePortRun(replicas + 1);
  const limit = {
    ...(opts.maxConnections ? { PG_MAX_CONNECTIONS: String(opts.maxConnections) } : {}),
    ...(opts.sockets ? { PG_SOCKETS: '1' } : {}),
  };
  const sh = async (...args: string[]) => {
    const { stdout } = await run('bash', [SCRIPT, args[0]!, dir, ...args.slice(1)], {
      env: { ...process.env, PG_FAST: '1', ...limit },
      maxBuffer: 16 << 20,
    });
    return stdout;
  };
  await sh('create', String(basePort), String(replicas));
  return {
    dir,
    basePort,
    replicas,
    port: (n) => basePort + n,
    sh,
    async psql(node, sql) {
      const { stdout } = await run('psql', ['-X', '-A', '-t', '-h', '127.0.0.1', '-p', String(basePort + node), '-U', 'postgres', '-d', 'postgres', '-c', sql]);
      return stdout.trim();
    },
    destroy: () => sh('destroy').then(() => undefined),
  };
}
