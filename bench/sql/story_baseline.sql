-- Baseline (b): the story's design, rebuilt faithfully in a bench-only schema `story`.
-- Nothing here is part of our migrations.
--
-- The story (Task 1 of the implementation manifest) "loops by agency (not installments), single
-- UPDATE per agency" and recommends indexes for it. Its schema has no plan_active copy and no
-- partial index; it joins payment_plans for status = 'active'. Our choice of its recommended
-- index, written down: story_installments_status_due_idx on installments (status,
-- student_due_date) — the index that serves "status = 'pending' and due date before today" —
-- next to the plain foreign-key indexes any schema has (installments.payment_plan_id,
-- payment_plans.agency_id).
--
-- The story's tables are separate copies of ours (same rows, same physical order), so the
-- baseline pays for its own indexes only and never for ours, and ours never for its index.

create schema if not exists story;

create or replace function story.copy_dataset() returns void
  language plpgsql
  set search_path = pg_catalog
as $$
begin
  drop table if exists story.audit_logs, story.installments, story.payment_plans, story.agencies;

  create table story.agencies (
    id                   uuid primary key,
    name                 text not null,
    timezone             text not null,
    overdue_cutoff_time  time not null
  );
  create table story.payment_plans (
    id         uuid primary key,
    agency_id  uuid not null references story.agencies (id),
    status     text not null check (status in ('active', 'completed', 'cancelled'))
  );
  create table story.installments (
    id                uuid primary key,
    payment_plan_id   uuid not null references story.payment_plans (id),
    agency_id         uuid not null,
    amount            numeric(12, 2) not null check (amount > 0),
    student_due_date  date not null,
    college_due_date  date,
    status            text not null check (status in ('draft', 'pending', 'overdue', 'paid', 'cancelled')),
    created_at        timestamptz not null,
    updated_at        timestamptz not null
  );
  create table story.audit_logs (like public.audit_logs including all);

  insert into story.agencies select id, name, timezone, overdue_cutoff_time from public.agencies;
  insert into story.payment_plans select id, agency_id, status from public.payment_plans;
  insert into story.installments
  select id, payment_plan_id, agency_id, amount, student_due_date, college_due_date, status, created_at, updated_at
    from public.installments;

  create index story_payment_plans_agency_id_idx on story.payment_plans (agency_id);
  create index story_installments_payment_plan_id_idx on story.installments (payment_plan_id);
  -- The story's recommended index.
  create index story_installments_status_due_idx on story.installments (status, student_due_date);
end
$$;

-- The story's function: one UPDATE per agency, "now" computed in the agency's zone, due before
-- local today or due today with the local time past the cutoff, plans joined for 'active',
-- and (as our contract asks) one audit row per change in the same statement.
create or replace function story.update_installment_statuses(p_as_of timestamptz default now())
  returns table (agency_id uuid, updated_count integer, transitions jsonb)
  language plpgsql
  set search_path = pg_catalog
as $$
declare
  v_agency     record;
  v_local_now  timestamp;
  v_today      date;
  v_count      integer;
begin
  for v_agency in select a.id, a.timezone, a.overdue_cutoff_time from story.agencies a order by a.id loop
    v_local_now := p_as_of at time zone v_agency.timezone;
    v_today := v_local_now::date;

    with updated as (
      update story.installments i
         set status = 'overdue',
             updated_at = now()
        from story.payment_plans pp
       where i.payment_plan_id = pp.id
         and pp.agency_id = v_agency.id
         and pp.status = 'active'
         and i.status = 'pending'
         and (i.student_due_date < v_today
              or (i.student_due_date = v_today and v_local_now::time > v_agency.overdue_cutoff_time))
      returning i.id, i.agency_id
    ),
    audited as (
      insert into story.audit_logs (agency_id, installment_id, action, old_status, new_status, actor_id)
      select u.agency_id, u.id, 'status_change', 'pending', 'overdue', null
        from updated u
      returning 1
    )
    select count(*) into v_count from audited;

    if v_count > 0 then
      agency_id := v_agency.id;
      updated_count := v_count;
      transitions := jsonb_build_object('pending_to_overdue', v_count);
      return next;
    end if;
  end loop;
end
$$;
