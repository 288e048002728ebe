import { Errors } from '../errors';

/** Re-exported where the authentication code has always found them. */
export const authFailed = Errors.passwordFailed;
export const malformedScram = Errors.malformedScram;
