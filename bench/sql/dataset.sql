-- The benchmark's dataset, generated set-based inside PostgreSQL (generate_series), never row
-- by row from Node. Applied to a bench-only database (overdue_bench_*) after our migrations.
--
-- Shape (defaults in bench/options.ts): N installments on P plans of A agencies spread over Z
-- distinct IANA zones taken from pg_timezone_names, cutoffs across the whole day, due dates
-- spread uniformly over the two years around p_now, a share of plans completed/cancelled that
-- keep pending installments (real data has them, and they must not slow every run down).
-- Deterministic: setseed() and a single-process plan give the same rows for the same options.

create schema if not exists bench;

create or replace function bench.build_dataset(
    p_installments bigint,
    p_plans integer,
    p_agencies integer,
    p_zones integer,
    p_inactive_plan_share numeric,
    p_now timestamptz,
    -- When given, pending installments of active plans whose cutoff passed before this instant
    -- are generated already overdue: the state after a first run, without paying for one (the
    -- growth runs at 10x measure only the daily run and the run with nothing to do).
    p_overdue_before timestamptz default null)
  returns jsonb
  language plpgsql
  set search_path = pg_catalog, public
as $$
declare
  v_zones text[];
  v_today date := (p_now at time zone 'UTC')::date;
begin
  if p_agencies < 1 or p_plans < p_agencies or p_installments < p_plans then
    raise exception 'dataset needs installments >= plans >= agencies >= 1, got % / % / %',
      p_installments, p_plans, p_agencies;
  end if;

  -- Real zones only (no posix/ or right/ aliases), in a stable but scattered order.
  select array_agg(name order by md5(name)) into v_zones
    from (select name from pg_timezone_names
           where name ~ '^(Africa|America|Antarctica|Asia|Atlantic|Australia|Europe|Indian|Pacific)/'
           order by md5(name)
           limit p_zones) z;
  if coalesce(array_length(v_zones, 1), 0) < p_zones then
    raise exception 'only % IANA zones available, % asked for', coalesce(array_length(v_zones, 1), 0), p_zones;
  end if;

  perform setseed(0.4242);
  perform set_config('max_parallel_workers_per_gather', '0', true);

  -- The per-row triggers are switched off for this bulk load only. Every value they would
  -- check holds by construction: zone names come verbatim from pg_timezone_names (the agencies
  -- trigger spends ~30 ms per row reading that view), cutoffs are times of day, and each
  -- installment takes agency_id and plan_active from its plan in the same statement.
  -- bench/run.ts checks the installment invariants afterwards (bench.check_dataset()).
  perform set_config('session_replication_role', 'replica', true);

  -- Cutoffs cover the day in 15-minute steps, scattered over agencies.
  insert into public.agencies (name, timezone, overdue_cutoff_time)
  select format('Bench agency %s', lpad(g::text, 5, '0')),
         v_zones[(g - 1) % p_zones + 1],
         make_time(((g * 7) % 24)::int, ((g * 13) % 4) * 15, 0)
    from generate_series(1, p_agencies) g;

  create temp table bench_agency_map on commit drop as
  select row_number() over (order by name)::int as n, id, timezone, overdue_cutoff_time
    from public.agencies where name like 'Bench agency %';
  create unique index on bench_agency_map (n);

  create temp table bench_plan_map (n int primary key, id uuid not null, agency_id uuid not null, status text not null,
                                    timezone text not null, cutoff time not null)
    on commit drop;
  insert into bench_plan_map (n, id, agency_id, status, timezone, cutoff)
  select g, gen_random_uuid(), a.id,
         case when r < p_inactive_plan_share / 2 then 'completed'
              when r < p_inactive_plan_share then 'cancelled'
              else 'active' end,
         a.timezone, a.overdue_cutoff_time
    from (select g, random() as r, (floor(random() * p_agencies))::int + 1 as agency_n
            from generate_series(1, p_plans) g) s
    join bench_agency_map a on a.n = s.agency_n;

  insert into public.payment_plans (id, agency_id, status)
  select id, agency_id, status from bench_plan_map order by n;

  -- Indexes are built after the load (sorted, far faster than 2M-20M random inserts into a
  -- uuid primary key), exactly as the migrations define them.
  create temp table bench_installment_indexes on commit drop as
  select c.conname, pg_get_constraintdef(c.oid) as constraint_def, null::text as index_def
    from pg_constraint c
   where c.conrelid = 'public.installments'::regclass and c.contype in ('p', 'u')
  union all
  select null, null, pg_get_indexdef(i.indexrelid)
    from pg_index i
   where i.indrelid = 'public.installments'::regclass
     and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid);
  perform bench.drop_installment_indexes();

  -- Installments of one plan are inserted next to each other, as an application would.
  insert into public.installments
         (payment_plan_id, agency_id, amount, student_due_date, college_due_date, status, plan_active)
  select p.id, p.agency_id,
         (100 + floor(random() * 4900))::numeric(12, 2),
         v_today - 365 + s.due_offset,
         v_today - 372 + s.due_offset,
         case when r < 0.90 and p_overdue_before is not null and p.status = 'active'
                   and (v_today - 365 + s.due_offset + p.cutoff) at time zone p.timezone < p_overdue_before
                then 'overdue'
              when r < 0.90 then 'pending'
              when r < 0.96 then 'paid'
              when r < 0.98 then 'draft'
              else 'cancelled' end,
         p.status = 'active'
    from (select g,
                 ((g - 1) * p_plans / p_installments)::int + 1 as plan_n,
                 random() as r,
                 floor(random() * 731)::int as due_offset
            from generate_series(1, p_installments) g) s
    join bench_plan_map p on p.n = s.plan_n
   order by s.g;
  perform set_config('session_replication_role', 'origin', true);

  perform set_config('maintenance_work_mem', '512MB', true);
  perform bench.create_installment_indexes();

  return jsonb_build_object(
    'agencies', p_agencies,
    'zones', (select count(distinct timezone) from public.agencies),
    'plans', p_plans,
    'inactivePlans', (select count(*) from bench_plan_map where status <> 'active'),
    'installments', p_installments);
end
$$;

create or replace function bench.drop_installment_indexes() returns void
  language plpgsql
  set search_path = pg_catalog
as $$
declare
  r record;
begin
  for r in select conname from bench_installment_indexes where conname is not null loop
    execute format('alter table public.installments drop constraint %I', r.conname);
  end loop;
  for r in select index_def from bench_installment_indexes where index_def is not null loop
    execute format('drop index public.%I', substring(r.index_def from 'INDEX (\S+) ON'));
  end loop;
end
$$;

create or replace function bench.create_installment_indexes() returns void
  language plpgsql
  set search_path = pg_catalog
as $$
declare
  r record;
begin
  for r in select conname, constraint_def from bench_installment_indexes where conname is not null loop
    execute format('alter table public.installments add constraint %I %s', r.conname, r.constraint_def);
  end loop;
  for r in select index_def from bench_installment_indexes where index_def is not null loop
    execute r.index_def;
  end loop;
end
$$;

-- Checks the invariants the bulk load skipped the triggers for.
create or replace function bench.check_dataset() returns bigint
  language sql stable
  set search_path = pg_catalog, public
as $$
  select count(*)
    from public.installments i
    left join public.payment_plans p on p.id = i.payment_plan_id
   where p.id is null or p.agency_id <> i.agency_id or i.plan_active <> (p.status = 'active')
$$;
