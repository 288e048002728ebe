// One client connection's shell: its socket, the startup packet (answered as PostgreSQL does,
// refusals included), authentication, timers, and the port through which its relay (relay.ts)
// reaches the client. The states a connection moves through are one story, read top to bottom.
import type { BackendConnection } from '../backend/connection';
import { BackendStartupError } from '../backend/connect';
import type { CompiledRouting } from '../router/options';
import type { Logger } from '../log/logger';
import { ClientError } from '../protocol/client-error';
import { Errors, toClientError } from '../protocol/errors';
import { Frontend, StartupCode } from '../protocol/codes';
import { Framer, FrameSink } from '../protocol/framer';
import { decodeParse, decodeQuery, decodeStartupPacket } from '../protocol/frontend';
import { ProtocolError } from '../protocol/reader';
import { assertNever } from '../util/assert-never';
import { carryStartup, connectPrimary, idleOnPrimary, resetConnection } from './connections';
import { Relay, RelayPort, RelaySession } from './relay';
import { SessionRouting } from './routing';
import { AuthInbox, checkStartup, encodeWelcome, knownRequest, lendingRequest, rememberRequest, StartupDropped, StartupRequest, unencryptedAfter, unsupportedProtocol } from './startup';
import { untilWritable, WriteBatch } from '../net/write-batch';
import type { LocalSession } from './local-commands';
import type { SessionContext } from './context';
import type { SessionInfo } from './registry';
import { IdleLimit } from './idle-limit';
import { ClientSocket, ENCRYPTION_NO } from './client-socket';
import type { ClientTransport } from '../net/client-transport';
import { ProxyHeaderError } from '../protocol/proxy-header';
import { SessionSettings, sessionRouting, SessionValues } from './settings';
import { pinoLevel } from '../log/logger';
import type { TimerHandle } from '../util/clock';
import { describeHold, HoldKind } from './hold';

/**
 * Every state after the StartupMessage has the same fields, so that the state's `kind` (read for
 * every client message) is read from at most two shapes of object: V8 reads a field from up to
 * four shapes inline, and goes the slow way past that.
 */
type State =
  /** Before the StartupMessage; an SSLRequest or GSSENCRequest answered already is not answered again. */
  | { kind: 'startup'; sslDone: boolean; gssDone: boolean }
  | { kind: 'auth'; req: StartupRequest }
  | { kind: 'starting'; req: StartupRequest }
  | { kind: 'ready'; req: StartupRequest }
  | { kind: 'closed'; req: null };

const CLOSED: State = { kind: 'closed', req: null };

/** client_idle_limit_in_recovery = -1: an idle session leaves at once. */
const IMMEDIATELY = 0.001;

const FRONTEND_NAMES = new Map<number, string>(Object.entries(Frontend).map(([name, code]) => [code, name]));

/**
 * log_statement (each SQL text, simple or extended) and log_client_messages (each message's
 * kind and length, as pgpool's "... message from frontend" lines; never its content, so a
 * PasswordMessage or a COPY row cannot end up in the log).
 */
export function logClientMessage(log: Logger, v: Pick<SessionValues, 'log_statement' | 'log_client_messages'>, type: number, buf: Buffer, start: number, end: number): void {
  if (v.log_client_messages) log.info({ message: FRONTEND_NAMES.get(type) ?? String.fromCharCode(type), length: end - start - 1 }, 'client message');
  if (!v.log_statement) return;
  if (type === Frontend.Query) log.info({ statement: decodeQuery(buf, start, end) }, 'statement');
  else if (type === Frontend.Parse) log.info({ statement: decodeParse(buf, start, end).query }, 'statement');
}

/**
 * One client connection. Startup is answered by Sluice; after that its relay forwards the
 * client's frames to the nodes and the nodes' frames back, raw, in batches, with backpressure
 * both ways. It holds one backend connection per node it has used (lazily) for its whole life,
 * as pgpool does, and gives them back to the pool when the client leaves.
 */
