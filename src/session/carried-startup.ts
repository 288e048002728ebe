// Transaction mode: a client's startup settings (application_name, TimeZone, DateStyle, ...)
// carried to whichever server connection it borrows, since the pool's connections start with
// only the pool key's parameters (pool/pool-key.ts splitStartup).
import type { StartupSettings } from '../backend/connection';
import type { SettingsReset } from '../router/statement';

/** A string constant PostgreSQL reads the same whatever standard_conforming_strings says. */
function literal(s: string): string {
  const quoted = s.replace(/'/g, "''");
  return s.includes('\\') ? `E'${quoted.replace(/\\/g, '\\\\')}'` : `'${quoted}'`;
}

/** A setting's name as SQL (each dotted part quoted: RESET "myapp"."mode"). */
function settingIdent(name: string): string {
  return name
    .split('.')
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join('.');
}

function setConfig(values: Iterable<[string, string]>, local: boolean): string[] {
  return [...values].map(([k, v]) => `pg_catalog.set_config(${literal(k)}, ${literal(v)}, ${local})`);
}

/**
 * The settings a session started with that its connections must be given with set_config()
 * (the same parsing as a startup packet's: a list setting such as search_path takes "a, b"),
 * keyed in lower case as PostgreSQL looks them up. One per startup request (sessions that sent
 * the same packet share it), shared by reference with the connections that carry it.
 */
export class CarriedStartup implements StartupSettings {
  readonly values: ReadonlyMap<string, string>;
  /** Equal for equal settings: a connection that carries another session's same settings needs nothing. */
  readonly key: string;

  constructor(params: ReadonlyMap<string, string>) {
    const values = new Map<string, string>();
    for (const [k, v] of params) values.set(k.toLowerCase(), v);
    this.values = values;
    this.key = [...values]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${k}=${v}`)
      .join('\u0000');
  }

  get empty(): boolean {
    return this.values.size === 0;
  }

  /**
   * What turns a connection carrying `from` (null: none, the server's own values) into one
   * carrying these: set_config() for each value that differs, RESET for what only `from` set.
   * Null when nothing differs.
   */
  changeFrom(from: StartupSettings | null): string | null {
    if (from === this || (from?.key ?? '') === this.key) return null;
    const sets = [...this.values].filter(([k, v]) => from?.values.get(k) !== v);
    const resets = from ? [...from.values.keys()].filter((k) => !this.values.has(k)) : [];
    const parts = sets.length > 0 ? [`SELECT ${setConfig(sets, false).join(', ')}`] : [];
    for (const k of resets) parts.push(`RESET ${settingIdent(k)}`);
    return parts.length > 0 ? parts.join('; ') : null;
  }

  /**
   * After a statement that reset settings (RESET, SET ... TO DEFAULT, RESET ALL, DISCARD ALL):
   * what gives those of them the client started with their startup values again, as on a
   * direct connection. Null when it reset none of them.
   */
  restoreAfter(r: SettingsReset): string | null {
    const all = r.names.includes('*');
    const back = [...this.values].filter(([k]) => all || r.names.includes(k));
    return back.length > 0 ? `SELECT ${setConfig(back, r.local).join(', ')}` : null;
  }
}

/** Session mode, and a client that sent no setting: nothing to carry. */
export const NOTHING_CARRIED = new CarriedStartup(new Map());
