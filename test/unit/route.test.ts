import t from 'tap';
import { parseRedirectList } from '../../src/config/patterns';
import { chooseLoadBalanceNode, matchRedirect, NodeView, readNode, weightedChoice } from '../../src/router/balancer';
import { classify } from '../../src/router/classify';
import { CatalogView, route, RoutingOptions, SessionView } from '../../src/router/route';

const node = (id: number, weight: number, extra: Partial<NodeView> = {}): NodeView => ({ id, weight, up: true, primary: id === 0, delayed: false, delay: 0, ...extra });
/** A fixed sequence of draws, so every choice is exact. */
const draws = (...xs: number[]) => {
  let i = 0;
  return () => xs[i++ % xs.length]!;
};

t.test('weighted choice follows the cumulative weights exactly', async (t) => {
  const nodes = [node(0, 0), node(1, 1), node(2, 3)];
  t.equal(weightedChoice(nodes, draws(0)), 1);
  t.equal(weightedChoice(nodes, draws(0.249)), 1);
  t.equal(weightedChoice(nodes, draws(0.25)), 2);
  t.equal(weightedChoice(nodes, draws(0.999)), 2);
  t.equal(weightedChoice([node(0, 0), node(1, 1, { up: false })], draws(0.5)), null, 'nothing up with weight');
  t.equal(weightedChoice([node(0, 2), node(1, 1, { up: false })], draws(0.9)), 0, 'a down node is skipped');
});

t.test('redirect rules: target with ratio, else the other nodes', async (t) => {
  const nodes = [node(0, 1), node(1, 1), node(2, 1)];
  const rules = parseRedirectList('batch.*:2(0.3),oltp:primary,ro:standby');
  t.equal(matchRedirect(rules, 'batch-1')?.target, 2);
  t.equal(matchRedirect(rules, 'nope'), null);
  t.equal(chooseLoadBalanceNode(nodes, rules[0]!, draws(0.29)), 2, 'draw under the ratio: the target');
  t.equal(chooseLoadBalanceNode(nodes, rules[0]!, draws(0.31, 0.99)), 1, 'over it: among the others');
  t.equal(chooseLoadBalanceNode(nodes, rules[1]!, draws(0.5)), 0, 'primary');
  t.equal(chooseLoadBalanceNode(nodes, rules[2]!, draws(0.5, 0.7)), 2, 'standby: weighted among standbys');
  t.throws(() => parseRedirectList('x:7(2)'), /ratio/);
  t.throws(() => parseRedirectList('justtext'), /regex:target/);
});

t.test('a delayed load-balance node: primary, or the least-delayed standby', async (t) => {
  const nodes = [node(0, 1), node(1, 1, { delayed: true, delay: 9000 }), node(2, 1, { delay: 10 }), node(3, 0, { delay: 0 })];
  t.equal(readNode(nodes, 1, false), 0);
  t.equal(readNode(nodes, 1, true), 2, 'weight 0 does not count');
  t.equal(readNode(nodes, 2, false), 2);
});

const opts: RoutingOptions = {
  loadBalance: true,
  statementLevel: false,
  allowSqlComments: false,
  disableOnWrite: 'transaction',
  writeFunctions: null,
  readOnlyFunctions: null,
  primaryPatterns: [],
  catalogToPrimary: true,
  checkTempTables: true,
  checkUnloggedTables: true,
};
const idle: SessionView = {
  inTransaction: false,
  failedTransaction: false,
  pinnedTransaction: false,
  pinnedSession: false,
  wroteInTransaction: false,
  wroteInEarlierTransaction: false,
  wroteInSession: false,
  writtenTables: new Set(),
  tempTables: new Set(['tmp']),
  tempFunctions: new Set(['over_tmp']),
};
const catalog: CatalogView = { writesFunction: (f) => f === 'nextval', isUnlogged: (r) => r === 'u', isSequence: (r) => r === 'seq' };
const where = (sql: string, o: Partial<RoutingOptions> = {}, v: Partial<SessionView> = {}) =>
  route(classify(sql), sql, { ...opts, ...o }, { ...idle, ...v }, catalog).to;

