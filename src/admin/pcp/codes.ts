// PCP message types (pgpool.md c.5): one letter each, requests upper case (lower case for the
// "graceful" variants), replies lower case. Numbers travel as ASCII decimal strings.

export const PcpRequest = {
  Salt: 0x4d, // M
  Authenticate: 0x52, // R
  NodeCount: 0x4c, // L
  NodeInfo: 0x49, // I
  HealthCheckStats: 0x48, // H
  ProcCount: 0x4e, // N
  ProcInfo: 0x50, // P
  PoolStatus: 0x42, // B
  WatchdogInfo: 0x57, // W
  AttachNode: 0x43, // C
  DetachNode: 0x44, // D
  DetachNodeGraceful: 0x64, // d
  PromoteNode: 0x4a, // J
  PromoteNodeGraceful: 0x6a, // j
  RecoveryNode: 0x4f, // O
  StopLocal: 0x54, // T
  StopCluster: 0x74, // t
  ReloadConfig: 0x5a, // Z
  SetBackendParameter: 0x41, // A
  LogRotate: 0x56, // V
  InvalidateQueryCache: 0x47, // G
  StopRecovery: 0x46, // F
  Terminate: 0x58, // X
  // Sluice's own (sluicectl only; pgpool answers these with "unknown PCP packet type").
  Pause: 0x51, // Q: payload 'w' (wait for transactions in flight) or 'n'
  Resume: 0x59, // Y
  // Between the instances of a group: 'h<ms>' holds new sessions until all are gone (online
  // recovery's second stage on the leader), 'r' releases them.
  RecoveryHold: 0x4b, // K
} as const;

export const PcpReply = {
  Salt: 0x6d, // m
  Authenticated: 0x72, // r
  NodeCount: 0x6c, // l
  NodeInfo: 0x69, // i
  HealthCheckStats: 0x68, // h
  ProcCount: 0x6e, // n
  ProcInfo: 0x70, // p
  PoolStatus: 0x62, // b
  WatchdogInfo: 0x77, // w
  Attached: 0x63, // c (also the reply to recovery)
  Detached: 0x64, // d (also the reply to promote)
  Stopped: 0x74, // t
  Reloaded: 0x7a, // z
  ParameterSet: 0x61, // a
  LogRotated: 0x76, // v
  CacheInvalidated: 0x67, // g
  Paused: 0x71, // q
  Resumed: 0x79, // y
  RecoveryHeld: 0x6b, // k
  Error: 0x45, // E
  Notice: 0x4e, // N
} as const;

/** pgpool's MAX_PCP_PACKET_LENGTH: a request this long or longer is refused. */
export const MAX_PCP_PACKET_LENGTH = 260;