export class Session implements RelayPort, RelaySession {
  private state: State = { kind: 'startup', sslDone: false, gssDone: false };
  private readonly framer: Framer;
  private relay: Relay | null = null;
  readonly routing: SessionRouting;
  private hasSlot = false;
  private secretKey = 0;
  private processIdValue = 0;
  private readonly toClientBatch: WriteBatch;
  private startupTimer: TimerHandle | undefined;
  private readonly idle: IdleLimit;
  /** client_idle_limit_in_recovery, while online recovery's second stage waits for sessions (made then). */
  private recoveryIdle: IdleLimit | null = null;
  /** When the client connected (ms since the epoch; a Date only when an admin view asks). */
  private readonly startedAt: number;
  /** The config as this session sees it: PGPOOL SET values over the file's (a reload re-reads it). */
  readonly settings: SessionSettings;
  /** Routing with this session's PGPOOL SET values (allow_sql_comments, check_unlogged_table). */
  private ownRouting: CompiledRouting;
  private request: StartupRequest | null = null;
  private waitingForServer = false;
  /** The session's child logger, made when first used (most sessions never log; a child costs time and memory). */
  private childLog: Logger | null = null;
  /** The log level PGPOOL SET log_min_messages (or a reload) gave this session; null: the server's. */
  private ownLevel: string | null = null;
  private readonly client: ClientSocket;
  private readonly inbox = new AuthInbox(() => this.framer.resume(this.onClientFrame));

  constructor(
    raw: ClientTransport,
    private readonly ctx: SessionContext,
    readonly id: number,
    /** The client's connection is closed (the server forgets the session). */
    gone: () => void,
  ) {
    this.routing = new SessionRouting(ctx, this);
    this.settings = new SessionSettings(() => ctx.config, () => this.settingsChanged());
    this.ownRouting = ctx.routing;
    const active = () => this.state.kind === 'ready';
    this.idle = new IdleLimit({
      active,
      busy: () => {
        let busy = false;
        this.forEachBackend((b) => (busy ||= b.awaitingReady > 0));
        return busy;
      },
      expire: () => this.fail(Errors.idleTimeout()),
    }, ctx.clock);
    this.framer = new Framer(ctx.config.max_message_size, false);
    this.toClientBatch = new WriteBatch((b) => this.client.write(b));
    this.client = new ClientSocket(raw, { trustedProxies: ctx.trustedProxies, tls: ctx.tls }, {
      data: (chunk) => this.onClientData(chunk),
      error: (err) => this.clientError(err),
      close: () => {
        this.clientClosed();
        gone();
      },
      drain: () => this.forEachBackend((b) => b.resume()),
    });
    const t = ctx.config.authentication_timeout;
    this.startedAt = ctx.clock.now();
    if (t > 0) this.startupTimer = ctx.clock.setTimeout(() => this.close('startup timeout'), t * 1000);
  }

  /** RelaySession: what the commands Sluice answers itself see of the session (itself). */
  get localSession(): LocalSession {
    return this;
  }

  /** LocalSession: the node this session's reads are balanced to. */
  get loadBalanceNode(): number | null {
    return this.routing.lbNode;
  }

  /** RelaySession: the session's logger, made when first read. */
  get log(): Logger {
    if (!this.childLog) {
      this.childLog = this.ctx.log.child({ session: this.id });
      // Setting a level makes the logger its own logging functions: only for a session whose
      // PGPOOL SET (or a reload) gave it one.
      if (this.ownLevel !== null) this.childLog.level = this.ownLevel;
    }
    return this.childLog;
  }

  /** RelaySession: the client's startup request (set once the session starts its relay). */
  get req(): StartupRequest {
    return this.request!;
  }

  /** RelaySession: the routing options with this session's PGPOOL SET values. */
  options(): CompiledRouting {
    return this.ownRouting;
  }

  /** Whether the session logs at this level (without making its logger). */
  logs(level: 'debug' | 'info'): boolean {
    if (this.childLog) return this.childLog.isLevelEnabled(level);
    const values = this.ctx.log.levels.values;
    return this.ownLevel === null ? this.ctx.log.isLevelEnabled(level) : values[this.ownLevel]! <= values[level]!;
  }

