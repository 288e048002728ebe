import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { functionListPattern, parseRedirectList, queryPatterns } from './patterns';
import { compileHba, HbaError } from './hba';
import { parseCidrList } from '../util/cidr';
import { parseSecret } from '../protocol/auth/secret';
import { BACKEND_FLAGS, sections, topLevel } from './schema';
import { Infer, Spec, SpecTable } from './spec';

export type BackendConfig = Infer<typeof sections.backend>;
export type Config = Infer<typeof topLevel> & {
  readonly backend: readonly BackendConfig[];
  readonly pcp_user: readonly Infer<typeof sections.pcp_user>[];
  readonly user: readonly Infer<typeof sections.user>[];
  readonly hba: readonly Infer<typeof sections.hba>[];
  readonly pool: readonly Infer<typeof sections.pool>[];
  /** Where the file was (relative script paths resolve from here); '' for an inline config. */
  readonly configDir: string;
  /** Keys the file set whose feature is not built yet: said once at start-up. */
  readonly pendingKeys: readonly string[];
};

/** A config mistake: the message is one line that names the key. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function describe(spec: Spec<unknown>): string {
  switch (spec.kind) {
    case 'int':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'number':
      return `a number from ${spec.min} to ${spec.max}`;
    case 'bool':
      return 'true or false';
    case 'string':
      return 'a string';
    case 'enum':
      return `one of ${spec.values!.map((v) => `"${v}"`).join(', ')}`;
    case 'strings':
      return 'a list of strings';
  }
}

function checkValue(key: string, spec: Spec<unknown>, v: unknown): unknown {
  const bad = () => new ConfigError(`key "${key}": expected ${describe(spec)}, got ${JSON.stringify(v)}`);
  switch (spec.kind) {
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < spec.min! || v > spec.max!) throw bad();
      return v;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v) || v < spec.min! || v > spec.max!) throw bad();
      return v;
    case 'bool':
      if (typeof v !== 'boolean') throw bad();
      return v;
    case 'string':
      if (typeof v !== 'string') throw bad();
      return v;
    case 'enum':
      if (typeof v !== 'string' || !spec.values!.includes(v)) throw bad();
      return v;
    case 'strings':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad();
      return Object.freeze([...v]);
  }
}

function table(prefix: string, specs: SpecTable, raw: Record<string, unknown>, pending: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(raw)) {
    if (!(key in specs) && !(prefix === '' && key in sections)) throw new ConfigError(`key "${prefix}${key}": unknown key`);
  }
  for (const [key, spec] of Object.entries(specs)) {
    if (key in raw) {
      out[key] = checkValue(prefix + key, spec, raw[key]);
      if (spec.pending !== undefined) pending.push(`${prefix}${key} (${spec.pending})`);
    } else if (spec.required) {
      throw new ConfigError(`key "${prefix}${key}": required`);
    } else {
      out[key] = spec.default;
    }
  }
  return Object.freeze(out);
}

function section(name: keyof typeof sections, raw: unknown, pending: string[]): readonly Record<string, unknown>[] {
  if (raw === undefined) return Object.freeze([]);
  if (!Array.isArray(raw)) throw new ConfigError(`key "${name}": expected an array of tables ([[${name}]])`);
  return Object.freeze(
    raw.map((entry, i) => {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        throw new ConfigError(`key "${name}[${i}]": expected a table`);
      }
      return table(`${name}[${i}].`, sections[name], entry as Record<string, unknown>, pending);
    }),
  );
}

function checkBackends(backends: readonly BackendConfig[]): void {
  if (backends.length === 0) throw new ConfigError('key "backend": at least one [[backend]] is required');
  backends.forEach((b, i) => {
    for (const f of b.flag.split('|')) {
      if (!(BACKEND_FLAGS as readonly string[]).includes(f)) {
        throw new ConfigError(`key "backend[${i}].flag": expected flags from ${BACKEND_FLAGS.join(', ')} joined by |, got "${b.flag}"`);
      }
    }
  });
}

/** Each pattern-valued key must compile; the error names the key. */
function checkPatterns(top: Record<string, unknown>): void {
  const checks: [string, (s: string) => unknown][] = [
    ['read_only_function_list', functionListPattern],
    ['write_function_list', functionListPattern],
    ['primary_routing_query_pattern_list', queryPatterns],
    ['database_redirect_preference_list', parseRedirectList],
    ['app_name_redirect_preference_list', parseRedirectList],
    ['proxy_protocol_trusted_addresses', parseCidrList],
  ];
  for (const [key, parse] of checks) {
    try {
      parse(top[key] as string);
    } catch (e) {
      throw new ConfigError(`key "${key}": ${(e as Error).message}`);
    }
  }
  if (top.read_only_function_list && top.write_function_list) {
    throw new ConfigError('key "write_function_list": cannot be set together with read_only_function_list');
  }
}

