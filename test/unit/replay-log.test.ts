import t from 'tap';
import { ReplayLog } from '../../src/session/replay-log';

const texts = (log: ReplayLog, applied = 0) => log.since(applied).map((e) => e.sql);

t.test('a session that sets the same things again and again keeps a bounded log', async (t) => {
  const log = new ReplayLog();
  for (let i = 0; i < 1000; i++) {
    log.settle(log.append(`set application_name = 'w${i}'`, 'set application_name'), true, false);
    log.settle(log.append(`set statement_timeout = ${i}`, 'set statement_timeout'), true, false);
    const p = log.append(`prepare p${i} as select ${i}`, `prepare p${i}`);
    log.settle(p, true, false);
    log.removeKey(`prepare p${i}`);
  }
  t.same(texts(log), ["set application_name = 'w999'", 'set statement_timeout = 999']);
});

t.test('a failed statement does not replace the one before it', async (t) => {
  const log = new ReplayLog();
  log.settle(log.append("set datestyle = 'SQL'", 'set datestyle'), true, false);
  log.settle(log.append("set datestyle = 'nonsense'", 'set datestyle'), false, false);
  t.same(texts(log), ["set datestyle = 'SQL'"]);
});

t.test('a rollback undoes settings but not prepared statements', async (t) => {
  const log = new ReplayLog();
  const mark = log.lastSeq;
  log.settle(log.append('set a.b = 1', 'set a.b'), true, true);
  log.settle(log.append('prepare q as select 1', 'prepare q'), true, true);
  log.truncateAfter(mark);
  t.same(texts(log), ['prepare q as select 1']);
});

t.test('a node replays only what it has not applied; DISCARD ALL starts over', async (t) => {
  const log = new ReplayLog();
  const a = log.append('set x.y = 1', 'set x.y');
  log.append('set x.z = 2', 'set x.z');
  t.same(texts(log, a), ['set x.z = 2']);
  log.restart('discard all');
  t.same(texts(log, a), ['discard all']);
});
