// The startup packet and authentication, checked and answered as PostgreSQL does.
import { encodeAuthenticationOk, encodeBackendKeyData, encodeNegotiateProtocolVersion, encodeReadyForQuery } from '../protocol/backend';
import { ClientError } from '../protocol/client-error';
import { Errors } from '../protocol/errors';
import { StartupPacket } from '../protocol/frontend';
import { SqlState } from '../protocol/sqlstate';
import { StartupCode } from '../protocol/codes';
import { Writer } from '../protocol/writer';
import type { BackendConnection } from '../backend/connection';
import { poolKey, splitStartup } from '../pool/pool-key';
import { CarriedStartup, NOTHING_CARRIED } from './carried-startup';
import { parseBool } from '../util/parse-bool';

/** What a client asked for in its StartupMessage, checked. */
export interface StartupRequest {
  /** The client's parameters: user and database first, then the rest as sent. */
  readonly params: ReadonlyMap<string, string>;
  readonly user: string;
  readonly database: string;
  /** Parameters to start backend connections with (the pool key's): all of them in session mode. */
  readonly backend: ReadonlyMap<string, string>;
  /** Transaction mode: the settings given to each connection the session borrows. */
  readonly carried: CarriedStartup;
  /** This request in transaction mode, made once (requests are shared: knownRequest). */
  lending?: StartupRequest;
  /** Pool keys of its connections by node, made once each (poolKeyOf). */
  poolKeys?: string[];
}

/** The pool key of a request's connections to a node: made once per request, which clients of the same startup packet share. */
export function poolKeyOf(req: StartupRequest, node: number): string {
  const keys = (req.poolKeys ??= []);
  return (keys[node] ??= poolKey(node, req.backend));
}

/** A request in transaction mode: its connections start with the pool key's parameters; the rest is carried. */
export function lendingRequest(req: StartupRequest): StartupRequest {
  if (req.lending === undefined) {
    const { backend, carried } = splitStartup(req.params);
    // Its own pool keys: its connections start with fewer parameters.
    req.lending = { ...req, backend, carried: new CarriedStartup(carried), poolKeys: undefined };
  }
  return req.lending;
}

/** The longest user or database name PostgreSQL keeps (NAMEDATALEN - 1 bytes); it cuts longer ones. */
const NAME_BYTES = 63;

export function truncateName(name: string): string {
  if (Buffer.byteLength(name) <= NAME_BYTES) return name;
  let out = '';
  for (const ch of name) {
    if (Buffer.byteLength(out + ch) > NAME_BYTES) break;
    out += ch;
  }
  return out;
}

/**
 * Checks a StartupMessage in the order of PostgreSQL 15's ProcessStartupPacket, with its errors:
 * an invalid `replication` value, then the packet's layout, then NegotiateProtocolVersion (sent
 * at once through `send`, before any refusal that follows, as the server does) for `_pq_.` options
 * and minor versions above 0, then the user name (required; the database defaults to it; both
 * cut to 63 bytes). Sluice's own difference: a replication connection is refused (0A000).
 */
export function checkStartup(p: Extract<StartupPacket, { kind: 'startup' }>, send: (frame: Buffer) => void): StartupRequest {
  const replication = p.params.get('replication');
  if (replication !== undefined) {
    const on = replication === 'database' || parseBool(replication);
    if (on === null) {
      throw Errors.invalidParameterValue('replication', replication, 'Valid values are: "false", 0, "true", 1, "database".');
    }
    if (on) throw Errors.unsupportedFeature('replication connections are not supported through Sluice');
  }
  if (!p.terminated) throw Errors.protocolViolation('invalid startup packet layout: expected terminator as last byte');
  const unsupported = [...p.params.keys()].filter((k) => k.startsWith('_pq_.'));
  if (p.minor > 0 || unsupported.length > 0) send(encodeNegotiateProtocolVersion(new Writer(64), unsupported).finish());
  const user = truncateName(p.params.get('user') ?? '');
  if (!user) {
    throw Errors.noUserName();
  }
  const database = truncateName(p.params.get('database') || user);
  const params = new Map<string, string>([
    ['user', user],
    ['database', database],
  ]);
  for (const [k, v] of p.params) {
    if (k === 'user' || k === 'database' || k === 'replication' || k.startsWith('_pq_.')) continue;
    params.set(k, v);
  }
  return { params, user, database, backend: params, carried: NOTHING_CARRIED };
}

/**
 * Checked requests by their StartupMessage's bytes. An application's connections send the same
 * packet again and again (a pool that reconnects, `pgbench -C`), and decoding and checking it is
 * a function of those bytes alone; a StartupRequest is read-only, so sessions share one. Only a
 * request checked without a word to the client (protocol 3.0, no `_pq_.` option) is kept; the
 * table is emptied when full (a client sending ever new packets gets no further than that). Like
 * the classifier's memo (router/classify.ts) it is module-level state on purpose: it memoizes a
 * pure function, and no caller can tell it is there but by the time it saves.
 */
