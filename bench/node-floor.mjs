// The floor of a proxy written for Node.js: each client gets its own connection to PostgreSQL
// and bytes are passed on both ways, with no protocol, pooling or routing at all: the cheapest
// proxy node:net allows. It reads as Sluice does (Sluice's slab reads, Nagle off) and writes
// through socket.write, as any node:net program does; Sluice writes to the sockets' handles
// (src/net/stream-handle.ts), which costs less per write, so on the lightest workloads Sluice can
// come in under this floor. What Sluice costs above it is its own logic, less that saving.
// Usage (after npm run build): node bench/node-floor.mjs LISTEN_PORT PG_HOST PG_PORT
import net from 'node:net';
import { nodeEndpoint } from '../dist/backend/endpoint.js';
import { acceptWithSlabReads, onChunks, SlabReads, withSlabReads } from '../dist/net/slab-reads.js';

const [listenPort, pgHost, pgPort] = process.argv.slice(2);
const target = nodeEndpoint(pgHost, Number(pgPort));

const server = net.createServer({ noDelay: true, pauseOnConnect: true }, (accepted) => {
  const reads = new SlabReads();
  const upstream = withSlabReads(net.connect({ ...target, noDelay: true, onread: reads.options() }), reads);
  const client = acceptWithSlabReads(accepted);
  const early = [];
  upstream.on('connect', () => {
    for (const c of early.splice(0)) upstream.write(c);
  });
  const closeBoth = () => {
    client.destroy();
    upstream.destroy();
  };
  upstream.on('error', closeBoth).on('close', closeBoth);
  client.on('error', closeBoth).on('close', closeBoth);
  onChunks(upstream, (c) => client.write(c));
  onChunks(client, (c) => (upstream.connecting ? early.push(c) : upstream.write(c)));
});
server.listen(Number(listenPort), '127.0.0.1');
