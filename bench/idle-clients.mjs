// Opens N idle clients through Sluice, prints Sluice's RSS (KiB) while they are connected,
// then closes them. Usage: node bench/idle-clients.mjs PORT N SLUICE_PID
import { readFileSync } from 'node:fs';
import pg from 'pg';

const [port, n, pid] = process.argv.slice(2).map(Number);
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
const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1];
console.log(rss);
await Promise.all(clients.map((c) => c.end()));
