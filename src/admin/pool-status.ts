import { topLevel } from '../config/schema';
import type { Config } from '../config/load';

/** One config item as pcp_pool_status and PGPOOL SHOW list it. */
export interface ConfigItem {
  name: string;
  value: string;
  description: string;
}

const SECRET = /password|md5/;

/** How pgpool shows a value: booleans as on/off, secrets hidden. */
function shown(name: string, v: unknown): string {
  if (SECRET.test(name) && v) return '*****';
  if (typeof v === 'boolean') return v ? 'on' : 'off';
  return v === undefined || v === null ? '' : String(v);
}

const describe = (name: string): string => name.replace(/_/g, ' ');

/**
 * Every config item, in the schema's order, then each node's as pgpool numbers them
 * (backend_hostname0, ...). Node status and delay are the live ones, as pgpool shows.
 */
export function configItems(c: Config, live?: { status: (id: number) => string; delay: (id: number) => number }): ConfigItem[] {
  const items: ConfigItem[] = [{ name: 'backend_clustering_mode', value: 'streaming_replication', description: 'clustering mode' }];
  for (const key of Object.keys(topLevel)) {
    items.push({ name: key, value: shown(key, (c as unknown as Record<string, unknown>)[key]), description: describe(key) });
  }
  c.backend.forEach((b, i) => {
    items.push(
      { name: `backend_hostname${i}`, value: b.hostname, description: 'backend #' + i + ' hostname' },
      { name: `backend_port${i}`, value: String(b.port), description: 'backend #' + i + ' port number' },
      { name: `backend_weight${i}`, value: String(b.weight), description: 'weight of backend #' + i },
      { name: `backend_data_directory${i}`, value: b.data_directory, description: 'data directory for backend #' + i },
      { name: `backend_status${i}`, value: live?.status(i) ?? '', description: 'status of backend #' + i },
      { name: `standby_delay${i}`, value: String(live?.delay(i) ?? 0), description: 'standby delay of backend #' + i },
      { name: `backend_flag${i}`, value: b.flag, description: 'backend #' + i + ' flag' },
      { name: `backend_application_name${i}`, value: b.application_name, description: 'application_name for backend #' + i },
    );
  });
  return items;
}
