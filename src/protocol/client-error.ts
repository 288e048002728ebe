import { encodeError } from './backend';
import type { SqlStateCode } from './sqlstate';

/**
 * An error Sluice itself raises to a client (house rule 5): always a specific SQLSTATE from
 * protocol/sqlstate.ts, turned into an ErrorResponse by toFrame(). Made by errors.ts's
 * constructors, one per condition.
 */
export class ClientError extends Error {
  override name = 'ClientError';
  constructor(
    readonly severity: 'ERROR' | 'FATAL',
    readonly code: SqlStateCode,
    message: string,
    readonly detail?: string,
    readonly hint?: string,
  ) {
    super(message);
  }

  toFrame(): Buffer {
    return encodeError(this.severity, this.code, this.message, this.detail, this.hint);
  }
}
