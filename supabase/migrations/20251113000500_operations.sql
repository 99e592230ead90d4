-- Operations: alert incidents, alert deliveries, watched jobs, and the job's health verdict.
--
-- Incident state lives here, not in a process, so several replicas (and the runner hook and the
-- watchdog inside one replica) agree on "this incident is already open": opening is a
-- conditional insert against a partial unique index, resolving a conditional update. Whoever
-- wins the insert sends the alert; whoever wins the update sends the recovery.
--
-- job_health() is the dead-man's switch that does not need the Node service: pg_cron (or any
-- SQL client) can ask it, and assert_job_healthy() raises so a failing check shows up in
-- cron.job_run_details and in any monitor that runs SQL.

-- ---------------------------------------------------------------------------------------------
-- Incidents: one open row per key at most.
-- ---------------------------------------------------------------------------------------------
create table if not exists public.alert_incidents (
  id            uuid primary key default gen_random_uuid(),
  incident_key  text not null,
  severity      text not null default 'critical',
  summary       text not null,
  details       jsonb not null default '{}'::jsonb,
  opened_at     timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  occurrences   integer not null default 1,
  resolved_at   timestamptz,
  constraint alert_incidents_severity_valid check (severity in ('critical', 'warning')),
  constraint alert_incidents_key_not_blank check (btrim(incident_key) <> '')
);

create unique index if not exists alert_incidents_one_open_per_key
  on public.alert_incidents (incident_key) where resolved_at is null;
create index if not exists alert_incidents_opened_idx on public.alert_incidents (opened_at desc);

comment on table public.alert_incidents is
  'One row per alert incident (e.g. job-failed:update-installment-statuses); at most one open row per incident_key.';

-- ---------------------------------------------------------------------------------------------
-- Deliveries: one row per channel per message, after its retries.
-- ---------------------------------------------------------------------------------------------
create table if not exists public.alert_deliveries (
  id           bigint generated always as identity primary key,
  incident_id  uuid references public.alert_incidents (id) on delete cascade,
  kind         text not null,
  channel      text not null,
  status       text not null,
  attempts     integer not null,
  subject      text not null,
  error        text,
  created_at   timestamptz not null default now(),
  constraint alert_deliveries_kind_valid check (kind in ('alert', 'recovery')),
  constraint alert_deliveries_status_valid check (status in ('delivered', 'failed'))
);

create index if not exists alert_deliveries_created_idx on public.alert_deliveries (created_at desc);
create index if not exists alert_deliveries_failed_idx
  on public.alert_deliveries (created_at desc) where status = 'failed';

comment on table public.alert_deliveries is
  'Each alert or recovery message per channel, after retries: delivered or failed (with the last error).';

-- Platform admins read; service_role (the Node service) writes. Agencies see nothing: an
-- incident is about the platform's job, not a tenant.
alter table public.alert_incidents  enable row level security;
alter table public.alert_deliveries enable row level security;

revoke all on public.alert_incidents, public.alert_deliveries from public, anon, authenticated;
grant all on public.alert_incidents, public.alert_deliveries to service_role;
grant select on public.alert_incidents, public.alert_deliveries to authenticated;

drop policy if exists alert_incidents_platform_admin_read on public.alert_incidents;
create policy alert_incidents_platform_admin_read on public.alert_incidents for select to authenticated
  using (public.is_platform_admin());

drop policy if exists alert_incidents_service_role_all on public.alert_incidents;
create policy alert_incidents_service_role_all on public.alert_incidents for all to service_role
  using (true) with check (true);

drop policy if exists alert_deliveries_platform_admin_read on public.alert_deliveries;
create policy alert_deliveries_platform_admin_read on public.alert_deliveries for select to authenticated
  using (public.is_platform_admin());

drop policy if exists alert_deliveries_service_role_all on public.alert_deliveries;
create policy alert_deliveries_service_role_all on public.alert_deliveries for all to service_role
  using (true) with check (true);

-- ---------------------------------------------------------------------------------------------
-- Watched jobs: when monitoring of a job began. A fresh install has no run yet; the dead-man's
-- switch counts from here instead of reporting "never ran" before the scheduler had a chance.
-- ---------------------------------------------------------------------------------------------
create table if not exists public.job_watch (
  job_name       text primary key,
  watched_since  timestamptz not null default now()
);

insert into public.job_watch (job_name) values ('update-installment-statuses')
on conflict (job_name) do nothing;

alter table public.job_watch enable row level security;
revoke all on public.job_watch from public, anon, authenticated;
grant all on public.job_watch to service_role;
grant select on public.job_watch to authenticated;

