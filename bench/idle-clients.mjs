// Opens N idle clients through Sluice and prints Sluice's RSS (KiB) while they are connected:
// right after they all connected and ran a statement, then once they have been idle for SETTLE
// seconds (default 30: V8's memory reducer collects the garbage of their startups once the
// allocation rate drops, about 20 s after, and gives its pages back). Then closes them.
// Usage: node bench/idle-clients.mjs PORT N SLUICE_PID   (prints "AT_ONCE SETTLED")
import { readFileSync } from 'node:fs';
import pg from 'pg';

const [port, n, pid] = process.argv.slice(2).map(Number);
const settle = Number(process.env.SETTLE ?? 30);
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const clients = [];
for (let i = 0; i < n; i += 50) {
  const batch = [];
  for (let j = i; j < Math.min(n, i + 50); j++) {
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
    c.on('error', () => {});
    clients.push(c);
    batch.push(c.connect());
  }
  await Promise.all(batch);
}
await Promise.all(clients.map((c) => c.query('select 1')));
const atOnce = rss();
await new Promise((resolve) => setTimeout(resolve, settle * 1000));
console.log(atOnce, rss());
await Promise.all(clients.map((c) => c.end()));
