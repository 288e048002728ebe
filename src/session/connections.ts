// Backend connections for a session: taken from the pool (or opened) on a node, the primary
// reached through a failover, given back at the session's end, and Sluice's own short queries.
import { BackendStartupError } from '../backend/connect';
import type { BackendConnection, NodeAddress } from '../backend/connection';
import { decodeFields } from '../protocol/backend';
import { ClientError } from '../protocol/client-error';
import { Errors } from '../protocol/errors';
import { SqlState, type SqlStateCode } from '../protocol/sqlstate';
import { poolKey } from '../pool/pool-key';
import type { PoolSet } from '../pool/pool-set';
import { runQueries } from '../backend/query';
import type { Clock } from '../util/clock';
import type { CarriedStartup } from './carried-startup';
import { poolKeyOf, type StartupRequest } from './startup';

/** A query of Sluice's own for a session (a function look-up) that takes longer is given up (its connection closed). */
const QUERY_LIMIT_MS = 2_000;

/** What reaching the primary needs from the rest of Sluice. */
export interface PrimaryHost {
  readonly pool: PoolSet;
  readonly clock: Clock;
  /** failover_hold_timeout in ms: how long a session waits for a primary. */
  readonly holdTimeoutMs: number;
  /** The primary (other than `not`) once one is known; null after timeoutMs. */
  waitForPrimary(timeoutMs: number, not?: number): Promise<NodeAddress | null>;
  /** The primary known now, if any. */
  readonly primary: NodeAddress | null;
  /** Whether a node that could not be reached is down (checked at once, failed over if so). */
  confirmDown(node: number, shutdown: boolean): Promise<boolean>;
  openBackend(node: NodeAddress, params: ReadonlyMap<string, string>, key: string): Promise<BackendConnection>;
  /** Whether clients of these startup parameters are in transaction mode (their pool is limited). */
  lends(params: ReadonlyMap<string, string>): boolean;
}

/** A backend connection to a node for a session's startup parameters: pooled, or new. */
export function acquireOn(h: PrimaryHost, node: NodeAddress, params: ReadonlyMap<string, string>): Promise<{ conn: BackendConnection; reused: boolean }> {
  const key = poolKey(node.id, params);
  return h.pool.acquire(node.id, key, () => h.openBackend(node, params, key), h.lends(params));
}

/**
 * Runs a one-value query of Sluice's own on a pooled connection of the session's to the node (not
 * the session's own connection): the value, or null on an error or when it takes too long.
 */
export async function queryOnNode(h: PrimaryHost, node: NodeAddress, params: ReadonlyMap<string, string>, database: string, sql: string): Promise<string | null> {
  try {
    const { conn } = await acquireOn(h, node, params);
    const [r] = await runQueries(conn, [sql], QUERY_LIMIT_MS);
    h.pool.release(conn, database).catch(() => undefined);
    return r?.error ? null : (r?.rows[0]?.[0] ?? null);
  } catch {
    return null;
  }
}

/** Transaction mode: a connection another session changed, reset (DISCARD ALL); it carries nothing after. */
export async function resetConnection(conn: BackendConnection): Promise<void> {
  const [r] = await runQueries(conn, ['DISCARD ALL'], QUERY_LIMIT_MS);
  if (r?.error) throw Errors.resetFailed(r.error.message);
  conn.carried.clear();
}

/**
 * Transaction mode, at a session's start: the client's startup settings given to its first
 * connection before the server's parameters are the client's welcome. A value the server
 * refuses ends the start with the server's own words, as a FATAL (what a startup packet gets).
 */
export async function carryStartup(conn: BackendConnection, carried: CarriedStartup): Promise<void> {
  const sql = carried.changeFrom(conn.carried.startup);
  if (sql === null) return;
  const [r] = await runQueries(conn, [sql], QUERY_LIMIT_MS);
  if (r?.error) {
    const e = r.error;
    throw new ClientError('FATAL', e.code as SqlStateCode, e.message, e.detail, e.hint);
  }
  conn.carried.startup = carried;
}

/**
 * A closing session's backend connections go back to the pool: reset at once when nothing is in
 * flight (an open transaction is rolled back by the reset), else once what they still owe is
 * cancelled and drained (PoolSet.recover). A client that vanishes costs no server connection.
 */
export function releaseBackends(h: PrimaryHost, conns: readonly BackendConnection[], database: string): void {
  for (const conn of conns) h.pool.recover(conn, database);
}

/** The node did not answer (as opposed to answering with an error about this session). */
function unreachable(err: unknown): boolean {
  if (err instanceof ClientError) return err.code === SqlState.ConnectionFailure;
  return err instanceof BackendStartupError && err.code === SqlState.CannotConnectNow;
}

/**
 * An idle pooled connection to the primary known now, taken without a wait (null: connectPrimary
 * waits for a primary, for room in the pool or for a new connection).
 */
export function idleOnPrimary(h: PrimaryHost, req: StartupRequest): BackendConnection | null {
  const node = h.primary;
  return node && h.pool.acquireNow(poolKeyOf(req, node.id));
}

/**
 * A backend connection to the primary for a session (starting, or carrying on after its primary
 * died). When the primary cannot be reached and a check confirms it is down, the session waits
 * for the failover to find the new one, up to failover_hold_timeout, instead of failing.
 */
export async function connectPrimary(h: PrimaryHost, params: ReadonlyMap<string, string>): Promise<{ conn: BackendConnection; reused: boolean }> {
  const deadline = h.clock.now() + h.holdTimeoutMs;
  let dead: number | undefined;
  for (;;) {
    const node = await h.waitForPrimary(Math.max(0, deadline - h.clock.now()), dead);
    if (!node) {
      throw Errors.noPrimary(dead === undefined ? 'No primary node is known.' : `Node ${dead} is down and no new primary was found within failover_hold_timeout.`);
    }
    try {
      return await acquireOn(h, node, params);
    } catch (err) {
      if (!unreachable(err) || h.clock.now() >= deadline || !(await h.confirmDown(node.id, false))) throw err;
      dead = node.id;
    }
  }
}

/** The primary's own FATAL (or none), given to the client when its node turned out to be alive. */
export class KeptFatal extends Error {
  constructor(readonly frame: Buffer | null) {
    super('the primary ended the connection');
  }
}

/** A FATAL that says the server is shutting down (57P01 admin_shutdown, 57P02 crash_shutdown). */
export function isShutdown(frame: Buffer): boolean {
  const code = decodeFields(frame, 0, frame.length).get('C');
  return code === SqlState.AdminShutdown || code === SqlState.CrashShutdown;
}

/** The ErrorResponse that ends a session which could not get a primary back. */
export function errorFrame(err: unknown): Buffer {
  if (err instanceof KeptFatal && err.frame) return err.frame;
  if (err instanceof BackendStartupError) return err.frame;
  if (err instanceof ClientError) return err.toFrame();
  const detail = err instanceof KeptFatal ? undefined : (err as Error).message;
  return Errors.primaryLost(detail).toFrame();
}
