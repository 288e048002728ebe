// Keeps DESIGN.md's layering: a module imports only from its own layer or those below it, and
// no module reaches itself through its imports (no import circle, type imports included: a circle
// of types is still two concerns that cannot be read apart).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, dirname, resolve } from 'node:path';

const src = resolve(import.meta.dirname, '..', 'src');
const layer = (file) => {
  const top = relative(src, file).split('/')[0].replace(/\.ts$/, '');
  const map = {
    util: 0, protocol: 0, config: 0, log: 1, metrics: 1, net: 1, backend: 2, cluster: 3, coord: 3, pool: 3, router: 3,
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
const imports = new Map();
for (const f of files) {
  const targets = [];
  imports.set(f, targets);
  for (const m of readFileSync(f, 'utf8').matchAll(/^import[^'"]*['"](\.[^'"]+)['"]/gm)) {
    const target = resolve(dirname(f), m[1]) + '.ts';
    targets.push(target);
    if (layer(target) > layer(f)) {
      console.error(`${relative(src, f)} imports ${relative(src, target)}: a higher layer (DESIGN.md module map)`);
      bad++;
    }
  }
}
// Depth-first search: an import of a module still on the path is a circle.
const state = new Map();
const path = [];
const visit = (f) => {
  state.set(f, 'open');
  path.push(f);
  for (const t of imports.get(f) ?? []) {
    if (state.get(t) === 'open') {
      console.error(`import circle: ${[...path.slice(path.indexOf(t)), t].map((x) => relative(src, x)).join(' → ')}`);
      bad++;
    } else if (!state.has(t) && imports.has(t)) visit(t);
  }
  path.pop();
  state.set(f, 'done');
};
for (const f of files) if (!state.has(f)) visit(f);
if (bad) process.exit(1);
console.log(`layers ok, no import circle (${files.length} files)`);
