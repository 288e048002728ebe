import t from 'tap';
import { parseConfig } from '../../src/config/load';
import { routingOptions } from '../../src/router/options';
import { IdleLimit } from '../../src/session/idle-limit';
import { isSessionParameter, SessionSettings, sessionRouting } from '../../src/session/settings';

const config = parseConfig('[[backend]]\nhostname = "h"\nport = 5432\n', '/tmp');

t.test('PGPOOL SET: typed values over the config, RESET goes back to it', async (t) => {
  let changes = 0;
  const s = new SessionSettings(() => config, () => changes++);
  t.equal(s.values, config, 'no overrides: the config itself');
  s.set('log_statement', 'ON');
  s.set('client_idle_limit', '30');
  t.equal(s.values.log_statement, true);
  t.equal(s.values.client_idle_limit, 30);
  t.equal(s.shown('log_statement'), 'on', 'shown as pgpool shows booleans');
  t.equal(s.shown('client_idle_limit'), '30');
  for (const v of ['off', 'false', 'no', '0', 'f']) {
    s.set('notice_per_node_statement', v);
    t.equal(s.values.notice_per_node_statement, false, v);
  }
  s.set('log_min_messages', 'Debug');
  t.equal(s.values.log_min_messages, 'debug');
  s.reset('client_idle_limit');
  t.equal(s.values.client_idle_limit, config.client_idle_limit);
  t.equal(s.shown('client_idle_limit'), undefined);
  s.resetAll();
  t.equal(s.values, config);
  t.equal(changes, 10, 'every change is told; a reset of nothing is not');
  s.resetAll();
  t.equal(changes, 10);
});

t.test('PGPOOL SET refuses values of the wrong type or range, keeping the old value', async (t) => {
  const s = new SessionSettings(() => config);
  t.throws(() => s.set('log_statement', 'maybe'), { name: 'SettingError', message: 'invalid value for parameter "log_statement": "maybe"' });
  t.throws(() => s.set('client_idle_limit', '1.5'), { name: 'SettingError' });
  t.throws(() => s.set('client_idle_limit', '-1'), { message: '-1 is outside the valid range for parameter "client_idle_limit" (0 .. 2147483647)' });
  t.throws(() => s.set('log_min_messages', 'chatty'), { name: 'SettingError' });
  t.equal(s.values, config, 'nothing changed');
  s.set('client_idle_limit_in_recovery', '-1');
  t.equal(s.values.client_idle_limit_in_recovery, -1);
});

t.test("pgpool's own session parameters are accepted and shown without effect", async (t) => {
  const s = new SessionSettings(() => config);
  t.ok(isSessionParameter('client_min_messages'));
  t.notOk(isSessionParameter('port'));
  s.set('client_min_messages', 'debug1');
  t.equal(s.shown('client_min_messages'), 'debug1');
  t.equal(s.values, config, 'no Sluice key changed');
});

t.test('a session routes with its own allow_sql_comments and check_unlogged_table', async (t) => {
  const base = routingOptions(config);
  const s = new SessionSettings(() => config);
  t.equal(sessionRouting(base, s.values), base, 'unchanged: the shared options');
  s.set('allow_sql_comments', String(!config.allow_sql_comments));
  const own = sessionRouting(base, s.values);
  t.equal(own.allowSqlComments, !config.allow_sql_comments);
  t.equal(own.checkUnloggedTables, base.checkUnloggedTables);
  t.equal(own.loadBalance, base.loadBalance);
});

t.test('IdleLimit: expires a silent client, not a busy one, and can be turned off', async (t) => {
  let busy = true;
  let expired = 0;
  const idle = new IdleLimit({ active: () => true, busy: () => busy, expire: () => expired++ });
  t.equal(idle.idleSeconds, 0, 'no limit: not measured');
  idle.set(1);
  const start = Date.now();
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(expired, 0, 'busy: not idle');
  busy = false;
  const deadline = Date.now() + 5000;
  while (expired === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.equal(expired, 1);
  t.ok(Date.now() - start >= 1000);
  idle.set(1);
  idle.touch();
  idle.set(0);
  await new Promise((r) => setTimeout(r, 1100));
  t.equal(expired, 1, 'turned off: never expires');
  idle.stop();
});
