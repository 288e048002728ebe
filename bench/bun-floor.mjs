// The floor of a proxy on Bun's own sockets (Bun.listen / Bun.connect, not its node:net
// compatibility): as node-floor.mjs, each client gets its own connection to PostgreSQL and bytes
// are passed on both ways, with no protocol, pooling or routing at all, Nagle off.
// Usage: bun bench/bun-floor.mjs LISTEN_PORT PG_HOST PG_PORT
// (Bun for the bench only: npm install --prefix /tmp/bun-rt bun)
/* global Bun */

const [listenPort, pgHost, pgPort] = process.argv.slice(2);

/** Writes what it can now; keeps the rest, in order, for the socket's drain. */
function send(peer, data) {
  const state = peer.data;
  if (state.pending.length > 0) {
    state.pending.push(Buffer.from(data));
    return;
  }
  const n = peer.write(data);
  if (n < data.byteLength) state.pending.push(Buffer.from(data.subarray(n)));
}

function drain(sock) {
  const state = sock.data;
  while (state.pending.length > 0) {
    const chunk = state.pending[0];
    const n = sock.write(chunk);
    if (n < chunk.byteLength) {
      state.pending[0] = chunk.subarray(n);
      return;
    }
    state.pending.shift();
  }
}

function closeBoth(sock) {
  const state = sock.data;
  if (state.closed) return;
  state.closed = true;
  state.peer?.end();
}

Bun.listen({
  hostname: '127.0.0.1',
  port: Number(listenPort),
  socket: {
    open(client) {
      client.setNoDelay?.(true);
      // Bytes the client sends before PostgreSQL has answered the connect wait here.
      client.data = { peer: null, pending: [], early: [], closed: false };
      Bun.connect({
        hostname: pgHost,
        port: Number(pgPort),
        socket: {
          open(upstream) {
            upstream.setNoDelay?.(true);
            upstream.data = { peer: client, pending: [], closed: false };
            client.data.peer = upstream;
            for (const c of client.data.early.splice(0)) send(upstream, c);
            if (client.data.closed) upstream.end();
          },
          data(upstream, chunk) {
            send(client, chunk);
          },
          drain,
          close: closeBoth,
          error: closeBoth,
        },
      }).catch(() => client.end());
    },
    data(client, chunk) {
      const upstream = client.data.peer;
      if (upstream === null) client.data.early.push(Buffer.from(chunk));
      else send(upstream, chunk);
    },
    drain,
    close: closeBoth,
    error: closeBoth,
  },
});