const knownRequests = new Map<string, StartupRequest>();
const KNOWN_REQUESTS = 256;

/** The packet's parameters as a key (null: not a protocol 3.0 StartupMessage; a later minor version negotiates). */
function requestKey(buf: Buffer, start: number, end: number): string | null {
  return end - start > 8 && buf.readUInt32BE(start + 4) === StartupCode.Protocol3 ? buf.toString('latin1', start + 8, end) : null;
}

/** The request this StartupMessage made before, if it is kept. */
export function knownRequest(buf: Buffer, start: number, end: number): StartupRequest | undefined {
  const key = requestKey(buf, start, end);
  return key === null ? undefined : knownRequests.get(key);
}

/** Keeps a request checkStartup made from this packet, when nothing else came of it. */
export function rememberRequest(buf: Buffer, start: number, end: number, p: Extract<StartupPacket, { kind: 'startup' }>, req: StartupRequest): void {
  const key = requestKey(buf, start, end);
  if (key === null || [...p.params.keys()].some((k) => k.startsWith('_pq_.'))) return;
  if (knownRequests.size >= KNOWN_REQUESTS) knownRequests.clear();
  knownRequests.set(key, req);
}

/**
 * The FATAL for a protocol version PostgreSQL does not speak. To a client that asked for 1.x or
 * 2.x it is sent as those versions framed errors (a type byte and a line of text), as PostgreSQL
 * still does "as a courtesy" (pq_putmessage_v2); otherwise as an ErrorResponse.
 */
export function unsupportedProtocol(code: number): ClientError {
  const major = code >>> 16;
  const message = `unsupported frontend protocol ${major}.${code & 0xffff}: server supports 3.0 to 3.0`;
  return major < 3 && code !== 0 ? new OldProtocolError(message) : Errors.unsupportedFeature(message);
}

class OldProtocolError extends ClientError {
  constructor(message: string) {
    super('FATAL', SqlState.FeatureNotSupported, message);
  }

  override toFrame(): Buffer {
    return Buffer.from(`E${this.severity}:  ${this.message}\n\0`);
  }
}

/** Bytes that came with an SSLRequest or GSSENCRequest, before its answer: not to be trusted. */
export function unencryptedAfter(request: 'SSL request' | 'GSSAPI encryption request'): ClientError {
  return Errors.protocolViolation(
    `received unencrypted data after ${request}`,
    'This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.',
  );
}

/**
 * A start that PostgreSQL ends without a word to the client, logging only (its COMMERROR
 * reports): a length word out of range, a CancelRequest of the wrong size, a packet cut short.
 */
export class StartupDropped extends Error {
  override name = 'StartupDropped';
}

/**
 * The client's view of a successful start: AuthenticationOk, the server's ParameterStatus set as
 * the backend connection last reported it, BackendKeyData with the primary backend's process id
 * (so pg_backend_pid() and NOTIFY's pid agree with it) and Sluice's own secret, ReadyForQuery.
 */
export function encodeWelcome(conn: BackendConnection, secretKey: number): Buffer {
  const params = conn.parameterMessages();
  // AuthenticationOk (9 bytes), BackendKeyData (13) and ReadyForQuery (6) around them.
  const w = new Writer(params.length + 28);
  encodeAuthenticationOk(w);
  w.bytes(params);
  encodeBackendKeyData(w, conn.processId, secretKey);
  encodeReadyForQuery(w, conn.txStatus);
  return w.finish();
}

/**
 * Hands the client's messages to the authentication exchange one at a time. A message is taken
 * from the framer only when the exchange waits for one; anything else stays in the framer
 * (halted), so a client that sends ahead loses nothing and cannot make us buffer.
 */
export class AuthInbox {
  private waiter: { resolve: (m: Buffer) => void; reject: (e: Error) => void } | null = null;
  private closed = false;

  constructor(private readonly resumeFramer: () => void) {}

  /** A frame from the client; false: nobody waits, so the framer keeps it. */
  push(buf: Buffer, start: number, end: number): boolean {
    const w = this.waiter;
    if (!w) return false;
    this.waiter = null;
    w.resolve(Buffer.from(buf.subarray(start, end)));
    return true;
  }

  receive(): Promise<Buffer> {
    if (this.closed) return Promise.reject(sessionClosed());
    const p = new Promise<Buffer>((resolve, reject) => (this.waiter = { resolve, reject }));
    try {
      // Delivers a held frame at once, or throws on a malformed one (the exchange's error then).
      this.resumeFramer();
    } catch (err) {
      this.waiter = null;
      p.catch(() => undefined);
      return Promise.reject(err as Error);
    }
    return p;
  }

  /**
   * The session ended: a pending receive() fails. Every session closes its inbox, so the Error
   * (whose stack capture is not cheap) is made only when someone is there to get it.
   */
  close(): void {
    this.closed = true;
    this.waiter?.reject(sessionClosed());
    this.waiter = null;
  }
}

const sessionClosed = () => new Error('session closed');
