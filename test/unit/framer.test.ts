import t from 'tap';
import { serialize } from 'pg-protocol';
import { Framer } from '../../src/protocol/framer';
import { ProtocolError } from '../../src/protocol/reader';
import { encodeError, encodeParameterStatus, encodeReadyForQuery } from '../../src/protocol/backend';
import { Writer } from '../../src/protocol/writer';
import { encodeStartupMessage, decodeStartupPacket } from '../../src/protocol/frontend';

function collect(framer: Framer, chunks: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  for (const c of chunks) framer.push(c, (_type, buf, start, end) => {
      out.push(Buffer.from(buf.subarray(start, end)));
    });
  return out;
}

const frontend = [
  serialize.query('select 1'),
  serialize.parse({ name: 's1', text: 'select $1::int', types: [23] }),
  serialize.bind({ statement: 's1', values: ['42'] }),
  serialize.describe({ type: 'P' }),
  serialize.execute({ rows: 0 }),
  serialize.sync(),
  serialize.copyData(Buffer.alloc(3000, 7)),
  serialize.end(),
];

t.test('every frontend message, split at every byte boundary, comes out whole and in order', async (t) => {
  const stream = Buffer.concat(frontend);
  for (let cut = 0; cut <= stream.length; cut++) {
    const got = collect(new Framer(1 << 20, true), [stream.subarray(0, cut), stream.subarray(cut)]);
    if (!t.same(got, frontend, `cut at ${cut}`)) break;
  }
});

t.test('byte by byte delivery yields the same frames', async (t) => {
  const stream = Buffer.concat(frontend);
  const chunks = [...stream].map((b) => Buffer.from([b]));
  t.same(collect(new Framer(1 << 20, true), chunks), frontend);
});

t.test('backend messages split at every boundary', async (t) => {
  const w = new Writer();
  encodeParameterStatus(w, 'TimeZone', 'UTC');
  encodeReadyForQuery(w, 'inTx');
  const msgs = [Buffer.from(w.finish()), encodeError('ERROR', '42601', 'syntax error')];
  const stream = Buffer.concat(msgs);
  for (let cut = 0; cut <= stream.length; cut++) {
    const got = collect(new Framer(1 << 20, true), [stream.subarray(0, cut), stream.subarray(cut)]);
    t.equal(Buffer.concat(got).toString('hex'), stream.toString('hex'));
    t.equal(got.length, 3);
  }
});

t.test('frames of one chunk are adjacent ranges of that chunk (no copy)', async (t) => {
  const stream = Buffer.concat(frontend);
  const ranges: [Buffer, number, number][] = [];
  new Framer(1 << 20, true).push(stream, (_ty, buf, s, e) => {
    ranges.push([buf, s, e]);
  });
  t.ok(ranges.every(([b]) => b === stream));
  for (let i = 1; i < ranges.length; i++) t.equal(ranges[i]![1], ranges[i - 1]![2]);
});

t.test('untyped startup packets split at every boundary', async (t) => {
  const msg = encodeStartupMessage(new Map([['user', 'alice'], ['database', 'db'], ['application_name', 'x']]));
  for (let cut = 0; cut <= msg.length; cut++) {
    const f = new Framer(1 << 20, false);
    const got = collect(f, [msg.subarray(0, cut), msg.subarray(cut)]);
    t.equal(got.length, 1);
    const p = decodeStartupPacket(got[0]!, 0, got[0]!.length);
    t.equal(p.kind, 'startup');
    if (p.kind === 'startup') t.equal(p.params.get('user'), 'alice');
  }
});

t.test('length caps', async (t) => {
  const header = (type: string, len: number) => {
    const b = Buffer.alloc(5);
    b[0] = type.charCodeAt(0);
    b.writeUInt32BE(len, 1);
    return b;
  };
  t.throws(() => collect(new Framer(1000, true), [header('Q', 3)]), ProtocolError, 'length below 4');
  t.throws(() => collect(new Framer(1000, true), [header('Q', 1001)]), ProtocolError, 'length above the cap');
  t.throws(() => collect(new Framer(1000, true), [header('Q', 0xffffffff)]), ProtocolError, 'length of 4 GiB');
  // The cap is checked from the header alone, before the body arrives, even split mid-header.
  const f = new Framer(1000, true);
  collect(f, [header('Q', 5000).subarray(0, 3)]);
  t.throws(() => collect(f, [header('Q', 5000).subarray(3)]), ProtocolError, 'split header over the cap');
  t.equal(collect(new Framer(1000, true), [header('S', 4)]).length, 1, 'length exactly 4 is fine');
  const startup = Buffer.alloc(8);
  // PostgreSQL's MAX_STARTUP_PACKET_LENGTH (10000) counts the packet without its length word.
  startup.writeUInt32BE(10005, 0);
  t.throws(() => collect(new Framer(1000, false), [startup]), ProtocolError, 'startup packet over 10000 bytes after its length');
  startup.writeUInt32BE(10004, 0);
  t.same(collect(new Framer(1000, false), [startup]), [], 'exactly 10000 after its length: the framer waits for the body');
  startup.writeUInt32BE(4, 0);
  t.throws(() => collect(new Framer(1000, false), [startup]), ProtocolError, 'startup packet under 8 bytes');
});

t.test('a halted framer keeps the rest and delivers it on resume', async (t) => {
  const stream = Buffer.concat([serialize.query('a'), serialize.query('b'), serialize.query('c')]);
  const f = new Framer(1 << 20, true);
  const got: string[] = [];
  const sink = (_ty: number, buf: Buffer, s: number, e: number) => {
    got.push(buf.toString('utf8', s + 5, e - 1));
    if (got.length === 1) f.halted = true;
  };
  f.push(stream, sink);
  t.same(got, ['a']);
  f.resume(sink);
  t.same(got, ['a', 'b', 'c']);
});

t.test('a sink that returns false holds that frame until resume', async (t) => {
  const stream = Buffer.concat(frontend);
  const framer = new Framer(1 << 20, true);
  const seen: number[] = [];
  let refuse = 2;
  const sink = (type: number): void | false => {
    if (seen.length === 1 && refuse-- > 0) return false;
    seen.push(type);
  };
  framer.push(stream, sink);
  t.equal(seen.length, 1, 'stopped at the second frame');
  t.ok(framer.halted);
  framer.resume(sink);
  t.equal(seen.length, 1, 'refused again');
  framer.resume(sink);
  t.equal(seen.length, frontend.length, 'then every frame, none lost or repeated');
  t.same(seen, frontend.map((f) => f[0]));
});
