// One way to open PostgreSQL, shared by the server, the CLI, the edge function and the tests.
// postgres.js runs unchanged on Node and Deno, so nothing here is runtime-specific.
import postgres from 'postgres';

export type Sql = postgres.Sql<Record<string, never>>;

export interface ConnectOptions {
  /** Pool size. The embedded database wants 1. */
  max?: number;
  /** Name shown in pg_stat_activity, so operators can tell our sessions apart. */
  applicationName?: string;
  /** Seconds to wait for a connection before failing (a transient error the runner retries). */
  connectTimeoutSeconds?: number;
}

export function connect(url: string, options: ConnectOptions = {}): Sql {
  return postgres(url, {
    max: options.max ?? 4,
    connect_timeout: options.connectTimeoutSeconds ?? 10,
    idle_timeout: 30,
    onnotice: () => {},
    connection: { application_name: options.applicationName ?? 'overdue' },
    // Supabase's transaction pooler (port 6543) does not keep prepared statements. Otherwise
    // postgres.js reads `?prepare=false` from the URL: the embedded database's URL carries it,
    // because there every connection shares one session that never ends (src/db/embedded.ts).
    ...(/:6543(\/|$)/.test(url) ? { prepare: false } : {}),
  }) as Sql;
}

/** The URL with any password replaced, for log lines and error messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable database URL>';
  }
}
