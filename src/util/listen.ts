import { createServer, Server, Socket } from 'node:net';

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

/**
 * Listens on every address of a listen_addresses list, on one port (port 0: the first listener
 * picks a free port and the others take the same). An address that cannot be had is an error,
 * except ::1 for 'localhost' on a machine without IPv6.
 */
export async function listenAll<S extends Server>(spec: string, port: number, make: () => S): Promise<S[]> {
  const servers: S[] = [];
  for (const { host, optional } of listenHosts(spec)) {
    const srv = make();
    try {
      await listenOn(srv, { host, port, backlog: 511 });
    } catch (err) {
      if (optional) continue;
      for (const s of servers) s.close();
      throw err;
    }
    const a = srv.address();
    if (typeof a === 'object' && a) port = a.port;
    servers.push(srv);
  }
  return servers;
}

/** Keepalive for client connections: probes after a minute of silence (libuv's interval and count). */
export const CLIENT_KEEPALIVE_S = 60;

/**
 * TCP_NODELAY and keepalive set once on a listening socket, from which Linux copies them to
 * every socket it accepts: five setsockopt calls fewer per client connection (TCP_NODELAY,
 * SO_KEEPALIVE and libuv's TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT). False when this
 * is not Linux or the handle has no such methods (then each accepted socket is set itself).
 * A connection whose handshake ended in the microseconds between listen() and this call is
 * accepted without them (start-up only).
 */
export function setInheritedSocketOptions(srv: Server): boolean {
  if (process.platform !== 'linux') return false;
  const h = (srv as unknown as { _handle?: { setNoDelay?: (on: boolean) => number; setKeepAlive?: (on: boolean, seconds: number) => number } })._handle;
  if (typeof h?.setNoDelay !== 'function' || typeof h.setKeepAlive !== 'function') return false;
  return h.setNoDelay(true) === 0 && h.setKeepAlive(true, CLIENT_KEEPALIVE_S) === 0;
}

/** A TCP server for the PCP port: no Nagle delay, keepalive on. */
export const tcpServer = (onConnection: (s: Socket) => void) => (): Server => createServer({ noDelay: true, keepAlive: true }, onConnection);

export function listenOn(srv: Server, opts: { host?: string; port?: number; path?: string; backlog?: number }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(opts, () => {
      srv.off('error', reject);
      resolve();
    });
  });
}

export function boundPort(servers: readonly Server[]): number {
  const a = servers[0]?.address();
  return typeof a === 'object' && a ? a.port : 0;
}
