import type { Dispatcher } from './dispatch';
import { describeHold } from './hold';

/** One backend connection of a session, as SHOW POOL_POOLS and pcp_proc_info list it. */
export interface BackendInfo {
  node: number;
  processId: number;
  connectedAt: Date;
}

/**
 * A session as the admin commands show it. pgpool lists its child processes; a Sluice session
 * is what a child is to pgpool: one client connection with a backend connection per node it
 * used (README, "Admin").
 */
export interface SessionInfo {
  id: number;
  startedAt: Date;
  database: string;
  user: string;
  clientHost: string;
  clientPort: number;
  /** pgpool's process status names. */
  status: 'Wait for connection' | 'Idle' | 'Idle in transaction' | 'Execute command';
  /** Seconds since the client last sent something (0 unless client_idle_limit is on). */
  idleSeconds: number;
  loadBalanceNode: number | null;
  backends: BackendInfo[];
  /** Between transactions with nothing in flight (a pause may hold it there). */
  atBoundary: boolean;
  /** What the client's held message waits for (null: none is held). */
  waitingFor: string | null;
}

/** A session's admin view from its parts (the dispatcher is null until the session is ready). */
export function describeSession(
  id: number,
  startedAt: Date,
  req: { database: string; user: string } | undefined,
  client: { readonly address: string; readonly port: number },
  d: Dispatcher | null,
  loadBalanceNode: number | null,
  idleSeconds: number,
): SessionInfo {
  const links = d ? [...d.links.values()] : [];
  const held = d?.holding ?? null;
  const busy = held !== null || links.some((l) => l.busy);
  const status = !d ? 'Wait for connection' : busy ? 'Execute command' : d.state.inTransaction ? 'Idle in transaction' : 'Idle';
  return {
    id,
    startedAt,
    database: req?.database ?? '',
    user: req?.user ?? '',
    clientHost: client.address,
    clientPort: client.port,
    status,
    idleSeconds,
    loadBalanceNode,
    backends: links.map((l) => ({ node: l.nodeId, processId: l.conn.processId, connectedAt: new Date(l.conn.createdAt) })),
    atBoundary: !d || d.atBoundary,
    waitingFor: held && describeHold(held.reason),
  };
}
