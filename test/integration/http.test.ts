import { execFile } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createCluster, TestCluster } from '../helpers/cluster';
import { freePortRun } from '../helpers/ports';
import { countColour, decodePng } from '../helpers/png';
import { parseExposition, Sample, sampleSum, sampleValue } from '../helpers/prometheus';
import { FAST_FAILOVER, startSluice, TestSluice, waitFor } from '../helpers/sluice';

// The HTTP port as operators use it: Prometheus scrapes /metrics while pgbench runs and a
// standby dies; HAProxy-style probes answer 200/503 across a primary failover; the status page,
// rendered by headless Chromium, shows the nodes and then the one that went down.

const run = promisify(execFile);
let cluster: TestCluster;
let sluice: TestSluice;
let http: string;

const get = async (path: string, method = 'GET') => {
  const r = await fetch(`${http}${path}`, { method });
  return { status: r.status, body: await r.text(), type: r.headers.get('content-type') ?? '' };
};
const scrape = async (): Promise<Sample[]> => parseExposition((await get('/metrics')).body);

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((f) => existsSync(f));
/** The page as a person would see it once its script ran: the DOM after Chromium loaded it. */
async function renderedPage(): Promise<string> {
  const { stdout } = await run(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--virtual-time-budget=3000', '--dump-dom', `${http}/`], { timeout: 60_000, maxBuffer: 8 << 20 });
  return stdout;
}
/** The node rows: id and the status cell's text. */
const nodeRows = (html: string) => [...html.matchAll(/<tr data-node="(\d+)" data-status="(\w+)">(.*?)<\/tr>/g)].map((m) => ({ id: Number(m[1]), status: m[2], text: m[3]!.replace(/<[^>]+>/g, ' ') }));

t.before(async () => {
  cluster = await createCluster(2);
  await run('pgbench', ['-i', '-q', '-s', '1', '-h', '127.0.0.1', '-p', String(cluster.port(0)), '-U', 'postgres', 'postgres']);
  const httpPort = await freePortRun(1);
  sluice = await startSluice(cluster, { ...FAST_FAILOVER, http_listen_addresses: '127.0.0.1', http_port: httpPort, statement_level_load_balance: true });
  http = `http://127.0.0.1:${httpPort}`;
});

t.teardown(async () => {
  await sluice?.stop();
  await cluster?.destroy();
});

t.test('probes, /nodes and the page with every node up', async (t) => {
  for (const path of ['/health', '/primary', '/replica']) {
    const r = await get(path);
    t.equal(r.status, 200, `${path} 200`);
    t.equal(r.type, 'application/json');
  }
  t.equal((await get('/primary', 'OPTIONS')).status, 200, "HAProxy's OPTIONS check");
  t.equal((await get('/primary', 'HEAD')).status, 200);
  t.equal((await get('/primary', 'POST')).status, 405, 'nothing here changes Sluice');
  t.equal((await get('/nope')).status, 404);
  const nodes = JSON.parse((await get('/nodes')).body) as { id: number; status: string; role: string }[];
  t.same(nodes.map((n) => [n.id, n.status, n.role]), [[0, 'up', 'primary'], [1, 'up', 'standby'], [2, 'up', 'standby']]);
  t.notMatch((await get('/status.json')).body, /password/i, 'no secret in what the page reads');
});

t.test('the status page in headless Chromium shows the three nodes', { skip: !CHROMIUM && 'chromium is not installed' }, async (t) => {
  const html = await renderedPage();
  t.match(html, /<h1>Sluice<\/h1>/);
  const rows = nodeRows(html);
  t.same(rows.map((r) => [r.id, r.status]), [[0, 'up'], [1, 'up'], [2, 'up']], 'three nodes, up');
  t.match(rows[0]!.text, /primary/);
  t.match(rows[1]!.text, /standby/);
  t.match(html, /<div id="sessions">\d+ open/, 'the sessions line was filled in by the script');
});

t.test('metrics move under pgbench while a standby is killed', async (t) => {
  const before = await scrape();
  t.equal(sampleValue(before, 'sluice_node_up', { node: '2' }), 1);
  const failoversBefore = sampleValue(before, 'sluice_failovers_total')!;
  const bench = run('pgbench', ['-n', '-S', '-c', '2', '-T', '6', '-h', '127.0.0.1', '-p', String(sluice.port), '-U', 'postgres', 'postgres']);
  const busy = await waitFor('pgbench sessions in the gauge', async () => {
    const s = await scrape();
    // Started sessions (a session still starting is 'waiting' while it already holds a connection).
    const started = sampleValue(s, 'sluice_sessions', { state: 'active' })! + sampleValue(s, 'sluice_sessions', { state: 'idle' })!;
    return started >= 2 && sampleSum(s, 'sluice_pool_connections', { state: 'in_use' }) >= 2 ? s : false;
  });
  t.ok(sampleSum(busy, 'sluice_sessions') >= 2, 'sessions counted');
  await cluster.sh('kill', '2');
  const after = await waitFor('node 2 down in the metrics', async () => {
    const s = await scrape();
    return sampleValue(s, 'sluice_node_up', { node: '2' }) === 0 ? s : false;
  }, 20_000);
  t.equal(sampleValue(after, 'sluice_node_status', { node: '2', status: 'down' }), 1);
  t.equal(sampleValue(after, 'sluice_failovers_total'), failoversBefore + 1, 'one failover counted');
  t.ok(sampleValue(after, 'sluice_health_check_failures_total', { node: '2' })! >= 1, 'the failed health check');
  const { stdout } = await bench;
  t.match(stdout, /number of failed transactions: 0/, 'pgbench: nothing failed');
  const end = await scrape();
  for (const node of ['0', '1']) t.ok(sampleValue(end, 'sluice_statements_total', { node, class: 'select' })! > 0, `reads counted on node ${node}`);
  t.ok(sampleSum(end, 'sluice_statement_duration_seconds_count') > 100, 'statement latencies observed');
  t.ok(sampleValue(end, 'sluice_health_check_duration_seconds_count', { node: '0' })! > 0, 'health check durations observed');
  t.ok(sampleValue(end, 'sluice_client_wait_seconds_count')! > 0, 'backend checkouts observed');
  t.equal(sampleValue(end, 'sluice_node_primary', { node: '0' }), 1);
  const c = await sluice.client();
  await c.query('select * from no_such_table').catch(() => undefined);
  t.ok(sampleValue(await scrape(), 'sluice_errors_total', { class: '42' })! >= 1, 'an error counted by SQLSTATE class');
  await c.end();
});

t.test('the status page shows the node that went down, and why', { skip: !CHROMIUM && 'chromium is not installed' }, async (t) => {
  const html = await renderedPage();
  t.same(nodeRows(html).map((r) => [r.id, r.status]), [[0, 'up'], [1, 'up'], [2, 'down']]);
  t.match(html, /<td>failover<\/td><td class="num">2<\/td><td>node 2 detached: health check failed/, 'the event is listed');
});

t.test('attaching the node again: failback counted, /replica still 200', async (t) => {
  await cluster.sh('start', '2');
  sluice.server.commands.attach(2);
  const s = await waitFor('node 2 up again', async () => {
    const x = await scrape();
    return sampleValue(x, 'sluice_node_up', { node: '2' }) === 1 ? x : false;
  }, 20_000);
  t.ok(sampleValue(s, 'sluice_failbacks_total')! >= 1);
  t.equal((await get('/replica')).status, 200);
});

t.test('/primary and /replica across a primary failover', async (t) => {
  await waitFor('both standbys streaming', async () => (await cluster.psql(0, "select count(*) from pg_stat_replication where state = 'streaming'")) === '2', 30_000);
  await cluster.sh('kill', '0');
  await waitFor('/primary 503 while no primary serves', async () => (await get('/primary')).status === 503, 20_000);
  t.pass('/primary 503 after the kill');
  const r = await waitFor('/primary 200 again', async () => {
    const x = await get('/primary');
    return x.status === 200 ? x : false;
  }, 60_000);
  const primary = (JSON.parse(r.body) as { primary: number }).primary;
  t.not(primary, 0, `a standby was promoted (node ${primary})`);
  await waitFor('/replica 200: the other standby follows the new primary', async () => (await get('/replica')).status === 200, 60_000);
  t.pass('/replica 200');
  const s = await scrape();
  t.equal(sampleValue(s, 'sluice_node_primary', { node: String(primary) }), 1);
  t.equal(sampleValue(s, 'sluice_node_up', { node: '0' }), 0);
});

t.test('after the failover the page says which node was the primary, lists the standby that follows, and charts the last minutes (a screenshot shows them)', { skip: !CHROMIUM && 'chromium is not installed' }, async (t) => {
  const html = await renderedPage();
  t.match(nodeRows(html).find((r) => r.id === 0)?.text ?? '', /was primary.*down \(was primary\)/, 'the old primary is not shown as a standby');
  t.match(html, /<td>follow<\/td><td class="num">\d<\/td><td>node \d follows the new primary \d/, 'the standby re-pointed by follow_primary_command is an event');
  const chart = (name: string) => new RegExp(`data-chart="${name}"[^>]*>(.*?)</svg>`).exec(html)?.[1] ?? '';
  const lines = (svg: string) => [...svg.matchAll(/<polyline points="([^"]*)"[^>]*data-series="([^"]+)"/g)].map((m) => ({ series: m[2], points: m[1]!.split(' ').length }));
  const statements = lines(chart('statements'));
  // Nodes 0 and 1 served reads all along (node 2 was down for most of this file's run).
  for (const node of ['node 0', 'node 1']) t.ok(statements.some((l) => l.series === node && l.points >= 2), `statements per second: a line for ${node}`);
  t.ok(lines(chart('latency')).length >= 2, 'latency: lines');
  t.ok(lines(chart('lag')).some((l) => l.points >= 2), 'replication lag: a line for a standby');
  t.ok(lines(chart('sessions')).some((l) => l.points >= 2), 'sessions: a line');
  t.match(chart('statements'), /data-event="failover"/, 'the failovers are marked on the time axis');
  // What a person sees: a screenshot, with the node lines and the failover marks in their colours.
  const png = join(tmpdir(), `sluice-status-${process.pid}.png`);
  t.teardown(() => rmSync(png, { force: true }));
  await run(CHROMIUM!, ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--virtual-time-budget=3000', '--window-size=1100,1500', `--screenshot=${png}`, `${http}/`], { timeout: 60_000 });
  const img = decodePng(readFileSync(png));
  t.equal(img.width, 1100, 'the screenshot is the window');
  // A legend square is some 60 pixels; the lines of a node that served all along, hundreds (where
  // two nodes' lines coincide, the one drawn last shows: look at the pair).
  const drawn = ['#1f77b4', '#d62728'].map((c) => countColour(img, c));
  t.ok(drawn[0]! + drawn[1]! > 300, `nodes 0 and 1: their lines are drawn (${drawn.join(' and ')} pixels of their colours)`);
  t.ok(countColour(img, '#b3261e', 16) > 50, 'the failover marks are drawn');
});
