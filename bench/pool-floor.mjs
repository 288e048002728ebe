// The floor of a session pooler written for Node.js, for the workload where every transaction
// opens a new client connection (pgbench -C): the least protocol a pooler must speak, and nothing
// else. It answers an SSLRequest with 'N', takes any StartupMessage as it comes (no check, no
// authentication), lends the client an idle server connection (opened once, to the database and
// user the bench uses) and welcomes it with that connection's own ParameterStatus set, passes
// bytes both ways, and at the client's Terminate resets the server connection (DISCARD ALL) and
// pools it again. It moves bytes as Sluice does (Sluice's own client transport and slab reads,
// writes straight to the socket, Nagle off), so what it costs per new connection is what Sluice
// would cost if its sessions, routing, admin and metrics were free.
// Usage (after npm run build): node bench/pool-floor.mjs LISTEN_PORT PG_HOST PG_PORT [USER] [DATABASE]
import net from 'node:net';
import { nodeEndpoint } from '../dist/backend/endpoint.js';
import { acceptClients } from '../dist/net/client-transport.js';
import { onChunks, SlabReads, withSlabReads } from '../dist/net/slab-reads.js';

const [listenPort, pgHost, pgPort, user = 'postgres', database = 'postgres'] = process.argv.slice(2);
const target = nodeEndpoint(pgHost, Number(pgPort));
const SSL_REQUEST = 80877103;
const NO = Buffer.from('N');
const AUTH_OK = Buffer.from([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
const DISCARD = query('DISCARD ALL');

function query(sql) {
  const b = Buffer.alloc(6 + Buffer.byteLength(sql));
  b[0] = 0x51;
  b.writeUInt32BE(b.length - 1, 1);
  b.write(sql, 5);
  return b;
}

function startupMessage() {
  const body = Buffer.from(`user\0${user}\0database\0${database}\0\0`);
  const b = Buffer.alloc(8 + body.length);
  b.writeUInt32BE(b.length, 0);
  b.writeUInt32BE(196608, 4);
  body.copy(b, 8);
  return b;
}

/** The chunk ends with a ReadyForQuery (the server's last message of an exchange). */
const endsReady = (c) => c.length >= 6 && c[c.length - 6] === 0x5a && c.readUInt32BE(c.length - 5) === 5;

const idle = [];
const waiting = [];

/** A server connection, started (trust authentication): what follows AuthenticationOk is its welcome. */
function openServer(done) {
  const reads = new SlabReads();
  const socket = withSlabReads(net.connect({ ...target, noDelay: true, onread: reads.options() }), reads);
  const server = { socket, welcome: null, client: null, resetting: false };
  let got = [];
  socket.on('connect', () => socket.write(startupMessage()));
  socket.on('error', () => socket.destroy());
  onChunks(socket, (c) => {
    if (server.welcome === null) {
      got.push(Buffer.from(c));
      const all = Buffer.concat(got);
      if (!endsReady(all)) return;
      // AuthenticationOk (9 bytes) first: the rest is the parameters, key data and ReadyForQuery.
      server.welcome = Buffer.concat([AUTH_OK, all.subarray(9)]);
      got = null;
      return done(server);
    }
    if (server.client) return void server.client.write(c);
    if (server.resetting && endsReady(c)) {
      server.resetting = false;
      release(server);
    }
  });
}

function release(server) {
  const next = waiting.shift();
  if (next) next(server);
  else idle.push(server);
}

/** An idle server connection, or a new one (as a session pooler without limits). */
function acquire(give) {
  const s = idle.pop();
  if (s) return give(s);
  waiting.push(give);
  openServer(release);
}

function onClient(client) {
  let server = null;
  let pending = null;
  let started = false;
  /** Bytes of the client's current message still to come in later chunks. */
  let rest = 0;
  /** Before the server connection is there (a client that sends ahead of its welcome), bytes wait. */
  const early = [];
  const forward = (c) => (server ? server.socket.write(c) : early.push(Buffer.from(c)));
  let gone = false;
  const end = () => {
    gone = true;
    if (server && server.client === client) {
      server.client = null;
      server.resetting = true;
      server.socket.write(DISCARD);
    }
    server = null;
    client.destroySoon();
  };
  client.bind({
    data(chunk) {
      let c = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      while (!started) {
        if (c.length < 8) return void (pending = Buffer.from(c));
        const len = c.readUInt32BE(0);
        if (c.length < len) return void (pending = Buffer.from(c));
        if (c.readUInt32BE(4) === SSL_REQUEST) client.write(NO);
        else {
          started = true;
          acquire((s) => {
            if (gone) return release(s);
            server = s;
            s.client = client;
            client.write(s.welcome);
            for (const b of early.splice(0)) s.socket.write(b);
          });
        }
        c = c.subarray(len);
      }
      if (c.length === 0) return;
      // The client's messages go on as they come; its Terminate ends the session.
      let at = rest;
      while (at + 5 <= c.length) {
        if (c[at] === 0x58) {
          if (at > 0) forward(c.subarray(0, at));
          return end();
        }
        at += 1 + c.readUInt32BE(at + 1);
      }
      rest = Math.max(0, at - c.length);
      forward(c);
    },
    end,
    error: end,
    close: end,
    drain() {},
  });
}

const srv = net.createServer({ pauseOnConnect: true });
const accept = acceptClients(srv, onClient, () => undefined, 60);
srv.once('listening', () => accept(true));
srv.listen(Number(listenPort), '127.0.0.1');
