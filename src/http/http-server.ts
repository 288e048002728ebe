import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from '../log/logger';
import { nodeRows } from '../admin/views';
import { boundPort, listenAll } from '../util/listen';
import type { HttpHost } from './host';
import { STATUS_PAGE } from './page';
import { healthProbe, primaryProbe, ProbeResult, replicaProbe } from './probes';
import { statusFacts } from './status';
import { StatusHistory } from './history';

const PROBES: Record<string, (h: HttpHost) => ProbeResult> = {
  '/health': healthProbe,
  '/primary': primaryProbe,
  '/replica': replicaProbe,
};

/**
 * http_listen_addresses:http_port: /metrics for Prometheus, Patroni-style probes for load
 * balancers (HAProxy's `option httpchk OPTIONS /primary`), /nodes, and the status page. Read
 * only: nothing here changes Sluice, and nothing here shows a password.
 */
export class HttpServer {
  private readonly servers: Server[] = [];
  /** The status page's charts (sampled only while the port is open). */
  private readonly history: StatusHistory;

  constructor(
    private readonly h: HttpHost,
    private readonly log: Logger,
  ) {
    this.history = new StatusHistory(h);
  }

  async start(addresses: string, port: number): Promise<void> {
    const make = () => {
      const srv = createServer((req, res) => void this.handle(req, res));
      srv.keepAliveTimeout = 5000;
      return srv;
    };
    this.servers.push(...(await listenAll(addresses, port, make)));
    this.history.start();
    this.log.info({ addresses, port: this.port }, 'HTTP listening');
  }

  get port(): number {
    return boundPort(this.servers);
  }

  async stop(): Promise<void> {
    this.history.stop();
    await Promise.all(
      this.servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
    this.servers.length = 0;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const method = req.method ?? 'GET';
    if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) {
      res.writeHead(405, { allow: 'GET, HEAD, OPTIONS' }).end();
      return;
    }
    try {
      const probe = PROBES[path];
      if (probe) {
        const r = probe(this.h);
        this.send(res, method, r.ok ? 200 : 503, 'application/json', JSON.stringify(r.body));
      } else if (path === '/metrics') {
        const m = await this.h.metrics.scrape();
        this.send(res, method, 200, m.contentType, m.body);
      } else if (path === '/nodes') {
        this.send(res, method, 200, 'application/json', JSON.stringify(await nodeRows(this.h)));
      } else if (path === '/status.json') {
        this.send(res, method, 200, 'application/json', JSON.stringify(statusFacts(this.h, this.history.list())));
      } else if (path === '/') {
        this.send(res, method, 200, 'text/html; charset=utf-8', STATUS_PAGE);
      } else {
        this.send(res, method, 404, 'application/json', JSON.stringify({ error: `no such endpoint: ${path}` }));
      }
    } catch (err) {
      this.log.error({ err, path }, 'HTTP request failed');
      if (!res.headersSent) this.send(res, method, 500, 'application/json', JSON.stringify({ error: (err as Error).message }));
    }
  }

  private send(res: ServerResponse, method: string, status: number, type: string, body: string): void {
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
    res.end(method === 'HEAD' ? undefined : body);
  }
}
