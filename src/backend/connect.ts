import type { Socket } from 'node:net';
import { serialize } from 'pg-protocol';
import { md5Response } from '../protocol/auth/md5';
import type { Secret } from '../protocol/auth/secret';
import { scramClient, ScramClient } from '../protocol/auth/scram-client';
import { decodeAuthentication, decodeBackendKeyData, decodeFields } from '../protocol/backend';
import { Backend } from '../protocol/codes';
import { encodeStartupMessage } from '../protocol/frontend';
import { ProtocolError } from '../protocol/reader';
import { SqlState } from '../protocol/sqlstate';
import { ClientError } from '../protocol/client-error';
import { Errors } from '../protocol/errors';
import { BackendConnection, NodeAddress } from './connection';
import { endpointName } from './endpoint';
import { BackendTlsSettings, openTransport } from './tls';

export interface ConnectOptions {
  node: NodeAddress;
  /** Startup parameters sent to the server (user and database included), in order. */
  params: ReadonlyMap<string, string>;
  poolKey: string;
  /** What Sluice can log in as the user with: a password, an md5 hash, or SCRAM keys a client proved. */
  secret: Secret | undefined;
  timeoutMs: number;
  /** backend_sslmode and its files; none: plain TCP. */
  tls?: BackendTlsSettings;
}

/**
 * The server refused the startup: `frame` is its ErrorResponse, byte for byte, which the session
 * passes to the client (a wrong password or an unknown database reads exactly as it would direct).
 */
export class BackendStartupError extends Error {
  override name = 'BackendStartupError';
  constructor(
    readonly frame: Buffer,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const NO_TLS: BackendTlsSettings = { mode: 'disable' };

/** Opens a backend connection: TCP (and TLS), StartupMessage, authentication, then up to ReadyForQuery. */
export async function connectBackend(o: ConnectOptions): Promise<BackendConnection> {
  const started = Date.now();
  const signal = o.timeoutMs > 0 ? AbortSignal.timeout(o.timeoutMs) : undefined;
  let socket: Socket;
  try {
    socket = await openTransport(o.node.host, o.node.port, o.tls ?? NO_TLS, signal);
  } catch (err) {
    throw nodeError(o.node, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
  }
  return startup(socket, o, o.timeoutMs > 0 ? Math.max(1, o.timeoutMs - (Date.now() - started)) : 0);
}

/** StartupMessage and authentication on a connected socket, up to ReadyForQuery. */
function startup(socket: Socket, o: ConnectOptions, timeoutMs: number): Promise<BackendConnection> {
  return new Promise((resolve, reject) => {
    let scram: ScramClient | undefined;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      reject(err);
    };
    const timer = timeoutMs > 0 ? setTimeout(() => fail(nodeError(o.node, 'timeout')), timeoutMs) : undefined;
    const user = o.params.get('user') ?? '';

    const onAuth = (buf: Buffer, start: number, end: number) => {
      const m = decodeAuthentication(buf, start, end);
      const refuse = (what: string) => Errors.nodeNeedsSecret(o.node.id, what, user);
      const s = o.secret;
      switch (m.kind) {
        case 'ok':
          return;
        case 'cleartext':
          if (s?.kind !== 'plain') throw refuse('a password');
          conn.write(serialize.password(s.password));
          return;
        case 'md5':
          if (s?.kind !== 'plain' && s?.kind !== 'md5') throw refuse('an md5 password');
          conn.write(serialize.password(md5Response(user, s.kind === 'plain' ? s.password : s.hash, m.salt)));
          return;
        case 'sasl': {
          if (!m.mechanisms.includes('SCRAM-SHA-256') || !(s?.kind === 'plain' || (s?.kind === 'scram' && s.clientKey))) throw refuse('SCRAM-SHA-256');
          scram = scramClient(s);
          conn.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.clientFirst));
          return;
        }
        case 'saslContinue':
          if (!scram) throw Errors.protocolViolation('unexpected SASL continue from node');
          conn.write(serialize.sendSCRAMClientFinalMessage(scram.final(m.data)));
          return;
        case 'saslFinal':
          if (!scram) throw Errors.protocolViolation('unexpected SASL final from node');
          scram.verify(m.data);
          return;
        case 'other':
          throw Errors.nodeAuthMethod(o.node.id, m.code);
      }
    };

    const conn = new BackendConnection(socket, o.node, o.poolKey, {
      frame(type, buf, start, end) {
        if (settled) return;
        try {
          if (type === Backend.Authentication) onAuth(buf, start, end);
          else if (type === Backend.BackendKeyData) Object.assign(conn, decodeBackendKeyData(buf, start, end));
          else if (type === Backend.ErrorResponse) {
            const f = decodeFields(buf, start, end);
            fail(new BackendStartupError(Buffer.from(buf.subarray(start, end)), f.get('C') ?? SqlState.ConnectionFailure, f.get('M') ?? 'error'));
          } else if (type === Backend.ReadyForQuery) {
            settled = true;
            clearTimeout(timer);
            resolve(conn);
          }
        } catch (err) {
          fail(err instanceof ProtocolError ? Errors.protocolViolation(`node ${o.node.id}: ${err.message}`) : (err as Error));
        }
      },
      closed(err) {
        fail(nodeError(o.node, err ? (err as NodeJS.ErrnoException).code ?? err.message : 'closed'));
      },
    });
    conn.write(encodeStartupMessage(o.params));
  });
}

function nodeError(node: NodeAddress, why: string): ClientError {
  return Errors.nodeUnreachable(node.id, endpointName(node.host, node.port), why);
}