  /** Read through a getter so that checks after an await are not narrowed away. */
  get closed(): boolean {
    return this.state.kind === 'closed';
  }

  get processId(): number {
    return this.processIdValue;
  }

  private forEachBackend(f: (b: BackendConnection) => void): void {
    if (this.relay) for (const l of this.relay.links.values()) if (l.attached) f(l.conn);
  }

  /** Writes the batched client frames; a full server socket pauses the client (write-batch.ts). */
  private flushToServer(): void {
    if (!this.relay) return;
    for (const l of this.relay.links.values()) {
      if (!l.attached || l.flush() || this.waitingForServer || l.conn.isClosed) continue;
      this.waitingForServer = true;
      this.client.pause();
      untilWritable(l.conn.socket, () => {
        this.waitingForServer = false;
        if (!this.closed) this.client.resume();
      });
    }
  }

  private onClientData(chunk: Buffer): void {
    this.idle.touch();
    this.recoveryIdle?.touch();
    try {
      const starting = this.state.kind === 'starting';
      this.framer.push(chunk, this.onClientFrame);
      // Starting, the framer holds what comes: a client that sends ahead is paused until the
      // welcome (paused here, not at every start: a pause and a resume are two system calls).
      // Not for the chunk that started it: a client whose start waits (for a slot, a gate, a
      // new server connection) is still read, so that its leaving is seen.
      if (starting && this.state.kind === 'starting') this.client.pause();
      this.flushToServer();
    } catch (err) {
      if (this.state.kind === 'startup') this.refuseStartup(err);
      else this.fail(toClientError(err, (e) => this.log.error({ err: e }, 'unexpected error handling client data')));
    }
  }

  private readonly onClientFrame: FrameSink = (type, buf, start, end) => {
    const s = this.state;
    switch (s.kind) {
      case 'startup':
        return this.onStartupPacket(buf, start, end);
      case 'auth':
        return this.inbox.push(buf, start, end) ? undefined : false;
      case 'ready':
        return this.onClientMessage(type, buf, start, end) ? undefined : false;
      case 'starting':
      case 'closed':
        // The framer is halted in these states; nothing arrives here.
        return;
      default:
        return assertNever(s);
    }
  };

  /**
   * The first messages, as PostgreSQL 15's ProcessStartupPacket takes them: an SSLRequest and a
   * GSSENCRequest are answered once each (a second is an unsupported protocol version); data
   * sent right behind one, before the answer, is refused; a CancelRequest ends the connection.
   */
  private onStartupPacket(buf: Buffer, start: number, end: number): void {
    const s = this.state as Extract<State, { kind: 'startup' }>;
    const known = knownRequest(buf, start, end);
    if (known) return this.authenticate(known);
    const p = decodeStartupPacket(buf, start, end);
    const trailing = end !== buf.length;
    switch (p.kind) {
      case 'ssl':
        if (s.sslDone) throw unsupportedProtocol(StartupCode.SSLRequest);
        this.client.answerSslRequest(this.ctx.tls, trailing);
        s.sslDone = true;
        s.gssDone ||= this.client.ssl;
        return;
      case 'gssenc':
        if (s.gssDone) throw unsupportedProtocol(StartupCode.GSSENCRequest);
        // No GSSAPI encryption: 'N' tells the client to go on (in TLS or plain text).
        this.client.write(ENCRYPTION_NO);
        if (trailing) throw unencryptedAfter('GSSAPI encryption request');
        s.gssDone = true;
        return;
      case 'cancel':
        this.framer.halted = true;
        this.ctx.registry.cancel(p.processId, p.secretKey);
        this.client.destroySoon();
        // Its authentication_timeout timer goes too: it would hold the session for a minute.
        this.ctx.clock.clearTimeout(this.startupTimer);
        this.state = CLOSED;
        return;
      case 'badCancel':
        throw new StartupDropped('invalid length of startup packet');
      case 'unknown':
        throw unsupportedProtocol(p.code);
      case 'startup': {
        const req = checkStartup(p, (frame) => this.client.write(frame));
        rememberRequest(buf, start, end, p, req);
        return this.authenticate(req);
      }
      default:
        assertNever(p);
    }
  }

