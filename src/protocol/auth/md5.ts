import { createHash } from 'node:crypto';

/** md5 as lower-case hex (PostgreSQL's md5 auth and pgpool's PCP both build on it). */
export const md5hex = (data: Buffer | string): string => createHash('md5').update(data).digest('hex');

/** What pg_authid stores for md5 (and pgpool's pg_md5 prints): "md5" + md5(password || user). */
export function md5Verifier(user: string, password: string): string {
  return 'md5' + md5hex(password + user);
}

/**
 * The PasswordMessage payload for AuthenticationMD5Password (PostgreSQL docs, "Password
 * Authentication"): "md5" + md5(md5(password || user) || salt). `secret` may be the plain password
 * or an already hashed "md5..." verifier, which is all md5 needs.
 */
export function md5Response(user: string, secret: string, salt: Buffer): string {
  const inner = isMd5Verifier(secret) ? secret.slice(3) : md5hex(secret + user);
  return 'md5' + md5hex(Buffer.concat([Buffer.from(inner, 'utf8'), salt]));
}

export function isMd5Verifier(secret: string): boolean {
  return /^md5[0-9a-f]{32}$/.test(secret);
}
