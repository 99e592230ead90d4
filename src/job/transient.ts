// Which failures are worth retrying. Everything not on these lists fails at once: a bad
// credential, a missing function or a constraint violation will not fix itself in 4 seconds.

/** SQLSTATEs retried as they are. */
export const TRANSIENT_SQLSTATES: ReadonlySet<string> = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '55P03', // lock_not_available (lock_timeout)
  '57P01', // admin_shutdown (backend terminated)
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up / recovering)
  '53300', // too_many_connections
  '57014', // query_canceled (statement_timeout)
]);

/** SQLSTATE classes retried as a whole. */
export const TRANSIENT_SQLSTATE_CLASSES: ReadonlySet<string> = new Set([
  '08', // connection_exception
]);

/** Network and client-side error codes (Node/Deno sockets, postgres.js) retried. */
export const TRANSIENT_NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'CONNECTION_CLOSED', // postgres.js: the server closed the connection
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);

export interface Classified {
  transient: boolean;
  code: string | undefined;
}

export function errorCode(error: unknown): string | undefined {
  if (error && typeof error === 'object') {
    const e = error as { code?: unknown; errno?: unknown; name?: unknown };
    if (typeof e.code === 'string' && e.code) return e.code;
    if (typeof e.errno === 'string' && e.errno) return e.errno;
    // Deno reports refused connections as named errors, not codes.
    if (e.name === 'ConnectionRefused') return 'ECONNREFUSED';
    if (e.name === 'ConnectionReset') return 'ECONNRESET';
    if (e.name === 'TimedOut') return 'ETIMEDOUT';
  }
  return undefined;
}

export function isTransient(error: unknown): boolean {
  const code = errorCode(error);
  if (!code) return false;
  if (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NETWORK_CODES.has(code)) return true;
  return /^[0-9A-Z]{5}$/.test(code) && TRANSIENT_SQLSTATE_CLASSES.has(code.slice(0, 2));
}

export function classify(error: unknown): Classified {
  return { transient: isTransient(error), code: errorCode(error) };
}
