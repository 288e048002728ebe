import t from 'tap';
import type { Test } from 'tap';
import { createServer, connect, Server, Socket } from 'node:net';
import { once } from 'node:events';
import { acceptClients, ClientTransport, SocketTransport, TcpClient, TransportEvents } from '../../src/net/client-transport';
import { acceptWithSlabReads } from '../../src/net/slab-reads';

/** Every accepted connection, as a TcpClient (the listening handle's own callback) or a SocketTransport. */
async function listen(t: Test, kind: 'handle' | 'socket', onClient: (c: ClientTransport) => void): Promise<number> {
  const srv: Server = createServer({ pauseOnConnect: true });
  if (kind === 'handle') {
    const accept = acceptClients(srv, onClient, (err) => t.fail(err.message), 60);
    srv.once('listening', () => accept(true));
  } else {
    srv.on('connection', (s: Socket) => onClient(new SocketTransport(acceptWithSlabReads(s))));
  }
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  t.teardown(() => srv.close());
  return (srv.address() as { port: number }).port;
}

function events(over: Partial<TransportEvents>): TransportEvents {
  return { data: () => undefined, end: () => undefined, error: () => undefined, close: () => undefined, drain: () => undefined, ...over };
}

/** Polls to a deadline. */
async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setImmediate(r));
  }
}

function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7) % 251;
  return b;
}

for (const kind of ['handle', 'socket'] as const) {
  t.test(`${kind}: echoes 8 MB with backpressure both ways, chunks intact`, async (t) => {
    let made = null as ClientTransport | null;
    let paused = 0;
    let drained = 0;
    const port = await listen(t, kind, (c) => {
      made = c;
      c.bind(
        events({
          // The chunk itself goes back, not a copy: it must stay intact while libuv still writes it.
          data: (chunk) => {
            if (!c.write(chunk)) {
              paused++;
              c.pause();
            }
          },
          drain: () => {
            drained++;
            c.resume();
          },
        }),
      );
    });
    const client = connect(port, '127.0.0.1');
    const payload = pattern(8 << 20);
    const got: Buffer[] = [];
    let n = 0;
    // The client reads slowly at first, so the server's writes queue and it must pause.
    client.pause();
    client.write(payload);
    await until(() => paused > 0);
    client.on('data', (d: Buffer) => {
      got.push(d);
      n += d.length;
    });
    client.resume();
    await until(() => n >= payload.length);
    t.ok(Buffer.concat(got).equals(payload), 'echoed intact');
    if (kind === 'handle') t.ok(made instanceof TcpClient, 'the accepted connection is a TcpClient (no net.Socket made)');
    t.ok(paused > 0 && drained > 0, `paused ${paused} times, each resumed on drain (${drained})`);
    client.destroy();
  });

  t.test(`${kind}: destroySoon sends every queued byte, then FIN; the peer's address is known`, async (t) => {
    const big = pattern(4 << 20);
    let closed = false;
    let address: [string, number] = ['', 0];
    let queued: () => void;
    const writeQueued = new Promise<void>((r) => (queued = r));
    const port = await listen(t, kind, (c) => {
      c.bind(events({ close: () => (closed = true) }));
      address = [c.remoteAddress, c.remotePort];
      t.equal(c.write(big), false, 'the write is queued (the client is not reading): destroySoon must wait for it');
      c.destroySoon();
      t.notOk(c.writable, 'not writable once closing');
      t.notOk(c.write(Buffer.from('late')), 'a write after destroySoon is refused');
      queued();
    });
    const client = connect(port, '127.0.0.1');
    client.pause();
    await once(client, 'connect');
    const got: Buffer[] = [];
    // Only now does the client read: what the kernel could not take waited in libuv's queue.
    await writeQueued;
    client.on('data', (d: Buffer) => got.push(d));
    client.resume();
    await once(client, 'end');
    t.ok(Buffer.concat(got).equals(big), 'all 4 MB arrived before the end');
    t.same(address, ['127.0.0.1', client.localPort], "the peer's address and port");
    await until(() => closed);
    t.ok(closed, 'close was reported');
    client.destroy();
  });

  t.test(`${kind}: the peer's FIN is an end, then a close; a reset is an error, then a close`, async (t) => {
    const seen: string[][] = [];
    let allClosed: () => void;
    const closedTwice = new Promise<void>((r) => (allClosed = r));
    const port = await listen(t, kind, (c) => {
      const mine: string[] = [];
      seen.push(mine);
      c.bind(
        events({
          data: (d) => mine.push(`data ${d.length}`),
          end: () => mine.push('end'),
          error: (e) => mine.push(`error ${(e as NodeJS.ErrnoException).code}`),
          close: () => {
            mine.push('close');
            if (seen.length === 2 && seen.every((s) => s.includes('close'))) allClosed();
          },
        }),
      );
    });
    const a = connect(port, '127.0.0.1');
    await once(a, 'connect');
    a.end('abc');
    const b = connect(port, '127.0.0.1');
    await once(b, 'connect');
    b.write('x');
    await until(() => seen[1]?.[0] === 'data 1');
    b.resetAndDestroy();
    await closedTwice;
    t.same(seen[0], ['data 3', 'end', 'close'], 'FIN: data, end, close');
    t.equal(seen[1]![0], 'data 1');
    t.same(seen[1]!.slice(1), ['error ECONNRESET', 'close'], 'RST: error ECONNRESET, close');
    a.destroy();
  });
}