drop policy if exists job_watch_platform_admin_read on public.job_watch;
create policy job_watch_platform_admin_read on public.job_watch for select to authenticated
  using (public.is_platform_admin());

drop policy if exists job_watch_service_role_all on public.job_watch;
create policy job_watch_service_role_all on public.job_watch for all to service_role
  using (true) with check (true);

-- ---------------------------------------------------------------------------------------------
-- The health verdict.
-- ---------------------------------------------------------------------------------------------
-- Healthy while the latest successful run finished less than p_stale_after ago. When no run has
-- ever succeeded, the clock starts at the first recorded run or, before any run, when the job
-- began to be watched (job_watch), so a fresh install is not reported stale before it had a
-- chance. A job neither run nor watched is unhealthy ("never ran").
-- Security invoker: as a platform admin it reads jobs_log through RLS, as service_role all of it.
create or replace function public.job_health(
    p_stale_after interval default interval '25 hours',
    p_job_name text default 'update-installment-statuses')
  returns table (
    healthy              boolean,
    reason               text,
    last_success_at      timestamptz,
    age_seconds          double precision,
    stale_after_seconds  double precision,
    last_failure_at      timestamptz,
    last_failure_error   text,
    running_since        timestamptz,
    checked_at           timestamptz)
  language sql
  stable
  set search_path = pg_catalog
as $$
  with success as (
    -- idx_jobs_log_job_name walked backwards: stops at the newest success.
    select coalesce(j.completed_at, j.started_at) as at
      from public.jobs_log j
     where j.job_name = p_job_name and j.status = 'success'
     order by j.started_at desc
     limit 1
  ),
  failure as (
    select coalesce(j.completed_at, j.started_at) as at, j.error_message
      from public.jobs_log j
     where j.job_name = p_job_name and j.status = 'failed'
     order by j.started_at desc
     limit 1
  ),
  running as (
    select j.started_at as at
      from public.jobs_log j
     where j.job_name = p_job_name and j.status = 'running'
     order by j.started_at desc
     limit 1
  ),
  v as (
    select (select at from success) as last_success_at,
           -- With no success yet: since the first run, else since watching began.
           coalesce(
             (select j.started_at from public.jobs_log j where j.job_name = p_job_name order by j.started_at limit 1),
             (select w.watched_since from public.job_watch w where w.job_name = p_job_name)) as since,
           clock_timestamp() as now
  )
  select
    case
      when v.last_success_at is not null then v.now - v.last_success_at < p_stale_after
      when v.since is not null then v.now - v.since < p_stale_after
      else false
    end,
    case
      when v.last_success_at is not null and v.now - v.last_success_at < p_stale_after then
        format('last success %s ago (limit %s)', date_trunc('second', v.now - v.last_success_at), p_stale_after)
      when v.last_success_at is not null then
        format('no successful run of %s for %s (limit %s)', p_job_name, date_trunc('second', v.now - v.last_success_at), p_stale_after)
      when v.since is not null and v.now - v.since < p_stale_after then
        format('no successful run yet; watched for %s (limit %s)', date_trunc('second', v.now - v.since), p_stale_after)
      when v.since is not null then
        format('no successful run of %s in the %s since it was first watched or ran (limit %s)', p_job_name, date_trunc('second', v.now - v.since), p_stale_after)
      else format('%s has never run: no row in jobs_log', p_job_name)
    end,
    v.last_success_at,
    extract(epoch from v.now - v.last_success_at)::double precision,
    extract(epoch from p_stale_after)::double precision,
    (select at from failure),
    (select error_message from failure),
    (select at from running),
    v.now
  from v
$$;

comment on function public.job_health(interval, text) is
  'Dead-man''s switch verdict: healthy while the last successful run is younger than p_stale_after; reason says why not.';

-- For pg_cron and SQL monitors: raises when unhealthy, so the failure is visible in
-- cron.job_run_details.status/return_message.
create or replace function public.assert_job_healthy(
    p_stale_after interval default interval '25 hours',
    p_job_name text default 'update-installment-statuses')
  returns text
  language plpgsql
  stable
  set search_path = pg_catalog
as $$
declare
  h record;
begin
  select * into h from public.job_health(p_stale_after, p_job_name);
  if not h.healthy then
    raise exception 'job % is unhealthy: %', p_job_name, h.reason
      using errcode = 'P0001',
            hint = 'See docs/operations.md, "No run happened". Last failure: ' || coalesce(h.last_failure_error, 'none');
  end if;
  return h.reason;
end
$$;

revoke all on function public.job_health(interval, text), public.assert_job_healthy(interval, text) from public, anon;
grant execute on function public.job_health(interval, text), public.assert_job_healthy(interval, text)
  to authenticated, service_role;
