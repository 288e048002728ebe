import t from 'tap';
import { diffConfig } from '../../src/config/diff';
import { ConfigError, parseConfig } from '../../src/config/load';
import { applyReload, ReloadTargets } from '../../src/server/reload';

const backends = (...ports: number[]) => ports.map((p) => `[[backend]]\nhostname = "127.0.0.1"\nport = ${p}\n`).join('');
const cfg = (top: string, ...ports: number[]) => parseConfig(`${top}\n${backends(...(ports.length ? ports : [5432, 5433]))}`, '/etc/sluice');

/** Records which targets a reload touched. */
function targets(): { to: ReloadTargets; calls: string[] } {
  const calls: string[] = [];
  const rec = (name: string) => (...args: unknown[]) => void calls.push(`${name}${args.length && typeof args[0] !== 'object' ? ` ${args.join(' ')}` : ''}`);
  return {
    calls,
    to: { config: rec('config'), routing: rec('routing'), pool: rec('pool'), catalogs: rec('catalogs'), gates: rec('gates'), nodes: rec('nodes'), level: rec('level'), sessions: rec('sessions') },
  };
}

t.test('diff: hot keys, restart-only keys, nodes added and removed', async (t) => {
  const old = cfg('health_check_period = 10');
  t.same(diffConfig(old, cfg('health_check_period = 10')), { changed: [], restartOnly: [] }, 'identical');
  t.same(diffConfig(old, cfg('health_check_period = 3\nport = 6000')), { changed: ['port', 'health_check_period'], restartOnly: ['port'] });
  const weighted = parseConfig(`${backends(5432)}weight = 5\n${backends(5433)}`, '/etc/sluice');
  t.same(diffConfig(old, weighted).changed, ['backend[0].weight'], 'health_check_period 10 is the default');
  t.same(diffConfig(old, cfg('health_check_period = 10', 5432, 5433, 5434)), { changed: ['backend[2] (added)'], restartOnly: [] });
  t.same(diffConfig(old, cfg('health_check_period = 10', 5432)).restartOnly, ['backend[1] (removed)']);
  t.same(diffConfig(old, cfg('health_check_period = 10', 5432, 6000)).restartOnly, ['backend[1].port'], "a node's address needs a restart");
  t.same(diffConfig(old, parseConfig(`${backends(5432, 5433)}[[pcp_user]]\nname = "a"\nmd5 = "x"\n`, '/etc/sluice')).changed, ['pcp_user']);
});

t.test('apply: all targets get the new config; nothing changed is a no-op', async (t) => {
  const { to, calls } = targets();
  t.same(applyReload(cfg(''), cfg('log_min_messages = "debug"\nfailover_hold_timeout = 5\nrelcache_expire = 7'), to), ['relcache_expire', 'failover_hold_timeout', 'log_min_messages']);
  t.same(calls, ['config', 'routing', 'pool', 'catalogs 7000', 'gates 5000 90000', 'nodes', 'level debug', 'sessions']);
  const none = targets();
  t.same(applyReload(cfg(''), cfg(''), none.to), []);
  t.same(none.calls, []);
});

t.test('apply: a restart-only change refuses the whole reload, naming the keys', async (t) => {
  const { to, calls } = targets();
  t.throws(
    () => applyReload(cfg(''), cfg('num_init_children = 5\nhealth_check_period = 1'), to),
    new ConfigError('restart-only keys changed (restart Sluice to apply them): num_init_children'),
  );
  t.same(calls, [], 'not even the hot key was applied');
});

t.test('a list key (etcd_endpoints) reloaded unchanged is no change; a changed one needs a restart', async (t) => {
  const { diffConfig } = await import('../../src/config/diff');
  const { parseConfig } = await import('../../src/config/load');
  const text = (eps: string) => `use_watchdog = true\netcd_endpoints = [${eps}]\n[[backend]]\nhostname = "h"\nport = 1\n`;
  const a = parseConfig(text('"http://a:2379"'), '/');
  t.same(diffConfig(a, parseConfig(text('"http://a:2379"'), '/')), { changed: [], restartOnly: [] });
  t.same(diffConfig(a, parseConfig(text('"http://b:2379"'), '/')).restartOnly, ['etcd_endpoints']);
});