  /** A StartupMessage was taken: the client's messages are typed from now on, and wait for the exchange. */
  private authenticate(req: StartupRequest): void {
    this.state = { kind: 'auth', req };
    this.framer.typed = true;
    this.framer.halted = true;
    void this.start(req);
  }

  private async start(req: StartupRequest): Promise<void> {
    try {
      // Most starts wait for nothing: a trusted login, a free slot, open gates and an idle pooled
      // connection to the primary are taken as they are (an await is a turn of the microtask
      // queue each, a few microseconds of a new connection's cost).
      // The client socket is the peer: its address is read only if an hba rule or a log line needs it.
      if (!this.ctx.auth.trusts(req, this.client)) {
        await this.ctx.auth.authenticate(req, this.client, this.client.endPoint(), { send: (b) => this.client.write(b), receive: () => this.inbox.receive() });
        if (this.closed) return;
      }
      // authentication_timeout covers the startup packet and the exchange, as in PostgreSQL.
      this.ctx.clock.clearTimeout(this.startupTimer);
      this.startupTimer = undefined;
      this.state = { kind: 'starting', req };
      this.framer.halted = true;
      if (!this.ctx.registry.takeSlot()) await this.ctx.registry.acquireSlot(this);
      this.hasSlot = true;
      if (this.closed) return this.close('client left while waiting');
      if (this.ctx.gate.closed) await this.ctx.gate.pass();
      if (this.ctx.admission.closed) await this.ctx.admission.pass();
      if (this.closed) return;
      if (this.ctx.lends(req.params)) {
        req = lendingRequest(req);
        this.state = { kind: 'starting', req };
      }
      const now = idleOnPrimary(this.ctx, req);
      const { conn, reused } = now ? { conn: now, reused: true } : await connectPrimary(this.ctx, req.backend);
      const node = conn.node;
      if (this.closed) {
        this.ctx.pool.release(conn, req.database).catch(() => undefined);
        return;
      }
      // Transaction mode: a connection another session changed is reset before its parameters
      // are the client's welcome (the server reports each one it puts back).
      if (conn.carried.foreign) await resetConnection(conn);
      if (this.closed) return void this.ctx.pool.giveBack(conn);
      // Its startup settings too, refused as PostgreSQL refuses them in a startup packet.
      if (!req.carried.empty) {
        await carryStartup(conn, req.carried).catch((err: unknown) => {
          this.ctx.pool.giveBack(conn);
          throw err;
        });
      }
      if (this.closed) return void this.ctx.pool.giveBack(conn);
      if (this.ctx.routing.loadBalance) await this.routing.load(req, conn);
      if (this.closed) return;
      this.request = req;
      this.relay = new Relay(conn, this.ctx, this, this);
      this.processIdValue = conn.processId;
      this.secretKey = this.ctx.registry.newSecret(this);
      this.client.write(encodeWelcome(conn, this.secretKey));
      this.state = { kind: 'ready', req };
      this.relay.started();
      if (this.logs('debug')) this.log.debug({ user: req.user, database: req.database, client: this.client.address, ssl: this.client.ssl, node: node.id, backendPid: conn.processId, reused, lbNode: this.routing.lbNode }, 'session started');
      this.idle.set(this.settings.values.client_idle_limit);
      this.client.resume();
      this.framer.resume(this.onClientFrame);
      this.flushToServer();
    } catch (err) {
      if (this.closed) return;
      // A node's own refusal (unknown database, ...) reaches the client byte for byte.
      if (err instanceof BackendStartupError) this.failWith(err.frame);
      else this.fail(toClientError(err, (e) => this.log.error({ err: e }, 'session start failed')));
    }
  }

