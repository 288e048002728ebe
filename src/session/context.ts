// What a session needs from the rest of Sluice (config, registry, cluster, pools, clock), built
// once by server.ts and shared by every session.
import type { NodeAddress } from '../backend/connection';
import type { CatalogCache } from '../cluster/catalog-cache';
import type { ReplicationMonitor } from '../cluster/replication';
import type { Authenticator } from '../auth/authenticator';
import type { Config } from '../config/load';
import type { ServerTls } from '../backend/tls';
import type { Cidr } from '../util/cidr';
import type { Logger } from '../log/logger';
import type { NodeView } from '../router/balancer';
import type { CompiledRouting } from '../router/options';
import type { Rng } from '../util/rng';
import type { Clock } from '../util/clock';
import type { BackendStats } from '../cluster/backend-stats';
import type { LocalCommands } from './local-commands';
import type { PauseGate } from '../util/gate';
import type { PrimaryHost } from './connections';
import type { SessionRegistry } from './registry';
import type { SharedListeners } from './shared-listen';

/** What a session needs from the rest of Sluice (built by server.ts). */
export interface SessionContext extends PrimaryHost {
  readonly config: Config;
  readonly registry: SessionRegistry;
  /** Transaction mode's shared listening connections (LISTEN without a pinned connection). */
  readonly listeners: SharedListeners;
  readonly log: Logger;
  readonly routing: CompiledRouting;
  readonly catalogs: CatalogCache;
  readonly rng: Rng;
  readonly clock: Clock;
  node(id: number): NodeAddress | undefined;
  /** The nodes as routing sees them now (up, role, weight, delay). */
  nodeViews(): readonly NodeView[];
  countSelect(node: number): void;
  /** Transaction mode: a session keeps its server connection for good, for this reason. */
  sessionPinned(reason: string): void;
  readonly replication: ReplicationMonitor;
  /** More than one node: a failover can move a session, so its state is kept for replay. */
  readonly canFailOver: boolean;
  /** Closed while Sluice is paused (sluicectl pause, a switchover). */
  readonly gate: PauseGate;
  /** Closed during online recovery's second stage: new sessions wait before they start. */
  readonly admission: PauseGate;
  readonly backendStats: BackendStats;
  /** Client authentication ([[hba]], [[user]], auth_query). */
  readonly auth: Authenticator;
  /** The client-facing TLS context (null: ssl is off, SSLRequest is answered 'N'). */
  readonly tls: ServerTls | null;
  /** proxy_protocol_trusted_addresses, parsed. */
  readonly trustedProxies: readonly Cidr[];
  /** SHOW POOL_* and PGPOOL commands (null: every statement goes to a node). */
  readonly local: LocalCommands | null;
}
