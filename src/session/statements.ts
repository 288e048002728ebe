import { Frontend } from '../protocol/codes';
import type { ExtendedState, PreparedStatement } from './extended';
import type { NodeLink } from './link';

/** Close (statement) of Sluice's own. */
function closeStatement(name: string): Buffer {
  const body = Buffer.from(`S${name}\0`);
  const f = Buffer.alloc(5 + body.length);
  f[0] = Frontend.Close;
  f.writeUInt32BE(4 + body.length, 1);
  body.copy(f, 5);
  return f;
}

/**
 * Parses on a node the statements a batch uses from earlier batches and the node lacks, in a
 * swallowed unit queued (and answered) before the client's.
 */
export function prepareStatements(link: NodeLink, statements: readonly PreparedStatement[], uses: { has(name: string): boolean }): void {
  const own: Buffer[] = [];
  for (const ps of statements) {
    const here = link.prepared.get(ps.name);
    if (here === ps) continue;
    // A name this node still holds from an older statement (closed elsewhere) goes first;
    // the unnamed statement is simply replaced by the next Parse.
    if (here !== undefined && ps.name !== '') own.push(closeStatement(ps.name));
    if (uses.has(ps.name)) own.push(ps.parse);
    link.prepared.set(ps.name, ps);
  }
  if (own.length > 0) link.runSwallowedMessages(own);
}

/**
 * Before a read of pg_prepared_statements: the node gets every named statement the session has
 * prepared, wherever it was (a read's Parse may have gone to a standby), so that the view shows
 * them all, as one server would.
 */
export function prepareAllNamed(link: NodeLink, ext: ExtendedState): void {
  const named = [...ext.statements.values()].filter((ps) => ps.name !== '' && link.prepared.get(ps.name) !== ps);
  if (named.length > 0) prepareStatements(link, named, new Set(named.map((ps) => ps.name)));
}

/** Sends the batch's held messages to the node, which now has the statements and portals they make. */
export function sendHeld(link: NodeLink, ext: ExtendedState): void {
  const b = ext.batch;
  if (b.held.length === 0) return;
  for (const h of b.held) link.send(h.type, h.buf, h.start, h.end);
  for (const ps of b.statements) link.prepared.set(ps.name, ps);
  for (const name of b.closedStatements) link.prepared.delete(name);
  ext.placed(link.nodeId);
  b.uses.clear();
  b.clearHeld();
}
