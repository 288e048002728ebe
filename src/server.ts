// The composition root: it builds every component from the config, wires them to one another
// (the hosts and contexts the layers below ask for), and owns the listening sockets, the live
// sessions and shutdown. One concern, read top to bottom; its parts that are not wiring live in
// src/server/ (the reload's application, the metrics' view).
import { createServer, Server as NetServer } from 'node:net';
import { AdminCommands } from './admin/commands';
import type { AdminHost, ShutdownMode } from './admin/host';
import { PcpServer } from './admin/pcp/listener';
import { ShowCommands } from './admin/show';
import { loadConfig } from './config/load';
import { BackendStats } from './cluster/backend-stats';
import { PauseGate } from './util/gate';
import type { SessionInfo } from './session/registry';
import { boundPort, CLIENT_KEEPALIVE_S, listenAll, setInheritedSocketOptions } from './util/listen';
import { acceptClients, ClientTransport } from './net/client-transport';
import { connectBackend } from './backend/connect';
import { AuthQuery } from './auth/auth-query';
import { Authenticator } from './auth/authenticator';
import { parseSecret } from './protocol/auth/secret';
import { backendTls, BackendTlsSettings, serverTls, ServerTls } from './backend/tls';
import { Cidr, parseCidrList } from './util/cidr';
import { Clock, systemClock } from './util/clock';
import type { Rng } from './util/rng';
import { HttpServer } from './http/http-server';
import type { HttpHost } from './http/host';
import { RecentEvents } from './metrics/events';
import { Metrics } from './metrics/metrics';
import { metricsSource } from './server/metrics-source';
import { applyReload } from './server/reload';
import { cancelPeers, groupCoordination, makeWatchdog } from './server/coordination';
import { ClusterEvent, EventCommand, eventName } from './cluster/event-command';
import type { Watchdog, WatchdogView } from './coord/watchdog';
import type { BackendConnection, NodeAddress } from './backend/connection';
import { CatalogCache } from './cluster/catalog-cache';
import { ClusterManager } from './cluster/manager';
import type { ReplicationMonitor } from './cluster/replication';
import type { Config } from './config/load';
import type { Logger } from './log/logger';
import { PoolSet } from './pool/pool-set';
import { lendsAnywhere, poolModeOf } from './pool/pool-key';
import { SharedListeners } from './session/shared-listen';
import { CompiledRouting, routingOptions } from './router/options';
import { loadParser } from './router/parse-tree';
import { Errors } from './protocol/errors';
import { SessionRegistry } from './session/registry';
import { Session } from './session/session';
import { LiveSet } from './util/live-set';
import type { SessionContext } from './session/context';

export type { ShutdownMode };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const VERSION: string = require('../package.json').version;

/** How long a smart shutdown waits for sessions before it turns fast. */
const SMART_SHUTDOWN_LIMIT_MS = 300_000;

export interface ServerOptions {
  /** -D: forget the saved node statuses. */
  discardStatus?: boolean;
  /** Where the config came from (reload reads it again); none for an inline config. */
  configFile?: string;
  /** A stop asked for over PCP (the CLI exits after it); default: stop this server. */
  stopRequested?: (mode: ShutdownMode) => void;
  /** Where load balancing draws its random numbers (default Math.random). */
  rng?: Rng;
  /** Time for sessions and the cluster (default the system's). */
  clock?: Clock;
}

