import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { ProtocolError } from '../reader';

// SCRAM-SHA-256 building blocks (RFC 5802, RFC 7677) shared by the server side (clients
// authenticating to Sluice) and the client side (Sluice authenticating to a node).

export const hmac = (key: Buffer, data: string): Buffer => createHmac('sha256', key).update(data).digest();
export const sha256 = (data: Buffer): Buffer => createHash('sha256').update(data).digest();

export function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let k = 0; k < a.length; k++) out[k] = a[k]! ^ b[k]!;
  return out;
}

/** Iteration counts we accept in a verifier or from a node: a hostile one must not make us spin. */
export const MAX_ITERATIONS = 10_000_000;
/** No SCRAM message field of a well-behaved peer comes near this (nonces are ~24-64 characters). */
export const MAX_SCRAM_MESSAGE = 1024;
/** SaltedPassword as PostgreSQL computes it (the password NFKC-normalised, close to SASLprep). */
export function saltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
}

export interface ScramKeys {
  readonly clientKey: Buffer;
  readonly serverKey: Buffer;
}

export function keysFromPassword(password: string, salt: Buffer, iterations: number): ScramKeys {
  const salted = saltedPassword(password, salt, iterations);
  return { clientKey: hmac(salted, 'Client Key'), serverKey: hmac(salted, 'Server Key') };
}

/** A SCRAM message's attributes, in order: `a=value` pairs separated by commas. */
export function scramAttributes(msg: string): [string, string][] {
  if (msg.length > MAX_SCRAM_MESSAGE) throw new ProtocolError('SCRAM message too long');
  return msg.split(',').map((part) => {
    if (part.length < 2 || part[1] !== '=' || !/^[a-zA-Z]$/.test(part[0]!)) throw new ProtocolError('malformed SCRAM message');
    return [part[0]!, part.slice(2)];
  });
}

/** A nonce is printable ASCII without a comma (RFC 5802 §7). */
export const validNonce = (s: string): boolean => s.length > 0 && s.length <= 512 && /^[\x21-\x2b\x2d-\x7e]+$/.test(s);
