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

/** What answering a local command needs from the dispatcher. */
export interface LocalTurnHost {
  readonly commands: LocalCommands;
  readonly session: LocalSession;
  /** Replies from a node are still owed to the client (ours must come after them). */
  busy(): boolean;
  txStatus(): TxStatus;
  /** Writes Sluice's reply to the client now. */
  write(reply: Buffer): void;
  hold(): false;
  release(): void;
  fail(err: unknown): void;
}

/**
 * Answers SHOW POOL_* and PGPOOL commands in the session's order: after every earlier reply
 * reached the client, the frame is held while the answer is made, then consumed.
 */
export class LocalTurn {
  private running = false;
  private answered = false;

  constructor(private readonly h: LocalTurnHost) {}

  /** True once answered (the held frame is consumed), false while held, null: not ours. */
  handle(sql: string): boolean | null {
    if (this.answered) {
      this.answered = false;
      return true;
    }
    if (!this.h.commands.matches(sql)) return null;
    if (this.running || this.h.busy()) return this.h.hold();
    this.running = true;
    this.h.commands
      .run(sql, this.h.session)
      .catch((err: unknown) => localFailure(err))
      .then((frames) => {
        this.h.write(localReply(frames, this.h.txStatus()));
        this.running = false;
        this.answered = true;
        this.h.release();
      })
      .catch((err: unknown) => this.h.fail(err));
    return this.h.hold();
  }
}
