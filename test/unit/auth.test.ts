import t from 'tap';
import { md5Response, md5Verifier } from '../../src/protocol/auth/md5';
import { scramClient } from '../../src/protocol/auth/scram-client';
import { ProtocolError } from '../../src/protocol/reader';

t.test('md5: the well-known pg_authid value for postgres/postgres', async (t) => {
  t.equal(md5Verifier('postgres', 'postgres'), 'md53175bce1d3201d16594cebf9d7eb3f9d');
});

t.test('md5 response: same from plain password and from the stored verifier', async (t) => {
  const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);
  const fromPlain = md5Response('postgres', 'postgres', salt);
  t.equal(fromPlain, md5Response('postgres', 'md53175bce1d3201d16594cebf9d7eb3f9d', salt));
  // md5("3175bce1d3201d16594cebf9d7eb3f9d" || 01020304), computed independently
  t.equal(fromPlain, 'md5' + require('node:crypto').createHash('md5').update(Buffer.concat([Buffer.from('3175bce1d3201d16594cebf9d7eb3f9d'), salt])).digest('hex'));
  t.match(fromPlain, /^md5[0-9a-f]{32}$/);
});

t.test('SCRAM-SHA-256: RFC 7677 test vector', async (t) => {
  const c = scramClient('pencil', 'rOprNGfwEbeRWgbNEkqO', 'user');
  t.equal(c.clientFirst, 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
  const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
  t.equal(c.final(serverFirst), 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
  t.doesNotThrow(() => c.verify('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='));
  t.throws(() => c.verify('v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='), ProtocolError, 'wrong server signature');
  t.throws(() => c.verify('e=invalid-proof'), ProtocolError, 'server error attribute');
});

t.test('SCRAM rejects hostile server messages', async (t) => {
  const c = () => scramClient('pw', 'abc');
  t.throws(() => c().final('r=zzz,s=AAAA,i=4096'), ProtocolError, 'nonce not extending ours');
  t.throws(() => c().final('r=abcd,s=AAAA,i=0'), ProtocolError, 'zero iterations');
  t.throws(() => c().final('r=abcd,s=AAAA,i=99999999999'), ProtocolError, 'absurd iterations');
  t.throws(() => c().final('garbage'), ProtocolError, 'malformed');
  t.throws(() => c().final('r=abc' + 'x'.repeat(10000) + ',s=AAAA,i=1'), ProtocolError, 'oversized');
  t.throws(() => c().verify('v=abc'), ProtocolError, 'final before first');
});
