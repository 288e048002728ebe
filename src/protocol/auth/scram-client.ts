import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ProtocolError } from '../reader';

// Client side of SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL uses it (PostgreSQL docs,
// "SCRAM-SHA-256 Authentication"): no channel binding, the user name in the message is ignored.

const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

/** Bounds on what a server may send us: a hostile node must not make us spin or allocate. */
const MAX_ITERATIONS = 10_000_000;
const MAX_FIELD = 1024;

export interface ScramClient {
  readonly clientFirst: string;
  /** Consumes server-first-message, returns client-final-message. */
  final(serverFirst: string): string;
  /** Checks server-final-message; throws unless the server proved it knows the password. */
  verify(serverFinal: string): void;
}

function attributes(msg: string): Map<string, string> {
  if (msg.length > 4 * MAX_FIELD) throw new ProtocolError('SCRAM message too long');
  const out = new Map<string, string>();
  for (const part of msg.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new ProtocolError('malformed SCRAM attribute');
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

export function scramClient(password: string, nonce = randomBytes(18).toString('base64'), user = ''): ScramClient {
  const clientFirstBare = `n=${user},r=${nonce}`;
  let authMessage = '';
  let saltedPassword: Buffer | undefined;
  return {
    clientFirst: `n,,${clientFirstBare}`,
    final(serverFirst: string): string {
      const a = attributes(serverFirst);
      const r = a.get('r');
      const s = a.get('s');
      const i = Number(a.get('i'));
      if (!r || !s || !r.startsWith(nonce) || r.length > MAX_FIELD) throw new ProtocolError('invalid SCRAM server nonce');
      if (!Number.isInteger(i) || i < 1 || i > MAX_ITERATIONS) throw new ProtocolError('invalid SCRAM iteration count');
      const salt = Buffer.from(s, 'base64');
      saltedPassword = pbkdf2Sync(password.normalize('NFKC'), salt, i, 32, 'sha256');
      const clientKey = hmac(saltedPassword, 'Client Key');
      const withoutProof = `c=biws,r=${r}`;
      authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
      const signature = hmac(sha256(clientKey), authMessage);
      const proof = Buffer.alloc(clientKey.length);
      for (let k = 0; k < proof.length; k++) proof[k] = clientKey[k]! ^ signature[k]!;
      return `${withoutProof},p=${proof.toString('base64')}`;
    },
    verify(serverFinal: string): void {
      if (!saltedPassword) throw new ProtocolError('SCRAM server-final before server-first');
      const a = attributes(serverFinal);
      const e = a.get('e');
      if (e !== undefined) throw new ProtocolError(`SCRAM error from server: ${e}`);
      const expected = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
      const got = Buffer.from(a.get('v') ?? '', 'base64');
      if (got.length !== expected.length || !timingSafeEqual(got, expected)) {
        throw new ProtocolError('SCRAM server signature does not match');
      }
    },
  };
}