/** The composition root: builds every component from a config snapshot and owns their life. */
export class Server implements AdminHost, HttpHost {
  readonly cluster: ClusterManager;
  readonly startedAt = new Date();
  readonly version = VERSION;
  readonly metrics: Metrics;
  readonly events = new RecentEvents();
  private readonly http: HttpServer;
  readonly backendStats: BackendStats;
  readonly gate: PauseGate;
  readonly admission: PauseGate;
  readonly commands: AdminCommands;
  private readonly pcp: PcpServer;
  readonly pool: PoolSet;
  readonly registry: SessionRegistry;
  /** Transaction mode's shared listening connections, one per database. */
  private readonly sharedListen: SharedListeners;
  /** Compiled from the config; replaced by a reload. */
  routing: CompiledRouting;
  readonly catalogs: CatalogCache;
  readonly auth: Authenticator;
  private readonly authQuery: AuthQuery;
  /** The client-facing TLS context (ssl); rebuilt by a reload. */
  private tls: ServerTls | null;
  /** backend_sslmode and its files, read with the config (and again by a reload). */
  private toNodesTls: BackendTlsSettings;
  private readonly trustedProxies: readonly Cidr[];
  /** Reads sent to each node (pgpool's select_cnt). */
  readonly selectCount: number[];
  /** The config snapshot in force: replaced as a whole by a reload. */
  private config_: Config;
  private readonly listeners: NetServer[] = [];
  private readonly sessions_ = new LiveSet<Session>();
  private nextSessionId = 1;
  private stopping: Promise<void> | null = null;
  private readonly clock: Clock;
  /** Once a second: sessions whose message is held too long are reported (session/hold.ts). */
  private readonly heldWatch: NodeJS.Timeout;
  /** The other instances, through etcd (use_watchdog); null when this one is alone. */
  private watchdog_: Watchdog | null = null;
  /** event_command, run for each cluster event in turn. */
  readonly eventCommand: EventCommand;

