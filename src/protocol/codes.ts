// Message type bytes of the frontend/backend protocol (PostgreSQL docs, "Message Formats"),
// as numbers so that a frame's first byte compares without a string conversion.

const code = (c: string): number => c.charCodeAt(0);

/** Messages a client (frontend) sends. */
export const Frontend = {
  Bind: code('B'),
  Close: code('C'),
  CopyData: code('d'),
  CopyDone: code('c'),
  CopyFail: code('f'),
  Describe: code('D'),
  Execute: code('E'),
  Flush: code('H'),
  FunctionCall: code('F'),
  Parse: code('P'),
  PasswordMessage: code('p'),
  Query: code('Q'),
  Sync: code('S'),
  Terminate: code('X'),
} as const;

/** Messages a server (backend) sends. */
export const Backend = {
  Authentication: code('R'),
  BackendKeyData: code('K'),
  BindComplete: code('2'),
  CloseComplete: code('3'),
  CommandComplete: code('C'),
  CopyBothResponse: code('W'),
  CopyData: code('d'),
  CopyDone: code('c'),
  CopyInResponse: code('G'),
  CopyOutResponse: code('H'),
  DataRow: code('D'),
  EmptyQueryResponse: code('I'),
  ErrorResponse: code('E'),
  FunctionCallResponse: code('V'),
  NegotiateProtocolVersion: code('v'),
  NoData: code('n'),
  NoticeResponse: code('N'),
  NotificationResponse: code('A'),
  ParameterDescription: code('t'),
  ParameterStatus: code('S'),
  ParseComplete: code('1'),
  PortalSuspended: code('s'),
  ReadyForQuery: code('Z'),
  RowDescription: code('T'),
} as const;

/** The int32 that follows the length in an untyped first message. */
export const StartupCode = {
  Protocol3: 196608, // 3.0: major 3 in the high 16 bits
  CancelRequest: 80877102,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
} as const;

/** Authentication request subtypes (the int32 after 'R'). */
export const AuthRequest = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** ReadyForQuery's status byte, mapped to names (house rule 1: never a boolean). */
export type TxStatus = 'idle' | 'inTx' | 'failedTx';

export function txStatusFromByte(b: number): TxStatus {
  if (b === 0x54 /* T */) return 'inTx';
  if (b === 0x45 /* E */) return 'failedTx';
  return 'idle';
}

export function txStatusByte(s: TxStatus): number {
  return s === 'inTx' ? 0x54 : s === 'failedTx' ? 0x45 : 0x49; /* I */
}

/** PostgreSQL's own cap on a startup packet (MAX_STARTUP_PACKET_LENGTH). */
export const MAX_STARTUP_PACKET_LENGTH = 10000;
