-- Large runs in one pass over the table (issue 6).
--
-- Until this migration every run found its rows through installments_overdue_candidates_idx,
-- one range probe per agency. That is what a run every minute wants: a few probes, a few rows.
-- A backlog (the first run, or the catch-up after a long outage) is different: hundreds of
-- thousands of rows, scattered over the whole heap. Reading them in index order (agency, due
-- date) and writing them in physical order reads every heap page twice, and on a table larger
-- than shared_buffers the first read, at random, comes back from the OS for most pages; that
-- was 1.13-1.15x the bare UPDATE by primary key of the same rows (bench/, docs/scaling.md).
--
-- Now update_installment_statuses first counts, through the index alone, how much is due. The
-- flip is one statement, written once (flip_overdue_installments), planned one of two ways: up
-- to one row in ten of the table, through the candidates index as before; beyond that, as one
-- pass that reads the table in physical order and flips each due row on the page it is
-- reading, while that page is in memory: no row is looked up twice, and no sort.
--
-- The rule itself moves into two small inlinable functions that every statement of the job
-- composes: overdue_bounds_at (per agency, once: the latest due date already overdue) and
-- installment_is_overdue (per row: pending, active plan, due no later than that date).

-- Per agency, once per statement: the latest due date that is already overdue at p_as_of in
-- the agency's zone, at its cutoff (last_overdue_due_date). OFFSET 0 keeps this a subquery of
-- its own when inlined: joined to installments, the bound is computed once per agency rather
-- than once per installment (four time-zone conversions a row, 2.7 s instead of 0.3 s for a
-- pass over 2M rows).
create or replace function public.overdue_bounds_at(p_as_of timestamptz)
  returns table (agency_id uuid, last_overdue_due_date date)
  language sql stable
begin atomic
  select a.id, public.last_overdue_due_date(a.timezone, a.overdue_cutoff_time, p_as_of)
    from public.agencies a
  offset 0;
end;

-- Per row: the rule. Pending, of an active plan, and due on or before its agency's bound. The
-- bound is exact: an installment's cutoff instant, (student_due_date + cutoff) AT TIME ZONE
-- zone, grows with its due date in every zone, so "my cutoff has passed" and "my due date is
-- no later than the latest date whose cutoff has passed" are the same statement
-- (test/overdue-rule.test.ts checks it by hand-worked instants, DST days and skipped dates).
-- Inlined wherever it is used, so the planner sees the three plain conditions and matches
-- them to the candidates index's predicate.
create or replace function public.installment_is_overdue(
    p_status text,
    p_plan_active boolean,
    p_student_due_date date,
    p_last_overdue_due_date date)
  returns boolean
  language sql immutable parallel safe
begin atomic
  select p_status = 'pending' and p_plan_active and p_student_due_date <= p_last_overdue_due_date;
end;

-- The installments that are overdue at p_as_of: the rule above over every agency. Read by the
-- count in update_installment_statuses, by the batch mode and by the preview. Same signature as
-- before, so its readers are unchanged.
create or replace function public.overdue_installments_at(p_as_of timestamptz)
  returns table (row_ctid tid, installment_id uuid, agency_id uuid)
  language sql stable
begin atomic
  select i.ctid, i.id, i.agency_id
    from public.overdue_bounds_at(p_as_of) b
    join public.installments i on i.agency_id = b.agency_id
   where public.installment_is_overdue(i.status, i.plan_active, i.student_due_date, b.last_overdue_due_date);
end;

revoke all on function public.overdue_bounds_at(timestamptz) from public, anon, authenticated;
revoke all on function public.installment_is_overdue(text, boolean, date, date) from public, anon, authenticated;
grant execute on function public.overdue_bounds_at(timestamptz) to service_role;
grant execute on function public.installment_is_overdue(text, boolean, date, date) to service_role;

