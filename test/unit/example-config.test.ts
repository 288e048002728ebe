import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { sections, topLevel } from '../../src/config/schema';
import { parseConfig } from '../../src/config/load';

// conf/sluice.example.toml must show every key, so the documentation cannot drift from the schema.

const text = readFileSync(join(__dirname, '..', '..', 'conf', 'sluice.example.toml'), 'utf8');

t.test('the example config is valid and sets every top-level and section key', async (t) => {
  const c = parseConfig(text, '/');
  for (const key of Object.keys(topLevel)) t.match(text, new RegExp(`^${key} = `, 'm'), key);
  for (const [name, keys] of Object.entries(sections)) {
    t.match(text, new RegExp(`^\\[\\[${name}\\]\\]`, 'm'), `[[${name}]]`);
    for (const key of Object.keys(keys)) t.match(text, new RegExp(`^${key} = `, 'm'), `${name}.${key}`);
  }
  t.same(c.pendingKeys, [], 'every key is active');
});

t.test('the minimal config is valid', async (t) => {
  const c = parseConfig(readFileSync(join(__dirname, '..', '..', 'conf', 'sluice.minimal.toml'), 'utf8'), '/');
  t.equal(c.backend.length, 2);
});
