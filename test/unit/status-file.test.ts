import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseStatus, StatusFile } from '../../src/cluster/status-file';

// work_dir/sluice_status keeps pgpool_status's format and rules (pgpool.md a.9).

t.test('one word per node, in node order', async (t) => {
  t.same(parseStatus('up\ndown\nup\n', 3), ['up', 'down', 'up']);
  t.same(parseStatus('down\nunused\nup', 3), ['down', 'unused', 'up']);
});

t.test('a file that cannot be right is ignored', async (t) => {
  t.equal(parseStatus('up\ndown\n', 3), null, 'another node count');
  t.equal(parseStatus('up\nsideways\nup\n', 3), null, 'an unknown word');
  t.equal(parseStatus('down\ndown\n', 2), null, 'no node up: bogus, every node starts afresh');
});

t.test('written atomically, skipped when every node is down, discarded by -D', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-status-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = new StatusFile(dir);
  t.equal(f.read(2), null, 'no file yet');
  f.write(['up', 'down']);
  t.equal(readFileSync(f.path, 'utf8'), 'up\ndown\n');
  f.write(['down', 'down']);
  t.equal(readFileSync(f.path, 'utf8'), 'up\ndown\n', 'all down: the last set that took writes stays');
  t.same(f.read(2), ['up', 'down']);
  writeFileSync(f.path, 'garbage');
  t.equal(f.read(2), null);
  f.discard();
  t.notOk(existsSync(f.path));
});
