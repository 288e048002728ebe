// Transaction mode's LISTEN: one listening server connection per database, shared by every
// client that listens there, so that a listener holds no server connection between its
// transactions (PgBouncer pins it; Sluice used to). Each notification the shared connection
// hears goes to every client listening on its channel, as PostgreSQL sent it (the notifying
// server process's id, the channel, the payload).
import type { BackendConnection, NodeAddress } from '../backend/connection';
import { decodeFields } from '../protocol/backend';
import { serialize } from 'pg-protocol';
import { Backend, Frontend } from '../protocol/codes';
import { lex, word } from '../router/lexer';
import type { Logger } from '../log/logger';
import { truncateName } from './startup';

/** A client listening through the shared connection: Sluice delivers it notifications. */
export interface Listener {
  /** A NotificationResponse for the client (its own copy), delivered once it is idle. */
  notification(frame: Buffer): void;
}

/** What the shared connections need from the rest of Sluice. */
export interface ListenHost {
  /** The primary now (null: none known within the wait). */
  waitForPrimary(timeoutMs: number): Promise<NodeAddress | null>;
  /** A new server connection outside the pool, for these startup parameters. */
  openBackend(node: NodeAddress, params: ReadonlyMap<string, string>, key: string): Promise<BackendConnection>;
  readonly log: Logger;
}

