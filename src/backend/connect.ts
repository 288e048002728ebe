import { connect as netConnect } from 'node:net';
import { serialize } from 'pg-protocol';
import { md5Response, isMd5Verifier } from '../protocol/auth/md5';
import { scramClient, ScramClient } from '../protocol/auth/scram-client';
import { decodeAuthentication, decodeBackendKeyData, decodeFields } from '../protocol/backend';
import { Backend } from '../protocol/codes';
import { encodeStartupMessage } from '../protocol/frontend';
import { SqlState } from '../protocol/sqlstate';
import { ClientError } from '../protocol/client-error';
import { BackendConnection, NodeAddress } from './connection';

export interface ConnectOptions {
  node: NodeAddress;
  /** Startup parameters sent to the server (user and database included), in order. */
  params: ReadonlyMap<string, string>;
  poolKey: string;
  /** Plain password or md5 verifier for the user, when the config has one. */
  password: string | undefined;
  timeoutMs: number;
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

/** Opens a backend connection: TCP, StartupMessage, authentication, then up to ReadyForQuery. */
export function connectBackend(o: ConnectOptions): Promise<BackendConnection> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: o.node.host, port: o.node.port, noDelay: true });
    let scram: ScramClient | undefined;
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.destroy();
      reject(err);
    };
    const timer = o.timeoutMs > 0 ? setTimeout(() => fail(nodeError(o.node, 'timeout')), o.timeoutMs) : undefined;
    const user = o.params.get('user') ?? '';

    const onAuth = (buf: Buffer, start: number, end: number) => {
      const m = decodeAuthentication(buf, start, end);
      const needPassword = () => {
        if (o.password === undefined) {
          throw new ClientError(
            'FATAL',
            SqlState.InvalidPassword,
            `node ${o.node.id} asks for a password for user "${user}" and Sluice has none`,
            'Add the password to a [[user]] entry in the Sluice config.',
          );
        }
        return o.password;
      };
      switch (m.kind) {
        case 'ok':
          return;
        case 'cleartext':
          conn.write(serialize.password(needPassword()));
          return;
        case 'md5':
          conn.write(serialize.password(md5Response(user, needPassword(), m.salt)));
          return;
        case 'sasl': {
          const pw = needPassword();
          if (!m.mechanisms.includes('SCRAM-SHA-256') || isMd5Verifier(pw)) {
            throw new ClientError('FATAL', SqlState.InvalidAuthorizationSpecification, `node ${o.node.id} asks for SCRAM-SHA-256 and Sluice has no plain password for user "${user}"`);
          }
          scram = scramClient(pw);
          conn.write(serialize.sendSASLInitialResponseMessage('SCRAM-SHA-256', scram.clientFirst));
          return;
        }
        case 'saslContinue':
          if (!scram) throw new ClientError('FATAL', SqlState.ProtocolViolation, 'unexpected SASL continue from node');
          conn.write(serialize.sendSCRAMClientFinalMessage(scram.final(m.data)));
          return;
        case 'saslFinal':
          if (!scram) throw new ClientError('FATAL', SqlState.ProtocolViolation, 'unexpected SASL final from node');
          scram.verify(m.data);
          return;
        case 'other':
          throw new ClientError('FATAL', SqlState.FeatureNotSupported, `node ${o.node.id} asks for authentication method ${m.code}, which Sluice does not support`);
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
          fail(err as Error);
        }
      },
      closed(err) {
        fail(nodeError(o.node, err ? (err as NodeJS.ErrnoException).code ?? err.message : 'closed'));
      },
    });
    socket.once('connect', () => conn.write(encodeStartupMessage(o.params)));
  });
}

function nodeError(node: NodeAddress, why: string): ClientError {
  return new ClientError('FATAL', SqlState.ConnectionFailure, `could not connect to node ${node.id} (${node.host}:${node.port}): ${why}`);
}
