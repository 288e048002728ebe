import type { ClusterManager } from '../cluster/manager';
import type { Config } from '../config/load';
import type { Logger } from '../log/logger';
import type { BackendStats } from '../cluster/backend-stats';
import type { PauseGate } from '../util/gate';
import type { SessionInfo } from '../session/registry';
import type { WatchdogView } from '../coord/watchdog';

export type ShutdownMode = 'smart' | 'fast' | 'immediate';

/** What the admin commands act on (the server implements it). */
export interface AdminHost {
  readonly config: Config;
  readonly cluster: ClusterManager;
  readonly log: Logger;
  readonly startedAt: Date;
  /** SELECTs routed to each node (pgpool's select_cnt). */
  readonly selectCount: readonly number[];
  readonly backendStats: BackendStats;
  readonly gate: PauseGate;
  /** Closed during online recovery's second stage: new sessions wait. */
  readonly admission: PauseGate;
  /** Tells every session online recovery's second stage began or ended (idle ones may leave). */
  onlineRecovery(on: boolean): void;
  sessions(): SessionInfo[];
  /** Stops Sluice (after the reply to the request went out). */
  requestStop(mode: ShutdownMode): void;
  /** Reads the config file again; throws with the reason when it is not valid. */
  reload(): void;
  /** The instances through etcd as this one sees them; null without use_watchdog. */
  watchdog(): WatchdogView | null;
  /**
   * Where node commands go: null, here (alone, or the leader); the leader's PCP address; 'none'
   * while the group has no leader.
   */
  leaderPcp(): { host: string; port: number } | 'none' | null;
  /** A watchdog round now (the leader publishes its view, another instance takes it); nothing alone. */
  groupRound(): Promise<void>;
}
