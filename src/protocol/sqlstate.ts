// The SQLSTATE codes Sluice itself raises (PostgreSQL docs, Appendix A). One catalogue, so that
// the same condition always carries the same code.
export const SqlState = {
  ConnectionFailure: '08006',
  ProtocolViolation: '08P01',
  InvalidAuthorizationSpecification: '28000',
  InvalidPassword: '28P01',
  InvalidCatalogName: '3D000',
  TooManyConnections: '53300',
  OutOfMemory: '53200',
  AdminShutdown: '57P01',
  CrashShutdown: '57P02',
  CannotConnectNow: '57P03',
  IdleSessionTimeout: '57P05',
  QueryCanceled: '57014',
  FeatureNotSupported: '0A000',
  InvalidParameterValue: '22023',
  UndefinedObject: '42704',
  SyntaxError: '42601',
  CantChangeRuntimeParam: '55P02',
  InternalError: 'XX000',
} as const;

export type SqlStateCode = (typeof SqlState)[keyof typeof SqlState];
