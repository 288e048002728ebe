import type { BackendConnection } from '../backend/connection';
import type { DatabaseCatalog } from '../cluster/catalog-cache';
import type { Logger } from '../log/logger';
import type { NodeView } from '../router/balancer';
import type { CompiledRouting } from '../router/options';
import type { NodeLink } from './link';
import type { LocalCommands, LocalSession } from './local-command';
import type { PauseGate } from './pause-gate';
import type { ReplayPositions } from './read-your-writes';
import type { Clock } from '../util/clock';

/** What the dispatcher needs from its session and the rest of Sluice. */
export interface DispatchHost {
  /** The routing options (the session's own after a PGPOOL SET). */
  routing(): CompiledRouting;
  readonly log: Logger;
  noticePerNode(): boolean;
  logPerNode(): boolean;
  catalog(): DatabaseCatalog | null;
  nodes(): readonly NodeView[];
  /** The node reads go to for this statement (statement-level) or this session, avoiding some. */
  loadBalanceNode(avoid: ReadonlyMap<number, number>): number | null;
  countSelect(node: number): void;
  /** The last replay LSN known for a node (sr_check or a read-your-writes check). */
  replayLsn(node: number): number;
  readonly replayPositions: ReplayPositions;
  /** A new backend connection to a node for this session (from the pool). */
  connect(node: number): Promise<BackendConnection>;
  /**
   * Runs a one-value query of Sluice's own on a pooled connection to the node (not the
   * session's): the value, or null on an error or when it takes too long.
   */
  queryNode(node: number, sql: string): Promise<string | null>;
  /** Attaches a connection to the session and returns its link. */
  attach(conn: BackendConnection): NodeLink;
  toClient(buf: Buffer, start: number, end: number): void;
  /** Writes what toClient collected (replies Sluice made itself, outside any server chunk). */
  flushToClient(): void;
  /** The client's frames may flow again (a held frame is delivered first). */
  resume(): void;
  /**
   * Session state is logged for other nodes to replay: with load balancing, and whenever a
   * failover may move the session to another primary.
   */
  readonly keepsState: boolean;
  /** Sluice's own commands (SHOW POOL_*, PGPOOL ...), when the server answers them. */
  readonly local: LocalCommands | null;
  readonly localSession: LocalSession;
  /** Closed while Sluice is paused: statements wait at a transaction boundary. */
  readonly gate: PauseGate;
  /** The session cannot go on (its new primary could not be reached): end it with this error. */
  fail(err: unknown): void;
  readonly clock: Clock;
}
