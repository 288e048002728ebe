import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import t from 'tap';
import { EtcdClient } from '../../src/coord/etcd';
import { freePortRun } from '../helpers/ports';

// The etcd client's token handling against a scripted gateway: what a real etcd does only at a
// restart or when its tokens expire (the integration test restarts a real one). The gateway
// answers as etcd 3.4's does: 401 with code 16 for a token it does not know.

interface Gateway {
  url: string;
  /** Tokens it has handed out; forgetting them is etcd's restart. */
  tokens: Set<string>;
  authentications: number;
  server: Server;
}

async function gateway(): Promise<Gateway> {
  const g = { tokens: new Set<string>(), authentications: 0 } as Gateway;
  g.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const answer = (status: number, j: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(j));
      if (req.url === '/v3/auth/authenticate') {
        const { name, password } = JSON.parse(body) as { name: string; password: string };
        if (name !== 'sluice' || password !== 'secret') return answer(400, { error: 'etcdserver: authentication failed, invalid user ID or password', code: 3 });
        const token = `token-${++g.authentications}`;
        g.tokens.add(token);
        return answer(200, { token });
      }
      if (!g.tokens.has(String(req.headers.authorization))) return answer(401, { error: 'etcdserver: invalid auth token', code: 16 });
      return answer(200, { kvs: [{ key: Buffer.from('k').toString('base64'), value: Buffer.from('v').toString('base64') }] });
    });
  });
  await new Promise<void>((resolve) => g.server.listen(0, '127.0.0.1', resolve));
  g.url = `http://127.0.0.1:${(g.server.address() as AddressInfo).port}`;
  return g;
}

t.test('a token etcd no longer knows is taken again once, even when the next endpoint is down', async (t) => {
  const g = await gateway();
  t.teardown(() => g.server.close());
  const down = `http://127.0.0.1:${await freePortRun(1)}`;
  const etcd = new EtcdClient({ endpoints: [g.url, down], requestTimeoutMs: 1000, auth: { username: 'sluice', password: 'secret' } });
  t.teardown(() => etcd.close());
  t.equal((await etcd.get('k'))?.value, 'v', 'read with the first token');
  t.equal(g.authentications, 1);
  t.equal((await etcd.get('k'))?.value, 'v');
  t.equal(g.authentications, 1, 'the token is kept while etcd takes it');
  g.tokens.clear();
  t.equal((await etcd.get('k'))?.value, 'v', 'read again after etcd forgot the token');
  t.equal(g.authentications, 2, 'one new token');
});

t.test('a wrong password is an etcd that does not answer, with etcd\'s words', async (t) => {
  const g = await gateway();
  t.teardown(() => g.server.close());
  const etcd = new EtcdClient({ endpoints: [g.url], requestTimeoutMs: 1000, auth: { username: 'sluice', password: 'wrong' } });
  t.teardown(() => etcd.close());
  await t.rejects(etcd.get('k'), { name: 'EtcdUnavailable', message: /authentication failed, invalid user ID or password/ });
});
