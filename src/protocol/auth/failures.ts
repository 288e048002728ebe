import { ClientError } from '../client-error';
import { SqlState } from '../sqlstate';

/**
 * PostgreSQL's answer to a wrong password, and Sluice's to an unknown user as well: the two
 * must read the same, so that nobody can probe which roles exist.
 */
export const authFailed = (user: string): ClientError =>
  new ClientError('FATAL', SqlState.InvalidPassword, `password authentication failed for user "${user}"`);

/** A malformed SASL exchange (PostgreSQL: 08P01 "malformed SCRAM message"). */
export const malformedScram = (detail: string): ClientError =>
  new ClientError('FATAL', SqlState.ProtocolViolation, 'malformed SCRAM message', detail);
