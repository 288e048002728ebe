import t from 'tap';
import { buildConfig, ConfigError, parseConfig } from '../../src/config/load';
import { lendsAnywhere, poolModeOf } from '../../src/pool/pool-key';

const minimal = '[[backend]]\nhostname = "127.0.0.1"\nport = 5432\n';

t.test('defaults fill every key and the snapshot is frozen', async (t) => {
  const c = parseConfig(minimal, '/etc');
  t.equal(c.port, 9999);
  t.equal(c.num_init_children, 32);
  t.equal(c.reset_query_list, 'ABORT; DISCARD ALL');
  t.equal(c.backend[0]!.weight, 1);
  t.equal(c.backend[0]!.flag, 'ALLOW_TO_FAILOVER');
  t.ok(Object.isFrozen(c));
  t.ok(Object.isFrozen(c.backend[0]));
  t.same(c.pendingKeys, []);
});

const bad: [string, RegExp][] = [
  ['prot = 1\n', /^key "prot": unknown key$/],
  ['port = "x"\n', /^key "port": expected an integer from 0 to 65535, got "x"$/],
  ['port = 70000\n', /^key "port": expected an integer/],
  ['num_init_children = 0\n', /^key "num_init_children"/],
  ['log_statement = "yes"\n', /^key "log_statement": expected true or false/],
  ['disable_load_balance_on_write = "sometimes"\n', /^key "disable_load_balance_on_write": expected one of/],
  ['connect_timeout = 1.5\n', /^key "connect_timeout"/],
  ['reserved_connections = 40\n', /^key "reserved_connections"/],
  ['port = \n', /^TOML syntax/],
];
for (const [text, re] of bad) {
  t.test(`rejects ${text.trim()}`, async (t) => {
    t.throws(() => parseConfig(text + minimal, '/'), ConfigError);
    try {
      parseConfig(text + minimal, '/');
    } catch (e) {
      t.match((e as Error).message, re);
      t.notMatch((e as Error).message, /\n/, 'one line');
    }
  });
}

t.test('backend sections are checked', async (t) => {
  t.throws(() => parseConfig('port = 1\n', '/'), /key "backend": at least one/);
  t.throws(() => parseConfig('[[backend]]\nhostname = "h"\n', '/'), /key "backend\[0\]\.port": required/);
  t.throws(() => parseConfig(minimal + '[[backend]]\nhostname = "h"\nport = 1\nflag = "NOPE"\n', '/'), /key "backend\[1\]\.flag"/);
  t.throws(() => parseConfig(minimal + 'colour = 1\n', '/'), /key "backend\[0\]\.colour": unknown key/);
  const c = parseConfig('[[backend]]\nhostname = "h"\nport = 1\nflag = "ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER"\n', '/');
  t.equal(c.backend[0]!.flag, 'ALWAYS_PRIMARY|DISALLOW_TO_FAILOVER');
  t.throws(() => buildConfig({ backend: 'x' }, '/'), /array of tables/);
});

t.test('every key is active: none is listed as pending', async (t) => {
  const c = parseConfig('ssl_cert = "a.crt"\nhttp_port = 9123\n[[hba]]\naddress = "all"\nmethod = "md5"\n' + minimal, '/');
  t.equal(c.ssl_cert, 'a.crt');
  t.same(c.pendingKeys, []);
});

t.test('security keys: hba rules, stored secrets and trusted proxies are checked, the error names the key', async (t) => {
  const hba = (extra: string) => parseConfig(`[[hba]]\n${extra}\n` + minimal, '/');
  t.throws(() => hba('address = "all"'), /key "hba\[0\]\.method": required/);
  t.throws(() => hba('method = "md5"'), /key "hba\[0\]\.address": required for type "host"/);
  t.throws(() => hba('method = "md5"\naddress = "10.0.0.0/33"'), /key "hba\[0\]\.address": .*prefix length/);
  t.throws(() => hba('method = "md5"\naddress = "db.example.com"'), /key "hba\[0\]\.address": .*not an IP address/);
  t.throws(() => hba('method = "md5"\naddress = "all"\nuser = "+admins"'), /key "hba\[0\]\.user": .*group membership/);
  t.throws(() => hba('type = "local"\nmethod = "md5"\naddress = "all"'), /key "hba\[0\]\.address": a local rule takes no address/);
  t.throws(() => hba('method = "ident"\naddress = "all"'), /key "hba\[0\]\.method": expected one of/);
  t.throws(() => parseConfig('[[user]]\nname = "a"\npassword = "SCRAM-SHA-256$4096:bad"\n' + minimal, '/'), /key "user\[0\]\.password": malformed SCRAM-SHA-256 verifier/);
  t.throws(() => parseConfig('proxy_protocol_trusted_addresses = "10.0.0.0/8, nonsense"\n' + minimal, '/'), /key "proxy_protocol_trusted_addresses": "nonsense" is not an IP address/);
  t.throws(() => parseConfig('backend_sslmode = "allow"\n' + minimal, '/'), /key "backend_sslmode": expected one of/);
});

