-- The overdue rule.
--
-- A pending installment of an active plan becomes overdue when p_as_of is later than the
-- instant (student_due_date + overdue_cutoff_time) AT TIME ZONE agency.timezone. PostgreSQL's
-- own zone rules turn the local due moment into an instant, so DST days need no special case:
-- a cutoff inside a spring-forward gap or a fall-back repeated hour resolves the way PostgreSQL
-- resolves that local time everywhere else.
--
-- Cost. Comparing every pending row against its agency's instant would read the whole table.
-- Instead, for each agency we compute once the latest due date that is already overdue at
-- p_as_of (last_overdue_due_date), and read the partial index
-- installments_overdue_candidates_idx (agency_id, student_due_date) WHERE pending AND
-- plan_active up to that date. Rows of completed/cancelled plans are not in that index. A run
-- with nothing to do is one empty index probe per agency; a run with work reads exactly the
-- rows it changes. The per-row comparison is kept as well, so the rule is stated once, exactly.

-- The latest due date whose cutoff instant is strictly before p_as_of, in the given zone.
-- The local date at p_as_of, and the day before, are the only possible answers in practice;
-- the neighbours are tried too so that zones that skipped or repeated a whole date
-- (Pacific/Apia 2011, Pacific/Kwajalein 1993) are still right. Tried from the latest down, so
-- the first that has passed is the maximum.
--
-- Written as one expression with a SQL-standard body and no SET clause so that PostgreSQL
-- inlines it into the calling query: a SET clause (or a FROM) makes every call a separate
-- function invocation with its own configuration save/restore, ~10 µs each, which was most of
-- a run with nothing to do (bench/, docs/scaling.md). The body is bound when it is created,
-- so the caller's search_path cannot change what it calls.
create or replace function public.last_overdue_due_date(p_timezone text, p_cutoff time, p_as_of timestamptz)
  returns date
  language sql stable parallel safe
begin atomic
  select case
           when ((p_as_of at time zone p_timezone)::date + 1 + p_cutoff) at time zone p_timezone < p_as_of
             then (p_as_of at time zone p_timezone)::date + 1
           when ((p_as_of at time zone p_timezone)::date + p_cutoff) at time zone p_timezone < p_as_of
             then (p_as_of at time zone p_timezone)::date
           when ((p_as_of at time zone p_timezone)::date - 1 + p_cutoff) at time zone p_timezone < p_as_of
             then (p_as_of at time zone p_timezone)::date - 1
           when ((p_as_of at time zone p_timezone)::date - 2 + p_cutoff) at time zone p_timezone < p_as_of
             then (p_as_of at time zone p_timezone)::date - 2
         end;
end;

grant execute on function public.last_overdue_due_date(text, time, timestamptz) to public;

-- The rule, written once: the installments that are overdue at p_as_of — pending, of an active
-- plan (plan_active), and strictly past their agency-local cutoff. The per-agency bound
-- (last_overdue_due_date) makes it a range probe of installments_overdue_candidates_idx; the
-- per-row comparison is the rule itself. A plain SQL function with a standard body and no SET
-- clause, so PostgreSQL inlines it into each caller's query and plans it there: the update, the
-- batch update and the preview all read exactly this.
create or replace function public.overdue_installments_at(p_as_of timestamptz)
  returns table (row_ctid tid, installment_id uuid, agency_id uuid)
  language sql stable
begin atomic
  select i.ctid, i.id, i.agency_id
    from public.agencies a
    join public.installments i on i.agency_id = a.id
   where i.status = 'pending'
     and i.plan_active
     and i.student_due_date <= public.last_overdue_due_date(a.timezone, a.overdue_cutoff_time, p_as_of)
     and (i.student_due_date + a.overdue_cutoff_time) at time zone a.timezone < p_as_of;
end;

revoke all on function public.overdue_installments_at(timestamptz) from public, anon, authenticated;
grant execute on function public.overdue_installments_at(timestamptz) to service_role;

