import { encodeAuthenticationOk, encodeBackendKeyData, encodeNegotiateProtocolVersion, encodeParameterStatus, encodeReadyForQuery } from '../protocol/backend';
import { ClientError } from '../protocol/client-error';
import { StartupPacket } from '../protocol/frontend';
import { SqlState } from '../protocol/sqlstate';
import { Writer } from '../protocol/writer';
import type { BackendConnection } from '../backend/connection';

/** What a client asked for in its StartupMessage, checked. */
export interface StartupRequest {
  /** Parameters to start backend connections with: user and database first, then the client's. */
  readonly params: ReadonlyMap<string, string>;
  readonly user: string;
  readonly database: string;
  /** Protocol extensions (_pq_.*) and a newer minor version that we must decline. */
  readonly negotiate: { minor: number; unsupported: string[] } | null;
}

/**
 * Checks a StartupMessage as PostgreSQL's ProcessStartupPacket does: a user is required, the
 * database defaults to the user, `_pq_.` options and minor versions above 0 are declined with
 * NegotiateProtocolVersion (PostgreSQL docs, "Protocol versions").
 */
export function checkStartup(p: Extract<StartupPacket, { kind: 'startup' }>): StartupRequest {
  const user = p.params.get('user');
  if (!user) {
    throw new ClientError('FATAL', SqlState.InvalidAuthorizationSpecification, 'no PostgreSQL user name specified in startup packet');
  }
  if (p.params.has('replication') && p.params.get('replication') !== 'false' && p.params.get('replication') !== 'off') {
    throw new ClientError('FATAL', SqlState.FeatureNotSupported, 'replication connections are not supported through Sluice');
  }
  const database = p.params.get('database') || user;
  const params = new Map<string, string>([
    ['user', user],
    ['database', database],
  ]);
  const unsupported: string[] = [];
  for (const [k, v] of p.params) {
    if (k === 'user' || k === 'database' || k === 'replication') continue;
    if (k.startsWith('_pq_.')) unsupported.push(k);
    else params.set(k, v);
  }
  const negotiate = p.minor > 0 || unsupported.length > 0 ? { minor: 0, unsupported } : null;
  return { params, user, database, negotiate };
}

export function unsupportedProtocol(code: number): ClientError {
  return new ClientError(
    'FATAL',
    SqlState.FeatureNotSupported,
    `unsupported frontend protocol ${code >>> 16}.${code & 0xffff}: server supports 3.0 to 3.0`,
  );
}

/**
 * The client's view of a successful start: AuthenticationOk, the server's ParameterStatus set as
 * the backend connection last reported it, BackendKeyData with the primary backend's process id
 * (so pg_backend_pid() and NOTIFY's pid agree with it) and Sluice's own secret, ReadyForQuery.
 */
export function encodeWelcome(req: StartupRequest, conn: BackendConnection, secretKey: number): Buffer {
  const w = new Writer(512);
  if (req.negotiate) encodeNegotiateProtocolVersion(w, req.negotiate.minor, req.negotiate.unsupported);
  encodeAuthenticationOk(w);
  for (const [name, value] of conn.params) encodeParameterStatus(w, name, value);
  encodeBackendKeyData(w, conn.processId, secretKey);
  encodeReadyForQuery(w, conn.txStatus);
  return w.finish();
}
