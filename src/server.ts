import { createServer, Server as NetServer, Socket } from 'node:net';
import { connectBackend } from './backend/connect';
import type { BackendConnection, NodeAddress } from './backend/connection';
import { CatalogCache } from './cluster/catalog-cache';
import { ClusterManager } from './cluster/manager';
import type { ReplicationMonitor } from './cluster/replication';
import type { Config } from './config/load';
import type { Logger } from './log/logger';
import { PoolSet } from './pool/pool-set';
import { CompiledRouting, routingOptions } from './router/options';
import { loadParser } from './router/parse-tree';
import { ClientError } from './protocol/client-error';
import { SqlState } from './protocol/sqlstate';
import { SessionRegistry } from './session/registry';
import { Session, SessionContext } from './session/session';

export type ShutdownMode = 'smart' | 'fast' | 'immediate';

/** How long a smart shutdown waits for sessions before it turns fast. */
const SMART_SHUTDOWN_LIMIT_MS = 300_000;

/** listen_addresses as pgpool reads it: '*' is every address, 'localhost' both loopbacks. */
export function listenHosts(spec: string): { host: string; optional: boolean }[] {
  const out: { host: string; optional: boolean }[] = [];
  for (const raw of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    if (raw === '*') out.push({ host: '::', optional: false });
    else if (raw === 'localhost') out.push({ host: '127.0.0.1', optional: false }, { host: '::1', optional: true });
    else out.push({ host: raw, optional: false });
  }
  return out;
}

/** The composition root: builds every component from a config snapshot and owns their life. */
export class Server {
  readonly cluster: ClusterManager;
  readonly pool: PoolSet;
  readonly registry: SessionRegistry;
  readonly routing: CompiledRouting;
  readonly catalogs: CatalogCache;
  /** Reads sent to each node (pgpool's select_cnt). */
  readonly selectCount: number[];
  private readonly listeners: NetServer[] = [];
  private readonly sessions = new Set<Session>();
  private nextSessionId = 1;
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly config: Config,
    private readonly log: Logger,
  ) {
    this.pool = new PoolSet(
      {
        maxPerNode: config.num_init_children * config.max_pool,
        idleLifetimeMs: config.connection_life_time * 1000,
        resetQueries: config.reset_query_list.split(';').map((q) => q.trim()).filter(Boolean),
        resetTimeoutMs: 10_000,
      },
      log.child({ component: 'pool' }),
    );
    this.registry = new SessionRegistry(config.num_init_children, config.reserved_connections);
    this.routing = routingOptions(config);
    this.catalogs = new CatalogCache(config.relcache_expire * 1000, log.child({ component: 'catalog' }));
    this.selectCount = config.backend.map(() => 0);
    this.cluster = new ClusterManager(
      config,
      (node, user, database, password, timeoutMs) =>
        connectBackend({
          node,
          params: new Map([
            ['user', user],
            ['database', database],
            ['application_name', 'sluice'],
          ]),
          poolKey: '',
          password: password ?? this.passwordFor(user),
          timeoutMs,
        }),
      {
        nodeDown: (id) => this.nodeDown(id),
        primaryFound: (id) => log.info({ primary: id, sessions: this.sessions.size }, 'sessions continue on the primary'),
      },
      log.child({ component: 'cluster' }),
    );
  }

  static async start(config: Config, log: Logger, opts: { discardStatus?: boolean } = {}): Promise<Server> {
    const s = new Server(config, log);
    await loadParser();
    await s.cluster.start(opts.discardStatus ?? false);
    await s.listen();
    return s;
  }

  /** The port the proxy listens on (useful when the config said 0). */
  get port(): number {
    const a = this.listeners[0]?.address();
    return typeof a === 'object' && a ? a.port : 0;
  }

  get replication(): ReplicationMonitor {
    return this.cluster.replication;
  }

  private passwordFor(user: string): string | undefined {
    return this.config.user.find((u) => u.name === user)?.password;
  }

  private openBackend = (node: NodeAddress, params: ReadonlyMap<string, string>, key: string): Promise<BackendConnection> =>
    connectBackend({ node, params, poolKey: key, password: this.passwordFor(params.get('user') ?? ''), timeoutMs: this.config.connect_timeout });

  /** A node left service: pooled connections to it go, and every session lets go of it. */
  private nodeDown(id: number): void {
    this.pool.discardNode(id);
    for (const s of this.sessions) s.nodeDown(id);
  }

  private context(): SessionContext {
    return {
      config: this.config,
      pool: this.pool,
      registry: this.registry,
      log: this.log.child({ component: 'session' }),
      routing: this.routing,
      catalogs: this.catalogs,
      rng: Math.random,
      waitForPrimary: (timeoutMs, not) => this.cluster.waitForPrimary(timeoutMs, not),
      node: (id) => this.cluster.topology.nodes[id],
      nodeViews: () => this.cluster.nodeViews(),
      countSelect: (node) => this.selectCount[node]!++,
      replication: this.cluster.replication,
      confirmDown: (node, shutdown) => this.cluster.confirmDown(node, shutdown),
      holdTimeoutMs: this.config.failover_hold_timeout * 1000,
      canFailOver: this.config.backend.length > 1,
      openBackend: this.openBackend,
    };
  }

  private async listen(): Promise<void> {
    const ctx = this.context();
    const onConnection = (socket: Socket) => {
      socket.on('error', () => undefined); // the session adds its own; this covers the gap
      if (this.stopping) {
        socket.end(new ClientError('FATAL', SqlState.CannotConnectNow, 'the database system is shutting down').toFrame());
        return;
      }
      const session = new Session(socket, ctx, this.nextSessionId++);
      this.sessions.add(session);
      socket.once('close', () => this.sessions.delete(session));
    };
    let port = this.config.port;
    for (const { host, optional } of listenHosts(this.config.listen_addresses)) {
      const srv = createServer({ noDelay: true, keepAlive: true }, onConnection);
      try {
        await new Promise<void>((resolve, reject) => {
          srv.once('error', reject);
          srv.listen({ host, port, backlog: 511 }, () => resolve());
        });
      } catch (err) {
        if (optional) continue;
        throw err;
      }
      const a = srv.address();
      if (typeof a === 'object' && a) port = a.port;
      this.listeners.push(srv);
      this.log.info({ host, port }, 'listening');
    }
  }

  /** Shutdown as pgpool: smart waits for sessions, fast ends them with 57P01, immediate drops. */
  stop(mode: ShutdownMode): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop(mode);
    return this.stopping;
  }

  private async doStop(mode: ShutdownMode): Promise<void> {
    this.log.info({ mode }, 'shutting down');
    this.cluster.stop();
    await Promise.all(this.listeners.map((l) => new Promise((r) => l.close(r))));
    this.registry.rejectWaiters(new ClientError('FATAL', SqlState.AdminShutdown, 'terminating connection due to administrator command'));
    if (mode === 'smart') await this.waitForSessions(SMART_SHUTDOWN_LIMIT_MS);
    const bye = new ClientError('FATAL', SqlState.AdminShutdown, 'terminating connection due to administrator command');
    for (const s of this.sessions) {
      if (mode === 'immediate') s.close('immediate shutdown');
      else s.fail(bye);
    }
    this.pool.closeAll();
  }

  private waitForSessions(limitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + limitMs;
      const poll = () => {
        if (this.sessions.size === 0 || Date.now() >= deadline) resolve();
        else setTimeout(poll, 100);
      };
      poll();
    });
  }
}
