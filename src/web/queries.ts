// Every SQL statement of the admin pages, /metrics and the health endpoints, as small named
// builders. Statements that serve a signed-in person run through asUser(), so the database's
// row level security decides what they see and may change — exactly as PostgREST would.
import type postgres from 'postgres';
import type { Sql } from '../db/connect.ts';

// deno-lint-ignore no-explicit-any
type Q = postgres.Sql<any> | postgres.TransactionSql<any>;

/**
 * Runs `work` in a transaction as the `authenticated` role with the caller's JWT claims in
 * request.jwt.claims: auth.uid(), auth.jwt() and every RLS policy see this person.
 */
export function asUser<T>(sql: Sql, claims: Record<string, unknown>, work: (tx: postgres.TransactionSql<Record<string, never>>) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    return work(tx);
  }) as Promise<T>;
}

// ---- metrics and health --------------------------------------------------------------------

export const lastSuccessEpoch = (q: Q, jobName: string) =>
  q<{ epoch: number | null }[]>`
    select extract(epoch from coalesce(completed_at, started_at))::float8 as epoch
      from public.jobs_log
     where job_name = ${jobName} and status = 'success'
     order by started_at desc
     limit 1`;

export const jobHealthy = (q: Q, staleAfterMs: number, jobName: string) =>
  q<{ healthy: boolean }[]>`select healthy from public.job_health(make_interval(secs => ${staleAfterMs / 1000}), ${jobName})`;

export const countOverdue = (q: Q) =>
  q<{ count: string }[]>`select count(*) as count from public.installments where status = 'overdue'`;

export const ping = (q: Q) => q`select 1`;

// ---- who is signed in ----------------------------------------------------------------------

export const membership = (q: Q) =>
  q<{ agency_id: string; role: string; agency_name: string | null }[]>`
    select u.agency_id, u.role, a.name as agency_name
      from public.users u
      left join public.agencies a on a.id = u.agency_id
     where u.id = auth.uid()`;

export const isAgencyAdmin = (q: Q, agencyId: string) =>
  q<{ admin: boolean }[]>`select public.is_agency_admin(${agencyId}::uuid) as admin`;

// ---- job dashboard ---------------------------------------------------------------------------

export const recentRuns = (q: Q, jobName: string, limit: number) =>
  q`select id, status, started_at, completed_at, records_updated, error_message,
           metadata ->> 'trigger' as trigger,
           coalesce((metadata ->> 'durationMs')::float8,
                    extract(epoch from completed_at - started_at) * 1000) as duration_ms,
           case when jsonb_typeof(metadata -> 'attempts') = 'array' then jsonb_array_length(metadata -> 'attempts')
                else (metadata ->> 'attempts')::int end as attempts
      from public.jobs_log
     where job_name = ${jobName}
     order by started_at desc
     limit ${limit}`;

export const runById = (q: Q, jobName: string, id: string) =>
  q`select id, status, started_at, completed_at, records_updated, error_message, metadata,
           metadata ->> 'trigger' as trigger,
           coalesce((metadata ->> 'durationMs')::float8,
                    extract(epoch from completed_at - started_at) * 1000) as duration_ms
      from public.jobs_log
     where job_name = ${jobName} and id = ${id}`;

/** A run's per-agency results (metadata.agencies) with the agency names the caller may see. */
export const runAgencies = (q: Q, jobName: string, id: string) =>
  q`select r.agency_id, a.name as agency_name, a.timezone, r.updated_count, r.transitions
      from public.jobs_log j,
           jsonb_to_recordset(coalesce(j.metadata -> 'agencies', '[]'::jsonb))
             as r(agency_id uuid, updated_count int, transitions jsonb)
      left join public.agencies a on a.id = r.agency_id
     where j.job_name = ${jobName} and j.id = ${id}
     order by r.updated_count desc, a.name`;

export const jobHealth = (q: Q, staleAfterMs: number, jobName: string) =>
  q`select * from public.job_health(make_interval(secs => ${staleAfterMs / 1000}), ${jobName})`;

/**
 * Each visible agency's next cutoff instant: the due date after the latest one already overdue,
 * at the agency's cutoff time in its zone (the same rule as update_installment_statuses).
 */
export const nextCutoffs = (q: Q, agencyId: string | null) =>
  q`with c as (
      select a.id, a.name, a.timezone, a.overdue_cutoff_time,
             ((public.last_overdue_due_date(a.timezone, a.overdue_cutoff_time, now()) + 1)
               + a.overdue_cutoff_time) at time zone a.timezone as next_cutoff_at
        from public.agencies a
       where ${agencyId}::uuid is null or a.id = ${agencyId}::uuid
    )
    select c.id, c.name, c.timezone,
           to_char(c.overdue_cutoff_time, 'HH24:MI') as cutoff_time,
           to_char((((now() at time zone c.timezone)::date + c.overdue_cutoff_time) at time zone c.timezone) at time zone 'UTC', 'HH24:MI') as cutoff_time_utc_today,
           c.next_cutoff_at,
           to_char(c.next_cutoff_at at time zone c.timezone, 'YYYY-MM-DD HH24:MI') as next_cutoff_local,
           to_char(c.next_cutoff_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI') as next_cutoff_utc
      from c
     order by c.next_cutoff_at, c.name`;

export const alertDeliveries = (q: Q, onlyFailed: boolean, limit: number) =>
  q`select d.id, d.created_at, d.kind, d.channel, d.status, d.attempts, d.subject, d.error, i.incident_key
      from public.alert_deliveries d
      left join public.alert_incidents i on i.id = d.incident_id
     where not ${onlyFailed} or d.status = 'failed'
     order by d.created_at desc, d.id desc
     limit ${limit}`;

export const openIncidents = (q: Q) =>
  q`select incident_key, summary, opened_at, occurrences from public.alert_incidents
     where resolved_at is null order by opened_at`;

/** Dry run for the dashboard (service role: the function is not granted to people). */
export const preview = (q: Q, asOf: Date | null, agencyId: string | null) =>
  q`select p.agency_id, a.name as agency_name, p.updated_count, p.transitions
      from public.preview_installment_status_changes(coalesce(${asOf}::timestamptz, now()), ${agencyId}::uuid) p
      join public.agencies a on a.id = p.agency_id
     order by p.updated_count desc, a.name`;

// ---- agency settings -------------------------------------------------------------------------

export const agency = (q: Q, id: string) =>
  q`select a.id, a.name, a.timezone, to_char(a.overdue_cutoff_time, 'HH24:MI:SS') as overdue_cutoff_time,
           public.is_agency_admin(a.id) as can_edit
      from public.agencies a
     where a.id = ${id}`;

export const updateAgencySettings = (q: Q, id: string, timezone: string, cutoff: string) =>
  q`update public.agencies
       set timezone = ${timezone}, overdue_cutoff_time = ${cutoff}::time
     where id = ${id}
    returning id`;

export const timezoneNames = (q: Q) =>
  q<{ name: string; utc_offset: string }[]>`
    select name,
           case when utc_offset < interval '0' then '-' else '+' end || to_char(abs(extract(epoch from utc_offset)) * interval '1 second', 'HH24:MI') as utc_offset
      from pg_catalog.pg_timezone_names
     where name !~ '^(posix|right)/' order by name`;
