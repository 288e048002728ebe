import t from 'tap';
import { classify } from '../../src/router/classify';
import { ReplayLog, SessionState } from '../../src/session/memory';

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

t.test('savepoints: ROLLBACK TO takes back what was logged after it; SET inside a transaction pins it', async (t) => {
  const st = new SessionState(true);
  const log = st.replay;
  /** One statement sent now and answered inside a transaction; true when it pins the transaction. */
  const run = (sql: string, logged?: string) => {
    const sentAt = log.lastSeq;
    const seqs = logged ? [log.append(logged, undefined)] : [];
    return st.settled(classify(sql), seqs, sentAt, true, true);
  };
  t.equal(run("set datestyle = 'MDY'", "set datestyle = 'MDY'"), true, 'a SET in a transaction pins it to the primary');
  t.equal(run('savepoint first_sp'), false);
  run("set datestyle = 'German'", "set datestyle = 'German'");
  run('savepoint second_sp');
  run('set work_mem = 1000', 'set work_mem = 1000');
  run('release second_sp');
  run('rollback to first_sp');
  t.same(texts(log), ["set datestyle = 'MDY'"], 'everything after first_sp is undone, released savepoints included');
  run('set work_mem = 2000', 'set work_mem = 2000');
  run('rollback to savepoint first_sp');
  t.same(texts(log), ["set datestyle = 'MDY'"], 'the savepoint stays after a rollback to it');
  run('rollback to nosuch');
  t.same(texts(log), ["set datestyle = 'MDY'"], 'an unknown savepoint changes nothing');
  t.equal(st.settled(classify('commit'), [], log.lastSeq, true, false), false, 'outside a transaction nothing pins');
  run('set work_mem = 3000', 'set work_mem = 3000');
  run('rollback to first_sp');
  t.same(texts(log), ["set datestyle = 'MDY'", 'set work_mem = 3000'], 'savepoints end with their transaction');
});