  private constructor(
    config: Config,
    readonly log: Logger,
    private readonly opts: ServerOptions,
  ) {
    this.config_ = config;
    this.clock = opts.clock ?? systemClock;
    this.tls = serverTls(config);
    this.toNodesTls = backendTls(config);
    this.trustedProxies = parseCidrList(config.proxy_protocol_trusted_addresses);
    this.metrics = new Metrics(metricsSource(this));
    this.http = new HttpServer(this, log.child({ component: 'http' }));
    this.backendStats = new BackendStats(config.backend.length, (node, seconds) => this.metrics.statementDuration.observe(node, seconds));
    this.gate = new PauseGate(config.failover_hold_timeout * 1000);
    this.admission = new PauseGate(config.recovery_timeout * 1000, {
      message: 'online recovery is in progress',
      setting: 'recovery_timeout',
      until: 'its second stage did not end',
    });
    this.commands = new AdminCommands(this);
    this.pcp = new PcpServer(this, this.commands, log.child({ component: 'pcp' }));
    this.pool = new PoolSet(this.poolOptions(config), log.child({ component: 'pool' }));
    this.sharedListen = new SharedListeners({
      waitForPrimary: (ms) => this.cluster.waitForPrimary(ms),
      openBackend: (node, params, key) => this.openBackend(node, params, key),
      log: log.child({ component: 'listen' }),
    });
    // Clients in transaction mode hold no server connection between transactions: max_client_conn
    // bounds them (with any [[pool]] in transaction mode, every client counts against it).
    this.registry = new SessionRegistry(lendsAnywhere(config) ? config.max_client_conn : config.num_init_children, config.reserved_connections);
    this.routing = routingOptions(config);
    this.catalogs = new CatalogCache(config.relcache_expire * 1000, log.child({ component: 'catalog' }), this.clock);
    this.selectCount = config.backend.map(() => 0);
    this.heldWatch = setInterval(() => this.reportStuck(), 1000).unref();
    this.authQuery = new AuthQuery(
      {
        settings: () => {
          const c = this.config_;
          const secret = c.auth_password ? parseSecret(c.auth_password) : this.auth.backendSecret(c.auth_user);
          return { query: c.auth_query, user: c.auth_user, database: c.auth_dbname, secret, timeoutMs: c.connect_timeout || 10_000 };
        },
        waitForPrimary: (ms) => this.cluster.waitForPrimary(ms),
        connect: (node, params, secret, timeoutMs) => connectBackend({ node, params, poolKey: '', secret, timeoutMs, tls: this.toNodesTls }),
      },
      log.child({ component: 'auth' }),
    );
    this.eventCommand = new EventCommand(
      { command: () => this.config_.event_command, cwd: () => this.config_.configDir, timeoutMs: () => this.config_.hook_timeout * 1000 },
      log.child({ component: 'event_command' }),
    );
    this.auth = new Authenticator(() => this.config_, this.authQuery, log.child({ component: 'auth' }));
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
          secret: password ? parseSecret(password) : this.auth.backendSecret(user),
          timeoutMs,
          tls: this.toNodesTls,
        }),
      {
        nodeDown: (id) => this.nodeDown(id),
        primaryFound: (id) => {
          // Said when there are sessions to carry on (at start-up there are none: the primary
          // found is in the start-up log already).
          if (this.sessions_.size > 0) log.info({ primary: id, sessions: this.sessions_.size }, 'sessions continue on the primary');
        },
        event: (kind, node, message, ok) => {
          this.events.add(kind, node, message);
          this.clusterEvent({ event: eventName(kind, message), node, ok: ok ?? true, detail: message });
          if (kind === 'failover') this.metrics.failovers.inc();
          else if (kind === 'failback') this.metrics.failbacks.inc();
          else if (kind === 'recovery') this.metrics.recoveries.inc({ result: ok ? 'done' : 'failed' });
        },
        healthMeasured: (node, ms) => this.metrics.healthCheckDuration.observe({ node: String(node) }, ms / 1000),
      },
      log.child({ component: 'cluster' }),
      this.clock,
    );
  }

  static async start(config: Config, log: Logger, opts: ServerOptions = {}): Promise<Server> {
    const s = new Server(config, log, opts);
    if (s.routing.loadBalance) await loadParser();
    // In a group, this instance acts for nobody until its watchdog says it leads.
    if (config.use_watchdog) s.cluster.coordinate(groupCoordination(config, () => s.watchdog_));
    await s.cluster.start(opts.discardStatus ?? false);
    await s.listen();
    try {
      await s.pcp.start();
      if (config.http_port > 0) await s.http.start(config.http_listen_addresses, config.http_port);
      if (config.use_watchdog) {
        s.watchdog_ = makeWatchdog(config, s.cluster, { port: s.port, pcpPort: s.pcpPort, httpPort: s.httpPort }, VERSION, s.clock, log.child({ component: 'watchdog' }), s.events, (name) =>
          s.clusterEvent({ event: 'leader_change', node: -1, ok: true, detail: `${name} is the watchdog leader` }),
        );
        await s.watchdog_.start();
        s.registry.setPeers(cancelPeers(s.watchdog_, log.child({ component: 'watchdog' })));
      }
    } catch (err) {
      await s.stop('immediate');
      throw err;
    }
    return s;
  }

  /** The port the proxy listens on (useful when the config said 0). */
  get port(): number {
    return boundPort(this.listeners);
  }

  get pcpPort(): number {
    return this.pcp.port;
  }

  /** The HTTP port (0 when http_port is 0). */
  get httpPort(): number {
    return this.http.port;
  }

  get config(): Config {
    return this.config_;
  }

  /** A cluster event for event_command: run by this instance alone, or by the watchdog leader. */
  private clusterEvent(e: Omit<ClusterEvent, 'epoch' | 'time'>): void {
    // In a group, only its leader (and none before this instance has joined: start-up).
    if (this.config_.use_watchdog && !this.watchdog_?.isLeader) return;
    this.eventCommand.notify({ ...e, epoch: this.cluster.topology.epoch, time: new Date(this.clock.now()) });
  }

  leaderPcp(): { host: string; port: number } | 'none' | null {
    if (!this.watchdog_ || this.watchdog_.isLeader) return null;
    const v = this.watchdog_.view();
    // Named leader but not acting as one (stepping down, etcd away): nobody to send it to; never itself.
    const leader = v.leader === v.self.name ? undefined : v.members.find((m) => m.name === v.leader);
    return leader ? { host: leader.host, port: leader.pcpPort } : 'none';
  }

  watchdog(): WatchdogView | null {
    return this.watchdog_?.view() ?? null;
  }

  async groupRound(): Promise<void> {
    await this.watchdog_?.roundNow();
  }

  get serving(): boolean {
    return this.stopping === null;
  }

  recentEvents() {
    return this.events.list();
  }

  poolCounts() {
    return this.pool.counts(this.cluster.topology.nodes.length);
  }

  private poolOptions(c: Config) {
    return {
      maxPerNode: c.num_init_children * c.max_pool,
      idleLifetimeMs: c.connection_life_time * 1000,
      resetQueries: c.reset_query_list.split(';').map((q) => q.trim()).filter(Boolean),
      resetTimeoutMs: 10_000,
      waited: (seconds: number) => this.metrics.clientWait.observe(0, seconds),
      groupLimit: c.default_pool_size,
      waitTimeoutMs: c.query_wait_timeout * 1000,
      waitedTooLong: () => Errors.queryWaitTimeout(c.query_wait_timeout),
    };
  }

  sessions(): SessionInfo[] {
    return [...this.sessions_].map((s) => s.info());
  }

  get sessionCount(): number {
    return this.sessions_.size;
  }

  private reportStuck(): void {
    const now = this.clock.now();
    for (const s of this.sessions_) {
      const kind = s.reportStuck(now);
      if (kind) this.metrics.heldTooLong.inc({ reason: kind });
    }
  }

  /** Online recovery's second stage: idle sessions leave per client_idle_limit_in_recovery. */
  onlineRecovery(on: boolean): void {
    for (const s of this.sessions_) s.onlineRecovery(on);
  }

  /** A stop asked for over PCP. */
  requestStop(mode: ShutdownMode): void {
    if (this.opts.stopRequested) this.opts.stopRequested(mode);
    else void this.stop(mode);
  }

  /**
   * SIGHUP, pcp_reload_config, sluicectl reload: the file is read, validated and compared; then
   * every change is applied, or none (a restart-only key changed, or the file is not valid: the
   * error names the key and the running config stays). Sessions are not interrupted.
   */
  reload(): void {
    if (!this.opts.configFile) {
      this.log.info('config given inline (no file): nothing to reload');
      return;
    }
    try {
      const next = loadConfig(this.opts.configFile);
      const tls = serverTls(next);
      const toNodes = backendTls(next);
      const changed = applyReload(this.config_, next, {
        config: (c) => (this.config_ = c),
        routing: (r) => {
          this.routing = r;
          // Until it is loaded, a statement only the parser can settle goes to the primary.
          if (r.loadBalance) loadParser().catch((err: unknown) => this.log.error({ err }, 'cannot load the SQL parser'));
        },
        pool: (c) => (this.pool.opts = this.poolOptions(c)),
        catalogs: (ms) => (this.catalogs.expireMs = ms),
        gates: (holdMs, recoveryMs) => {
          this.gate.holdMs = holdMs;
          this.admission.holdMs = recoveryMs;
        },
        nodes: (c) => {
          this.backendStats.grow(c.backend.length);
          while (this.selectCount.length < c.backend.length) this.selectCount.push(0);
          this.cluster.reconfigure(c);
        },
        level: (l) => (this.log.level = l),
        sessions: () => {
          for (const s of this.sessions_) s.settings.reload();
        },
      });
      this.tls = tls;
      this.toNodesTls = toNodes;
      this.metrics.reloads.inc({ result: 'applied' });
      this.events.add('reload', null, changed.length > 0 ? `config reloaded: ${changed.join(', ')}` : 'config reloaded: nothing changed');
      this.log.info({ file: this.opts.configFile, changed }, 'config reloaded');
    } catch (err) {
      this.metrics.reloads.inc({ result: 'refused' });
      this.events.add('reload', null, `reload refused: ${(err as Error).message}`);
      this.log.error({ file: this.opts.configFile, err: (err as Error).message }, 'config reload refused; the running config stays');
      throw err;
    }
  }

  get replication(): ReplicationMonitor {
    return this.cluster.replication;
  }

  private openBackend = (node: NodeAddress, params: ReadonlyMap<string, string>, key: string): Promise<BackendConnection> =>
    connectBackend({ node, params, poolKey: key, secret: this.auth.backendSecret(params.get('user') ?? ''), timeoutMs: this.config.connect_timeout, tls: this.toNodesTls });

  /** A node left service: pooled connections to it go, and every session lets go of it. */
  private nodeDown(id: number): void {
    this.pool.discardNode(id);
    this.sharedListen.nodeDown(id);
    for (const s of this.sessions_) s.nodeDown(id);
  }

  /**
   * What every session reads of the server. A class, not an object literal: a literal with
   * getters is made a dictionary-mode object, and every read of it on the data path (the
   * config, the clock, the statistics, the gates) was a generic property look-up, about a
   * microsecond per statement in all. The getters, on the prototype, read the value in force
   * after a reload.
   */
  private context(): SessionContext {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const server = this;
    class ServerContext implements SessionContext {
      readonly pool = server.pool;
      readonly registry = server.registry;
      readonly listeners = server.sharedListen;
      readonly log = server.log.child({ component: 'session' });
      readonly catalogs = server.catalogs;
      readonly rng = server.opts.rng ?? Math.random;
      readonly clock = server.clock;
      readonly replication = server.cluster.replication;
      readonly openBackend = server.openBackend;
      readonly gate = server.gate;
      readonly admission = server.admission;
      readonly backendStats = server.backendStats;
      readonly auth = server.auth;
      readonly trustedProxies = server.trustedProxies;
      readonly local = new ShowCommands(server, VERSION);
      get config(): Config {
        return server.config_;
      }
      get routing(): CompiledRouting {
        return server.routing;
      }
      get primary() {
        return server.cluster.primary;
      }
      get holdTimeoutMs(): number {
        return server.config_.failover_hold_timeout * 1000;
      }
      get canFailOver(): boolean {
        return server.cluster.topology.nodes.length > 1;
      }
      get tls() {
        return server.tls;
      }
      waitForPrimary(timeoutMs: number, not?: number) {
        return server.cluster.waitForPrimary(timeoutMs, not);
      }
      node(id: number) {
        return server.cluster.topology.nodes[id];
      }
      nodeViews() {
        return server.cluster.nodeViews();
      }
      countSelect(node: number): void {
        server.selectCount[node]!++;
      }
      sessionPinned(reason: string): void {
        server.metrics.sessionPins.inc({ reason });
      }
      confirmDown(node: number, shutdown: boolean) {
        return server.cluster.confirmDown(node, shutdown);
      }
      lends(params: ReadonlyMap<string, string>): boolean {
        return poolModeOf(server.config_, params.get('database') ?? '', params.get('user') ?? '') === 'transaction';
      }
    }
    return new ServerContext();
  }

  private async listen(): Promise<void> {
    const ctx = this.context();
    const onClient = (client: ClientTransport) => {
      if (this.stopping) {
        client.write(Errors.shuttingDown().toFrame());
        client.destroySoon();
        return;
      }
      const entry = this.sessions_.add(new Session(client, ctx, this.nextSessionId++, () => this.sessions_.delete(entry)));
    };
    const onAcceptError = (err: Error) => this.log.warn({ err: err.message }, 'could not accept a client connection');
    const make = () => {
      const srv = createServer({ pauseOnConnect: true });
      const accept = acceptClients(srv, onClient, onAcceptError, CLIENT_KEEPALIVE_S);
      srv.once('listening', () => accept(!setInheritedSocketOptions(srv)));
      return srv;
    };
    this.listeners.push(...(await listenAll(this.config.listen_addresses, this.config.port, make)));
    this.log.info({ addresses: this.config.listen_addresses, port: this.port }, 'listening');
  }

  /** Shutdown as pgpool: smart waits for sessions, fast ends them with 57P01, immediate drops. */
  stop(mode: ShutdownMode): Promise<void> {
    if (!this.stopping) this.stopping = this.doStop(mode);
    return this.stopping;
  }

  private async doStop(mode: ShutdownMode): Promise<void> {
    this.log.info({ mode }, 'shutting down');
    clearInterval(this.heldWatch);
    this.cluster.stop();
    this.gate.open();
    this.admission.open();
    this.events.add('shutdown', null, `${mode} shutdown`);
    await this.pcp.stop();
    // Leaves the group at once (its leadership too), rather than when its lease expires.
    await this.watchdog_?.stop();
    // Stop accepting; close()'s callback waits for every connection, which is the sessions' to end.
    for (const l of this.listeners) l.close();
    this.registry.rejectWaiters(Errors.adminShutdown());
    if (mode === 'smart') await this.waitForSessions(SMART_SHUTDOWN_LIMIT_MS);
    const bye = Errors.adminShutdown();
    for (const s of this.sessions_) {
      if (mode === 'immediate') s.close('immediate shutdown');
      else s.fail(bye);
    }
    this.pool.closeAll();
    this.sharedListen.stop();
    this.authQuery.close();
    // Last: while sessions drain, /health answers 503 so a load balancer stops sending clients.
    await this.http.stop();
  }

  private waitForSessions(limitMs: number): Promise<void> {
    return new Promise((resolve) => {
      const deadline = Date.now() + limitMs;
      const poll = () => {
        if (this.sessions_.size === 0 || Date.now() >= deadline) resolve();
        else setTimeout(poll, 100);
      };
      poll();
    });
  }
}
