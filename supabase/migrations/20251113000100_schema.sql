-- Tenants, payment plans, installments, memberships, the audit trail and the run log.
--
-- Written to be safe to run twice (if-not-exists / or-replace / drop-then-create) although the
-- migrator records each file and never runs one twice.

-- ---------------------------------------------------------------------------------------------
-- Agencies (tenants)
-- ---------------------------------------------------------------------------------------------
create table if not exists public.agencies (
  id                       uuid primary key default gen_random_uuid(),
  name                     text not null,
  timezone                 text not null default 'Australia/Brisbane',
  overdue_cutoff_time      time not null default '17:00',
  due_soon_threshold_days  int  not null default 4,
  created_at               timestamptz not null default now(),
  updated_at               timestamptz not null default now(),
  constraint agencies_name_not_blank check (btrim(name) <> ''),
  constraint agencies_cutoff_within_day check (overdue_cutoff_time < time '24:00'),
  constraint agencies_due_soon_threshold_days_range check (due_soon_threshold_days between 1 and 30)
);

comment on column public.agencies.timezone is
  'IANA zone name (any name in pg_timezone_names). Installments are judged against this zone.';
comment on column public.agencies.overdue_cutoff_time is
  'Local time on the due date after which a pending installment becomes overdue.';

-- The time zone must be one the server knows. A CHECK constraint cannot read
-- pg_timezone_names, so a trigger validates it, canonicalises the spelling
-- ('australia/brisbane' -> 'Australia/Brisbane') and names the bad value when it refuses.
create or replace function public.agencies_validate() returns trigger
  language plpgsql
  set search_path = pg_catalog
as $$
declare
  v_zone text;
begin
  if tg_op = 'INSERT' or new.timezone is distinct from old.timezone then
    select z.name into v_zone
      from pg_catalog.pg_timezone_names z
     where lower(z.name) = lower(new.timezone)
     order by z.name = new.timezone desc, z.name
     limit 1;
    if v_zone is null then
      raise exception 'invalid time zone "%": not a time zone this server knows', new.timezone
        using errcode = '22023',
              hint = 'Use an IANA zone name from pg_timezone_names, e.g. Australia/Brisbane or America/New_York.';
    end if;
    new.timezone := v_zone;
  end if;

  if new.overdue_cutoff_time >= time '24:00' then
    raise exception 'invalid overdue_cutoff_time "%": must be a time of day from 00:00 to 23:59:59', new.overdue_cutoff_time
      using errcode = '22023';
  end if;

  if new.due_soon_threshold_days is not null and new.due_soon_threshold_days not between 1 and 30 then
    raise exception 'invalid due_soon_threshold_days %: must be between 1 and 30', new.due_soon_threshold_days
      using errcode = '22023';
  end if;

  if new.name is not null and btrim(new.name) = '' then
    raise exception 'invalid agency name: must not be blank' using errcode = '22023';
  end if;

  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  return new;
end
$$;

drop trigger if exists agencies_validate on public.agencies;
create trigger agencies_validate
  before insert or update on public.agencies
  for each row execute function public.agencies_validate();

-- ---------------------------------------------------------------------------------------------
-- Payment plans
-- ---------------------------------------------------------------------------------------------
create table if not exists public.payment_plans (
  id          uuid primary key default gen_random_uuid(),
  agency_id   uuid not null references public.agencies (id) on delete cascade,
  status      text not null default 'active',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint payment_plans_status_valid check (status in ('active', 'completed', 'cancelled')),
  -- Target of the installments' composite foreign key: an installment's agency is its plan's.
  constraint payment_plans_id_agency_key unique (id, agency_id)
);

create index if not exists payment_plans_agency_id_idx on public.payment_plans (agency_id);

-- ---------------------------------------------------------------------------------------------
-- Installments
-- ---------------------------------------------------------------------------------------------
create table if not exists public.installments (
  id                uuid primary key default gen_random_uuid(),
  payment_plan_id   uuid not null,
  agency_id         uuid not null,
  amount            numeric(12, 2) not null,
  student_due_date  date not null,
  college_due_date  date,
  status            text not null default 'pending',
  -- Copy of "the plan is active", kept exact by triggers on both tables. It lets the overdue
  -- candidates index leave out pending installments of completed/cancelled plans, which would
  -- otherwise be scanned again on every run (see update_installment_statuses).
  plan_active       boolean not null default true,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  constraint installments_amount_positive check (amount > 0),
  constraint installments_status_valid
    check (status in ('draft', 'pending', 'overdue', 'paid', 'cancelled')),
  constraint installments_plan_agency_fkey foreign key (payment_plan_id, agency_id)
    references public.payment_plans (id, agency_id) on delete cascade
);

comment on column public.installments.plan_active is
  'Maintained by triggers: true while the payment plan is active. Do not set by hand.';

create index if not exists installments_payment_plan_id_idx on public.installments (payment_plan_id);

