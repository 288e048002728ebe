// A session's own values of pgpool's session parameters (PGPOOL SET) over the config's, and the
// routing options they give.
import type { Config } from '../config/load';
import { topLevel } from '../config/schema';
import type { Spec } from '../config/spec';
import type { CompiledRouting } from '../router/options';
import { deleteKey, emptyMap, setIn } from '../util/lazy';

/**
 * pgpool's "session" context parameters: the only ones PGPOOL SET may change. The first group
 * are keys of Sluice's config and change what the session does; the rest are pgpool keys with no
 * counterpart in Sluice (accepted and shown so pgpool users' scripts run, without effect).
 */
export const SESSION_KEYS = [
  'log_statement',
  'log_client_messages',
  'log_per_node_statement',
  'notice_per_node_statement',
  'check_unlogged_table',
  'allow_sql_comments',
  'client_idle_limit',
  'client_idle_limit_in_recovery',
  'log_min_messages',
] as const;
/** pgpool's session parameters Sluice has no use for, with pgpool's defaults (for PGPOOL SHOW). */
export const PGPOOL_ONLY: Readonly<Record<string, string>> = {
  log_error_verbosity: 'default',
  client_min_messages: 'notice',
  log_backend_messages: 'none',
};

export type SessionKey = (typeof SESSION_KEYS)[number];
/** What a session reads of the config, with its PGPOOL SET values applied. */
export type SessionValues = Pick<Config, SessionKey>;

const OWN = new Set<string>(SESSION_KEYS);
const SETTABLE = new Set<string>([...SESSION_KEYS, ...Object.keys(PGPOOL_ONLY)]);

export function isSessionParameter(name: string): boolean {
  return SETTABLE.has(name);
}

/** A PGPOOL SET value that its key's type refuses. */
export class SettingError extends Error {
  override readonly name = 'SettingError';
}

const TRUE = new Set(['on', 'true', 'yes', '1', 't', 'y']);
const FALSE = new Set(['off', 'false', 'no', '0', 'f', 'n']);

/** The typed value of a PGPOOL SET (PostgreSQL's spellings for booleans). */
function parseValue(name: string, raw: string, spec: Spec<unknown>): unknown {
  const v = raw.trim().toLowerCase();
  const invalid = () => new SettingError(`invalid value for parameter "${name}": "${raw}"`);
  switch (spec.kind) {
    case 'bool':
      if (TRUE.has(v)) return true;
      if (FALSE.has(v)) return false;
      throw invalid();
    case 'int': {
      if (!/^[+-]?\d+$/.test(v)) throw invalid();
      const n = Number(v);
      if (n < spec.min! || n > spec.max!) throw new SettingError(`${n} is outside the valid range for parameter "${name}" (${spec.min} .. ${spec.max})`);
      return n;
    }
    case 'enum':
      if (!spec.values!.includes(v)) throw invalid();
      return v;
    default:
      return raw;
  }
}

/**
 * One session's PGPOOL SET values over the config. `values` is rebuilt on each change, so the
 * data path reads plain fields; `changed` tells the session to re-read what it derived.
 */
export class SessionSettings {
  private overrides = emptyMap<string, { shown: string; value: unknown }>();
  private merged: SessionValues | null = null;

  constructor(
    private readonly base: () => SessionValues,
    private readonly changed: () => void = () => undefined,
  ) {}

  /** The effective values: the config's, with this session's overrides. */
  get values(): SessionValues {
    return this.merged ?? this.base();
  }

  /** The text PGPOOL SHOW prints for an overridden parameter, else undefined. */
  shown(name: string): string | undefined {
    return this.overrides.get(name)?.shown;
  }

  /** PGPOOL SET name = raw; throws SettingError for a value of the wrong type or range. */
  set(name: string, raw: string): void {
    const spec = (topLevel as Record<string, Spec<unknown>>)[name];
    const value = spec && OWN.has(name) ? parseValue(name, raw, spec) : raw;
    this.overrides = setIn(this.overrides, name, { shown: typeof value === 'boolean' ? (value ? 'on' : 'off') : String(value), value });
    this.rebuild();
  }

  reset(name: string): void {
    if (deleteKey(this.overrides, name)) this.rebuild();
  }

  resetAll(): void {
    if (this.overrides.size === 0) return;
    this.overrides = emptyMap();
    this.rebuild();
  }

  /** The config under the overrides changed (a reload). */
  reload(): void {
    this.rebuild();
  }

  private rebuild(): void {
    const own: Record<string, unknown> = {};
    for (const [k, v] of this.overrides) if (OWN.has(k)) own[k] = v.value;
    this.merged = Object.keys(own).length > 0 ? ({ ...this.base(), ...own } as SessionValues) : null;
    this.changed();
  }
}

/** The routing options with a session's own allow_sql_comments and check_unlogged_table. */
export function sessionRouting(base: CompiledRouting, v: SessionValues): CompiledRouting {
  if (v.allow_sql_comments === base.allowSqlComments && v.check_unlogged_table === base.checkUnloggedTables) return base;
  return { ...base, allowSqlComments: v.allow_sql_comments, checkUnloggedTables: v.check_unlogged_table };
}
