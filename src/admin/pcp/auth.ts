import { randomBytes } from 'node:crypto';
import { md5hex } from '../../protocol/auth/md5';

/** A [[pcp_user]]: name and md5 hex of the password (pgpool's pcp.conf line, pg_md5 output). */
export interface PcpUser {
  name: string;
  md5: string;
}

/** A fresh random salt for each 'M' request (pgpool.md c.6). */
export const pcpSalt = (): Buffer => randomBytes(4);

/**
 * The salted md5 answer (pgpool.md c.3): md5hex(md5hex(md5(password) || user) || salt).
 * `passwordMd5` is what pcp.conf stores: md5hex(password).
 */
export function pcpResponse(user: string, passwordMd5: string, salt: Buffer): string {
  const h2 = md5hex(passwordMd5 + user);
  return md5hex(Buffer.concat([Buffer.from(h2, 'utf8'), salt]));
}

/** md5hex(password), what a client hashes first. */
export const pcpPasswordHash = (password: string): string => md5hex(password);

/** Whether a response proves one of the user's entries (duplicates allowed: first match wins). */
export function pcpAuthenticate(users: readonly PcpUser[], user: string, response: string, salt: Buffer): boolean {
  return users.some((u) => u.name === user && pcpResponse(user, u.md5.toLowerCase(), salt) === response.toLowerCase());
}