create or replace function public.update_installment_statuses(p_as_of timestamptz default now())
  returns table (agency_id uuid, updated_count integer, transitions jsonb)
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
  -- The plan must be: for each agency, one range probe of installments_overdue_candidates_idx
  -- up to its last overdue due date. The planner cannot know how few candidate rows are due (it
  -- guesses a third of the index), so without these it hashes the whole candidate set against
  -- the agencies — a scan of every future pending installment on every run, 40 ms at 200k rows
  -- with nothing to do. With them its cost follows the rows that flip (bench/, docs/scaling.md).
  set enable_hashjoin = off
  set enable_mergejoin = off
  -- The same overestimate pushes the plan's cost past jit_above_cost at a few million rows, and
  -- compiling it took 18 ms of a 20 ms run with nothing to do at 2M; a short OLTP statement
  -- never earns that back.
  set jit = off
as $$
declare
  -- The runner may tag the audit rows with its jobs_log id (set_config('overdue.job_id', …, true)).
  v_job_id uuid := nullif(current_setting('overdue.job_id', true), '')::uuid;
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

  return query
  -- The rows to flip, found through the candidates index, then written in their physical order:
  -- index order (agency, due date) visits the heap's pages at random, and on a backlog larger
  -- than shared_buffers that re-reads pages and writes a full-page image to the WAL for each
  -- revisit after a checkpoint (bench/, docs/scaling.md).
  with due as materialized (
    select o.row_ctid from public.overdue_installments_at(p_as_of) o order by o.row_ctid
  ),
  -- status and plan_active are checked again on the row actually updated: a payment or a plan
  -- change committed meanwhile wins (READ COMMITTED re-check), and is never overwritten.
  flipped as (
    update public.installments i
       set status = 'overdue',
           updated_at = now()
      from due d
     where i.ctid = d.row_ctid
       and i.status = 'pending'
       and i.plan_active
    returning i.id, i.agency_id
  ),
  -- A data-modifying CTE always runs to completion, so every flipped row is audited even
  -- though the counts below are taken from `flipped` (no second RETURNING to materialise).
  audited as (
    insert into public.audit_logs (agency_id, installment_id, action, old_status, new_status, actor_id, job_id)
    select f.agency_id, f.id, 'status_change', 'pending', 'overdue', null, v_job_id
      from flipped f
  )
  select f.agency_id,
         count(*)::integer,
         jsonb_build_object('pending_to_overdue', count(*))
    from flipped f
   group by f.agency_id
   order by f.agency_id;
end
$$;

comment on function public.update_installment_statuses(timestamptz) is
  'Marks pending installments of active plans overdue once their agency-local cutoff has passed at p_as_of; one audit row per change; returns one row per agency that changed.';

create or replace function public.preview_installment_status_changes(
    p_as_of timestamptz default now(),
    p_agency_id uuid default null)
  returns table (agency_id uuid, updated_count integer, transitions jsonb)
  language sql
  stable
  security definer
  set search_path = pg_catalog, pg_temp
  -- Same plan as update_installment_statuses, for the same reasons.
  set enable_hashjoin = off
  set enable_mergejoin = off
  set jit = off
as $$
  select o.agency_id,
         count(*)::integer,
         jsonb_build_object('pending_to_overdue', count(*))
    from public.overdue_installments_at(p_as_of) o
   where p_agency_id is null or o.agency_id = p_agency_id
   group by o.agency_id
   order by o.agency_id
$$;

comment on function public.preview_installment_status_changes(timestamptz, uuid) is
  'Read-only: what update_installment_statuses would change at p_as_of (future instants allowed), optionally for one agency.';

revoke all on function public.update_installment_statuses(timestamptz) from public, anon, authenticated;
revoke all on function public.preview_installment_status_changes(timestamptz, uuid) from public, anon, authenticated;
grant execute on function public.update_installment_statuses(timestamptz) to service_role;
grant execute on function public.preview_installment_status_changes(timestamptz, uuid) to service_role;
