// The client's socket: plain or TLS (after SSLRequest, or TLS at once), an optional PROXY header
// in front, and the reads and writes the shell (session.ts) asks of it.
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { ServerTls } from '../backend/tls';
import { Cidr, cidrContains } from '../util/cidr';
import type { Peer } from '../config/hba';
import { unencryptedAfter } from './startup';
import { ClientTransport, SocketTransport, TransportEvents } from '../net/client-transport';
import { looksLikeProxyHeader, parseProxyHeader, ProxyHeaderError } from '../protocol/proxy-header';

export interface ClientSocketEvents {
  data(chunk: Buffer): void;
  /** The connection failed (a socket error, a TLS failure, a refused PROXY header). */
  error(err: Error): void;
  close(): void;
  drain(): void;
}

export interface ClientSocketOptions {
  /** Where a PROXY header is believed from (proxy_protocol_trusted_addresses). */
  trustedProxies: readonly Cidr[];
  /** The client-facing TLS context when ssl is on (direct TLS needs it at the first byte). */
  tls: ServerTls | null;
}

/** The answers to SSLRequest and GSSENCRequest: go on in plain text, or start TLS. */
export const ENCRYPTION_NO = Buffer.from('N');
const SSL_YES = Buffer.from('S');

const NOTHING = Buffer.alloc(0);

/** TLS handshake record: a client starting TLS at once (PostgreSQL 17's sslnegotiation=direct). */
const TLS_HANDSHAKE = 0x16;

/**
 * The client's transport: the TCP connection, then TLS once negotiated (SSLRequest, or direct TLS
 * with ALPN "postgresql"), with a PROXY v1/v2 header read first when the peer is a trusted
 * balancer. The session sees one stream of protocol bytes and the client's real address.
 */
export class ClientSocket implements Peer {
  /** A TCP connection (hba's `host` rules): Sluice takes no client on a Unix-domain socket. */
  readonly local = false;
  /** The transport the protocol's bytes go through: the TCP one, or TLS over it. */
  private socket: ClientTransport;
  /** TLS: SSLRequest answered 'S' (even before the hand-over), or TLS from the first byte. */
  private encrypted = false;
  /** The client's address from a trusted PROXY header (else the TCP peer's). */
  private proxied: { address: string; port: number } | null = null;
  /** The bytes so far, until we know whether a PROXY header or a TLS handshake comes first. */
  private head: Buffer | null = NOTHING;
  private proxyDone = false;
  private readonly onData = (chunk: Buffer) => (this.head ? this.preamble(chunk) : this.ev.data(chunk));
  private readonly onError = (err: Error) => this.ev.error(err);
  private readonly onClose = () => this.ev.close();
  private readonly onDrain = () => this.ev.drain();
  /** Where the TCP connection's events go: the protocol, or the TLS handshake of a direct TLS. */
  private rawSink = this.onData;
  private rawDrain = this.onDrain;
  private rawEnd: () => void = () => undefined;

  constructor(
    private readonly raw: ClientTransport,
    private readonly opts: ClientSocketOptions,
    private readonly ev: ClientSocketEvents,
  ) {
    this.socket = raw;
    raw.bind({
      data: (chunk) => this.rawSink(chunk),
      end: () => this.rawEnd(),
      error: this.onError,
      close: this.onClose,
      drain: () => this.rawDrain(),
    });
  }

  /**
   * The client's IP address: asked of the socket only when read (a getpeername system call that
   * most sessions never need: hba rules without addresses, no logging of the client).
   */
  get address(): string {
    return this.proxied?.address ?? this.raw.remoteAddress;
  }

  get port(): number {
    return this.proxied?.port ?? this.raw.remotePort;
  }

  get ssl(): boolean {
    return this.encrypted;
  }

  get writable(): boolean {
    return this.socket.writable;
  }

  private get trusted(): boolean {
    return this.opts.trustedProxies.some((c) => cidrContains(c, this.raw.remoteAddress));
  }

