import { ClientError } from './client-error';
import { ProtocolError } from './reader';
import { SqlState, SqlStateCode } from './sqlstate';

// Every error Sluice raises to a client, by name (house rule 5): one constructor per condition,
// each with its SQLSTATE, so the same condition always reads and codes the same. Errors from
// PostgreSQL pass through byte for byte and are not here.

const fatal = (code: SqlStateCode, message: string, detail?: string, hint?: string) => new ClientError('FATAL', code, message, detail, hint);

export const Errors = {
  // Startup (PostgreSQL's own words, where it has them).
  protocolViolation: (message: string, detail?: string) => fatal(SqlState.ProtocolViolation, message, detail),
  unsupportedFeature: (message: string) => fatal(SqlState.FeatureNotSupported, message),
  invalidParameterValue: (name: string, value: string, hint?: string) => fatal(SqlState.InvalidParameterValue, `invalid value for parameter "${name}": "${value}"`, undefined, hint),
  noUserName: () => fatal(SqlState.InvalidAuthorizationSpecification, 'no PostgreSQL user name specified in startup packet'),

  // Authentication.
  noHbaEntry: (where: string) => fatal(SqlState.InvalidAuthorizationSpecification, `no pg_hba.conf entry for ${where}`),
  hbaRejects: (where: string) => fatal(SqlState.InvalidAuthorizationSpecification, `pg_hba.conf rejects connection for ${where}`),
  passwordWithoutTls: () =>
    fatal(SqlState.InvalidAuthorizationSpecification, 'password authentication over an unencrypted connection is not allowed', 'Connect with TLS (sslmode=require).'),
  /** A wrong password, and an unknown user as well: the two must read the same, so nobody can probe which roles exist. */
  passwordFailed: (user: string) => fatal(SqlState.InvalidPassword, `password authentication failed for user "${user}"`),
  /** A malformed SASL exchange (PostgreSQL's words). */
  malformedScram: (detail: string) => fatal(SqlState.ProtocolViolation, 'malformed SCRAM message', detail),
  credentialsLookupFailed: (code: SqlStateCode) => fatal(code, "could not look up the user's credentials", 'See the Sluice log.'),

  // Nodes.
  noPrimary: (detail: string) => fatal(SqlState.CannotConnectNow, 'no primary node is available', detail),
  noPrimaryForAuthQuery: () => fatal(SqlState.CannotConnectNow, 'no primary node is available to run auth_query'),
  nodeUnreachable: (node: number, endpoint: string, why: string) => fatal(SqlState.ConnectionFailure, `could not connect to node ${node} (${endpoint}): ${why}`),
  nodeLost: (node: number, detail?: string) => fatal(SqlState.ConnectionFailure, `connection to node ${node} lost`, detail),
  primaryLost: (detail?: string) => fatal(SqlState.ConnectionFailure, 'connection to the primary lost', detail),
  nodeNeedsSecret: (node: number, what: string, user: string) =>
    fatal(
      SqlState.InvalidPassword,
      `node ${node} asks for ${what} for user "${user}" and Sluice has no usable secret`,
      'Give the user a [[user]] entry with the password, or let the client authenticate to Sluice first (SCRAM pass-through).',
    ),
  nodeAuthMethod: (node: number, code: number) => fatal(SqlState.FeatureNotSupported, `node ${node} asks for authentication method ${code}, which Sluice does not support`),

  // The session's life.
  tooManyClients: () => fatal(SqlState.TooManyConnections, 'sorry, too many clients already'),
  idleTimeout: () => fatal(SqlState.IdleSessionTimeout, 'terminating connection due to idle-session timeout'),
  onlineRecovery: () => fatal(SqlState.AdminShutdown, 'terminating connection due to online recovery', 'client_idle_limit_in_recovery'),
  adminShutdown: () => fatal(SqlState.AdminShutdown, 'terminating connection due to administrator command'),
  shuttingDown: () => fatal(SqlState.CannotConnectNow, 'the database system is shutting down'),
  /** Transaction mode: no server connection of the client's pool became free in time (PgBouncer ends the client too). */
  queryWaitTimeout: (seconds: number) =>
    fatal(
      SqlState.TooManyConnections,
      'no server connection became free within query_wait_timeout',
      `The client waited ${seconds} s for one of its pool's default_pool_size connections.`,
      'Raise default_pool_size or query_wait_timeout, or keep transactions shorter.',
    ),
  /** Transaction mode: the connection a session was to start on could not be reset. */
  resetFailed: (detail: string) => fatal(SqlState.ConnectionFailure, 'could not reset a pooled server connection', detail),
  /** A hold (pause, online recovery) that lasted its limit. */
  heldTooLong: (message: string, detail: string) => fatal(SqlState.CannotConnectNow, message, detail),
  internal: () => fatal(SqlState.InternalError, 'internal error in Sluice'),
} as const;

/**
 * Anything thrown while serving a client, as the error the client gets: Sluice's own as they
 * are, a malformed message as 08P01, anything else as an internal error (whose cause only the
 * log shows: `unexpected` is told).
 */
export function toClientError(err: unknown, unexpected?: (err: unknown) => void): ClientError {
  if (err instanceof ClientError) return err;
  if (err instanceof ProtocolError) return Errors.protocolViolation(err.message);
  unexpected?.(err);
  return Errors.internal();
}