/** LISTEN name, UNLISTEN name or UNLISTEN * as a whole simple Query: the channel ('*': all). */
export function listenCommand(sql: string): { listen: boolean; channel: string } | null {
  const lexed = lex(sql);
  if (lexed.statements.length !== 1 || lexed.broken) return null;
  const t = lexed.statements[0]!;
  if (t.length !== 2) return null;
  const listen = word(t[0], 'listen');
  if (!listen && !word(t[0], 'unlisten')) return null;
  const name = t[1]!;
  if (!listen && name.kind === 'punct' && name.text === '*') return { listen, channel: '*' };
  // PostgreSQL cuts a name to NAMEDATALEN - 1 bytes, and notifications carry the cut name.
  return name.kind === 'word' || name.kind === 'ident' ? { listen, channel: truncateName(name.text) } : null;
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const READY_WAIT_MS = 10_000;
const RECONNECT_MS = 1_000;

/** One database's shared listening connection and who listens to what through it. */
class DatabaseListener {
  private conn: BackendConnection | null = null;
  private opening: Promise<BackendConnection> | null = null;
  /** Replies owed for Sluice's LISTEN/UNLISTEN commands, in the order sent. */
  private readonly owed: { done: (err?: Error) => void }[] = [];
  /** Who listens on each channel, and the shared connection's LISTEN for it (settled once it listens). */
  readonly channels = new Map<string, { readonly who: Set<Listener>; readonly ready: Promise<void> }>();
  private reconnect: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly host: ListenHost,
    private params: ReadonlyMap<string, string>,
  ) {}

  /** Settles when the shared connection listens on the channel; a LISTEN that fails fails for every client that waited on it. */
  async listen(channel: string, who: Listener): Promise<void> {
    let entry = this.channels.get(channel);
    if (!entry) {
      const ready = this.run(`LISTEN ${quote(channel)}`);
      entry = { who: new Set(), ready };
      const mine = entry;
      this.channels.set(channel, entry);
      ready.catch(() => {
        if (this.channels.get(channel) === mine) this.channels.delete(channel);
      });
    }
    entry.who.add(who);
    try {
      await entry.ready;
    } catch (err) {
      entry.who.delete(who);
      throw err;
    }
  }

  unlisten(channel: string, who: Listener): void {
    const entry = this.channels.get(channel);
    if (!entry?.who.delete(who) || entry.who.size > 0) return;
    this.channels.delete(channel);
    if (this.conn) this.run(`UNLISTEN ${quote(channel)}`).catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.reconnect);
    this.conn?.terminate();
  }

  /** The node left service: a shared connection to it goes, and listening resumes on the primary. */
  nodeDown(id: number): void {
    if (this.conn?.node.id === id) this.conn.destroy(new Error(`node ${id} left service`));
  }

  /** Sends one command on the shared connection (opened first when needed); settles at its ReadyForQuery. */
  private async run(sql: string): Promise<void> {
    const conn = await this.connection();
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the shared listening connection did not answer')), READY_WAIT_MS);
      this.owed.push({ done: (err) => (clearTimeout(timer), err ? reject(err) : resolve()) });
    });
    conn.noteSent(Frontend.Query);
    conn.write(serialize.query(sql));
    return done;
  }

  private connection(): Promise<BackendConnection> {
    if (this.conn) return Promise.resolve(this.conn);
    this.opening ??= this.open().finally(() => (this.opening = null));
    return this.opening;
  }

  private async open(): Promise<BackendConnection> {
    const node = await this.host.waitForPrimary(READY_WAIT_MS);
    if (!node) throw new Error('no primary to listen on');
    const conn = await this.host.openBackend(node, this.params, '');
    let error: Error | undefined;
    conn.setHandler({
      frame: (type, buf, start, end) => {
        if (type === Backend.NotificationResponse) return this.deliver(buf, start, end);
        if (type === Backend.ErrorResponse) error = new Error(decodeFields(buf, start, end).get('M') ?? 'error');
        else if (type === Backend.ReadyForQuery) {
          this.owed.shift()?.done(error);
          error = undefined;
        }
      },
      closed: () => this.lost(conn),
    });
    this.conn = conn;
    return conn;
  }

  private deliver(buf: Buffer, start: number, end: number): void {
    // pid (4 bytes) after the header, then the channel, then the payload.
    const nameEnd = buf.indexOf(0, start + 9);
    const channel = buf.toString('utf8', start + 9, nameEnd);
    const entry = this.channels.get(channel);
    if (!entry) return;
    for (const who of entry.who) who.notification(Buffer.from(buf.subarray(start, end)));
  }

  /** The shared connection went (its node failed, say): listening goes on from the primary now. */
  private lost(conn: BackendConnection): void {
    if (this.conn !== conn) return;
    this.conn = null;
    for (const o of this.owed.splice(0)) o.done(new Error('the shared listening connection was lost'));
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.channels.size === 0) return;
    clearTimeout(this.reconnect);
    this.reconnect = setTimeout(() => {
      if (this.stopped) return;
      const channels = [...this.channels.keys()];
      Promise.all(channels.map((c) => this.run(`LISTEN ${quote(c)}`)))
        .then(() => this.host.log.info({ channels: channels.length }, 'shared listening connection open again'))
        .catch((err: Error) => {
          this.host.log.warn({ err: err.message }, 'cannot open the shared listening connection; trying again');
          // Taken out first: its close must not schedule a second attempt.
          const conn = this.conn;
          this.conn = null;
          conn?.destroy();
          this.scheduleReconnect();
        });
    }, RECONNECT_MS);
    this.reconnect.unref();
  }
}

/** Every database's shared listening connection (the server has one of these). */
export class SharedListeners {
  private readonly databases = new Map<string, DatabaseListener>();

  constructor(private readonly host: ListenHost) {}

  /** Subscribes: settles once the shared connection listens on the channel (a NOTIFY after it is heard). */
  listen(params: ReadonlyMap<string, string>, channel: string, who: Listener): Promise<void> {
    const database = params.get('database') ?? '';
    let d = this.databases.get(database);
    if (!d) this.databases.set(database, (d = new DatabaseListener(this.host, params)));
    return d.listen(channel, who);
  }

  /** UNLISTEN of one of the client's channels in that database. */
  unlisten(database: string, channel: string, who: Listener): void {
    this.databases.get(database)?.unlisten(channel, who);
  }

  /** A node left service (failover, detach, switchover): listening moves to the primary. */
  nodeDown(id: number): void {
    for (const d of this.databases.values()) d.nodeDown(id);
  }

  stop(): void {
    for (const d of this.databases.values()) d.stop();
    this.databases.clear();
  }
}