  /** The data path, client to server: Terminate ends the session; the rest is routed. */
  private onClientMessage(type: number, buf: Buffer, start: number, end: number): boolean {
    if (type === Frontend.Terminate) {
      this.framer.halted = true;
      this.flushToServer();
      this.close('client terminated');
      return true;
    }
    const v = this.settings.values;
    if (v.log_statement || v.log_client_messages) logClientMessage(this.log, v, type, buf, start, end);
    // Held: the message is the relay's now; the client's next ones wait until it resumes us.
    if (!this.relay!.message(type, buf, start, end)) this.framer.halted = true;
    return true;
  }

  // ---- The relay's port (RelayPort) ---------------------------------------------------------

  toClient(buf: Buffer, start: number, end: number): void {
    this.toClientBatch.add(buf, start, end);
  }

  flushClient(): void {
    this.toClientBatch.flush();
  }

  /** A node's chunk was delivered: its frames go on in one write; a full client socket pauses the node. */
  chunkEnd(conn: BackendConnection): void {
    if (!this.toClientBatch.flush()) conn.pause();
  }

  /** The relay's held message is done: the client's next messages are read. */
  resumeClient(): void {
    if (this.state.kind !== 'ready') return;
    this.framer.resume(this.onClientFrame);
    this.flushToServer();
  }

  /** The relay ends the session: after this frame when there is one. */
  end(frame: Buffer | null, err?: Error): void {
    if (frame) this.failWith(frame);
    else this.close('backend connection lost', err);
  }

  /**
   * A start refused before authentication, as PostgreSQL refuses it: a FATAL when it sends one,
   * else a close without a word (it only logs those). Both are logged here, by what happened.
   */
  private refuseStartup(err: unknown): void {
    if (err instanceof ClientError) {
      this.log.info({ reason: err.message, client: this.client.address }, 'connection refused at startup');
      this.fail(err);
      return;
    }
    // The framer's only error before the StartupMessage: a length word out of PostgreSQL's range.
    const reason = err instanceof StartupDropped ? err.message : err instanceof ProtocolError ? 'invalid length of startup packet' : 'internal error';
    if (reason === 'internal error') this.log.error({ err }, 'unexpected error handling a startup packet');
    this.log.info({ reason, client: this.client.address }, 'connection refused at startup');
    this.close(reason);
  }

  /** The client's transport failed: a refused PROXY header gets a FATAL; anything else closes. */
  private clientError(err: Error): void {
    if (err instanceof ProxyHeaderError) return this.fail(Errors.protocolViolation(err.message));
    if (this.state.kind === 'startup') {
      // PostgreSQL logs these and closes (a TLS handshake that breaks off, a reset).
      const what = this.client.ssl ? 'could not accept SSL connection' : 'could not receive data from client';
      return this.refuseStartup(new StartupDropped(`${what}: ${err.message}`));
    }
    this.close('client socket error', err);
  }

  /** The client went away; one that stopped in the middle of its startup packet is logged as PostgreSQL does. */
  private clientClosed(): void {
    const s = this.state;
    // PostgreSQL does not report a connection closed with no data, nor (after an SSL or GSS
    // answer) one that sent part of a length word: clients that dislike the answer just leave.
    const partial = this.framer.buffered;
    if (s.kind === 'startup' && partial > 0 && (partial >= 4 || (!s.sslDone && !s.gssDone))) {
      this.log.info({ reason: 'incomplete startup packet', client: this.client.address }, 'connection refused at startup');
    }
    this.close('client closed');
  }

  /** A node left service: this session's connection to it goes (and what it owed is answered). */
  nodeDown(id: number): void {
    this.relay?.nodeDown(id);
  }

  /** A PGPOOL SET or RESET changed what this session reads of the config. */
  private settingsChanged(): void {
    const v = this.settings.values;
    this.ownLevel = pinoLevel(v.log_min_messages);
    if (this.childLog) this.childLog.level = this.ownLevel;
    this.ownRouting = sessionRouting(this.ctx.routing, v);
    if (this.state.kind === 'ready') this.idle.set(v.client_idle_limit);
    this.relay?.settingsChanged();
  }

