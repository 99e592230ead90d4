// Every SQL statement of the scheduling code, as small named builders. What the cron jobs are and
// the statements that install, show and remove them live in the database
// (supabase/migrations/20251113000400_scheduling.sql); these only call them.
import type postgres from 'postgres';

// deno-lint-ignore no-explicit-any
type Q = postgres.Sql<any> | postgres.TransactionSql<any> | postgres.ReservedSql<any>;

export interface NextCutoffRow {
  agency_id: string;
  agency_name: string;
  timezone: string;
  overdue_cutoff_time: string;
  due_date: string;
  cutoff_at: Date;
  cutoff_local: string;
  pending_due: string;
}

export const nextCutoffInstants = (q: Q, asOf: Date | null) =>
  q<NextCutoffRow[]>`
    select agency_id, agency_name, timezone, overdue_cutoff_time::text as overdue_cutoff_time,
           due_date::text as due_date, cutoff_at,
           to_char(cutoff_local, 'YYYY-MM-DD HH24:MI:SS') as cutoff_local, pending_due::text as pending_due
      from public.next_cutoff_instants(coalesce(${asOf}::timestamptz, now()))`;

export const databaseNow = (q: Q) => q<{ now: Date }[]>`select now() as now`;

export const pruneRunLog = (q: Q, keepSeconds: number | null = null) =>
  keepSeconds === null
    ? q<{ deleted: number }[]>`select public.prune_jobs_log() as deleted`
    : q<{ deleted: number }[]>`select public.prune_jobs_log(make_interval(secs => ${keepSeconds})) as deleted`;

/** Where pg_cron is, seen from the application database. */
export const cronLocation = (q: Q) =>
  q<{ database: string; user: string; cron_database: string | null; cron_here: boolean }[]>`
    select current_database() as database,
           current_user as user,
           nullif(current_setting('cron.database_name', true), '') as cron_database,
           to_regclass('cron.job') is not null as cron_here`;

export const cronInstalled = (q: Q) =>
  q<{ installed: boolean }[]>`select to_regclass('cron.job') is not null as installed`;

export interface CronJobSpec {
  jobname: string;
  schedule: string;
  command: string;
}

export interface InstallSpec {
  mode: string | null;
  projectUrl: string | null;
  secretName: string;
  timeoutMs: number;
  frequentSchedule: string;
  dailySchedule: string;
  pruneSchedule: string;
}

export const cronJobs = (q: Q, s: InstallSpec) =>
  q<CronJobSpec[]>`
    select jobname, schedule, command
      from public.overdue_cron_jobs(${s.mode}, ${s.projectUrl}, ${s.secretName}, ${s.timeoutMs}::int,
                                    ${s.frequentSchedule}, ${s.dailySchedule}, ${s.pruneSchedule})`;

export const cronJobNames = (q: Q) => q<{ names: string[] }[]>`select public.overdue_cron_job_names() as names`;

export const cronStatement = (q: Q, name: 'install' | 'show' | 'remove') =>
  q<{ statement: string }[]>`select public.cron_statement(${name}) as statement`;

export interface InstalledJobRow {
  jobid: string;
  jobname: string;
  action: string;
}

export interface ShownJobRow {
  jobid: string;
  jobname: string;
  schedule: string;
  command: string;
  database: string;
  username: string;
  active: boolean;
  last_status: string | null;
  last_start: Date | null;
  last_end: Date | null;
  last_message: string | null;
}

export interface RemovedJobRow {
  jobid: string;
  jobname: string;
  removed: boolean;
}

// When pg_cron lives in the application database: the SQL functions do it all.
export const scheduleInstallHere = (q: Q, s: InstallSpec) =>
  q<InstalledJobRow[]>`
    select jobid, jobname, action
      from public.schedule_install(${s.mode}, ${s.projectUrl}, ${s.secretName}, ${s.timeoutMs}::int,
                                   ${s.frequentSchedule}, ${s.dailySchedule}, ${s.pruneSchedule})`;
export const scheduleShowHere = (q: Q) => q<ShownJobRow[]>`select * from public.schedule_show()`;
export const scheduleRemoveHere = (q: Q) => q<RemovedJobRow[]>`select * from public.schedule_remove()`;

// When pg_cron lives in another database: the same statements (read from the application
// database by cronStatement), run there.
export const runInstallStatement = (q: Q, statement: string, jobs: CronJobSpec[], database: string, username: string) =>
  q.unsafe<InstalledJobRow[]>(statement, [jobs as unknown as string, database, username]);
export const runShowStatement = (q: Q, statement: string, names: string[]) =>
  q.unsafe<ShownJobRow[]>(statement, [names as unknown as string]);
export const runRemoveStatement = (q: Q, statement: string, names: string[]) =>
  q.unsafe<RemovedJobRow[]>(statement, [names as unknown as string]);
