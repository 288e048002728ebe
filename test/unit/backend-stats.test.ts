import t from 'tap';
import { BackendStats } from '../../src/cluster/backend-stats';

/** A CommandComplete frame with this tag, behind two bytes of something else (frames sit inside chunks). */
function frame(tag: string): { buf: Buffer; start: number; end: number } {
  const body = Buffer.from(`${tag}\0`);
  const f = Buffer.alloc(5 + body.length);
  f[0] = 0x43;
  f.writeUInt32BE(4 + body.length, 1);
  body.copy(f, 5);
  return { buf: Buffer.concat([Buffer.from('xx'), f]), start: 2, end: 2 + f.length };
}

t.test('CommandComplete tags are counted by their first word, as pgpool counts them', async (t) => {
  const stats = new BackendStats(2);
  for (const tag of ['INSERT 0 1', 'INSERT 0 5', 'UPDATE 3', 'DELETE 0', 'SELECT 1', 'CREATE TABLE', 'ALTER TABLE', 'TRUNCATE TABLE', 'DROP INDEX', 'COMMIT', 'BEGIN', 'COPY 5', 'INSERTED 1', 'UPDATES']) {
    const f = frame(tag);
    stats.commandComplete(1, f.buf, f.start, f.end);
  }
  t.same(stats.nodes[1], { insert: 2, update: 1, delete: 1, ddl: 4, other: 5, panic: 0, fatal: 0, error: 0 }, 'SELECT is not counted here (routing counts it); a longer word is not its prefix');
  t.same(stats.nodes[0], { insert: 0, update: 0, delete: 0, ddl: 0, other: 0, panic: 0, fatal: 0, error: 0 }, 'per node');
});
