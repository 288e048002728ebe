import { Cidr, cidrContains, parseCidr } from '../util/cidr';

// Client authentication rules: PostgreSQL's pg_hba.conf (and pgpool's pool_hba.conf) as
// [[hba]] tables. The first rule whose type, database, user and address match decides.

export type HbaMethod = 'trust' | 'reject' | 'password' | 'md5' | 'scram-sha-256';
export type HbaType = 'local' | 'host' | 'hostssl' | 'hostnossl';

export interface HbaEntry {
  readonly type: HbaType;
  readonly database: string;
  readonly user: string;
  readonly address: string;
  readonly method: HbaMethod;
}

export interface HbaRule {
  readonly index: number;
  readonly type: HbaType;
  /** null: all. "sameuser" is kept as a name and matched against the user. */
  readonly databases: readonly string[] | null;
  readonly users: readonly string[] | null;
  /** null: any address (or a local rule). */
  readonly address: Cidr | null;
  readonly method: HbaMethod;
}

/** Where a client came from, as the rules see it. */
export interface Peer {
  /** A Unix-domain socket. */
  readonly local: boolean;
  readonly ssl: boolean;
  /** The client's IP address (from the PROXY header when a trusted balancer sent one). */
  readonly address: string;
}

/** A rule that cannot be read: `field` names the key (load.ts turns it into hba[i].field). */
export class HbaError extends Error {
  constructor(
    readonly field: keyof HbaEntry,
    message: string,
  ) {
    super(message);
  }
}

function names(field: 'database' | 'user', text: string): string[] | null {
  const list = text.split(',').map((s) => s.trim());
  if (list.some((s) => s === '')) throw new HbaError(field, `empty name in "${text}"`);
  if (list.includes('all')) return null;
  const group = list.find((s) => s.startsWith('+') || s.startsWith('@'));
  if (group) throw new HbaError(field, `"${group}": group membership and include files are not supported; list the names`);
  return list;
}

export function compileHba(entries: readonly HbaEntry[]): HbaRule[] {
  return entries.map((e, index) => {
    let address: Cidr | null = null;
    if (e.type === 'local') {
      if (e.address !== '') throw new HbaError('address', 'a local rule takes no address');
    } else if (e.address === '') {
      throw new HbaError('address', `required for type "${e.type}" (use "0.0.0.0/0" and "::/0", or "all", for any)`);
    } else if (e.address !== 'all') {
      try {
        address = parseCidr(e.address);
      } catch (err) {
        throw new HbaError('address', (err as Error).message);
      }
    }
    return { index, type: e.type, databases: names('database', e.database), users: names('user', e.user), address, method: e.method };
  });
}

function typeMatches(type: HbaType, peer: Peer): boolean {
  switch (type) {
    case 'local':
      return peer.local;
    case 'host':
      return !peer.local;
    case 'hostssl':
      return !peer.local && peer.ssl;
    case 'hostnossl':
      return !peer.local && !peer.ssl;
  }
}

/** The first matching rule, or null (PostgreSQL: 'no pg_hba.conf entry', 28000). */
export function matchHba(rules: readonly HbaRule[], peer: Peer, database: string, user: string): HbaRule | null {
  for (const r of rules) {
    if (!typeMatches(r.type, peer)) continue;
    if (r.databases && !r.databases.some((d) => d === database || (d === 'sameuser' && database === user))) continue;
    if (r.users && !r.users.includes(user)) continue;
    if (r.address && !cidrContains(r.address, peer.address)) continue;
    return r;
  }
  return null;
}
