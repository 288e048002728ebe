import type { Logger } from '../log/logger';
import { Clock, delay as clockDelay, systemClock } from '../util/clock';
import { findPrimary, NodeQuery } from './discover';
import { HookValues, runHook } from './hooks';
import { lsnToNumber } from './replication';
import { isLive, NodeInfo, Topology } from './topology';

export interface FailoverOptions {
  failoverCommand: string;
  failbackCommand: string;
  followPrimaryCommand: string;
  /** search_primary_node_timeout in ms; 0 = look until one is found. */
  searchPrimaryTimeoutMs: number;
  /** Seconds between looks for the primary (pgpool: 1). */
  searchIntervalMs: number;
  hookTimeoutMs: number;
  /** Where hooks run: the config file's folder. */
  cwd: string;
}

/** What failover needs from the rest of Sluice (wired in server.ts). */
export interface FailoverHost {
  query: NodeQuery;
  /** A node left service: sessions and the pool let go of its connections. */
  nodeDown(id: number): void;
  /** The primary is known (again, or a new one). */
  primaryFound(id: number): void;
  /** Check a node's health at once (after follow_primary_command re-pointed it). */
  recheck(id: number): void;
  /** Something operators want to see (metrics, the status page's recent events). */
  event(kind: 'failover' | 'failback' | 'primary' | 'follow', node: number, message: string, ok?: boolean): void;
  /** Alone, or still the group's leader: a former leader stops acting mid-chain (no hook, no search). */
  mayAct?(): boolean;
}

const LSN_SQL = 'SELECT pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn()';

/**
 * Failover, failback and the search for the primary, one at a time (pgpool's request queue):
 * a request for a node already being failed joins it. A dead node is marked down at once (so no
 * statement goes there), then failover_command runs with the most up-to-date standby as %m; when
 * it was the primary, the new primary is looked for while reads go on, and follow_primary_command
 * re-points the other standbys at it.
 */
export class Failover {
  private chain: Promise<void> = Promise.resolve();
  private readonly pending = new Map<number, Promise<void>>();
  private searching: Promise<void> | null = null;
  /** Requests queued or running. */
  private active = 0;

