// Every SQL statement the runner issues, as small named builders. The rule itself lives in the
// database (update_installment_statuses); these only drive it and keep the run log.
import type postgres from 'postgres';

// Any postgres.js handle: the pool, a reserved connection or a transaction.
// deno-lint-ignore no-explicit-any
type Q = postgres.Sql<any> | postgres.TransactionSql<any> | postgres.ReservedSql<any>;

export interface AgencyRow {
  agency_id: string;
  updated_count: number;
  transitions: Record<string, number>;
}

/** One lock per job name, shared with the in-database job (hashtextextended of the name). */
export const tryLock = (q: Q, jobName: string) =>
  q<{ locked: boolean }[]>`select pg_try_advisory_lock(hashtextextended(${jobName}, 0)) as locked`;

export const unlock = (q: Q, jobName: string) =>
  q`select pg_advisory_unlock(hashtextextended(${jobName}, 0))`;

/** A plain pooled round trip (see the runner: it clears a killed connection's replayed error). */
export const probe = (q: Q) => q`select 1`;

export const databaseNow = (q: Q) => q<{ now: Date }[]>`select now() as now`;

export const insertRunning = (q: Q, jobName: string, metadata: Record<string, unknown>) =>
  q<{ id: string; started_at: Date }[]>`
    insert into public.jobs_log (job_name, started_at, status, records_updated, metadata)
    values (${jobName}, clock_timestamp(), 'running', 0, ${q.json(metadata as postgres.JSONValue)})
    returning id, started_at`;

export const markSuccess = (q: Q, jobId: string, recordsUpdated: number, metadata: Record<string, unknown>) =>
  q`update public.jobs_log
       set status = 'success', completed_at = clock_timestamp(),
           records_updated = ${recordsUpdated},
           metadata = coalesce(metadata, '{}'::jsonb) || ${q.json(metadata as postgres.JSONValue)}
     where id = ${jobId}`;

export const markFailed = (q: Q, jobId: string, errorMessage: string, metadata: Record<string, unknown>) =>
  q`update public.jobs_log
       set status = 'failed', completed_at = clock_timestamp(),
           error_message = ${errorMessage},
           metadata = coalesce(metadata, '{}'::jsonb) || ${q.json(metadata as postgres.JSONValue)}
     where id = ${jobId} and status = 'running'`;

/** Runs still 'running' after the limit belong to a process that died: close them as failed. */
export const reapAbandoned = (q: Q, jobName: string, olderThanMs: number) =>
  q<{ id: string }[]>`
    update public.jobs_log
       set status = 'failed', completed_at = clock_timestamp(),
           error_message = 'abandoned: still running after ' || ${Math.round(olderThanMs / 1000)}::int
                           || ' s with no completion recorded; the process running it probably died',
           metadata = coalesce(metadata, '{}'::jsonb) || jsonb_build_object('code', 'ABANDONED', 'reapedAt', clock_timestamp())
     where job_name = ${jobName}
       and status = 'running'
       and started_at < clock_timestamp() - make_interval(secs => ${olderThanMs / 1000})
    returning id`;

/** Inside the work transaction: tag audit rows with the run and bound each statement. */
export const prepareWorkTransaction = (q: Q, jobId: string, statementTimeoutMs: number) =>
  q`select set_config('overdue.job_id', ${jobId}, true),
           set_config('statement_timeout', ${String(statementTimeoutMs)}, true)`;

export const updateStatuses = (q: Q, asOf: Date) =>
  q<AgencyRow[]>`select agency_id, updated_count, transitions from public.update_installment_statuses(${asOf})`;

/** Batch mode: at most batchSize rows (with their audit rows) in the caller's transaction. */
export const updateStatusesBatch = (q: Q, asOf: Date, batchSize: number) =>
  q<AgencyRow[]>`select agency_id, updated_count, transitions
                   from public.update_installment_statuses_batch(${asOf}, ${batchSize})`;

export const previewStatuses = (q: Q, asOf: Date, agencyId: string | null = null) =>
  q<AgencyRow[]>`select agency_id, updated_count, transitions
                   from public.preview_installment_status_changes(${asOf}, ${agencyId}::uuid)`;

export const recentRuns = (q: Q, jobName: string, limit: number, failedOnly: boolean) =>
  q<{
    id: string;
    started_at: Date;
    completed_at: Date | null;
    status: string;
    records_updated: number | null;
    error_message: string | null;
    metadata: Record<string, unknown> | null;
  }[]>`
    select id, started_at, completed_at, status, records_updated, error_message, metadata
      from public.jobs_log
     where job_name = ${jobName} and (${!failedOnly} or status = 'failed')
     order by started_at desc
     limit ${limit}`;
