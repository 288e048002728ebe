import { Writable } from 'node:stream';
import t from 'tap';
import { ABSENT_RETRY_MS, CatalogEntry, lookupSql } from '../../src/cluster/catalog-cache';
import { createLogger } from '../../src/log/logger';
import { FakeClock } from '../helpers/fake-clock';

const quiet = createLogger('error', new Writable({ write: (_c, _e, cb) => cb() }));

function entry(clock: FakeClock): CatalogEntry {
  return new CatalogEntry(new Set(['nextval']), new Set(['nextval', 'now']), new Set(), new Set(), clock.now(), clock, quiet);
}

t.test('names loaded at first are known; others are looked up once, and every waiter is woken', async (t) => {
  const clock = new FakeClock();
  const e = entry(clock);
  t.equal(e.writesFunction('nextval'), true);
  t.equal(e.writesFunction('now'), false);
  t.equal(e.writesFunction('made_later'), null, 'not known yet');
  const asked: string[][] = [];
  let woken = 0;
  e.lookUp(['made_later', 'writes'], (_sql, names) => asked.push([...names]), () => woken++);
  e.lookUp(['made_later'], (_sql, names) => asked.push([...names]), () => woken++);
  t.same(asked, [['made_later', 'writes']], 'a second session joins the look-up under way');
  t.equal(e.writesFunction('made_later'), null, 'pending: still not known');
  e.learned(['made_later', 'writes'], '{ "made_later" : false, "writes" : true }');
  t.equal(woken, 2, 'both woken');
  t.equal(e.writesFunction('made_later'), false);
  t.equal(e.writesFunction('writes'), true);
});

t.test('a name pg_proc lacks is the primary\'s, and asked again after a while; a look-up left unanswered is asked again', async (t) => {
  const clock = new FakeClock();
  const e = entry(clock);
  e.lookUp(['not_a_function'], () => undefined, () => undefined);
  e.learned(['not_a_function'], null);
  t.equal(e.writesFunction('not_a_function'), true, 'absent: the safe side');
  clock.tick(ABSENT_RETRY_MS);
  t.equal(e.writesFunction('not_a_function'), null, 'asked again later (it may have been made since)');
  const asked: string[] = [];
  e.lookUp(['orphan'], () => asked.push('first'), () => undefined);
  e.lookUp(['orphan'], () => asked.push('joined'), () => undefined);
  clock.tick(2_000);
  e.lookUp(['orphan'], () => asked.push('again'), () => undefined);
  t.same(asked, ['first', 'again'], 'the session that asked went away: another asks after 2 s');
});

t.test('DDL forgets what it changed; "*" forgets everything', async (t) => {
  const clock = new FakeClock();
  const e = entry(clock);
  e.lookUp(['f'], () => undefined, () => undefined);
  e.learned(['f'], '{"f": false}');
  e.forget(['f', 'nextval']);
  t.equal(e.writesFunction('f'), null);
  t.equal(e.writesFunction('nextval'), null);
  t.equal(e.writesFunction('now'), false, 'other names kept');
  e.forget('*');
  t.equal(e.writesFunction('now'), null);
});

t.test('the look-up query quotes names whatever they hold', async (t) => {
  t.match(lookupSql(["it's", 'back\\slash']), /ARRAY\[E'it''s', E'back\\\\slash'\]/);
});
