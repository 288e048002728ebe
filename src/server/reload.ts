import { diffConfig } from '../config/diff';
import { ConfigError, type Config } from '../config/load';
import { pinoLevel } from '../log/logger';
import { CompiledRouting, routingOptions } from '../router/options';

/** Where each part of a reload lands (server.ts owns the components). */
export interface ReloadTargets {
  config(c: Config): void;
  routing(r: CompiledRouting): void;
  pool(c: Config): void;
  catalogs(expireMs: number): void;
  /** failover_hold_timeout and recovery_timeout, in ms: how long held sessions wait. */
  gates(holdMs: number, recoveryMs: number): void;
  /** The cluster: nodes' settings, added nodes, health and replication checks, commands. */
  nodes(c: Config): void;
  level(pinoLevel: string): void;
  /** Open sessions re-read the config (their PGPOOL SET values stay over it). */
  sessions(): void;
}

/**
 * A validated new config against the running one: refused as a whole when a restart-only key
 * changed (the error names them), else applied everywhere. Everything that can fail (parsing,
 * validation, compiling patterns) happened before the first change, so it is all or nothing.
 * Returns the keys that changed.
 */
export function applyReload(old: Config, next: Config, to: ReloadTargets): string[] {
  const d = diffConfig(old, next);
  if (d.restartOnly.length > 0) {
    throw new ConfigError(`restart-only keys changed (restart Sluice to apply them): ${d.restartOnly.join(', ')}`);
  }
  if (d.changed.length === 0) return [];
  const routing = routingOptions(next);
  to.config(next);
  to.routing(routing);
  to.pool(next);
  to.catalogs(next.relcache_expire * 1000);
  to.gates(next.failover_hold_timeout * 1000, next.recovery_timeout * 1000);
  to.nodes(next);
  to.level(pinoLevel(next.log_min_messages));
  to.sessions();
  return d.changed;
}
