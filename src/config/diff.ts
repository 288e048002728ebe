import type { Config } from './load';
import { sections, topLevel } from './schema';
import type { SpecTable } from './spec';

/** What a reload would change: every key that differs, and those of them that need a restart. */
export interface ConfigDiff {
  changed: string[];
  restartOnly: string[];
}

function compare(prefix: string, specs: SpecTable, a: Record<string, unknown>, b: Record<string, unknown>, d: ConfigDiff): void {
  for (const [key, spec] of Object.entries(specs)) {
    // A list (etcd_endpoints) is a new array at every load: compared by its items.
    if (a[key] === b[key] || (spec.kind === 'strings' && JSON.stringify(a[key]) === JSON.stringify(b[key]))) continue;
    d.changed.push(prefix + key);
    if (spec.reload === 'restart') d.restartOnly.push(prefix + key);
  }
}

/**
 * Old against new, key by key. Nodes are known by their position, so a [[backend]] may be added
 * at the end while running (it joins detached) but not removed or moved: that needs a restart.
 */
export function diffConfig(old: Config, next: Config): ConfigDiff {
  const d: ConfigDiff = { changed: [], restartOnly: [] };
  compare('', topLevel, old as never, next as never, d);
  old.backend.forEach((b, i) => {
    const n = next.backend[i];
    if (n) compare(`backend[${i}].`, sections.backend, b as never, n as never, d);
    else {
      d.changed.push(`backend[${i}]`);
      d.restartOnly.push(`backend[${i}] (removed)`);
    }
  });
  for (let i = old.backend.length; i < next.backend.length; i++) d.changed.push(`backend[${i}] (added)`);
  for (const name of ['pcp_user', 'user', 'hba'] as const) {
    if (JSON.stringify(old[name]) !== JSON.stringify(next[name])) d.changed.push(name);
  }
  if (JSON.stringify(old.pool) !== JSON.stringify(next.pool)) {
    // A session's pool mode is decided when it starts, as the global pool_mode's is.
    d.changed.push('pool');
    d.restartOnly.push('pool');
  }
  if (old.configDir !== next.configDir) d.restartOnly.push('the config file');
  return d;
}
