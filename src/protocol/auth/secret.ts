import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isMd5Verifier, md5Verifier } from './md5';
import { keysFromPassword, MAX_ITERATIONS, ScramKeys, sha256 } from './scram';

/**
 * A user's credential as Sluice holds it: a [[user]] entry's password, what auth_query returned
 * (pg_authid.rolpassword), or what a client's authentication revealed. SCRAM may carry the
 * ClientKey a client proved it knows: with it Sluice logs in to the nodes as that user without
 * ever holding the password (SCRAM pass-through).
 */
export type Secret =
  | { readonly kind: 'plain'; readonly password: string }
  | { readonly kind: 'md5'; readonly hash: string }
  | {
      readonly kind: 'scram';
      readonly iterations: number;
      readonly salt: Buffer;
      readonly storedKey: Buffer;
      readonly serverKey: Buffer;
      readonly clientKey?: Buffer;
    };

export type ScramSecret = Extract<Secret, { kind: 'scram' }>;

const SCRAM = /^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$/;

/**
 * Reads a stored secret as PostgreSQL does: "md5" and 32 hex digits is an md5 hash,
 * "SCRAM-SHA-256$iter:salt$StoredKey:ServerKey" a SCRAM verifier, anything else a password.
 * A string that starts like a verifier but is malformed is an error, not a password.
 */
export function parseSecret(text: string): Secret {
  if (isMd5Verifier(text)) return { kind: 'md5', hash: text };
  if (!text.startsWith('SCRAM-SHA-256$')) return { kind: 'plain', password: text };
  const m = SCRAM.exec(text);
  if (!m) throw new Error('malformed SCRAM-SHA-256 verifier');
  const iterations = Number(m[1]);
  const salt = Buffer.from(m[2]!, 'base64');
  const storedKey = Buffer.from(m[3]!, 'base64');
  const serverKey = Buffer.from(m[4]!, 'base64');
  if (iterations < 1 || iterations > MAX_ITERATIONS || salt.length === 0 || storedKey.length !== 32 || serverKey.length !== 32) {
    throw new Error('malformed SCRAM-SHA-256 verifier');
  }
  return { kind: 'scram', iterations, salt, storedKey, serverKey };
}

/** The verifier PostgreSQL would store for this password (salt random unless given). */
export function scramSecret(password: string, iterations = 4096, salt: Buffer = randomBytes(16)): ScramSecret {
  const keys = keysFromPassword(password, salt, iterations);
  return { kind: 'scram', iterations, salt, storedKey: sha256(keys.clientKey), serverKey: keys.serverKey, clientKey: keys.clientKey };
}

export function formatScram(s: ScramSecret): string {
  return `SCRAM-SHA-256$${s.iterations}:${s.salt.toString('base64')}$${s.storedKey.toString('base64')}:${s.serverKey.toString('base64')}`;
}

const same = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);
const sameText = (a: string, b: string): boolean => same(Buffer.from(a), Buffer.from(b));

/** Whether a cleartext password (method "password") matches the stored secret. */
export function passwordMatches(user: string, password: string, secret: Secret): boolean {
  switch (secret.kind) {
    case 'plain':
      return sameText(password, secret.password);
    case 'md5':
      return sameText(md5Verifier(user, password), secret.hash);
    case 'scram': {
      const keys = keysFromPassword(password, secret.salt, secret.iterations);
      return same(sha256(keys.clientKey), secret.storedKey) && same(keys.serverKey, secret.serverKey);
    }
  }
}

/**
 * The keys Sluice logs in to a node with, given the node's salt and iteration count: from the
 * password, or from the ClientKey a client proved (only when the node holds the same verifier).
 */
export function scramKeysFor(secret: Secret, salt: Buffer, iterations: number): ScramKeys | null {
  if (secret.kind === 'plain') return keysFromPassword(secret.password, salt, iterations);
  if (secret.kind === 'scram' && secret.clientKey && secret.iterations === iterations && same(secret.salt, salt)) {
    return { clientKey: secret.clientKey, serverKey: secret.serverKey };
  }
  return null;
}