-- The flip, written once: every installment that is overdue at p_as_of becomes overdue, with
-- one audit row each, in one statement; returns the count per agency. A plain SQL function
-- (not inlined, planned at every call), so each of the two wrappers below plans it its own way.
-- A row that someone else changes while the run waits on it is judged again on its new version
-- (READ COMMITTED re-check, with the agency's bound as this statement read it): a payment or a
-- plan change wins and is never overwritten; a row still due flips.
create or replace function public.flip_overdue_installments(p_as_of timestamptz, p_job_id uuid)
  returns table (agency_id uuid, updated_count integer)
  language sql
  set search_path = pg_catalog, pg_temp
begin atomic
  with flipped as (
    update public.installments i
       set status = 'overdue',
           updated_at = now()
      from public.overdue_bounds_at(p_as_of) b
     where i.agency_id = b.agency_id
       and public.installment_is_overdue(i.status, i.plan_active, i.student_due_date, b.last_overdue_due_date)
    returning i.id, i.agency_id
  ),
  -- A data-modifying CTE always runs to completion, so every flipped row is audited even
  -- though the counts below are taken from `flipped`.
  audited as (
    insert into public.audit_logs (agency_id, installment_id, action, old_status, new_status, actor_id, job_id)
    select f.agency_id, f.id, 'status_change', 'pending', 'overdue', null, p_job_id
      from flipped f
  )
  select f.agency_id, count(*)::integer
    from flipped f
   group by f.agency_id;
end;

-- Small runs: for each agency one range probe of installments_overdue_candidates_idx up to its
-- bound, each row updated as it is found. The planner cannot know how few candidates are due (it
-- guesses a third of the index), so without these settings it hashes the whole candidate set
-- against the agencies, a scan of every future pending installment on every run; and the same
-- overestimate pushes the cost past jit_above_cost at a few million rows, where compiling took
-- 18 ms of a 20 ms run.
create or replace function public.flip_overdue_installments_by_index(p_as_of timestamptz, p_job_id uuid)
  returns table (agency_id uuid, updated_count integer)
  language sql
  set search_path = pg_catalog, pg_temp
  set enable_hashjoin = off
  set enable_mergejoin = off
  set jit = off
begin atomic
  select f.agency_id, f.updated_count from public.flip_overdue_installments(p_as_of, p_job_id) f;
end;

-- Large runs: the same statement as one pass. The table is read once in physical order and each
-- due row is flipped on the page being read, while it is in memory; the agencies' bounds are
-- hashed once. No index is read and no row is looked up twice. Index order would visit the
-- heap's pages at random, and with a table larger than shared_buffers read most of them back
-- from the OS several times.
create or replace function public.flip_overdue_installments_in_one_pass(p_as_of timestamptz, p_job_id uuid)
  returns table (agency_id uuid, updated_count integer)
  language sql
  set search_path = pg_catalog, pg_temp
  set enable_indexscan = off
  set enable_bitmapscan = off
  set enable_nestloop = off
  set enable_mergejoin = off
  set enable_hashjoin = on
  set jit = off
begin atomic
  select f.agency_id, f.updated_count from public.flip_overdue_installments(p_as_of, p_job_id) f;
end;

-- Internal: only the owner runs them (through update_installment_statuses).
revoke all on function public.flip_overdue_installments(timestamptz, uuid) from public, anon, authenticated;
revoke all on function public.flip_overdue_installments_by_index(timestamptz, uuid) from public, anon, authenticated;
revoke all on function public.flip_overdue_installments_in_one_pass(timestamptz, uuid) from public, anon, authenticated;

-- How many rows due make a pass worth it: one row in ten of the table (pg_class.reltuples, the
-- planner's own count), and at least 10,000. A pass costs one sequential read of the table,
-- about 0.15 us a row here; the index path costs about 1.5 us more per flipped row than the
-- pass once the rows no longer fit in shared_buffers (bench/, docs/scaling.md). They cross
-- near one row in nine.
create or replace function public.overdue_one_pass_threshold()
  returns bigint
  language sql stable
  set search_path = pg_catalog, pg_temp
as $$
  select greatest(10000, (c.reltuples / 10)::bigint)
    from pg_class c
   where c.oid = 'public.installments'::regclass
$$;

revoke all on function public.overdue_one_pass_threshold() from public, anon, authenticated;
grant execute on function public.overdue_one_pass_threshold() to service_role;

create or replace function public.update_installment_statuses(p_as_of timestamptz default now())
  returns table (agency_id uuid, updated_count integer, transitions jsonb)
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
  -- The count below must be one range probe per agency (see flip_overdue_installments_by_index).
  set enable_hashjoin = off
  set enable_mergejoin = off
  set jit = off
as $$
declare
  -- The runner may tag the audit rows with its jobs_log id (set_config('overdue.job_id', …, true)).
  v_job_id uuid := nullif(current_setting('overdue.job_id', true), '')::uuid;
  v_threshold bigint;
  v_due bigint;
begin
  if p_as_of is null then
    raise exception 'p_as_of must not be null' using errcode = '22004';
  end if;
  -- The past may be replayed; the future may not be written. clock_timestamp(), not now(), so a
  -- caller's "now" taken after this transaction began is not mistaken for the future.
  if p_as_of > clock_timestamp() then
    raise exception 'p_as_of % is in the future: overdue statuses can only be written up to now', p_as_of
      using errcode = '22023',
            hint = 'Use preview_installment_status_changes() to see what a future instant would change.';
  end if;

  -- How much is due, counted up to the threshold through the candidates index alone (an
  -- index-only scan: agency and due date are in the index, status and plan_active in its
  -- predicate). A run with nothing to do ends here.
  v_threshold := public.overdue_one_pass_threshold();
  select count(*) into v_due
    from (select from public.overdue_installments_at(p_as_of) limit v_threshold) s;
  if v_due = 0 then
    return;
  end if;

  -- Either way a single statement decides and writes every row, so each agency's rows are
  -- judged by one reading of its zone and cutoff, and the changes and their audit rows commit
  -- together.
  if v_due < v_threshold then
    return query
    select f.agency_id, f.updated_count, jsonb_build_object('pending_to_overdue', f.updated_count)
      from public.flip_overdue_installments_by_index(p_as_of, v_job_id) f
     order by f.agency_id;
  else
    return query
    select f.agency_id, f.updated_count, jsonb_build_object('pending_to_overdue', f.updated_count)
      from public.flip_overdue_installments_in_one_pass(p_as_of, v_job_id) f
     order by f.agency_id;
  end if;
end
$$;

comment on function public.update_installment_statuses(timestamptz) is
  'Marks pending installments of active plans overdue once their agency-local cutoff has passed at p_as_of; one audit row per change; returns one row per agency that changed. Small runs go through the candidates index, large ones (overdue_one_pass_threshold()) in one pass over the table.';
