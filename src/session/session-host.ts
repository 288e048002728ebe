import type { BackendConnection } from '../backend/connection';
import type { Logger } from '../log/logger';
import type { CompiledRouting } from '../router/options';
import type { DispatchHost } from './dispatch-host';
import type { LocalSession } from './local-command';
import type { NodeLink } from './link';
import { acquireOn } from './primary';
import { runQueries } from '../backend/query';

/** A query of Sluice's own for a session (a function look-up) that takes longer is given up (its connection closed). */
const QUERY_LIMIT_MS = 2_000;
import type { SessionContext } from './session-context';
import type { SessionRouting } from './session-routing';
import type { SessionSettings } from './settings';
import type { StartupRequest } from './startup';
import type { WriteBatch } from './write-batch';

/** What the dispatcher's host needs of its session. */
export interface SessionSide {
  routing(): CompiledRouting;
  readonly log: Logger;
  readonly settings: SessionSettings;
  readonly sessionRouting: SessionRouting;
  closed(): boolean;
  attach(conn: BackendConnection): NodeLink;
  readonly toClient: WriteBatch;
  resume(): void;
  readonly localSession: LocalSession;
  fail(err: unknown): void;
}

/** The dispatcher's view of Sluice and of its session (dispatch-host.ts). */
export function dispatchHostFor(ctx: SessionContext, req: StartupRequest, s: SessionSide): DispatchHost {
  return {
    routing: s.routing,
    log: s.log,
    noticePerNode: () => s.settings.values.notice_per_node_statement,
    logPerNode: () => s.settings.values.log_per_node_statement,
    catalog: () => s.sessionRouting.catalog,
    nodes: () => ctx.nodeViews(),
    loadBalanceNode: (avoid) => s.sessionRouting.loadBalanceNode(avoid),
    countSelect: (node) => ctx.countSelect(node),
    replayLsn: (node) => ctx.replication.info[node]?.replayLsn ?? 0,
    replayPositions: ctx.replication,
    connect: async (id) => {
      const node = ctx.node(id);
      if (!node) throw new Error(`no node ${id}`);
      const { conn } = await acquireOn(ctx, node, req.params);
      if (s.closed()) {
        ctx.pool.release(conn, req.database).catch(() => undefined);
        throw new Error('session closed');
      }
      return conn;
    },
    queryNode: async (id, sql) => {
      const node = ctx.node(id);
      if (!node) return null;
      try {
        const { conn } = await acquireOn(ctx, node, req.params);
        const [r] = await runQueries(conn, [sql], QUERY_LIMIT_MS);
        ctx.pool.release(conn, req.database).catch(() => undefined);
        return r?.error ? null : (r?.rows[0]?.[0] ?? null);
      } catch {
        return null;
      }
    },
    attach: s.attach,
    toClient: (buf, start, end) => s.toClient.add(buf, start, end),
    flushToClient: () => void s.toClient.flush(),
    resume: s.resume,
    keepsState: ctx.routing.loadBalance || ctx.canFailOver,
    gate: ctx.gate,
    local: ctx.local,
    localSession: s.localSession,
    fail: s.fail,
    clock: ctx.clock,
  };
}
