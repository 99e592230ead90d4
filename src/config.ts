// Environment → typed configuration, validated once at start-up. A missing or invalid variable
// stops start-up with a message that names it and says what is expected.

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export type Env = Record<string, string | undefined>;

export interface Config {
  /** DATABASE_URL, or SUPABASE_DB_URL (what Supabase gives edge functions); null → embedded. */
  databaseUrl: string | null;
  /** SUPABASE_FUNCTION_KEY, then SUPABASE_FUNCTION_KEY_NEXT during a rotation. */
  functionKeys: string[];
  port: number;
  host: string;
  /** Delays before each retry of a transient failure (JOB_RETRY_DELAYS_MS). */
  retryDelaysMs: number[];
  /** A `running` row older than this belongs to a dead process (JOB_ABANDON_AFTER_SECONDS). */
  abandonAfterMs: number;
  /** Per-statement limit inside a run (JOB_STATEMENT_TIMEOUT_SECONDS; 0 = none). */
  statementTimeoutMs: number;
  /** Batch mode (JOB_BATCH_SIZE): at most this many rows per transaction; 0 = one transaction. */
  batchSize: number;
  /** Origins allowed by CORS (CORS_ALLOWED_ORIGINS, comma-separated); none by default. */
  corsOrigins: string[];
  /** Where the embedded database and its generated key live (OVERDUE_DATA_DIR). */
  dataDir: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
}

export const MIN_KEY_LENGTH = 16;

function clean(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = clean(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `expected a whole number from ${min} to ${max}, got ${n}`);
  return n;
}

function databaseUrl(env: Env): string | null {
  for (const name of ['DATABASE_URL', 'SUPABASE_DB_URL']) {
    const raw = clean(env, name);
    if (raw === undefined) continue;
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new ConfigError(name, 'expected a URL like postgres://user:password@host:5432/database');
    }
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
      throw new ConfigError(name, `expected a postgres:// or postgresql:// URL, got a ${u.protocol}// URL`);
    }
    return raw;
  }
  return null;
}

function functionKeys(env: Env, required: boolean): string[] {
  const keys: string[] = [];
  for (const name of ['SUPABASE_FUNCTION_KEY', 'SUPABASE_FUNCTION_KEY_NEXT']) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    // Never echo the value: it is a secret.
    if (raw !== raw.trim()) throw new ConfigError(name, 'must not start or end with white space');
    if (raw.length < MIN_KEY_LENGTH) {
      throw new ConfigError(name, `too short (${raw.length} characters); use at least ${MIN_KEY_LENGTH} — \`npx overdue key generate\` makes one`);
    }
    if (!/^[\x21-\x7e]+$/.test(raw)) throw new ConfigError(name, 'must be printable ASCII without spaces (it travels in an HTTP header)');
    keys.push(raw);
  }
  if (required && keys.length === 0) {
    throw new ConfigError('SUPABASE_FUNCTION_KEY', 'is required: the key callers send in X-API-Key (`npx overdue key generate` makes one)');
  }
  return keys;
}

function retryDelays(env: Env): number[] {
  const raw = clean(env, 'JOB_RETRY_DELAYS_MS');
  if (raw === undefined) return [1000, 2000, 4000];
  if (raw === 'none') return [];
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.some((p) => !/^\d+$/.test(p)) || parts.length > 10) {
    throw new ConfigError('JOB_RETRY_DELAYS_MS', `expected up to 10 comma-separated milliseconds like 1000,2000,4000 (or "none"), got "${raw}"`);
  }
  return parts.map(Number);
}

export interface LoadOptions {
  /** The key may be absent (embedded quick start generates one; the CLI needs none). */
  keyRequired?: boolean;
}

export function loadConfig(env: Env, options: LoadOptions = {}): Config {
  const level = clean(env, 'LOG_LEVEL') ?? 'info';
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    throw new ConfigError('LOG_LEVEL', `expected debug, info, warn or error, got "${level}"`);
  }
  const dbUrl = databaseUrl(env);
  return {
    databaseUrl: dbUrl,
    functionKeys: functionKeys(env, options.keyRequired ?? dbUrl !== null),
    port: integer(env, 'PORT', 54321, 0, 65535),
    host: clean(env, 'HOST') ?? '127.0.0.1',
    retryDelaysMs: retryDelays(env),
    abandonAfterMs: integer(env, 'JOB_ABANDON_AFTER_SECONDS', 900, 1, 7 * 24 * 3600) * 1000,
    statementTimeoutMs: integer(env, 'JOB_STATEMENT_TIMEOUT_SECONDS', 600, 0, 24 * 3600) * 1000,
    batchSize: integer(env, 'JOB_BATCH_SIZE', 0, 0, 10_000_000),
    corsOrigins: (clean(env, 'CORS_ALLOWED_ORIGINS') ?? '')
      .split(',')
      .map((o) => o.trim())
      .filter(Boolean),
    dataDir: clean(env, 'OVERDUE_DATA_DIR') ?? '.data',
    logLevel: level as Config['logLevel'],
  };
}
