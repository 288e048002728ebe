import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { parseConfig } from '../../src/config/load';
import { importPgpoolConf, parsePgpoolConf } from '../../src/config/pgpool-import';

// Debian's pgpool2 package: the installed pgpool.conf and the documentation's sample. .ci/run
// installs pgpool2, so they are there; on a machine without it their tests are recorded as skipped.
const SAMPLES = ['/etc/pgpool2/pgpool.conf', '/usr/share/doc/pgpool2/examples/pgpool.conf.sample'];
/** Every parameter the sample documents, at its default: the sample with its `#name = value` lines enabled. */
const enableAll = (text: string) => text.replace(/^#([a-z_0-9]+\s*=)/gm, '$1');

t.test('pgpool.conf syntax: quotes, doubled quotes, bare values, comments, last one wins', async (t) => {
  const p = parsePgpoolConf("a = 'x y' # c\nb=on\nc = 'it''s'\n# d = 1\n  e = 10min\na = 'z'\n");
  t.same([...p], [['a', 'z'], ['b', 'on'], ['c', "it's"], ['e', '10min']]);
});

t.test('values: booleans, units, enums, numbered backends, logdir, pcp.conf', async (t) => {
  const r = importPgpoolConf(
    [
      "backend_hostname0 = 'db0'", 'backend_port0 = 5432', "backend_flag0 = 'ALWAYS_PRIMARY'", 'health_check_period0 = 5',
      "backend_hostname1 = 'db1'", 'backend_port1 = 5433', 'backend_weight1 = 0.5', 'connect_timeout1 = 100',
      'load_balance_mode = off', 'search_primary_node_timeout = 5min', 'authentication_timeout = 1min', 'connect_timeout = 2s',
      "log_min_messages = debug3", "check_temp_table = off", "logdir = '/var/log/pgpool'", "memqcache_total_size = 64MB",
      "backend_clustering_mode = 'native_replication'", 'num_init_children = lots',
    ].join('\n'),
    '# USERID:MD5PASSWD\nadmin:21232F297A57A5A743894A0E4A801FC3\n',
  );
  const c = parseConfig(r.toml, '/');
  t.equal(c.load_balance_mode, false);
  t.equal(c.search_primary_node_timeout, 300, 'minutes to seconds');
  t.equal(c.authentication_timeout, 60);
  t.equal(c.connect_timeout, 2000, 'connect_timeout stays in milliseconds');
  t.equal(c.log_min_messages, 'debug');
  t.equal(c.check_temp_table, 'none');
  t.equal(c.work_dir, '/var/log/pgpool');
  t.equal(c.num_init_children, 32, 'a value that does not convert is left at the default...');
  t.same(c.backend.map((b) => [b.hostname, b.port, b.weight, b.flag, b.health_check_period]), [
    ['db0', 5432, 1, 'ALWAYS_PRIMARY', 5],
    ['db1', 5433, 0.5, 'ALLOW_TO_FAILOVER', undefined],
  ]);
  t.same(c.pcp_user, [{ name: 'admin', md5: '21232f297a57a5a743894a0e4a801fc3' }]);
  const why = Object.fromEntries(r.skipped.map((s) => [s.key, s.why]));
  t.match(why.num_init_children, /not accepted/, '...and listed');
  t.match(why.memqcache_total_size, /query cache/);
  t.match(why.connect_timeout1, /per-node connect_timeout/);
  t.match(why.backend_clustering_mode, /streaming_replication only/);
  t.match(r.toml, /# Not carried over:\n(#   .*\n)*#   num_init_children = 'lots': value not accepted/);
});

for (const file of SAMPLES) {
  const skip = existsSync(file) ? false : `${file} is not installed (Debian package pgpool2)`;
  t.test(`Debian's ${file} converts to a config Sluice accepts`, { skip }, async (t) => {
    const text = readFileSync(file, 'utf8');
    for (const [what, conf] of [['as shipped', text], ['every documented parameter enabled', enableAll(text)]] as const) {
      const r = importPgpoolConf(conf, '');
      const c = parseConfig(r.toml, '/');
      t.ok(c.backend.length >= 1, `${what}: at least one backend`);
      for (const s of r.skipped) t.ok(s.why.length > 0, `${what}: ${s.key} has a reason`);
      const listed = new Set(r.skipped.map((s) => s.key));
      // Every parameter of the file is either a key of the TOML or listed as not carried over.
      for (const key of parsePgpoolConf(conf).keys()) {
        const carried = new RegExp(`^${key.replace(/\d+$/, '').replace(/^backend_/, '')} = `, 'm').test(r.toml) || key === 'logdir' || key === 'backend_clustering_mode';
        t.ok(carried || listed.has(key), `${what}: ${key} is carried over or listed`);
      }
    }
  });
}
