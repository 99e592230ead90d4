// What the database says about the job's health: the verdict of public.job_health() and the
// latest finished run. Read by the watchdog, /health/job, /metrics and `overdue check`.
import type { Sql } from '../db/connect.ts';

export const MONITORED_JOB_NAME = 'update-installment-statuses';

export interface JobHealth {
  healthy: boolean;
  reason: string;
  lastSuccessAt: Date | null;
  ageSeconds: number | null;
  staleAfterSeconds: number;
  lastFailureAt: Date | null;
  lastFailureError: string | null;
  runningSince: Date | null;
  checkedAt: Date;
}

export async function readJobHealth(sql: Sql, staleAfterMs: number, jobName = MONITORED_JOB_NAME): Promise<JobHealth> {
  const [row] = await sql`
    select * from public.job_health(make_interval(secs => ${staleAfterMs / 1000}), ${jobName})`;
  return {
    healthy: row!.healthy as boolean,
    reason: row!.reason as string,
    lastSuccessAt: (row!.last_success_at as Date | null) ?? null,
    ageSeconds: row!.age_seconds === null ? null : Number(row!.age_seconds),
    staleAfterSeconds: Number(row!.stale_after_seconds),
    lastFailureAt: (row!.last_failure_at as Date | null) ?? null,
    lastFailureError: (row!.last_failure_error as string | null) ?? null,
    runningSince: (row!.running_since as Date | null) ?? null,
    checkedAt: row!.checked_at as Date,
  };
}

export interface FinishedRunRow {
  id: string;
  status: 'success' | 'failed';
  errorMessage: string | null;
  attempts: number | null;
  code: string | null;
  recordsUpdated: number | null;
  startedAt: Date;
}

/** The newest run that ended, whoever ran it (Node runner, edge function, pg_cron in SQL). */
export async function latestFinishedRun(sql: Sql, jobName = MONITORED_JOB_NAME): Promise<FinishedRunRow | null> {
  const [row] = await sql`
    select id, status, error_message, records_updated, started_at,
           metadata -> 'attempts' as attempts, metadata ->> 'code' as code
      from public.jobs_log
     where job_name = ${jobName} and status in ('success', 'failed')
     order by started_at desc
     limit 1`;
  if (!row) return null;
  return {
    id: row.id as string,
    status: row.status as 'success' | 'failed',
    errorMessage: (row.error_message as string | null) ?? null,
    attempts: countAttempts(row.attempts),
    code: (row.code as string | null) ?? null,
    recordsUpdated: (row.records_updated as number | null) ?? null,
    startedAt: row.started_at as Date,
  };
}

/** metadata.attempts is a number on success and the list of attempts on failure. */
export function countAttempts(value: unknown): number | null {
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.length;
  return null;
}
