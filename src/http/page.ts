/**
 * The live status page: plain HTML and a little script that reads /status.json every two
 * seconds, and draws the last minutes (history.ts) as small SVG charts with the cluster's events
 * marked on their time axis. No build step and no external resource, so it works on a host with
 * no internet.
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d2330; }
  h1 { font-size: 1.4em; margin: 0 0 .2em; }
  h2 { font-size: 1.1em; margin: 1.4em 0 .4em; }
  .sub { color: #5a6275; }
  table { border-collapse: collapse; }
  th, td { padding: .3em .8em; text-align: left; border-bottom: 1px solid #e3e6ee; }
  th { background: #f4f6fa; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .up { color: #137333; font-weight: 600; }
  .waiting { color: #a86400; font-weight: 600; }
  .down, .unused { color: #b3261e; font-weight: 600; }
  .primary { font-weight: 600; }
  #error { color: #b3261e; }
  .charts { display: flex; flex-wrap: wrap; gap: 1em 2em; }
  .chart h3 { font-size: .95em; margin: 0 0 .2em; font-weight: 600; }
  .chart svg { display: block; background: #fbfcfe; border: 1px solid #e3e6ee; }
  .chart text { font: 11px system-ui, sans-serif; fill: #5a6275; }
  .legend span { margin-right: 1em; font-size: .9em; }
</style>
</head>
<body>
<h1>Sluice</h1>
<div class="sub" id="summary">loading...</div>
<div id="error"></div>
<h2>Nodes</h2>
<table id="nodes">
  <thead><tr><th>node</th><th>address</th><th>role</th><th>status</th><th>weight</th>
  <th>lag (bytes)</th><th>lag (s)</th><th>statements</th><th>pool idle / in use / opening</th><th>since</th></tr></thead>
  <tbody></tbody>
</table>
<h2>Sessions</h2>
<div id="sessions"></div>
<h2>Last minutes</h2>
<div class="legend" id="legend"></div>
<div class="charts">
  <div class="chart"><h3>Statements per second, by node</h3><svg id="chart-statements" data-chart="statements" width="460" height="150"></svg></div>
  <div class="chart"><h3>Latency (ms, mean to ReadyForQuery), by node</h3><svg id="chart-latency" data-chart="latency" width="460" height="150"></svg></div>
  <div class="chart"><h3>Replication lag (bytes behind the primary), by standby</h3><svg id="chart-lag" data-chart="lag" width="460" height="150"></svg></div>
  <div class="chart"><h3>Sessions</h3><svg id="chart-sessions" data-chart="sessions" width="460" height="150"></svg></div>
</div>
<h2>Recent events</h2>
<table id="events">
  <thead><tr><th>time</th><th>event</th><th>node</th><th>what happened</th></tr></thead>
  <tbody></tbody>
</table>
<script>
const cell = (text, cls) => {
  const td = document.createElement('td');
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
};
const row = (cells) => {
  const tr = document.createElement('tr');
  for (const c of cells) tr.appendChild(c);
  return tr;
};
const time = (iso) => new Date(iso).toLocaleTimeString();
function render(s) {
  document.getElementById('summary').textContent =
    'version ' + s.version + ', up since ' + new Date(s.startedAt).toLocaleString() + (s.paused ? ', PAUSED' : '') + '; updated ' + time(s.now);
  const nodes = document.querySelector('#nodes tbody');
  nodes.replaceChildren(...s.nodes.map((n) => {
    const status = n.recovery ? n.status + ' (recovery: ' + n.recovery + ')' : n.following ? n.status + ' (following the new primary)' : n.role === 'was primary' ? n.status + ' (was primary)' : n.status;
    const tr = row([
      cell(String(n.id), 'num'),
      cell(n.host + ':' + n.port),
      cell(n.role, n.role === 'primary' ? 'primary' : ''),
      cell(status, n.status),
      cell(n.weight.toFixed(3), 'num'),
      cell(String(n.delayBytes), 'num'),
      cell(n.delaySeconds === null ? '' : n.delaySeconds.toFixed(3), 'num'),
      cell(String(n.statements), 'num'),
      cell(n.pool.idle + ' / ' + n.pool.inUse + ' / ' + n.pool.opening, 'num'),
      cell(time(n.lastStatusChange)),
    ]);
    tr.dataset.node = String(n.id);
    tr.dataset.status = n.status;
    return tr;
  }));
  const by = Object.entries(s.sessions.byStatus).map(([k, v]) => v + ' ' + k.toLowerCase()).join(', ');
  const held = s.sessions.waiting.map((w) => 'session ' + w.session + ' waits for ' + w.waitingFor).join('; ');
  document.getElementById('sessions').textContent = s.sessions.total + ' open' + (by ? ': ' + by : '') +
    (s.sessions.held > 0 ? '. ' + s.sessions.held + ' held (' + held + ')' : '');
  const events = document.querySelector('#events tbody');
  events.replaceChildren(...s.events.slice().reverse().map((e) =>
    row([cell(time(e.time)), cell(e.kind), cell(e.node === null ? '' : String(e.node), 'num'), cell(e.message)])));
}
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];
const EVENT_COLORS = { failover: '#b3261e', failback: '#137333', primary: '#1d2330', follow: '#a86400', recovery: '#137333' };
const SVG = 'http://www.w3.org/2000/svg';
const el = (name, attrs, text) => {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
};
/** One chart: a line per series over the samples' time span, the events in it as marks. */
function chart(id, samples, series, events) {
  const svg = document.getElementById(id);
  const W = +svg.getAttribute('width'), H = +svg.getAttribute('height'), L = 44, R = 8, T = 8, B = 18;
  const parts = [];
  const t1 = samples.length ? samples[samples.length - 1].t : Date.now();
  const t0 = Math.min(samples.length ? samples[0].t : t1, t1 - 60000);
  let max = 0;
  for (const s of series) for (const p of samples) { const v = s.value(p); if (v !== null && v > max) max = v; }
  max = max > 0 ? max * 1.1 : 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  parts.push(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#c9ceda' }));
  parts.push(el('text', { x: 4, y: T + 8 }, max < 10 ? max.toFixed(2) : Math.round(max)));
  parts.push(el('text', { x: 4, y: H - B }, '0'));
  parts.push(el('text', { x: L, y: H - 4 }, new Date(t0).toLocaleTimeString()));
  parts.push(el('text', { x: W - R, y: H - 4, 'text-anchor': 'end' }, new Date(t1).toLocaleTimeString()));
  for (const e of events) {
    const t = new Date(e.time).getTime();
    if (t < t0 || t > t1) continue;
    const mark = el('line', { x1: x(t), y1: T, x2: x(t), y2: H - B, stroke: EVENT_COLORS[e.kind] || '#5a6275', 'stroke-dasharray': '3 2', 'data-event': e.kind });
    mark.appendChild(el('title', {}, time(e.time) + ' ' + e.kind + ': ' + e.message));
    parts.push(mark);
  }
  for (const s of series) {
    // A gap (null) ends a line: a node down draws nothing rather than zero.
    let run = [];
    const flush = () => {
      if (run.length) parts.push(el('polyline', { points: run.join(' '), fill: 'none', stroke: s.color, 'stroke-width': 1.8, 'data-series': s.name }));
      run = [];
    };
    for (const p of samples) {
      const v = s.value(p);
      if (v === null) flush();
      else run.push(x(p.t).toFixed(1) + ',' + y(v).toFixed(1));
    }
    flush();
  }
  svg.replaceChildren(...parts);
}
function charts(s) {
  const samples = s.history.samples;
  const perNode = (f) => s.nodes.map((n) => ({ name: 'node ' + n.id, color: COLORS[n.id % COLORS.length], value: (p) => f(p, n.id) }));
  chart('chart-statements', samples, perNode((p, i) => p.statementsPerSecond[i] ?? null), s.events);
  chart('chart-latency', samples, perNode((p, i) => p.latencyMs[i] ?? null), s.events);
  // Every node: one that was a standby has its lag drawn for that time (it is null as primary).
  chart('chart-lag', samples, perNode((p, i) => p.lagBytes[i] ?? null), s.events);
  chart('chart-sessions', samples, [{ name: 'sessions', color: '#1d2330', value: (p) => p.sessions }], s.events);
  document.getElementById('legend').replaceChildren(...s.nodes.map((n) => {
    const span = document.createElement('span');
    span.textContent = '\u25A0 node ' + n.id;
    span.style.color = COLORS[n.id % COLORS.length];
    return span;
  }));
}
async function refresh() {
  try {
    const r = await fetch('status.json', { cache: 'no-store' });
    const s = await r.json();
    render(s);
    charts(s);
    document.getElementById('error').textContent = '';
  } catch (e) {
    document.getElementById('error').textContent = 'Sluice is not answering: ' + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
