import t from 'tap';
import { parseConfig } from '../../src/config/load';
import { routingOptions } from '../../src/router/options';
import { IdleLimit } from '../../src/session/idle-limit';
import { isSessionParameter, SessionSettings, sessionRouting } from '../../src/session/settings';
import { FakeClock } from '../helpers/fake-clock';

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

t.test('IdleLimit: expires a silent client, not a busy one, and can be turned off (a fake clock: exact)', async (t) => {
  const clock = new FakeClock();
  let busy = true;
  let expired = 0;
  const idle = new IdleLimit({ active: () => true, busy: () => busy, expire: () => expired++ }, clock);
  t.equal(idle.idleSeconds, 0, 'no limit: not measured');
  idle.set(1);
  clock.tick(1500);
  t.equal(expired, 0, 'busy at the limit: not idle');
  t.equal(idle.idleSeconds, 1, 'idle for a second and a half');
  busy = false;
  clock.tick(499);
  t.equal(expired, 0, 'looked at again a whole limit after the busy check, at 2 s');
  clock.tick(1);
  t.equal(expired, 1, 'silent for 2 s with nothing in flight: expired');
  idle.set(1);
  clock.tick(900);
  idle.touch();
  clock.tick(900);
  t.equal(expired, 1, 'a touch restarts the wait');
  clock.tick(100);
  t.equal(expired, 2, 'then a second of silence is the limit');
  idle.set(1);
  idle.set(0);
  clock.tick(60_000);
  t.equal(expired, 2, 'turned off: never expires');
  t.equal(clock.pending, 0, 'and no timer is left');
  idle.stop();
});
