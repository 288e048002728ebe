import type { Config } from '../config/load';
import { functionListPattern, parseRedirectList, queryPatterns, RedirectRule } from '../config/patterns';
import type { RoutingOptions } from './route';

export interface CompiledRouting extends RoutingOptions {
  readonly databaseRedirects: readonly RedirectRule[];
  readonly appNameRedirects: readonly RedirectRule[];
  readonly preferLowerDelay: boolean;
  /** read_your_writes, and whose writes it covers (read_your_writes_scope); false when off. */
  readonly readYourWrites: false | 'cluster' | 'session';
}

/** Compiles the routing keys of a validated config (the regexes were checked at load). */
export function routingOptions(c: Config): CompiledRouting {
  return {
    loadBalance: c.load_balance_mode && c.backend.length > 1,
    statementLevel: c.statement_level_load_balance,
    allowSqlComments: c.allow_sql_comments,
    disableOnWrite: c.disable_load_balance_on_write,
    writeFunctions: functionListPattern(c.write_function_list),
    readOnlyFunctions: functionListPattern(c.read_only_function_list),
    primaryPatterns: queryPatterns(c.primary_routing_query_pattern_list),
    catalogToPrimary: c.check_system_catalog,
    checkTempTables: c.check_temp_table !== 'none',
    checkUnloggedTables: c.check_unlogged_table,
    databaseRedirects: parseRedirectList(c.database_redirect_preference_list),
    appNameRedirects: parseRedirectList(c.app_name_redirect_preference_list),
    preferLowerDelay: c.prefer_lower_delay_standby,
    readYourWrites: c.read_your_writes && c.read_your_writes_scope,
  };
}
