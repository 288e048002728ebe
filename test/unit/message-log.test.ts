import { Writable } from 'node:stream';
import t from 'tap';
import { serialize } from 'pg-protocol';
import { parseConfig } from '../../src/config/load';
import { createLogger } from '../../src/log/logger';
import { Frontend } from '../../src/protocol/codes';
import { logClientMessage } from '../../src/session/session';

t.test('log_client_messages logs kinds and lengths, never contents; log_statement the SQL', async (t) => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger('debug', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(JSON.parse(c.toString()) as Record<string, unknown>), cb()) }));
  const base = parseConfig('[[backend]]\nhostname = "h"\nport = 1\n', '/');
  const password = serialize.password('hunter2');
  const query = serialize.query('select 42');
  logClientMessage(log, { ...base, log_client_messages: true }, Frontend.PasswordMessage, password, 0, password.length);
  logClientMessage(log, { ...base, log_client_messages: true, log_statement: true }, Frontend.Query, query, 0, query.length);
  logClientMessage(log, base, Frontend.Query, query, 0, query.length);
  await new Promise((r) => log.flush(r));
  t.same(lines.map((l) => [l.msg, l.message ?? l.statement, l.length]), [
    ['client message', 'PasswordMessage', 12],
    ['client message', 'Query', 14],
    ['statement', 'select 42', undefined],
  ], 'nothing logged when both are off');
  t.notMatch(JSON.stringify(lines), /hunter2/);
});
