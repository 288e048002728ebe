import t from 'tap';
import { ProtocolError, Reader } from '../../src/protocol/reader';
import { Writer } from '../../src/protocol/writer';
import { decodeFields, decodeAuthentication, encodeNotice } from '../../src/protocol/backend';
import { Backend } from '../../src/protocol/codes';

t.test('writer back-patches lengths and grows', async (t) => {
  const w = new Writer(2);
  w.begin(0x51).cstring('select 1').end();
  w.begin(0x53).end();
  const b = w.finish();
  t.equal(b.toString('hex'), Buffer.concat([Buffer.from('Q\0\0\0\x0dselect 1\0', 'latin1'), Buffer.from('S\0\0\0\x04', 'latin1')]).toString('hex'));
  t.throws(() => new Writer().begin(1).finish(), 'finish inside a message');
});

t.test('reader never reads past its end', async (t) => {
  const b = Buffer.from('abc\0\x00\x00\x00\x07', 'latin1');
  const r = new Reader(b, 0, 6);
  t.equal(r.cstring(), 'abc');
  t.throws(() => r.int32(), ProtocolError);
  t.throws(() => new Reader(Buffer.from('abc'), 0).cstring(), ProtocolError, 'unterminated string');
  t.throws(() => new Reader(Buffer.from('ab\0'), 0, 2).cstring(), ProtocolError, 'terminator beyond the end');
  t.throws(() => new Reader(Buffer.alloc(4), 0).bytes(-1), ProtocolError);
});

t.test('ErrorResponse fields round-trip', async (t) => {
  const e = encodeNotice(Backend.ErrorResponse, 'FATAL', '08P01', 'bad', 'detail here');
  const f = decodeFields(e, 0, e.length);
  t.equal(f.get('S'), 'FATAL');
  t.equal(f.get('V'), 'FATAL');
  t.equal(f.get('C'), '08P01');
  t.equal(f.get('M'), 'bad');
  t.equal(f.get('D'), 'detail here');
});

t.test('authentication requests decode', async (t) => {
  const sasl = new Writer().begin(Backend.Authentication).int32(10).cstring('SCRAM-SHA-256').cstring('SCRAM-SHA-256-PLUS').byte(0).end().finish();
  t.same(decodeAuthentication(sasl, 0, sasl.length), { kind: 'sasl', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] });
  const md5 = new Writer().begin(Backend.Authentication).int32(5).bytes(Buffer.from([1, 2, 3, 4])).end().finish();
  const m = decodeAuthentication(md5, 0, md5.length);
  t.equal(m.kind, 'md5');
  const short = new Writer().begin(Backend.Authentication).int32(5).bytes(Buffer.from([1])).end().finish();
  t.throws(() => decodeAuthentication(short, 0, short.length), ProtocolError, 'md5 salt cut short');
});