/** Every [[hba]] rule compiles and every stored secret reads; the error names the entry. */
function checkAuth(cfg: { hba: readonly Record<string, unknown>[]; user: readonly Record<string, unknown>[]; auth_password: string }): void {
  const hba = cfg.hba as Config['hba'];
  hba.forEach((_, i) => {
    try {
      compileHba([hba[i]!]);
    } catch (e) {
      throw new ConfigError(`key "hba[${i}].${e instanceof HbaError ? e.field : 'address'}": ${(e as Error).message}`);
    }
  });
  const secrets: [string, string][] = [...cfg.user.map((u, i): [string, string] => [`user[${i}].password`, u.password as string]), ['auth_password', cfg.auth_password]];
  for (const [key, text] of secrets) {
    try {
      parseSecret(text);
    } catch (e) {
      throw new ConfigError(`key "${key}": ${(e as Error).message}`);
    }
  }
}

/** Validates a parsed TOML document into a frozen snapshot. */
export function buildConfig(raw: Record<string, unknown>, configDir: string): Config {
  const pending: string[] = [];
  const top = table('', topLevel, raw, pending);
  checkPatterns(top);
  const backend = section('backend', raw.backend, pending) as readonly BackendConfig[];
  checkBackends(backend);
  const cfg = {
    ...(top as Infer<typeof topLevel>),
    backend,
    pcp_user: section('pcp_user', raw.pcp_user, pending),
    user: section('user', raw.user, pending),
    hba: section('hba', raw.hba, pending),
    pool: section('pool', raw.pool, pending),
    configDir,
    pendingKeys: Object.freeze([...new Set(pending)]),
  };
  checkAuth(cfg);
  if (cfg.reserved_connections >= cfg.num_init_children) {
    throw new ConfigError('key "reserved_connections": must be less than num_init_children');
  }
  if (cfg.use_watchdog) {
    if (cfg.etcd_endpoints.length === 0) throw new ConfigError('key "etcd_endpoints": use_watchdog needs at least one etcd endpoint');
    for (const e of cfg.etcd_endpoints) {
      if (!/^https?:\/\/[^/]+\/?$/.test(e)) throw new ConfigError(`key "etcd_endpoints": "${e}" is not an etcd client URL (http://host:port)`);
    }
    if (new Set(cfg.etcd_endpoints.map((e) => e.startsWith('https:'))).size > 1) throw new ConfigError('key "etcd_endpoints": all http or all https, not both');
    if ((cfg.etcd_cert === '') !== (cfg.etcd_key === '')) throw new ConfigError('key "etcd_cert": etcd_cert and etcd_key go together');
    const tlsKey = (['etcd_cacert', 'etcd_cert'] as const).find((k) => cfg[k] !== '');
    if (tlsKey && !cfg.etcd_endpoints[0]!.startsWith('https:')) throw new ConfigError(`key "${tlsKey}": TLS to etcd needs https:// endpoints`);
    if (cfg.etcd_username === '' && cfg.etcd_password !== '') throw new ConfigError('key "etcd_username": etcd_password needs etcd_username');
    // Patroni's rule: a lease outlives a loop and two retry timeouts, so a working leader never loses it.
    const least = cfg.wd_loop_wait + 2 * cfg.wd_retry_timeout;
    if (cfg.wd_lease_ttl < least) throw new ConfigError(`key "wd_lease_ttl": must be at least wd_loop_wait + 2 × wd_retry_timeout (${least} s), not ${cfg.wd_lease_ttl}`);
  }
  return Object.freeze(cfg) as unknown as Config;
}

export function parseConfig(text: string, configDir: string): Config {
  let raw: Record<string, unknown>;
  try {
    raw = parse(text, { unsafeKeyBehaviour: 'throw' }) as Record<string, unknown>;
  } catch (e) {
    const msg = e instanceof TomlError ? e.message.split('\n')[0] : String(e);
    throw new ConfigError(`TOML syntax: ${msg}`);
  }
  return buildConfig(raw, configDir);
}

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config file ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  return parseConfig(text, dirname(resolve(file)));
}
