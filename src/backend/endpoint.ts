import { join } from 'node:path';
import type { NetConnectOpts } from 'node:net';

/**
 * Where a node listens, as pgpool reads `backend_hostname`: a value starting with `/` is the
 * directory of the server's Unix-domain socket, '' means that socket in /tmp, anything else is
 * a host name or address for TCP. A local server is cheaper to reach through its socket: no TCP
 * stack on either side of every message.
 */
export function nodeEndpoint(host: string, port: number): NetConnectOpts {
  return isSocketDir(host) ? { path: socketPath(host, port) } : { host, port };
}

export function isSocketDir(host: string): boolean {
  return host === '' || host.startsWith('/');
}

/** libpq's name for the socket: `<dir>/.s.PGSQL.<port>`. */
export function socketPath(dir: string, port: number): string {
  return join(dir || '/tmp', `.s.PGSQL.${port}`);
}

/** How a node's address reads in messages: host:port, or the socket's path. */
export function endpointName(host: string, port: number): string {
  return isSocketDir(host) ? socketPath(host, port) : `${host}:${port}`;
}
