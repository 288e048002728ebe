import type { BackendConnection } from '../backend/connection';
import { ClientError } from '../protocol/client-error';
import { SqlState } from '../protocol/sqlstate';
import type { Dispatcher } from './dispatch';
import type { NodeLink } from './link';
import { connectPrimary, isShutdown, KeptFatal, PrimaryHost } from './primary';

/** What losing a node's connection needs from its session. */
export interface LossHost {
  readonly ctx: PrimaryHost & { readonly canFailOver: boolean };
  dispatcher(): Dispatcher | null;
  isClosed(): boolean;
  params(): ReadonlyMap<string, string>;
  /** Makes a new connection the session's primary link. */
  primaryLink(conn: BackendConnection): NodeLink;
  /** Ends the session, after this frame when there is one. */
  end(frame: Buffer | null, err?: Error): void;
}

/**
 * What a session does when one of its backend connections goes away: a standby's is answered for
 * from the primary; the primary's ends the session unless the session was idle outside a
 * transaction and the node turns out to be down (failed over): then the session waits for the
 * new primary. The primary's own FATAL for an idle session is kept until that is known.
 */
export class LinkLoss {
  /** The server already told the client why it is going (a FATAL passed through). */
  fatalSent = false;
  private keptFatal: Buffer | null = null;

  constructor(private readonly host: LossHost) {}

  /** LinkOwner.keepFatal: the primary's FATAL outside an exchange, kept when the session may survive. */
  keepFatal(link: NodeLink, frame: Buffer): boolean {
    if (!this.survivable(link)) return false;
    this.keptFatal = frame;
    return true;
  }

  /** Whether losing this link now can leave the client connected: the idle primary of a session. */
  private survivable(link: NodeLink): boolean {
    const d = this.host.dispatcher();
    return this.host.ctx.canFailOver && link.isPrimary && !!d && link.forwarded === 0 && !d.state.inTransaction && !this.fatalSent;
  }

  linkClosed(link: NodeLink, err?: Error): void {
    const d = this.host.dispatcher();
    if (this.host.isClosed() || !d || d.links.get(link.nodeId) !== link) return;
    const ctx = this.host.ctx;
    if (!link.isPrimary) {
      // A standby is never the end of a session: what it owed is answered from the primary.
      d.standbyLost(link, err?.message ?? 'connection closed');
      void ctx.confirmDown(link.nodeId, false);
      return;
    }
    const fatal = this.keptFatal;
    this.keptFatal = null;
    const down = ctx.confirmDown(link.nodeId, fatal !== null && isShutdown(fatal));
    if (!this.survivable(link)) return this.primaryGone(link, fatal, err);
    // Idle outside a transaction: nothing is lost yet. If the node failed, the session carries
    // on with the new primary at its next statement; if not (its backend alone was ended, say by
    // pg_terminate_backend), it ends as a direct connection would.
    d.primaryLost(async () => {
      if (!(await down)) throw new KeptFatal(fatal);
      const { conn } = await connectPrimary(ctx, this.host.params());
      if (this.host.isClosed()) {
        ctx.pool.discard(conn);
        throw new Error('session closed');
      }
      return this.host.primaryLink(conn);
    });
    void down.then((isDown) => {
      if (!isDown) this.primaryGone(link, fatal, err);
    });
  }

  /** The primary connection is gone and the session with it: the server's FATAL, or ours. */
  private primaryGone(link: NodeLink, fatal: Buffer | null, err?: Error): void {
    if (this.host.isClosed()) return;
    const ours = this.fatalSent ? null : new ClientError('FATAL', SqlState.ConnectionFailure, `connection to node ${link.nodeId} lost`, err?.message).toFrame();
    this.host.end(fatal ?? ours, err);
  }

  /** A node left service: the session's connection to it goes (and what it owed is answered). */
  nodeDown(id: number): void {
    this.host.dispatcher()?.links.get(id)?.conn.destroy(new Error(`node ${id} left service`));
  }
}
