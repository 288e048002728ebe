import { randomBytes, timingSafeEqual } from 'node:crypto';
import { authFailed } from '../protocol/auth/failures';
import { md5Response } from '../protocol/auth/md5';
import { SCRAM_SHA_256, SCRAM_SHA_256_PLUS, ScramServer } from '../protocol/auth/scram-server';
import { passwordMatches, ScramSecret, Secret } from '../protocol/auth/secret';
import { encodeAuthRequest, encodeAuthSasl } from '../protocol/backend';
import { Errors } from '../protocol/errors';
import { AuthRequest, Frontend } from '../protocol/codes';
import { decodePassword, decodeSaslInitial } from '../protocol/frontend';

// The three password exchanges Sluice runs with a client (PostgreSQL docs, "Authentication
// Methods" and "SASL Authentication"), each ending in success or the same 28P01.

/** The client side of the conversation, as the session provides it. */
export interface AuthIo {
  send(buf: Buffer): void;
  /** The client's next message, whole (type byte, length, body). */
  receive(): Promise<Buffer>;
}

async function passwordPacket(io: AuthIo): Promise<Buffer> {
  const m = await io.receive();
  if (m[0] !== Frontend.PasswordMessage) {
    throw Errors.protocolViolation(`expected password response, got message type ${m[0]}`);
  }
  return m;
}

/** Method "password": the client sends it in clear (over TLS); returns it, proven. */
export async function cleartextExchange(io: AuthIo, user: string, secret: Secret | null): Promise<string> {
  io.send(encodeAuthRequest(AuthRequest.CleartextPassword));
  const m = await passwordPacket(io);
  const password = decodePassword(m, 0, m.length);
  if (!secret || password === '' || !passwordMatches(user, password, secret)) throw authFailed(user);
  return password;
}

/** Method "md5" with a password or md5 hash on file (a SCRAM verifier takes the SCRAM exchange). */
export async function md5Exchange(io: AuthIo, user: string, secret: Extract<Secret, { kind: 'plain' | 'md5' }> | null): Promise<void> {
  const salt = randomBytes(4);
  io.send(encodeAuthRequest(AuthRequest.MD5Password, salt));
  const m = await passwordPacket(io);
  const got = Buffer.from(decodePassword(m, 0, m.length));
  if (!secret) throw authFailed(user);
  const want = Buffer.from(md5Response(user, secret.kind === 'plain' ? secret.password : secret.hash, salt));
  if (got.length !== want.length || !timingSafeEqual(got, want)) throw authFailed(user);
}

/**
 * SCRAM-SHA-256 (and -PLUS when `cbData`, the TLS certificate hash, is given). Returns the
 * ClientKey the client proved, for SCRAM pass-through to the nodes.
 */
export async function scramExchange(io: AuthIo, user: string, secret: ScramSecret | null, mockKey: Buffer, cbData: Buffer | null): Promise<Buffer> {
  io.send(encodeAuthSasl(cbData ? [SCRAM_SHA_256_PLUS, SCRAM_SHA_256] : [SCRAM_SHA_256]));
  const server = new ScramServer(user, secret, mockKey, cbData);
  const first = await passwordPacket(io);
  const { mechanism, data } = decodeSaslInitial(first, 0, first.length);
  io.send(encodeAuthRequest(AuthRequest.SASLContinue, server.first(mechanism, data)));
  const final = await passwordPacket(io);
  const outcome = server.final(final.toString('utf8', 5));
  io.send(encodeAuthRequest(AuthRequest.SASLFinal, outcome.serverFinal));
  return outcome.clientKey;
}
