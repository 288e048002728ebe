import { encodeError, encodeReadyForQuery } from '../protocol/backend';
import { SqlState } from '../protocol/sqlstate';
import { Writer } from '../protocol/writer';
import type { TxStatus } from '../protocol/codes';

/** What a command Sluice answers itself (SHOW POOL_*, PGPOOL ...) knows of the session. */
export interface LocalSession {
  readonly loadBalanceNode: number | null;
  /** PGPOOL SET values of this session (name to value). */
  readonly settings: Map<string, string>;
}

/** The commands Sluice answers itself in a simple Query (implemented in admin/show.ts). */
export interface LocalCommands {
  /** Whether the statement is one (else it goes to a node as usual). */
  matches(sql: string): boolean;
  /** The reply frames, without ReadyForQuery. */
  run(sql: string, session: LocalSession): Promise<Buffer>;
}

const lower = (b: number): number => b | 0x20;

/**
 * Cheap first look, on every simple Query: after leading white space, does the text start with
 * "show pool_" or "pgpool" (any case)? Only those are decoded and looked at further.
 */
export function mayBeLocal(buf: Buffer, start: number, end: number): boolean {
  let i = start + 5;
  while (i < end && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
  const c = buf[i];
  if (c === undefined || (lower(c) !== 0x73 && lower(c) !== 0x70)) return false;
  const head = buf.toString('latin1', i, Math.min(end, i + 10)).toLowerCase();
  return head.startsWith('show') || head.startsWith('pgpool');
}

/** The reply to a local command, ended by ReadyForQuery with the session's status. */
export function localReply(frames: Buffer, tx: TxStatus): Buffer {
  return Buffer.concat([frames, encodeReadyForQuery(new Writer(8), tx).finish()]);
}

export function localFailure(err: unknown): Buffer {
  return encodeError('ERROR', SqlState.InternalError, 'the command failed', (err as Error).message);
}
