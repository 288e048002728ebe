import { connect } from 'node:net';
import { serialize } from 'pg-protocol';
import type { Logger } from '../log/logger';
import type { BackendConnection } from './connection';
import { nodeEndpoint } from './endpoint';

/**
 * Sends a CancelRequest for a backend connection's current statement, on a new connection to its
 * node with the server's own key (PostgreSQL docs, "Canceling Requests in Progress").
 */
export function cancelOnNode(conn: BackendConnection, log: Logger, done?: () => void): void {
  sendCancel(conn.node.host, conn.node.port, conn.processId, conn.secretKey, (err) => log.warn({ node: conn.node.id, err: err.message }, 'cancel request failed'), done);
}

/**
 * A CancelRequest on a connection of its own, to a node or to another Sluice instance (which
 * answers it as PostgreSQL does: by closing the connection once it has acted on it).
 */
export function sendCancel(host: string, port: number, processId: number, secret: number, failed: (err: Error) => void, done?: () => void): void {
  const s = connect(nodeEndpoint(host, port));
  if (done) s.once('close', done);
  s.on('error', failed);
  s.on('connect', () => s.end(serialize.cancel(processId, secret)));
  s.setTimeout(10_000, () => s.destroy());
}
