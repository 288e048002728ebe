/**
 * The live status page: plain HTML and a little script that reads /status.json every two
 * seconds. No build step and no external resource, so it works on a host with no internet.
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
    const status = n.recovery ? n.status + ' (recovery: ' + n.recovery + ')' : n.following ? n.status + ' (following the new primary)' : n.status;
    const tr = row([
      cell(String(n.id), 'num'),
      cell(n.host + ':' + n.port),
      cell(n.role, n.role),
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
async function refresh() {
  try {
    const r = await fetch('status.json', { cache: 'no-store' });
    render(await r.json());
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