  /** Online recovery's second stage began (or ended): idle sessions leave per client_idle_limit_in_recovery. */
  onlineRecovery(on: boolean): void {
    const limit = on ? this.settings.values.client_idle_limit_in_recovery : 0;
    if (limit === 0 && !this.recoveryIdle) return;
    // Only a session between transactions is idle here: one in a transaction may finish it.
    this.recoveryIdle ??= new IdleLimit(
      { active: () => this.state.kind === 'ready', busy: () => !(this.relay?.atBoundary ?? true), expire: () => this.fail(Errors.onlineRecovery()) },
      this.ctx.clock,
    );
    this.recoveryIdle.set(limit < 0 ? IMMEDIATELY : limit);
  }

  /**
   * What the admin commands show of this session. pgpool lists its child processes; a Sluice
   * session is what a child is to pgpool: one client with a backend connection per node it used.
   */
  info(): SessionInfo {
    const req = 'req' in this.state ? this.state.req : null;
    const r = this.state.kind === 'ready' ? this.relay : null;
    const links = r ? [...r.links.values()].filter((l) => l.attached) : [];
    const held = r?.holding ?? null;
    const busy = held !== null || links.some((l) => l.busy);
    return {
      id: this.id,
      startedAt: new Date(this.startedAt),
      database: req?.database ?? '',
      user: req?.user ?? '',
      clientHost: this.client.address,
      clientPort: this.client.port,
      status: !r ? 'Wait for connection' : busy ? 'Execute command' : r.state.inTransaction ? 'Idle in transaction' : 'Idle',
      idleSeconds: this.idle.idleSeconds,
      loadBalanceNode: this.routing.lbNode,
      backends: links.map((l) => ({ node: l.nodeId, processId: l.conn.processId, connectedAt: new Date(l.conn.createdAt) })),
      atBoundary: !r || r.atBoundary,
      waitingFor: held && describeHold(held.reason),
      pinnedBy: r?.pinnedBy ?? null,
    };
  }

  /**
   * Sluice's periodic look at the session: a client message held too long for a reason of Sluice's
   * own, with no node owing a reply that could end the wait, is logged once; its reason returned.
   */
  reportStuck(now: number): HoldKind | null {
    const r = this.state.kind === 'ready' ? this.relay : null;
    const h = r?.holding;
    if (!r || !h || h.reported || !h.stuck(now, r.nodeOwes)) return null;
    h.reported = true;
    this.log.warn({ waitingFor: describeHold(h.reason), heldMs: now - h.since }, 'client message held too long');
    return h.reason.kind;
  }

  /** Cancels what this session's backend connections are running (a CancelRequest for it). */
  cancel(): void {
    this.relay?.cancel();
  }

  /** Sends the client a FATAL error, then closes. */
  fail(err: ClientError): void {
    this.failWith(err.toFrame());
  }

  private failWith(frame: Buffer): void {
    if (this.state.kind === 'closed') return;
    this.toClientBatch.flush();
    if (this.client.writable) this.client.write(frame);
    this.close('error sent to client');
  }

  /**
   * Ends the session (its backend connections go back to the pool: see releaseBackends).
   */
  close(reason: string, err?: Error): void {
    if (this.state.kind === 'closed') return;
    this.state = CLOSED;
    this.framer.halted = true;
    this.inbox.close();
    this.ctx.clock.clearTimeout(this.startupTimer);
    this.idle.stop();
    this.recoveryIdle?.stop();
    if (this.secretKey !== 0) this.ctx.registry.forgetSecret(this.secretKey);
    this.relay?.close();
    if (this.hasSlot) {
      this.hasSlot = false;
      this.ctx.registry.releaseSlot();
    } else {
      this.ctx.registry.abandonWait(this);
    }
    this.client.destroySoon();
    if (this.logs('debug')) this.log.debug({ reason, err: err?.message }, 'session closed');
  }
}
