import { randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../reader';
import { hmac, MAX_ITERATIONS, scramAttributes, ScramKeys, sha256, validNonce, xor } from './scram';
import { parseSecret, scramKeysFor, Secret } from './secret';

// Client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it (PostgreSQL docs,
// "SCRAM-SHA-256 Authentication"): no channel binding, the user name in the message is ignored.

export interface ScramClient {
  readonly clientFirst: string;
  /** Consumes server-first-message, returns client-final-message. */
  final(serverFirst: string): string;
  /** Checks server-final-message; throws unless the server proved it knows the password. */
  verify(serverFinal: string): void;
}

/**
 * `secret` is a password, or a SCRAM verifier with the ClientKey a client proved (pass-through);
 * the latter only works when the node's salt and iteration count are the verifier's.
 */
export function scramClient(secret: Secret | string, nonce = randomBytes(18).toString('base64'), user = ''): ScramClient {
  const s = typeof secret === 'string' ? parseSecret(secret) : secret;
  const clientFirstBare = `n=${user},r=${nonce}`;
  let authMessage = '';
  let keys: ScramKeys | null = null;
  return {
    clientFirst: `n,,${clientFirstBare}`,
    final(serverFirst: string): string {
      const a = new Map(scramAttributes(serverFirst));
      const r = a.get('r');
      const salt = a.get('s');
      const i = Number(a.get('i'));
      if (!r || !salt || !r.startsWith(nonce) || !validNonce(r)) throw new ProtocolError('invalid SCRAM server nonce');
      if (!Number.isInteger(i) || i < 1 || i > MAX_ITERATIONS) throw new ProtocolError('invalid SCRAM iteration count');
      keys = scramKeysFor(s, Buffer.from(salt, 'base64'), i);
      if (!keys) throw new ProtocolError('the node holds a different SCRAM verifier than the one the client authenticated with');
      const withoutProof = `c=biws,r=${r}`;
      authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const proof = xor(keys.clientKey, hmac(sha256(keys.clientKey), authMessage));
      return `${withoutProof},p=${proof.toString('base64')}`;
    },
    verify(serverFinal: string): void {
      if (!keys) throw new ProtocolError('SCRAM server-final before server-first');
      const a = new Map(scramAttributes(serverFinal));
      const e = a.get('e');
      if (e !== undefined) throw new ProtocolError(`SCRAM error from server: ${e}`);
      const expected = hmac(keys.serverKey, authMessage);
      const got = Buffer.from(a.get('v') ?? '', 'base64');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        throw new ProtocolError('SCRAM server signature does not match');
      }
    },
  };
}