-- The whole job reads this index: only the rows that can still become overdue are in it, so a
-- run with nothing to do is one short index probe per agency, whatever the table size.
create index if not exists installments_overdue_candidates_idx
  on public.installments (agency_id, student_due_date)
  where status = 'pending' and plan_active;

-- Before insert or when the plan changes: the agency must be the plan's (with a clear message;
-- the composite foreign key is the guarantee) and plan_active is copied from the plan. It also
-- fires when plan_active itself is written, so a hand-set value (any member may update their
-- installments) is replaced by the plan's real state instead of letting the job flip
-- installments of a completed plan.
create or replace function public.installments_check_plan() returns trigger
  language plpgsql
  set search_path = pg_catalog
as $$
declare
  v_agency uuid;
  v_status text;
begin
  select p.agency_id, p.status into v_agency, v_status
    from public.payment_plans p
   where p.id = new.payment_plan_id;
  if not found then
    raise exception 'payment plan % does not exist', new.payment_plan_id
      using errcode = '23503';
  end if;
  if new.agency_id is distinct from v_agency then
    raise exception 'installment agency_id % does not match the agency % of payment plan %',
      new.agency_id, v_agency, new.payment_plan_id
      using errcode = '23514',
            hint = 'An installment always belongs to its payment plan''s agency.';
  end if;
  new.plan_active := (v_status = 'active');
  return new;
end
$$;

drop trigger if exists installments_check_plan on public.installments;
create trigger installments_check_plan
  before insert or update of payment_plan_id, agency_id, plan_active on public.installments
  for each row execute function public.installments_check_plan();

-- updated_at for changes made by people; the job sets it itself, so the WHEN clause keeps this
-- trigger off the job's hot path.
create or replace function public.touch_updated_at() returns trigger
  language plpgsql
  set search_path = pg_catalog
as $$
begin
  new.updated_at := now();
  return new;
end
$$;

drop trigger if exists installments_touch_updated_at on public.installments;
create trigger installments_touch_updated_at
  before update on public.installments
  for each row when (new.updated_at is not distinct from old.updated_at)
  execute function public.touch_updated_at();

drop trigger if exists payment_plans_touch_updated_at on public.payment_plans;
create trigger payment_plans_touch_updated_at
  before update on public.payment_plans
  for each row when (new.updated_at is not distinct from old.updated_at)
  execute function public.touch_updated_at();

-- A plan that changes status carries plan_active to its installments.
create or replace function public.payment_plans_sync_installments() returns trigger
  language plpgsql
  set search_path = pg_catalog
as $$
begin
  update public.installments i
     set plan_active = (new.status = 'active')
   where i.payment_plan_id = new.id
     and i.plan_active is distinct from (new.status = 'active');
  return null;
end
$$;

drop trigger if exists payment_plans_sync_installments on public.payment_plans;
create trigger payment_plans_sync_installments
  after update of status on public.payment_plans
  for each row when (old.status is distinct from new.status)
  execute function public.payment_plans_sync_installments();

-- ---------------------------------------------------------------------------------------------
-- Tenant membership (Supabase style: id is the auth user id)
-- ---------------------------------------------------------------------------------------------
create table if not exists public.users (
  id          uuid primary key,
  agency_id   uuid not null references public.agencies (id) on delete cascade,
  role        text not null default 'agency_user',
  email       text,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  constraint users_role_valid check (role in ('agency_admin', 'agency_user'))
);

create index if not exists users_agency_id_idx on public.users (agency_id);

-- ---------------------------------------------------------------------------------------------
-- Audit trail: one row per automated status change, written in the same transaction.
-- ---------------------------------------------------------------------------------------------
create table if not exists public.audit_logs (
  id              bigint generated always as identity primary key,
  agency_id       uuid not null,
  installment_id  uuid not null,  -- no foreign key: the trail outlives a deleted installment
  action          text not null default 'status_change',
  old_status      text,
  new_status      text,
  actor_id        uuid,           -- NULL: the automated job
  job_id          uuid,           -- the jobs_log run that made the change, when known
  created_at      timestamptz not null default now()
);

create index if not exists audit_logs_agency_created_idx on public.audit_logs (agency_id, created_at desc);

-- ---------------------------------------------------------------------------------------------
-- Run log, as the story defines it.
-- ---------------------------------------------------------------------------------------------
create table if not exists public.jobs_log (
  id               uuid primary key default gen_random_uuid(),
  job_name         text not null,
  started_at       timestamptz not null default now(),
  completed_at     timestamptz,
  records_updated  int default 0,
  status           text check (status in ('running', 'success', 'failed')),
  error_message    text,
  metadata         jsonb,
  created_at       timestamptz default now()
);

create index if not exists idx_jobs_log_job_name on public.jobs_log (job_name, started_at desc);
create index if not exists idx_jobs_log_status on public.jobs_log (status) where status = 'failed';

comment on table public.jobs_log is
  'One row per run of a scheduled job: running -> success | failed. Readable by platform admins only.';
