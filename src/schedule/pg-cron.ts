// Installing, showing and removing the pg_cron jobs for the database in DATABASE_URL.
//
// pg_cron runs in ONE database per cluster (cron.database_name; `postgres` on Supabase and on
// Debian's default setup). Two cases:
//   * it is the application database (Supabase): the SQL functions public.schedule_install /
//     schedule_show / schedule_remove do the work there;
//   * it is another database (self-hosted, several application databases on one cluster): we
//     connect to that database — CRON_DATABASE_URL, or DATABASE_URL with the database name
//     replaced by cron.database_name — and run the very same statements
//     (public.cron_statement), which schedule into the application database with
//     cron.schedule_in_database.
// The jobs and their commands are always computed in the application database
// (public.overdue_cron_jobs), because that is where the command will run: it decides the mode
// by looking for pg_net there and checks the Vault secret there.
import { connect, redactUrl, type Sql } from '../db/connect.ts';
import * as q from './queries.ts';

export type ScheduleMode = 'sql' | 'http';

export class ScheduleConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleConfigError';
  }
}

export interface CronTarget {
  /** The application database, where the commands run. */
  database: string;
  /** The role the jobs run as (the application connection's user). */
  username: string;
  /** Where pg_cron is. */
  cronDatabase: string;
  /** A connection to the cron database; the application connection itself when it is the same. */
  cronSql: Sql;
  local: boolean;
  close(): Promise<void>;
}

/** DATABASE_URL with another database name (same host, user, password, options). */
export function urlWithDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export async function resolveCronTarget(appSql: Sql, appUrl: string, env: Record<string, string | undefined>): Promise<CronTarget> {
  const [where] = await q.cronLocation(appSql);
  const explicit = env.CRON_DATABASE_URL?.trim() || undefined;
  if (!explicit && where!.cron_here) {
    return { database: where!.database, username: where!.user, cronDatabase: where!.database, cronSql: appSql, local: true, close: async () => {} };
  }
  if (!explicit && where!.cron_database === null) {
    throw new ScheduleConfigError(
      `pg_cron is not loaded on the server of ${redactUrl(appUrl)} (no cron.database_name setting). ` +
        'Load it (shared_preload_libraries = pg_cron, cron.database_name), set CRON_DATABASE_URL, or let the built-in scheduler of `npm start` run the job.',
    );
  }
  let cronUrl: string;
  try {
    cronUrl = explicit ?? urlWithDatabase(appUrl, where!.cron_database!);
  } catch {
    throw new ScheduleConfigError('CRON_DATABASE_URL: expected a URL like postgres://user:password@host:5432/postgres');
  }
  const cronSql = connect(cronUrl, { max: 1, applicationName: 'overdue-schedule' });
  try {
    const installed = (await q.cronInstalled(cronSql))[0]!.installed;
    if (!installed) {
      throw new ScheduleConfigError(
        `pg_cron is not installed in ${redactUrl(cronUrl)}: run "create extension pg_cron" there (it must be the database named by cron.database_name${where!.cron_database ? `, "${where!.cron_database}"` : ''})`,
      );
    }
  } catch (error) {
    await cronSql.end({ timeout: 5 });
    throw error;
  }
  const [{ database: cronDatabase }] = (await cronSql`select current_database() as database`) as unknown as [{ database: string }];
  return {
    database: where!.database,
    username: where!.user,
    cronDatabase,
    cronSql,
    local: cronDatabase === where!.database,
    close: () => cronSql.end({ timeout: 5 }),
  };
}

export interface InstallOptions {
  mode?: ScheduleMode | null;
  projectUrl?: string | null;
  secretName?: string;
  timeoutMs?: number;
  frequentSchedule?: string;
  dailySchedule?: string;
  pruneSchedule?: string;
}

export const DEFAULT_INSTALL: Required<{ [K in keyof InstallOptions]: NonNullable<InstallOptions[K]> }> = {
  mode: 'sql',
  projectUrl: '',
  secretName: 'update_installment_statuses_key',
  timeoutMs: 10_000,
  frequentSchedule: '* * * * *',
  dailySchedule: '0 7 * * *',
  pruneSchedule: '30 7 * * *',
};

function spec(o: InstallOptions): q.InstallSpec {
  return {
    mode: o.mode ?? null,
    projectUrl: o.projectUrl ?? null,
    secretName: o.secretName ?? DEFAULT_INSTALL.secretName,
    timeoutMs: o.timeoutMs ?? DEFAULT_INSTALL.timeoutMs,
    frequentSchedule: o.frequentSchedule ?? DEFAULT_INSTALL.frequentSchedule,
    dailySchedule: o.dailySchedule ?? DEFAULT_INSTALL.dailySchedule,
    pruneSchedule: o.pruneSchedule ?? DEFAULT_INSTALL.pruneSchedule,
  };
}

export interface InstallResult {
  database: string;
  cronDatabase: string;
  jobs: (q.CronJobSpec & { jobid: string; action: string })[];
}

/** Installs or updates the jobs; rerunning it updates them in place. */
export async function installSchedule(appSql: Sql, target: CronTarget, options: InstallOptions = {}): Promise<InstallResult> {
  const s = spec(options);
  const wanted = await q.cronJobs(appSql, s);
  let rows: q.InstalledJobRow[];
  if (target.local) {
    rows = await q.scheduleInstallHere(appSql, s);
  } else {
    const statement = (await q.cronStatement(appSql, 'install'))[0]!.statement;
    rows = await q.runInstallStatement(target.cronSql, statement, [...wanted], target.database, target.username);
  }
  const byName = new Map(rows.map((r) => [r.jobname, r]));
  return {
    database: target.database,
    cronDatabase: target.cronDatabase,
    jobs: wanted.map((w) => ({ ...w, jobid: String(byName.get(w.jobname)?.jobid ?? ''), action: byName.get(w.jobname)?.action ?? '' })),
  };
}

export async function showSchedule(appSql: Sql, target: CronTarget): Promise<q.ShownJobRow[]> {
  if (target.local) return [...(await q.scheduleShowHere(appSql))];
  const statement = (await q.cronStatement(appSql, 'show'))[0]!.statement;
  const names = (await q.cronJobNames(appSql))[0]!.names;
  return [...(await q.runShowStatement(target.cronSql, statement, names))];
}

/** Removes the jobs that exist; removing what is not there is not an error. */
export async function removeSchedule(appSql: Sql, target: CronTarget): Promise<q.RemovedJobRow[]> {
  if (target.local) return [...(await q.scheduleRemoveHere(appSql))];
  const statement = (await q.cronStatement(appSql, 'remove'))[0]!.statement;
  const names = (await q.cronJobNames(appSql))[0]!.names;
  return [...(await q.runRemoveStatement(target.cronSql, statement, names))];
}
