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
  const s = connect(nodeEndpoint(conn.node.host, conn.node.port));
  // The server closes the cancel connection once it has acted on the request.
  if (done) s.once('close', done);
  s.on('error', (err) => log.warn({ node: conn.node.id, err: err.message }, 'cancel request failed'));
  s.on('connect', () => s.end(serialize.cancel(conn.processId, conn.secretKey)));
  s.setTimeout(10_000, () => s.destroy());
}
