import t from 'tap';
import { lex } from '../../src/router/lexer';
import { shapeOf } from '../../src/router/text-shape';

t.test('a text is its shape but for its numbers', async (t) => {
  t.equal(shapeOf('select 1'), 'select \0');
  t.equal(shapeOf('SELECT abalance FROM pgbench_accounts WHERE aid = 12345;'), 'SELECT abalance FROM pgbench_accounts WHERE aid = \0;');
  t.equal(shapeOf('select 1.5, .5, 1e10, 0x1F from t'), 'select \0, .\0, \0, \0 from t');
  t.equal(shapeOf('select a1, t2.b3 from t4'), 'select a1, t2.b3 from t4', 'digits inside names are kept');
  t.equal(shapeOf('select * from t where a = $1 and b = 2'), 'select * from t where a = $1 and b = \0', 'parameters are kept');
  t.equal(shapeOf('select a$1 from t'), 'select a$1 from t');
  t.equal(shapeOf('begin'), 'begin', 'no numbers: the text itself');
});

t.test('texts with strings, quoted names, dollar quotes or comments have no shape', async (t) => {
  for (const sql of ["select 'a'", 'select "A"', 'select $$x$$', 'select $q$x$q$', 'select 1 -- c', 'select /* c */ 1', "select e'x'", "select u&'x'"]) {
    t.equal(shapeOf(sql), null, sql);
  }
});

t.test('the lexer sees a constant where the shape has a NUL, and nowhere else', async (t) => {
  for (const sql of ['select 1', 'select a1 + 2 from t', 'select $1, 3.0e2, x.y', 'select 1;select 2', 'values (1),(2)']) {
    const holes = (shapeOf(sql)!.match(/\0/g) ?? []).length;
    const constants = lex(sql).statements.flat().filter((tok) => tok.kind === 'literal').length;
    const params = (sql.match(/\$\d/g) ?? []).length;
    t.equal(holes, constants - params, sql);
  }
});
