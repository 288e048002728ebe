import type { Logger } from '../log/logger';
import { Frontend } from '../protocol/codes';
import { decodeParse, decodeQuery } from '../protocol/frontend';
import type { SessionValues } from './settings';

const NAMES = new Map<number, string>(Object.entries(Frontend).map(([name, code]) => [code, name]));

/**
 * log_statement (each SQL text, simple or extended) and log_client_messages (each message's
 * kind and length, as pgpool's "... message from frontend" lines; never its content, so a
 * PasswordMessage or a COPY row cannot end up in the log).
 */
export function logClientMessage(log: Logger, v: SessionValues, type: number, buf: Buffer, start: number, end: number): void {
  if (v.log_client_messages) log.info({ message: NAMES.get(type) ?? String.fromCharCode(type), length: end - start - 1 }, 'client message');
  if (!v.log_statement) return;
  if (type === Frontend.Query) log.info({ statement: decodeQuery(buf, start, end) }, 'statement');
  else if (type === Frontend.Parse) log.info({ statement: decodeParse(buf, start, end).query }, 'statement');
}
