import type { NodeAddress } from '../backend/connection';
import type { BackendConfig } from '../config/load';

export type NodeRole = 'primary' | 'standby' | 'unknown';

/** A node as Sluice knows it: its config and what was last found out about it. */
export interface NodeInfo extends NodeAddress {
  readonly weight: number;
  readonly flags: readonly string[];
  readonly dataDirectory: string;
  readonly applicationName: string;
  role: NodeRole;
}

export function nodesFromConfig(backends: readonly BackendConfig[]): NodeInfo[] {
  return backends.map((b, id) => ({
    id,
    host: b.hostname,
    port: b.port,
    weight: b.weight,
    flags: b.flag.split('|'),
    dataDirectory: b.data_directory,
    applicationName: b.application_name,
    role: 'unknown',
  }));
}
