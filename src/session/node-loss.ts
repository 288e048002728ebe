// When a node is lost under a session: replies it still owed are answered, a read that can be
// is run again elsewhere, and the node is avoided for a while.
import { deleteKey, emptyMap, setIn } from '../util/lazy';
import { serialize } from 'pg-protocol';
import type { Logger } from '../log/logger';
import { Frontend } from '../protocol/codes';
import { Statement, statement } from '../router/statement';
import type { ExtendedState } from './extended';
import type { NodeLink, Unit } from './links';
import type { ReplayLog } from './memory';
import type { Clock } from '../util/clock';

/** A node that failed a session is not tried again for this long (a health check decides meanwhile). */
const AVOID_MS = 10_000;
const RERUN = statement('read', 're-run of a read whose standby was lost');
const LOST = statement('read', 'read lost with its standby');

/** Answers a read lost with its node that cannot be re-run; in a transaction it fails it too. */
const lostReadSql = (node: number) =>
  `DO $$BEGIN RAISE EXCEPTION USING ERRCODE = '08006', MESSAGE = 'connection to node ${node} was lost while it answered this statement', HINT = 'The statement was not re-run: part of its result had been sent, or it ran in a transaction.'; END$$`;

/** The nodes a session avoids for reads, each for AVOID_MS after it failed the session. */
export class AvoidList {
  private since = emptyMap<number, number>();

  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  add(node: number): void {
    this.since = setIn(this.since, node, this.clock.now());
  }

  has(node: number): boolean {
    return this.current().has(node);
  }

  /** The nodes to avoid now (older entries are forgotten). */
  current(): ReadonlyMap<number, number> {
    if (this.since.size === 0) return this.since;
    const now = this.clock.now();
    for (const [n, at] of this.since) if (now - at > AVOID_MS) deleteKey(this.since, n);
    return this.since;
  }
}

/**
 * What a lost standby still owed the client, answered from the primary in order: a read outside
 * a transaction whose replies had not started is run there (it changed nothing); anything else
 * gets an error (08006) from a statement that, inside a transaction, fails the transaction as a
 * failed read on the standby would.
 */
export function answerOwed(
  primary: NodeLink,
  ext: ExtendedState,
  node: number,
  owed: readonly Unit[],
  openUnit: (link: NodeLink, s: Statement, sql: string) => Unit,
): void {
  if (ext.batchNode === node) ext.batchNode = primary.nodeId;
  ext.moved(node, primary.nodeId);
  for (const u of owed) {
    if (u.retry && !u.started) {
      primary.prepare(u.retry.statements, new Set(u.retry.uses));
      openUnit(primary, RERUN, '');
      for (const f of u.retry.frames) primary.send(f.type, f.buf, f.start, f.end);
      for (const ps of u.retry.statements) primary.prepared.set(ps.name, ps);
    } else {
      openUnit(primary, LOST, '');
      primary.sendOwn(Frontend.Query, serialize.query(lostReadSql(node)));
    }
  }
  primary.flush();
}

/**
 * A primary link gets the session's state it lacks (all of it on a new connection), queued before
 * anything else: no round trip of its own. Returns how many statements were replayed.
 */
export function replayMissing(link: NodeLink, replay: ReplayLog, session: { readonly log: Logger }): number {
  const entries = replay.since(link.appliedSeq);
  for (const e of entries) {
    link.runSwallowed(e.sql, (u) => {
      if (u.errored) session.log.warn({ node: link.nodeId, statement: e.sql }, 'session state could not be replayed on the primary');
    });
  }
  link.appliedSeq = replay.lastSeq;
  return entries.length;
}
