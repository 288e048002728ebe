import t from 'tap';
import { createServer, connect, Socket } from 'node:net';
import { once } from 'node:events';
import { SlabReads, acceptWithSlabReads, onChunks, withSlabReads } from '../../src/net/slab-reads';

/** Plays Node's part: a window first, then after each read the callback and a new window. */
function simulate(reads: SlabReads, sizes: number[], fill: (i: number) => number): Buffer[] {
  const o = reads.options();
  const gen = o.buffer as () => Buffer;
  let window = gen();
  const windows: Buffer[] = [];
  sizes.forEach((n, i) => {
    const len = Math.min(n, window.length);
    window.fill(fill(i), 0, len);
    windows.push(window);
    o.callback(len, window);
    window = gen();
  });
  return windows;
}

t.test('no window is read into twice, so every chunk keeps its bytes', async (t) => {
  const reads = new SlabReads();
  const chunks: Buffer[] = [];
  reads.listen((c) => chunks.push(c));
  const sizes = Array.from({ length: 400 }, (_, i) => [5, 120, 3000, 16384, 70000][i % 5]!);
  simulate(reads, sizes, (i) => i % 251);
  t.equal(chunks.length, sizes.length);
  let intact = 0;
  chunks.forEach((c, i) => {
    if (c.every((b) => b === i % 251)) intact++;
  });
  t.equal(intact, chunks.length, 'later reads never overwrote an earlier chunk');
});

t.test('a read that fills its window grows the next slab; small reads stay in one slab', async (t) => {
  const reads = new SlabReads();
  reads.listen(() => undefined);
  const small = simulate(reads, [100, 100, 100], () => 1);
  t.equal(small[1]!.buffer, small[0]!.buffer, 'small reads share a slab');
  t.equal(small[1]!.byteOffset, small[0]!.byteOffset + 100, 'packed one after another');
  const big = simulate(reads, [1 << 30, 1 << 30, 1 << 30], () => 2);
  t.ok(big[2]!.length > big[1]!.length, `bulk reads get bigger windows (${big[1]!.length} -> ${big[2]!.length})`);
  t.ok(big[2]!.length <= 256 * 1024, 'up to the cap');
});

t.test('chunks that arrive before anyone listens are kept for the first listener', async (t) => {
  const reads = new SlabReads();
  simulate(reads, [3], () => 7);
  const got: Buffer[] = [];
  reads.listen((c) => got.push(c));
  t.same(got.map((c) => [...c]), [[7, 7, 7]]);
});

t.test('an accepted socket given slab reads echoes, pauses, resumes and closes', async (t) => {
  let dataListeners = -1;
  const server = createServer({ pauseOnConnect: true }, (accepted) => {
    const s = acceptWithSlabReads(accepted);
    onChunks(s, (c) => {
      dataListeners = s.listenerCount('data');
      s.pause();
      // The chunk itself, not a copy: it must stay intact while libuv still writes it.
      s.write(c, () => s.resume());
    });
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const reads = new SlabReads();
  const c = withSlabReads(connect({ port, host: '127.0.0.1', onread: reads.options() }), reads);
  const payload = Buffer.alloc(3 << 20);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) % 256;
  const got: Buffer[] = [];
  let n = 0;
  const done = new Promise<void>((resolve) =>
    onChunks(c, (chunk) => {
      got.push(chunk);
      n += chunk.length;
      if (n >= payload.length) resolve();
    }),
  );
  c.write(payload);
  await done;
  t.ok(Buffer.concat(got).equals(payload), '3 MB echoed intact through both kinds of slab-read socket');
  t.equal(dataListeners, 0, "the accepted socket's bytes came through its onread callback, not 'data'");
  const closed = once(c, 'close');
  c.end();
  await closed;
  t.pass('closed');
});

t.test('a socket made elsewhere still delivers through data events', async (t) => {
  const server = createServer((s) => s.end('hello'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const c = new Socket();
  const got: Buffer[] = [];
  onChunks(c, (d) => got.push(d));
  c.connect((server.address() as { port: number }).port, '127.0.0.1');
  await once(c, 'close');
  t.equal(Buffer.concat(got).toString(), 'hello');
});