t.test('__proto__ keys are refused', async (t) => {
  t.throws(() => parseConfig('__proto__ = 1\n' + minimal, '/'), ConfigError);
});

t.test('[[pool]]: pool_mode per database and user, the first entry that matches decides', async (t) => {
  const c = parseConfig(
    `pool_mode = "session"
[[pool]]
user = "batch"
pool_mode = "session"
[[pool]]
database = "app"
pool_mode = "transaction"
` + minimal,
    '/',
  );
  t.equal(poolModeOf(c, 'app', 'web'), 'transaction', 'the database entry');
  t.equal(poolModeOf(c, 'app', 'batch'), 'session', 'an earlier user entry wins');
  t.equal(poolModeOf(c, 'postgres', 'web'), 'session', 'no entry: the global pool_mode');
  t.ok(lendsAnywhere(c), 'some clients are in transaction mode');
  t.notOk(lendsAnywhere(parseConfig(minimal, '/')), 'none by default');
  t.throws(() => parseConfig(`[[pool]]\ndatabase = "x"\n` + minimal, '/'), /key "pool\[0\]\.pool_mode": required/);
  t.throws(() => parseConfig(`[[pool]]\npool_mode = "statement"\n` + minimal, '/'), /key "pool\[0\]\.pool_mode"/);
});

t.test('watchdog keys: endpoints are needed and checked, and the lease outlives a loop and two retries (Patroni)', async (t) => {
  const wd = (extra: string) => parseConfig(`use_watchdog = true\n${extra}\n` + minimal, '/');
  t.throws(() => wd(''), /key "etcd_endpoints": use_watchdog needs at least one etcd endpoint/);
  t.throws(() => wd('etcd_endpoints = "http://a:2379"'), /key "etcd_endpoints": expected a list of strings/);
  t.throws(() => wd('etcd_endpoints = ["a:2379"]'), /key "etcd_endpoints": "a:2379" is not an etcd client URL/);
  t.throws(() => wd('etcd_endpoints = ["http://a:2379"]\nwd_lease_ttl = 6\nwd_loop_wait = 1\nwd_retry_timeout = 3'), /key "wd_lease_ttl": must be at least wd_loop_wait \+ 2 × wd_retry_timeout \(7 s\), not 6/);
  const c = wd('etcd_endpoints = ["http://a:2379", "http://b:2379"]\nwd_lease_ttl = 7\nwd_loop_wait = 1\nwd_retry_timeout = 3');
  t.same(c.etcd_endpoints, ['http://a:2379', 'http://b:2379']);
  t.ok(Object.isFrozen(c.etcd_endpoints));
  t.same(parseConfig(minimal, '/').etcd_endpoints, [], 'off by default, no endpoints');
  t.throws(() => wd('etcd_endpoints = ["http://a:2379", "https://b:2379"]'), /key "etcd_endpoints": all http or all https, not both/);
  t.throws(() => wd('etcd_endpoints = ["https://a:2379"]\netcd_cert = "c.pem"'), /key "etcd_cert": etcd_cert and etcd_key go together/);
  t.throws(() => wd('etcd_endpoints = ["https://a:2379"]\netcd_password = "x"'), /key "etcd_username": etcd_password needs etcd_username/);
  t.throws(() => wd('etcd_endpoints = ["http://a:2379"]\netcd_cacert = "ca.pem"'), /key "etcd_cacert": TLS to etcd needs https:\/\/ endpoints/);
  const secure = wd('etcd_endpoints = ["https://a:2379"]\netcd_cacert = "ca.pem"\netcd_cert = "c.pem"\netcd_key = "k.pem"\netcd_username = "sluice"\netcd_password = "x"\nfailover_when_quorum_exists = false');
  t.same([secure.etcd_cacert, secure.etcd_username, secure.failover_when_quorum_exists], ['ca.pem', 'sluice', false]);
});
