// Commands Sluice answers itself on the proxy port (SHOW POOL_*, PGPOOL SHOW/SET/RESET), in
// the session's turn.
import { encodeError, encodeReadyForQuery } from '../protocol/backend';
import { SqlState } from '../protocol/sqlstate';
import { Writer } from '../protocol/writer';
import type { TxStatus } from '../protocol/codes';
import type { SessionSettings } from './settings';

/** What a command Sluice answers itself (SHOW POOL_*, PGPOOL ...) knows of the session. */
export interface LocalSession {
  readonly loadBalanceNode: number | null;
  /** PGPOOL SET values of this session. */
  readonly settings: SessionSettings;
}

/** The commands Sluice answers itself in a simple Query (implemented in admin/show.ts). */
export interface LocalCommands {
  /** Whether the statement is one (else it goes to a node as usual). */
  matches(sql: string): boolean;
  /** The reply frames, without ReadyForQuery. */
  run(sql: string, session: LocalSession): Promise<Buffer>;
}

const SHOW = Buffer.from('show', 'latin1');
const POOL_ = Buffer.from('pool_', 'latin1');
const PGPOOL = Buffer.from('pgpool', 'latin1');

/** The bytes at i start with the lower-case ASCII prefix, in any case. */
function startsWithFolded(buf: Buffer, i: number, end: number, prefix: Buffer): boolean {
  if (end - i < prefix.length) return false;
  for (let k = 0; k < prefix.length; k++) {
    const b = buf[i + k]!;
    const p = prefix[k]!;
    if (b !== p && (b | 0x20) !== p) return false;
  }
  return true;
}

/**
 * Cheap first look, on every simple Query: after leading white space, does the text start with
 * "show pool_" or "pgpool" (any case)? Compared in place, so other statements cost no decoding.
 */
export function mayBeLocal(buf: Buffer, start: number, end: number): boolean {
  const i = skipSpace(buf, start + 5, end);
  if (startsWithFolded(buf, i, end, PGPOOL)) return true;
  if (!startsWithFolded(buf, i, end, SHOW)) return false;
  const j = skipSpace(buf, i + SHOW.length, end);
  return j > i + SHOW.length && startsWithFolded(buf, j, end, POOL_);
}

function skipSpace(buf: Buffer, i: number, end: number): number {
  while (i < end && (buf[i] === 0x20 || buf[i] === 0x0a || buf[i] === 0x09 || buf[i] === 0x0d)) i++;
  return i;
}

/** The reply to a local command, ended by ReadyForQuery with the session's status. */
export function localReply(frames: Buffer, tx: TxStatus): Buffer {
  return Buffer.concat([frames, encodeReadyForQuery(new Writer(8), tx).finish()]);
}

export function localFailure(err: unknown): Buffer {
  return encodeError('ERROR', SqlState.InternalError, 'the command failed', (err as Error).message);
}

/** The command's first two words, as the log and the admin views name a local command. */
export function commandName(sql: string): string {
  return sql.trim().split(/\s+/, 2).join(' ').toUpperCase();
}

/**
 * The whole reply to a local command, ending in ReadyForQuery with the session's status: a
 * failure of the command is an ErrorResponse, as a server's would be.
 */
export async function answerLocal(commands: LocalCommands, sql: string, session: LocalSession, tx: () => TxStatus): Promise<Buffer> {
  const frames = await commands.run(sql, session).catch((err: unknown) => localFailure(err));
  return localReply(frames, tx());
}
