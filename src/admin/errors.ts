/**
 * A failed admin request, with pgpool's texts: ERROR leaves a PCP connection usable, FATAL ends
 * it (pgpool.md c.4). On port 9999 it becomes an ErrorResponse.
 */
export class AdminError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
    readonly fatal = false,
  ) {
    super(message);
  }
}
