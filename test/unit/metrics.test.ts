import t from 'tap';
import { RecentEvents } from '../../src/metrics/events';
import { Metrics, MetricsSource, NodeSample } from '../../src/metrics/metrics';
import { prettyLine } from '../../src/log/pretty';
import { parseExposition, sampleValue } from '../helpers/prometheus';

const node = (id: number, over: Partial<NodeSample> = {}): NodeSample => ({
  id,
  status: 'up',
  primary: id === 0,
  delayBytes: 0,
  delaySeconds: null,
  healthCheckFailures: 0,
  statements: { select: 0, insert: 0 },
  ...over,
});

t.test('scrape-time gauges and counters follow the source; the text parses', async (t) => {
  let nodes = [node(0, { statements: { select: 3, insert: 2 } }), node(1, { delayBytes: 4096, delaySeconds: 0.25 })];
  const source: MetricsSource = {
    nodes: () => nodes,
    sessions: () => ({ active: 2, idle: 5, waiting: 1, pinned: 3 }),
    pools: () => [{ node: 0, idle: 3, inUse: 2, opening: 1, opened: 7, waiting: 4 }],
    errorClasses: () => new Map([['42', 4]]),
    watchdog: () => null,
  };
  const m = new Metrics(source);
  m.statementDuration.observe(0, 0.002);
  m.statementDuration.observe(0, 90);
  m.clientWait.observe(0, 0.0001);
  m.failovers.inc();
  let s = parseExposition((await m.scrape()).body);
  t.equal(sampleValue(s, 'sluice_node_up', { node: '1' }), 1);
  t.equal(sampleValue(s, 'sluice_node_primary', { node: '0' }), 1);
  t.equal(sampleValue(s, 'sluice_node_status', { node: '1', status: 'down' }), 0);
  t.equal(sampleValue(s, 'sluice_node_replication_delay_bytes', { node: '1' }), 4096);
  t.equal(sampleValue(s, 'sluice_node_replication_delay_seconds', { node: '1' }), 0.25);
  t.equal(sampleValue(s, 'sluice_node_replication_delay_seconds', { node: '0' }), undefined, 'unknown delay: no series');
  t.equal(sampleValue(s, 'sluice_statements_total', { node: '0', class: 'select' }), 3);
  t.equal(sampleValue(s, 'sluice_sessions', { state: 'waiting' }), 1);
  t.equal(sampleValue(s, 'sluice_sessions_pinned', {}), 3);
  t.equal(sampleValue(s, 'sluice_pool_connections', { node: '0', state: 'in_use' }), 2);
  t.equal(sampleValue(s, 'sluice_backend_connections_opened_total', { node: '0' }), 7);
  t.equal(sampleValue(s, 'sluice_pool_waiting_clients', { node: '0' }), 4);
  t.equal(sampleValue(s, 'sluice_errors_total', { class: '42' }), 4);
  t.equal(sampleValue(s, 'sluice_failovers_total'), 1);
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_count', { node: '0' }), 2);
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_sum', { node: '0' }), 90.002);
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_bucket', { node: '0', le: '0.001' }), 0);
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_bucket', { node: '0', le: '0.0025' }), 1, 'buckets are cumulative');
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_bucket', { node: '0', le: '60' }), 1);
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_bucket', { node: '0', le: '+Inf' }), 2);
  t.equal(sampleValue(s, 'sluice_statement_duration_seconds_count', { node: '1' }), undefined, 'no series for a node without statements');
  t.equal(sampleValue(s, 'sluice_client_wait_seconds_count'), 1, 'a histogram without labels');
  t.equal(sampleValue(s, 'sluice_client_wait_seconds_bucket', { le: '0.0005' }), 1);
  t.equal(sampleValue(s, 'sluice_config_reloads_total', { result: 'refused' }), 0, 'series exist before the first event');
  t.ok(sampleValue(s, 'sluice_process_resident_memory_bytes')! > 0, 'process metrics');

  nodes = [node(0, { statements: { select: 9, insert: 2 } }), node(1, { status: 'down', healthCheckFailures: 1 })];
  s = parseExposition((await m.scrape()).body);
  t.equal(sampleValue(s, 'sluice_node_up', { node: '1' }), 0, 'a scrape sees the node go down');
  t.equal(sampleValue(s, 'sluice_node_status', { node: '1', status: 'down' }), 1);
  t.equal(sampleValue(s, 'sluice_health_check_failures_total', { node: '1' }), 1);
  t.equal(sampleValue(s, 'sluice_statements_total', { node: '0', class: 'select' }), 9, 'counters are the source\'s totals, not sums of scrapes');
  for (const x of s) t.notOk(/client|addr|sql|session_id/.test(Object.keys(x.labels).join()), `${x.name}: bounded labels`);
});

t.test('the exposition parser refuses what Prometheus would', async (t) => {
  t.throws(() => parseExposition('foo{a="b" 1\n'));
  t.throws(() => parseExposition('# TYPE foo countr\n'));
  t.throws(() => parseExposition('foo one\n'));
  t.same(parseExposition('# HELP foo x\n# TYPE foo gauge\nfoo{a="b\\"c"} 1.5\nbar +Inf\n'), [
    { name: 'foo', labels: { a: 'b\\"c' }, value: 1.5 },
    { name: 'bar', labels: {}, value: Infinity },
  ]);
});

t.test('recent events keep the newest, bounded', async (t) => {
  const e = new RecentEvents(3);
  for (let i = 0; i < 5; i++) e.add('failover', i, `n${i}`);
  t.same(e.list().map((x) => x.node), [2, 3, 4]);
});

t.test('pretty log lines: time, level, component, message, fields', async (t) => {
  const line = prettyLine(JSON.stringify({ level: 40, time: Date.UTC(2026, 0, 1, 12, 0, 0), pid: 1, name: 'sluice', component: 'failover', msg: 'node detached', node: 2, reason: 'health check failed' }));
  t.equal(line, '12:00:00.000 WARN  [failover] node detached  node=2 reason="health check failed"');
  t.equal(prettyLine('not json'), 'not json');
});