t.test('route: a read calling a function not known yet asks for a look-up, unless another rule decides first', async (t) => {
  const unknown: CatalogView = { writesFunction: (f) => (f === 'nextval' ? true : f === 'now' ? false : null), isUnlogged: () => false, isSequence: () => false };
  t.match(route(classify('select made_later(1), now()'), '', opts, idle, unknown), { to: 'lookup', names: ['made_later'] });
  t.equal(route(classify('select made_later(1), nextval(\'s\')'), '', opts, idle, unknown).to, 'primary', 'a known writer decides');
  t.equal(route(classify('select made_later(1) from pg_class'), '', opts, idle, unknown).to, 'primary', 'a catalog read goes to the primary first');
  t.equal(route(classify('select made_later(1)'), '', { ...opts, writeFunctions: /^w/ }, idle, unknown).to, 'balance', 'the lists decide without the catalog');
});

t.test('route: the checks a read must pass, in pgpool order', async (t) => {
  t.equal(where('select 1'), 'balance');
  t.equal(where('select 1', { loadBalance: false }), 'primary');
  t.equal(where('/* c */ select 1'), 'primary');
  t.equal(where('/* c */ select 1', { allowSqlComments: true }), 'balance');
  t.equal(where("select nextval('s')"), 'primary');
  t.equal(where('select * from tmp'), 'primary', 'temp table');
  t.equal(where('select * from over_tmp()'), 'primary', 'a function this session defined over its temp table');
  t.equal(where('select * from pg_temp.f(2)'), 'primary', 'a function in the temporary schema');
  t.equal(where('select * from pg_temp_3.t'), 'primary', 'a relation in the temporary schema, by its real name');
  t.equal(where('select * from u'), 'primary', 'unlogged table');
  t.equal(where('select last_value from public.seq'), 'primary', 'a sequence: a standby shows it as last WAL-logged');
  t.equal(where('select * from pg_class'), 'primary');
  t.equal(where('select * from pg_class', { catalogToPrimary: false }), 'balance');
  t.equal(where('select 1', {}, { inTransaction: true, wroteInTransaction: true }), 'primary');
  t.equal(where('select 1', { disableOnWrite: 'off' }, { inTransaction: true, wroteInTransaction: true }), 'balance');
  t.equal(where('select 1', { disableOnWrite: 'always' }, { wroteInSession: true }), 'primary');
  t.equal(where('select 1', { disableOnWrite: 'trans_transaction' }, { inTransaction: true, wroteInEarlierTransaction: true }), 'primary');
  t.equal(where('select * from t2', { disableOnWrite: 'dml_adaptive' }, { inTransaction: true, wroteInTransaction: true, writtenTables: new Set(['t2']) }), 'primary');
  t.equal(where('select * from t3', { disableOnWrite: 'dml_adaptive' }, { inTransaction: true, wroteInTransaction: true, writtenTables: new Set(['t2']) }), 'balance');
  t.equal(where('select 1', {}, { inTransaction: true, failedTransaction: true }), 'primary');
  t.equal(where('select f()', { writeFunctions: /^(?:f)$/i }), 'primary');
  t.equal(where('select g()', { readOnlyFunctions: /^(?:f)$/i }), 'primary');
  t.equal(where('select f()', { readOnlyFunctions: /^(?:f)$/i }), 'balance');
  t.equal(where('select 1 -- tag:x', { primaryPatterns: [/^(?:.*tag:x.*)$/is] }), 'primary');
  t.equal(where('insert into t values (1)'), 'primary');
  t.equal(where('select pg_stat_get_live_tuples(1)'), 'primary', 'statistics count what happened on their node');
  t.equal(where('select pg_catalog.pg_stat_get_xact_tuples_inserted(1)'), 'primary');
  t.equal(where('select pg_backend_pid()'), 'primary', 'the session\'s own backend');
  t.equal(where('select txid_current()'), 'primary', 'a standby refuses it');
  t.equal(where('select pg_current_xact_id()', { readOnlyFunctions: /^(?:pg_current_xact_id)$/i }), 'primary', 'whatever the lists say');
});

t.test('route state: a function defined over a temporary table is the session\'s own', async (t) => {
  const { RouteState } = await import('../../src/session/memory');
  const s = new RouteState();
  const sent = (sql: string) => s.sentToPrimary(classify(sql), sql, true);
  sent('create function before_temp() returns setof int language sql stable as $$ select 1 from users $$');
  sent('create temp table users (id int)');
  sent('create function get_users() returns setof users language sql stable as $$ SELECT * FROM users $$');
  sent('create function other() returns int language sql stable as $$ select 1 from users_archive $$');
  t.same([...s.tempFunctions], ['get_users'], 'only the one whose text names the temporary table, once it exists');
  sent('discard temp');
  t.same([...s.tempFunctions], []);
});
