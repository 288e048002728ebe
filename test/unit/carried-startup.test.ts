import t from 'tap';
import { CarriedStartup, NOTHING_CARRIED } from '../../src/session/carried-startup';
import { splitStartup } from '../../src/pool/pool-key';

const carried = (o: Record<string, string>) => new CarriedStartup(new Map(Object.entries(o)));

t.test('transaction mode: the pool key keeps what takes effect only at connection start; settings are carried', async (t) => {
  const { backend, carried: rest } = splitStartup(new Map(Object.entries({ user: 'u', database: 'd', options: '-c geqo=off', application_name: 'a', DateStyle: 'ISO', log_connections: 'on', _pq_x: 'y' })));
  t.same([...backend.keys()], ['user', 'database', 'options', 'log_connections']);
  t.same([...rest.keys()], ['application_name', 'DateStyle', '_pq_x']);
});

t.test('only what differs is given to a connection, as set_config() (a startup packet value, list settings too)', async (t) => {
  const mine = carried({ application_name: 'me', TimeZone: 'UTC', search_path: 'a, b' });
  t.equal(mine.changeFrom(null), "SELECT pg_catalog.set_config('application_name', 'me', false), pg_catalog.set_config('timezone', 'UTC', false), pg_catalog.set_config('search_path', 'a, b', false)");
  t.equal(mine.changeFrom(mine), null, 'the same settings: nothing');
  t.equal(mine.changeFrom(carried({ search_path: 'a, b', timezone: 'UTC', APPLICATION_NAME: 'me' })), null, 'equal settings of another session, in any order or case');
  t.equal(mine.changeFrom(carried({ application_name: 'other', TimeZone: 'UTC', search_path: 'a, b', DateStyle: 'SQL' })), `SELECT pg_catalog.set_config('application_name', 'me', false); RESET "datestyle"`, 'a setting only the other had is reset');
  t.equal(NOTHING_CARRIED.changeFrom(carried({ 'myapp.mode': 'x' })), 'RESET "myapp"."mode"', 'a client without settings on a connection that carries some');
  t.equal(NOTHING_CARRIED.changeFrom(null), null);
});

t.test('quotes and backslashes reach the server as sent', async (t) => {
  t.equal(carried({ application_name: "it's" }).changeFrom(null), "SELECT pg_catalog.set_config('application_name', 'it''s', false)");
  t.equal(carried({ application_name: 'a\\b' }).changeFrom(null), "SELECT pg_catalog.set_config('application_name', E'a\\\\b', false)");
});

t.test('after a reset: the startup values of what it reset, for the session or the transaction', async (t) => {
  const mine = carried({ application_name: 'me', TimeZone: 'UTC' });
  t.equal(mine.restoreAfter({ names: ['*'], local: false }), "SELECT pg_catalog.set_config('application_name', 'me', false), pg_catalog.set_config('timezone', 'UTC', false)");
  t.equal(mine.restoreAfter({ names: ['timezone'], local: true }), "SELECT pg_catalog.set_config('timezone', 'UTC', true)");
  t.equal(mine.restoreAfter({ names: ['work_mem'], local: false }), null, 'a setting the client did not start with');
});
