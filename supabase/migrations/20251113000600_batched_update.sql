-- Batch mode for huge backlogs (issue 6).
--
-- update_installment_statuses flips everything due in one statement, so its row locks are held
-- until that one transaction commits. For a first run on a very large table (100M rows, tens of
-- millions due) that is minutes of locks and one enormous transaction. This companion flips at
-- most p_batch_size installments per call, each with its audit row, in the caller's transaction:
-- a caller loops with one transaction per batch until a call flips no rows.
-- Every batch is atomic (its status changes and audit rows commit together), locks are held for
-- one batch only, and a run stopped halfway has done only whole batches, which the next run
-- continues. The rule is the same as update_installment_statuses: both read overdue_installments_at().

create or replace function public.update_installment_statuses_batch(p_as_of timestamptz, p_batch_size integer)
  returns table (agency_id uuid, updated_count integer, transitions jsonb)
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
  -- One range probe of installments_overdue_candidates_idx per agency, as in
  -- update_installment_statuses (see there): the planner cannot estimate how few rows are due,
  -- and the overestimate would otherwise also switch JIT compilation on.
  set enable_hashjoin = off
  set enable_mergejoin = off
  set jit = off
as $$
declare
  v_job_id uuid := nullif(current_setting('overdue.job_id', true), '')::uuid;
begin
  if p_as_of is null then
    raise exception 'p_as_of must not be null' using errcode = '22004';
  end if;
  if p_batch_size is null or p_batch_size < 1 then
    raise exception 'invalid p_batch_size %: must be a whole number of rows of at least 1', coalesce(p_batch_size::text, 'null')
      using errcode = '22023',
            hint = 'Batches of 10000 to 50000 rows keep each transaction well under a second.';
  end if;
  if p_as_of > clock_timestamp() then
    raise exception 'p_as_of % is in the future: overdue statuses can only be written up to now', p_as_of
      using errcode = '22023',
            hint = 'Use preview_installment_status_changes() to see what a future instant would change.';
  end if;

  return query
  -- No FOR UPDATE here (it would write every row twice): the UPDATE below re-checks status and
  -- plan_active on the latest version of each row (read committed), so a row paid or moved to
  -- an inactive plan meanwhile is left out, and two callers never flip the same row twice.
  with batch as (
    select o.installment_id as id from public.overdue_installments_at(p_as_of) o limit p_batch_size
  ),
  flipped as (
    update public.installments i
       set status = 'overdue',
           updated_at = now()
      from batch b
     where i.id = b.id
       and i.status = 'pending'
       and i.plan_active
    returning i.id, i.agency_id
  ),
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

comment on function public.update_installment_statuses_batch(timestamptz, integer) is
  'Like update_installment_statuses, but flips at most p_batch_size installments (with their audit rows); call it in one transaction per batch until it flips none.';

revoke all on function public.update_installment_statuses_batch(timestamptz, integer) from public, anon, authenticated;
grant execute on function public.update_installment_statuses_batch(timestamptz, integer) to service_role;
