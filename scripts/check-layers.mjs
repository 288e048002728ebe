// Keeps DESIGN.md's layering: a module imports only from its own layer or those below it.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const src = resolve(import.meta.dirname, '..', 'src');
const layer = (file) => {
  const top = relative(src, file).split('/')[0].replace(/\.ts$/, '');
  const map = {
    util: 0, protocol: 0, config: 0, log: 1, metrics: 1, net: 1, backend: 2, cluster: 3, pool: 3, router: 3,
    auth: 3, session: 4, admin: 5, http: 5, server: 6, cli: 7, ctl: 7,
  };
  // config/schema and config/spec are pure (L0); config/load reads files (L1), and config/diff
  // compares what it loaded.
  if (top === 'config' && /\/(load|diff)\.ts$/.test(file)) return 1;
  if (!(top in map)) throw new Error(`no layer for ${relative(src, file)}: add it to scripts/check-layers.mjs`);
  return map[top];
};
const files = [];
const walk = (d) => {
  for (const n of readdirSync(d)) {
    const p = join(d, n);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.endsWith('.ts')) files.push(p);
  }
};
walk(src);
let bad = 0;
for (const f of files) {
  for (const m of readFileSync(f, 'utf8').matchAll(/^import[^'"]*['"](\.[^'"]+)['"]/gm)) {
    const target = resolve(dirname(f), m[1]) + '.ts';
    if (layer(target) > layer(f)) {
      console.error(`${relative(src, f)} imports ${relative(src, target)}: a higher layer (DESIGN.md module map)`);
      bad++;
    }
  }
}
if (bad) process.exit(1);
console.log(`layers ok (${files.length} files)`);
