import type { Config } from '../config/load';
import type { FailoverOptions } from './failover';
import type { RecoveryOptions } from './recovery';
import type { ReplicationOptions } from './replication';

// The cluster components' settings from a config snapshot: built at start and again at each
// reload, so a changed key takes effect without a restart.

/** connect_timeout, with pgpool's meaning of 0 (the system default) as 10 s. */
export const connectTimeoutMs = (c: Config): number => c.connect_timeout || 10_000;

export function replicationOptions(c: Config): ReplicationOptions {
  return {
    periodMs: c.sr_check_period * 1000,
    thresholdBytes: c.delay_threshold,
    thresholdMs: c.delay_threshold_by_time,
    timeoutMs: connectTimeoutMs(c),
  };
}

export function failoverOptions(c: Config): FailoverOptions {
  return {
    failoverCommand: c.failover_command,
    failbackCommand: c.failback_command,
    followPrimaryCommand: c.follow_primary_command,
    searchPrimaryTimeoutMs: c.search_primary_node_timeout * 1000,
    searchIntervalMs: 1000,
    hookTimeoutMs: c.hook_timeout * 1000,
    cwd: c.configDir,
  };
}

export function recoveryOptions(c: Config): RecoveryOptions {
  return {
    firstStageCommand: c.recovery_1st_stage_command,
    secondStageCommand: c.recovery_2nd_stage_command,
    remoteStartCommand: c.remote_start_command,
    timeoutMs: c.recovery_timeout * 1000,
    cwd: c.configDir,
    viaExtension: c.recovery_via_pgpool_recovery,
  };
}