  constructor(
    private readonly topology: Topology,
    /** Replaced by a reload (the commands, the timeouts). */
    public opts: FailoverOptions,
    private readonly host: FailoverHost,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {}

  get inProgress(): boolean {
    return this.active > 0;
  }

  private enqueue(work: () => Promise<void>): Promise<void> {
    this.active++;
    const run = this.chain.then(work).catch((err: Error) => this.log.error({ err: err.message }, 'failover step failed'));
    this.chain = run.finally(() => this.active--);
    return this.chain;
  }

  /** A node is dead (health check, or a session's connection broke and a check confirmed it). */
  degenerate(id: number, reason: string): Promise<void> {
    const node = this.topology.nodes[id];
    if (!node || node.status === 'down') return Promise.resolve();
    if (node.flags.includes('DISALLOW_TO_FAILOVER')) {
      this.log.warn({ node: id, reason }, 'node failed but is flagged DISALLOW_TO_FAILOVER: not detached');
      return Promise.resolve();
    }
    let p = this.pending.get(id);
    if (!p) {
      p = this.enqueue(() => this.down(node, reason)).finally(() => this.pending.delete(id));
      this.pending.set(id, p);
    }
    return p;
  }

  private async down(node: NodeInfo, reason: string): Promise<void> {
    if (node.status === 'down') return;
    const oldPrimary = this.topology.primaryId;
    const oldMain = this.topology.mainNodeId();
    const wasPrimary = node.id === oldPrimary;
    this.log.info({ node: node.id, reason, wasPrimary }, 'failover: node detached');
    this.topology.setStatus(node.id, 'down');
    if (wasPrimary) this.topology.setPrimary(null);
    // After the change: the event carries the epoch it made.
    this.host.event('failover', node.id, `node ${node.id} detached${wasPrimary ? ' (was primary)' : ''}: ${reason}`);
    this.host.nodeDown(node.id);
    await this.afterDown(node, wasPrimary, oldMain, oldPrimary);
  }

  /**
   * A new watchdog leader finds the group's primary detached and no new one (the last leader
   * died in the middle of that failover): it runs the failover's hooks and search again, for the
   * whole group: a primary already promoted is found and followed, not a second one made.
   */
  resumePrimaryFailover(id: number): Promise<void> {
    return this.enqueue(async () => {
      const node = this.topology.nodes[id];
      if (!node || node.status !== 'down' || this.topology.primaryId !== null) return;
      this.log.warn({ node: id }, 'failover of the primary left unfinished by the last leader: completing it');
      const oldMain = this.topology.mainNodeId();
      // Promoted already (the last leader's failover_command ran): the others follow it, and no
      // second standby is promoted.
      const found = await this.findOnce();
      if (found !== null) return this.followAll(found, oldMain, id);
      await this.afterDown(node, true, oldMain, id);
    });
  }

  /** A node just detached: failover_command, and for the primary the search and follow_primary. */
  private async afterDown(node: NodeInfo, wasPrimary: boolean, oldMain: number, oldPrimary: number | null): Promise<void> {
    // %m: for a dead primary the standby that lost the least (pgpool takes the lowest id); for
    // a dead standby the primary, which stays.
    const next = wasPrimary ? await this.mostAdvancedStandby() : oldPrimary;
    if (this.opts.failoverCommand) {
      await this.hook('failover_command', this.opts.failoverCommand, this.values(node, next ?? -1, oldMain, oldPrimary));
    }
    if (!wasPrimary) return;
    const found = await this.search();
    if (found !== null && found !== oldPrimary) await this.followAll(found, oldMain, oldPrimary);
  }

  /** The live standby with the highest received (or replayed) WAL position; ties: lowest id. */
  async mostAdvancedStandby(): Promise<number | null> {
    const standbys = this.topology.nodes.filter((n) => isLive(n) && n.id !== this.topology.primaryId);
    const positions = await Promise.all(
      standbys.map(async (n) => {
        try {
          const [rows] = await this.host.query(n, [LSN_SQL]);
          const r = rows?.[0] ?? [];
          return Math.max(lsnToNumber(r[0]), lsnToNumber(r[1]));
        } catch {
          return -1;
        }
      }),
    );
    let best: number | null = null;
    let bestLsn = -1;
    standbys.forEach((n, i) => {
      if (positions[i]! > bestLsn) {
        best = n.id;
        bestLsn = positions[i]!;
      }
    });
    this.log.info({ candidate: best, positions: Object.fromEntries(standbys.map((n, i) => [n.id, positions[i]])) }, 'promotion candidate');
    return best;
  }

  /**
   * Looks for the primary once a second up to search_primary_node_timeout (sessions that need it
   * wait meanwhile, bounded by failover_hold_timeout; reads on standbys go on). Also what
   * start-up and a later health check use when no primary is known.
   */
  search(): Promise<number | null> {
    if (!this.searching) {
      this.searching = this.searchLoop().finally(() => (this.searching = null));
    }
    return this.searching.then(() => this.topology.primaryId);
  }

  /** One look for the primary (start-up: Sluice listens even when none is found yet). */
  async findOnce(): Promise<number | null> {
    const id = await findPrimary(this.topology.nodes, this.host.query, this.log);
    if (id !== null) {
      this.topology.setPrimary(id);
      this.log.info({ primary: id }, 'primary node found');
      this.host.event('primary', id, `node ${id} is the primary`);
      this.host.primaryFound(id);
    }
    return id;
  }

  private async searchLoop(): Promise<void> {
    const deadline = this.opts.searchPrimaryTimeoutMs > 0 ? this.clock.now() + this.opts.searchPrimaryTimeoutMs : Infinity;
    let logged = false;
    for (;;) {
      // A former leader leaves the search (and its outcome) to the new one.
      if (this.host.mayAct?.() === false) return;
      if ((await this.findOnce()) !== null) return;
      if (this.clock.now() >= deadline) {
        this.log.error({ timeoutMs: this.opts.searchPrimaryTimeoutMs }, 'no primary node found; writes fail until one is');
        return;
      }
      if (!logged) this.log.warn('waiting for a primary node');
      logged = true;
      await clockDelay(this.clock, this.opts.searchIntervalMs);
    }
  }

  /**
   * follow_primary_command for each live standby, one at a time, each out of service meanwhile;
   * also for `extra` nodes that are down (a switchover's old primary), which are attached again
   * when the command succeeded (pgpool's sample script runs pcp_attach_node for them).
   */
  private async followAll(primary: number, oldMain: number, oldPrimary: number | null, extra: readonly number[] = []): Promise<void> {
    if (!this.opts.followPrimaryCommand) return;
    const nodes = this.topology.nodes.filter((x) => x.id !== primary && (isLive(x) || extra.includes(x.id)));
    for (const n of nodes) {
      const live = isLive(n);
      this.topology.setFollowing(n.id, true);
      this.host.nodeDown(n.id);
      let code: number | null = null;
      try {
        code = await this.hook('follow_primary_command', this.opts.followPrimaryCommand, this.values(n, primary, oldMain, oldPrimary));
        if (code !== 0) this.log.warn({ node: n.id }, 'follow_primary_command failed; the node is checked before it serves again');
        this.host.event('follow', n.id, code === 0 ? `node ${n.id} follows the new primary ${primary}` : `node ${n.id}: follow_primary_command failed (exit ${code ?? 'none'}); checked before it serves again`, code === 0);
      } finally {
        this.topology.setFollowing(n.id, false);
        if (live) this.host.recheck(n.id);
      }
      if (!live && code === 0) await this.attach(n, 'follows the new primary');
    }
  }

  /**
   * pcp_promote_node. With switchover: the primary is detached and failover_command runs with
   * %m = id (the script promotes it); then the primary is looked for. Without: only Sluice's view
   * changes (pgpool's behaviour: the operator promoted the node). Either way `ready` is called
   * once the new primary serves, then follow_primary_command re-points every other node,
   * the old primary included.
   */
  promote(id: number, switchover: boolean, ready: () => void = () => undefined): Promise<void> {
    return this.enqueue(async () => {
      const old = this.topology.primaryId;
      const oldMain = this.topology.mainNodeId();
      if (old !== null) {
        this.log.info({ node: old, next: id, switchover }, 'promote: primary detached');
        this.topology.setStatus(old, 'down');
        this.topology.setPrimary(null);
        this.host.event('failover', old, `node ${old} detached: promote node ${id}${switchover ? ' (switchover)' : ''}`);
        this.host.nodeDown(old);
        if (switchover && this.opts.failoverCommand) {
          await this.hook('failover_command', this.opts.failoverCommand, this.values(this.topology.nodes[old]!, id, oldMain, old));
        }
      }
      if (switchover) {
        await this.search();
        if (this.topology.primaryId !== id) this.log.warn({ wanted: id, found: this.topology.primaryId }, 'switchover: the promoted node is not the primary found');
      } else {
        this.topology.setPrimary(id);
        this.host.primaryFound(id);
        this.log.info({ node: id }, 'promote: node is primary in Sluice');
      }
      ready();
      const found = this.topology.primaryId;
      if (found !== null) await this.followAll(found, oldMain, old, old !== null && old !== found ? [old] : []);
    });
  }

  /** Brings a down node back (attach, auto_failback): waiting, then failback_command. */
  failback(id: number, reason: string): Promise<void> {
    return this.enqueue(async () => {
      const node = this.topology.nodes[id];
      if (node && node.status === 'down') await this.attach(node, reason);
    });
  }

  private async attach(node: NodeInfo, reason: string): Promise<void> {
    const oldMain = this.topology.mainNodeId();
    this.topology.setStatus(node.id, 'waiting');
    this.log.info({ node: node.id, reason }, 'failback: node attached');
    this.host.event('failback', node.id, `node ${node.id} attached: ${reason}`);
    if (this.opts.failbackCommand) {
      await this.hook('failback_command', this.opts.failbackCommand, this.values(node, this.topology.mainNodeId(), oldMain, this.topology.primaryId));
    }
    this.host.recheck(node.id);
    if (this.topology.primaryId === null) await this.search();
  }

  private values(n: NodeInfo, main: number, oldMain: number, oldPrimary: number | null): HookValues {
    const m = main >= 0 ? this.topology.nodes[main] : undefined;
    const p = oldPrimary !== null ? this.topology.nodes[oldPrimary] : undefined;
    return {
      nodeId: n.id,
      host: n.host,
      port: n.port,
      dataDirectory: n.dataDirectory,
      newMainId: m ? m.id : -1,
      newMainHost: m?.host ?? '',
      newMainPort: m?.port ?? '',
      newMainDataDirectory: m?.dataDirectory ?? '',
      oldMainId: oldMain,
      oldPrimaryId: p ? p.id : -1,
      oldPrimaryHost: p?.host ?? '',
      oldPrimaryPort: p?.port ?? '',
      epoch: this.topology.epoch,
    };
  }

  private async hook(name: string, command: string, v: HookValues): Promise<number | null> {
    if (this.host.mayAct?.() === false) {
      this.log.warn({ hook: name, node: v.nodeId }, 'no longer the watchdog leader: hook not run (the new leader completes the failover)');
      return null;
    }
    const r = await runHook(name, command, v, { cwd: this.opts.cwd, timeoutMs: this.opts.hookTimeoutMs, log: this.log });
    return r.code;
  }
}