  /** The first bytes: a PROXY header (trusted peers only), direct TLS, or the protocol itself. */
  private preamble(chunk: Buffer): void {
    let b = this.head!.length > 0 ? Buffer.concat([this.head!, chunk]) : chunk;
    if (!this.proxyDone && looksLikeProxyHeader(b)) {
      if (!this.trusted) return this.ev.error(new ProxyHeaderError(`PROXY protocol header from ${this.raw.remoteAddress}, which is not in proxy_protocol_trusted_addresses`));
      let h;
      try {
        h = parseProxyHeader(b);
      } catch (err) {
        return this.ev.error(err as Error);
      }
      if (!h) {
        this.head = b;
        return;
      }
      if (h.kind === 'proxied') {
        this.proxied = { address: h.address, port: h.port };
      }
      this.proxyDone = true;
      b = b.subarray(h.length);
      if (b.length === 0) {
        // What follows the header may still be a TLS handshake: keep looking at the first byte.
        this.head = NOTHING;
        return;
      }
    }
    this.head = null;
    if (b[0] === TLS_HANDSHAKE && this.opts.tls) return this.directTls(this.opts.tls, b);
    this.ev.data(b);
  }

  /**
   * SSLRequest: 'N' without ssl, else 'S' and the handshake. `trailing`: bytes came after the
   * request, before the handshake; they were not encrypted, so they are refused (CVE-2021-23214)
   * rather than treated as if they had come over TLS.
   */
  answerSslRequest(tls: ServerTls | null, trailing: boolean): void {
    if (!tls) {
      // As PostgreSQL: 'N', then what came with the request is refused all the same.
      this.write(ENCRYPTION_NO);
      if (trailing) throw unencryptedAfter('SSL request');
      return;
    }
    if (trailing) throw unencryptedAfter('SSL request');
    this.write(SSL_YES);
    this.startTls(tls);
  }

  /**
   * After SSLRequest the TLS layer reads the TCP connection itself, through a net.Socket on it,
   * once the 'S' has left (the client sends nothing before it has the 'S').
   */
  private startTls(tls: ServerTls): void {
    this.encrypted = true;
    this.rawSink = () => undefined;
    this.rawDrain = () => undefined;
    this.raw.afterWrites(() => {
      if (!this.raw.writable) return;
      const tcp = this.raw.toSocket();
      tcp.on('error', () => undefined); // the TLS socket reports what fails; this covers the gap
      tcp.on('close', this.onClose);
      this.secure(new TLSSocket(tcp, { isServer: true, secureContext: tls.context, requestCert: tls.requestCert, rejectUnauthorized: false }), false);
    });
  }

  /** TLS from the first byte: the bytes already read are replayed into the handshake. */
  private directTls(tls: ServerTls, first: Buffer): void {
    const raw = this.raw;
    let drained: (() => void) | null = null;
    const replay = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        if (!raw.writable) cb(new Error('the client connection is closing'));
        else if (raw.write(chunk)) cb();
        else drained = cb;
      },
      final(cb) {
        raw.destroySoon();
        cb();
      },
      // Closed without an error (the TLS socket's end): what libuv still holds goes out first.
      destroy(err, cb) {
        if (err) raw.destroy();
        else raw.destroySoon();
        cb(err);
      },
    });
    replay.push(first);
    this.rawSink = (d) => replay.push(d);
    this.rawEnd = () => replay.push(null);
    this.rawDrain = () => {
      const cb = drained;
      drained = null;
      cb?.();
    };
    const s = new TLSSocket(replay, { isServer: true, secureContext: tls.context, requestCert: tls.requestCert, rejectUnauthorized: false, ALPNProtocols: ['postgresql'] });
    this.secure(s, true);
  }

  private secure(s: TLSSocket, direct: boolean): void {
    this.encrypted = true;
    this.socket = new SocketTransport(s, true);
    const ev: TransportEvents = { data: this.onData, end: () => undefined, error: this.onError, close: this.onClose, drain: this.onDrain };
    this.socket.bind(ev);
    s.once('secure', () => {
      if (direct && s.alpnProtocol !== 'postgresql') return this.ev.error(new Error('direct TLS without ALPN "postgresql"'));
      // A certificate the client chose to present must verify against ssl_ca_cert.
      const cert = s.getPeerCertificate();
      if (cert && Object.keys(cert).length > 0 && !s.authorized) this.ev.error(new Error(`client certificate rejected: ${String(s.authorizationError)}`));
    });
  }

  /** tls-server-end-point data for SCRAM-SHA-256-PLUS, when the connection is TLS. */
  endPoint(): Buffer | null {
    return this.ssl ? (this.opts.tls?.endPoint ?? null) : null;
  }

  write(b: Buffer): boolean {
    return this.socket.write(b);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  /** Closes once what was written has gone. */
  destroySoon(): void {
    this.socket.destroySoon();
  }
}
