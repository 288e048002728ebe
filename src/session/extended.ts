// The extended query protocol as a session sees it: the statements and portals the client made,
// which node holds each, and the batch of messages up to the next Flush or Sync.
import { addTo, clearMap, deleteKey, emptyMap, emptySet, setIn } from '../util/lazy';
import { classify } from '../router/classify';
import type { Statement } from '../router/statement';
import { Frontend } from '../protocol/codes';
import { Reader } from '../protocol/reader';

/** A protocol-level prepared statement as the client defined it with Parse. */
export interface PreparedStatement {
  readonly name: string;
  readonly sql: string;
  readonly stmt: Statement;
  /** The Parse message itself, to prepare the statement again on another node. */
  readonly parse: Buffer;
}

/**
 * A client message kept past the moment it arrived (held in a batch until its node is known, or
 * held whole until the session can send it): its type byte and its bytes, a range of the chunk
 * it came in (chunks are never reused, so the range stays valid).
 */
export interface Frame {
  readonly type: number;
  readonly buf: Buffer;
  readonly start: number;
  readonly end: number;
}

/**
 * The extended-query messages a client sent since its last Sync (PostgreSQL docs, "Extended
 * Query"). They are held until a Flush or Sync so that the node is chosen knowing every
 * statement the batch runs: all reads may go to a standby, anything else goes to the primary.
 * A Flush sends the batch so far; the rest of the batch then follows it to the same node.
 */
export class ExtendedBatch {
  readonly held: Frame[] = [];
  /** The statements the held messages parse or run. */
  readonly statements: PreparedStatement[] = [];
  /** Named statements the held messages use without parsing them in this batch. */
  uses = emptySet<string>();
  /** Portals from earlier batches that the held messages use. */
  portalsUsed = emptySet<string>();
  /** Executes in this batch, for notice_per_node_statement. */
  readonly executed: string[] = [];
  /** Names closed by this batch. */
  readonly closedStatements: string[] = [];
  /** Names parsed by this batch while the session still had a statement of that name (not closed). */
  reparsed = emptySet<string>();

  get empty(): boolean {
    return this.held.length === 0;
  }

  clearHeld(): void {
    this.held.length = 0;
  }
}

/**
 * The session's protocol-level statements and portals, and the batch being collected. Portals
 * remember their node: a portal exists only where its Bind ran.
 */
export class ExtendedState {
  statements = emptyMap<string, PreparedStatement>();
  portals = emptyMap<string, { stmt: PreparedStatement | undefined; node: number | null }>();
  batch = new ExtendedBatch();
  /** The node the current batch went to after a Flush (the rest follows it), else null. */
  batchNode: number | null = null;

  /** Records one client message of the batch; the batch holds it until Flush or Sync. */
  add(type: number, buf: Buffer, start: number, end: number): void {
    const b = this.batch;
    b.held.push({ type, buf, start, end });
    const r = new Reader(buf, start + 5, end);
    switch (type) {
      case Frontend.Parse: {
        const name = r.cstring();
        const sql = r.cstring();
        // A named statement lives for the session: keep its own copy, not the client's chunk.
        const parse = name !== '' ? Buffer.from(buf.subarray(start, end)) : buf.subarray(start, end);
        const ps: PreparedStatement = { name, sql, stmt: classify(sql), parse };
        if (name !== '' && this.statements.has(name)) b.reparsed = addTo(b.reparsed, name);
        this.statements = setIn(this.statements, name, ps);
        b.statements.push(ps);
        return;
      }
      case Frontend.Bind: {
        const portal = r.cstring();
        const name = r.cstring();
        const ps = this.statements.get(name);
        if (ps && !b.statements.includes(ps)) {
          b.statements.push(ps);
          b.uses = addTo(b.uses, name);
        }
        this.portals = setIn(this.portals, portal, { stmt: ps, node: null });
        return;
      }
      case Frontend.Describe: {
        const kind = r.byte();
        const name = r.cstring();
        if (kind === 0x53 /* S */) this.use(name);
        else this.usePortal(name);
        return;
      }
      case Frontend.Execute: {
        const portal = r.cstring();
        this.usePortal(portal);
        const p = this.portals.get(portal);
        if (p?.stmt) b.executed.push(p.stmt.sql);
        return;
      }
      case Frontend.Close: {
        const kind = r.byte();
        const name = r.cstring();
        if (kind === 0x53 /* S */) {
          b.closedStatements.push(name);
          deleteKey(this.statements, name);
        } else {
          deleteKey(this.portals, name);
        }
        return;
      }
    }
  }

  private use(name: string): void {
    const ps = this.statements.get(name);
    if (ps && !this.batch.statements.includes(ps)) {
      this.batch.statements.push(ps);
      this.batch.uses = addTo(this.batch.uses, name);
    }
  }

  private usePortal(portal: string): void {
    const p = this.portals.get(portal);
    if (!p) return;
    if (p.node !== null) this.batch.portalsUsed = addTo(this.batch.portalsUsed, portal);
    else if (p.stmt && !this.batch.statements.includes(p.stmt)) this.batch.statements.push(p.stmt);
  }

  /** The batch went to a node: its portals live there. */
  placed(node: number): void {
    for (const p of this.portals.values()) if (p.node === null) p.node = node;
  }

  /** A node was lost and its work re-run on another: the portals made there live there now. */
  moved(from: number, to: number): void {
    for (const p of this.portals.values()) if (p.node === from) p.node = to;
  }

  /** The one node holding the session's open portals (null: none, or several). */
  openPortalsNode(): number | null {
    let node: number | null = null;
    for (const p of this.portals.values()) {
      if (p.node === null) continue;
      if (node !== null && p.node !== node) return null;
      node = p.node;
    }
    return node;
  }

  /** The node holding a portal this batch uses, if any. */
  portalNode(): number | null {
    for (const name of this.batch.portalsUsed) {
      const n = this.portals.get(name)?.node;
      if (n !== undefined && n !== null) return n;
    }
    return null;
  }

  /** Sync: the batch is over; a new one starts. */
  synced(outsideTransaction: boolean): void {
    this.batch = new ExtendedBatch();
    this.batchNode = null;
    // Portals end with their transaction (an implicit one ends at Sync).
    // Cleared where it is: a session that binds portals binds them batch after batch.
    if (outsideTransaction) clearMap(this.portals);
  }

  /** DISCARD ALL / DEALLOCATE ALL: every prepared statement is gone. */
  forgetStatements(): void {
    this.statements = emptyMap();
  }
}
