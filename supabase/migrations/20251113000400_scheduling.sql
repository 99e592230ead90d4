-- Scheduling: the in-database job for pg_cron, run-log pruning, the next cutoff instants, and
-- the pg_cron installer.
--
-- Nothing here requires pg_cron, pg_net or Vault to exist when the migration runs: the embedded
-- PGlite and plain PostgreSQL without pg_cron must migrate too. PL/pgSQL bodies are resolved
-- when they run, so the functions that touch cron.*, net.* or vault.* check for them at call
-- time and raise an error that says what is missing and what to do.
--
-- Why a frequent check and not only the daily sweep: an installment is overdue as soon as its
-- agency-local cutoff instant has passed, and agencies sit in every zone, so cutoffs fall at
-- every hour of the UTC day. A check at every minute boundary flips each one within 60 s of its
-- cutoff (never before: the rule compares with the run's as-of instant), and costs a few
-- milliseconds when nothing is due thanks to installments_overdue_candidates_idx. The daily
-- 07:00 UTC sweep stays as the story's guaranteed run. See docs/scheduling.md.

-- ---------------------------------------------------------------------------------------------
-- The job, inside the database (pg_cron on plain PostgreSQL without pg_net).
-- ---------------------------------------------------------------------------------------------
-- The same lifecycle as the TypeScript runner (src/job/runner.ts):
--   * one run at a time: the same session advisory lock, hashtextextended('update-installment-statuses', 0);
--     a run that finds it taken returns quietly (the holder is doing the work);
--   * runs still 'running' after 15 minutes belonged to a dead session: closed as failed;
--   * a 'running' jobs_log row is COMMITTED before the work, so the run is visible while it runs;
--   * the status changes and the 'success' row commit together; on error both roll back and the
--     row is closed as 'failed' with the message and SQLSTATE.
-- No retries inside SQL: a transient failure is retried by the next minute's tick.
--
-- A PROCEDURE so that it can COMMIT between those steps; pg_cron runs its command as a top-level
-- CALL, where that is allowed. For the same reason it is SECURITY INVOKER and has no SET clause
-- (PostgreSQL forbids transaction control in either case): every name is schema-qualified
-- instead, and EXECUTE is granted to nobody but the owner and service_role.
create or replace procedure public.run_update_installment_statuses_job(p_trigger text default 'pg_cron')
  language plpgsql
as $$
declare
  c_job_name   constant text := 'update-installment-statuses';
  c_lock_key   constant bigint := pg_catalog.hashtextextended('update-installment-statuses', 0);
  v_job_id     uuid;
  v_started    timestamptz;
  v_as_of      timestamptz;
  v_agencies   jsonb;
  v_total      integer;
  v_failed     boolean := false;
  v_message    text;
  v_sqlstate   text;
  v_context    text;
begin
  if p_trigger is null or pg_catalog.btrim(p_trigger) = '' then
    raise exception 'p_trigger must name who started the run, e.g. ''pg_cron'''
      using errcode = '22023';
  end if;

  if not pg_catalog.pg_try_advisory_lock(c_lock_key) then
    raise notice '% is already running in another session; this run (trigger %) was skipped', c_job_name, p_trigger;
    return;
  end if;

  update public.jobs_log j
     set status = 'failed',
         completed_at = pg_catalog.clock_timestamp(),
         error_message = 'abandoned: still running after 900 s with no completion recorded; the process running it probably died',
         metadata = coalesce(j.metadata, '{}'::jsonb)
                    || pg_catalog.jsonb_build_object('code', 'ABANDONED', 'reapedAt', pg_catalog.clock_timestamp())
   where j.job_name = c_job_name
     and j.status = 'running'
     and j.started_at < pg_catalog.clock_timestamp() - interval '15 minutes';

  insert into public.jobs_log (job_name, started_at, status, records_updated, metadata)
  values (c_job_name, pg_catalog.clock_timestamp(), 'running', 0,
          pg_catalog.jsonb_build_object('trigger', p_trigger))
  returning id, started_at into v_job_id, v_started;
  commit;

  begin
    perform pg_catalog.set_config('overdue.job_id', v_job_id::text, true);
    v_as_of := pg_catalog.clock_timestamp();
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'agency_id', r.agency_id, 'updated_count', r.updated_count, 'transitions', r.transitions)
             order by r.agency_id), '[]'::jsonb),
           coalesce(pg_catalog.sum(r.updated_count), 0)::integer
      into v_agencies, v_total
      from public.update_installment_statuses(v_as_of) r;

    update public.jobs_log j
       set status = 'success',
           completed_at = pg_catalog.clock_timestamp(),
           records_updated = v_total,
           metadata = coalesce(j.metadata, '{}'::jsonb) || pg_catalog.jsonb_build_object(
             'trigger', p_trigger,
             'attempts', 1,
             -- The same spelling as JavaScript's toISOString(), which the TypeScript runner writes.
             'asOf', pg_catalog.to_char(v_as_of at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
             'durationMs', pg_catalog.round(extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000)::bigint,
             'agencies', v_agencies,
             'attemptErrors', '[]'::jsonb)
     where j.id = v_job_id;
  exception when others then
    get stacked diagnostics v_message = message_text, v_sqlstate = returned_sqlstate, v_context = pg_exception_context;
    v_failed := true;
  end;

  if v_failed then
    update public.jobs_log j
       set status = 'failed',
           completed_at = pg_catalog.clock_timestamp(),
           error_message = v_message,
           metadata = coalesce(j.metadata, '{}'::jsonb) || pg_catalog.jsonb_build_object(
             'trigger', p_trigger,
             'code', v_sqlstate,
             'stack', v_context,
             'attempts', pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
               'attempt', 1, 'at', pg_catalog.clock_timestamp(), 'error', v_message,
               'code', v_sqlstate, 'transient', v_sqlstate ~ '^(08|40001|40P01|55P03|57P0[123]|53300)')),
             'durationMs', pg_catalog.round(extract(epoch from pg_catalog.clock_timestamp() - v_started) * 1000)::bigint)
     where j.id = v_job_id;
  end if;
  commit;

  perform pg_catalog.pg_advisory_unlock(c_lock_key);
  if v_failed then
    -- Re-raised after the 'failed' row is committed, so cron.job_run_details shows it too.
    raise exception '% failed (jobs_log %): %', c_job_name, v_job_id, v_message
      using errcode = v_sqlstate;
  end if;
end
$$;

comment on procedure public.run_update_installment_statuses_job(text) is
  'The overdue job inside the database (pg_cron without pg_net): same lock, jobs_log lifecycle and metadata as the TypeScript runner. CALL it at top level.';

revoke all on procedure public.run_update_installment_statuses_job(text) from public, anon, authenticated;
grant execute on procedure public.run_update_installment_statuses_job(text) to service_role;

-- ---------------------------------------------------------------------------------------------
-- Run-log volume.
-- ---------------------------------------------------------------------------------------------
-- A check every minute writes 1,440 rows a day; almost all of them changed nothing. Those are
-- worth keeping for a while (they show the job is alive) but not forever. Deleted: successful
-- runs of p_job_name that changed no record and started before now() - p_keep. Never deleted:
-- failed runs, runs that changed data, running rows, and the latest success (the dead-man's
-- switch, job_health(), reads it).
create or replace function public.prune_jobs_log(
    p_keep interval default interval '7 days',
    p_job_name text default 'update-installment-statuses')
  returns integer
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_deleted integer;
begin
  if p_keep is null or p_keep < interval '1 hour' then
    raise exception 'invalid retention %: keep at least 1 hour of runs', coalesce(p_keep::text, 'NULL')
      using errcode = '22023';
  end if;

  with latest_success as (
    select j.id
      from public.jobs_log j
     where j.job_name = p_job_name and j.status = 'success'
     order by j.started_at desc
     limit 1
  ), deleted as (
    delete from public.jobs_log j
     where j.job_name = p_job_name
       and j.status = 'success'
       and coalesce(j.records_updated, 0) = 0
       and j.started_at < now() - p_keep
       and j.id not in (select id from latest_success)
    returning 1
  )
  select count(*)::integer into v_deleted from deleted;
  return v_deleted;
end
$$;

comment on function public.prune_jobs_log(interval, text) is
  'Deletes successful runs that changed nothing and are older than p_keep; keeps failures, runs that changed data and the latest success.';

revoke all on function public.prune_jobs_log(interval, text) from public, anon, authenticated;
grant execute on function public.prune_jobs_log(interval, text) to service_role;

-- ---------------------------------------------------------------------------------------------
-- The next cutoff instant per agency (`npx overdue next`, and a wake-up time for schedulers).
-- ---------------------------------------------------------------------------------------------
-- For each agency, the earliest cutoff instant c >= p_as_of: installments due on due_date are
-- still pending at p_as_of and flip at the first run after c. The instant is computed exactly as
-- the rule computes it, (due_date + cutoff) AT TIME ZONE zone, so on DST days it is the instant
-- PostgreSQL picks (a cutoff inside a spring-forward gap lands an hour later on the wall
-- clock: cutoff_local shows the wall-clock time at that instant). Candidate dates around the
-- local date cover zones that skipped or repeated a whole date.
create or replace function public.next_cutoff_instants(p_as_of timestamptz default now())
  returns table (
    agency_id            uuid,
    agency_name          text,
    timezone             text,
    overdue_cutoff_time  time,
    due_date             date,
    cutoff_at            timestamptz,
    cutoff_local         timestamp,
    pending_due          bigint)
  language sql
  stable
  security definer
  set search_path = pg_catalog, pg_temp
as $$
  select a.id, a.name, a.timezone, a.overdue_cutoff_time,
         n.due_date, n.cutoff_at, n.cutoff_at at time zone a.timezone,
         -- One probe of installments_overdue_candidates_idx per agency.
         (select count(*)
            from public.installments i
           where i.agency_id = a.id and i.status = 'pending' and i.plan_active
             and i.student_due_date = n.due_date)
    from public.agencies a
    cross join lateral (
      select d.due_date, (d.due_date + a.overdue_cutoff_time) at time zone a.timezone as cutoff_at
        from (values (-1), (0), (1), (2)) as k(days),
             lateral (select (p_as_of at time zone a.timezone)::date + k.days as due_date) d
       where (d.due_date + a.overdue_cutoff_time) at time zone a.timezone >= p_as_of
       order by 2, 1
       limit 1
    ) n
   order by n.cutoff_at, a.name, a.id
$$;

comment on function public.next_cutoff_instants(timestamptz) is
  'Per agency: the next cutoff instant at or after p_as_of, the due date it belongs to, the local wall-clock time and how many pending installments are due that date.';

revoke all on function public.next_cutoff_instants(timestamptz) from public, anon, authenticated;
grant execute on function public.next_cutoff_instants(timestamptz) to service_role;

-- ---------------------------------------------------------------------------------------------
-- pg_cron: which jobs, with which commands.
-- ---------------------------------------------------------------------------------------------
-- pg_cron 1.4 accepts five-field expressions and "N seconds"... except that it rejects the
-- latter, and silently runs a six-field expression every 10 minutes. So only five plain fields
-- are let through: numbers, *, ranges, lists and steps, within each field's bounds.
create or replace function public.assert_cron_schedule(p_schedule text)
  returns text
  language plpgsql
  immutable
  set search_path = pg_catalog
as $$
declare
  v_schedule text := btrim(regexp_replace(coalesce(p_schedule, ''), '\s+', ' ', 'g'));
  v_fields   text[];
  v_names    text[] := array['minute', 'hour', 'day of month', 'month', 'day of week'];
  v_low      int[]  := array[0, 0, 1, 1, 0];
  v_high     int[]  := array[59, 23, 31, 12, 7];
  v_number   text;
begin
  if v_schedule ~* 'second' then
    raise exception 'invalid cron schedule "%": "N seconds" schedules are refused (pg_cron 1.4 rejects them); use a five-field expression such as "* * * * *"', p_schedule
      using errcode = '22023';
  end if;
  v_fields := string_to_array(v_schedule, ' ');
  if coalesce(array_length(v_fields, 1), 0) <> 5 then
    raise exception 'invalid cron schedule "%": expected five fields (minute hour day-of-month month day-of-week), got %', p_schedule, coalesce(array_length(v_fields, 1), 0)
      using errcode = '22023',
            hint = 'Six-field (seconds) expressions are refused: pg_cron 1.4 silently runs them every 10 minutes.';
  end if;
  for i in 1..5 loop
    if v_fields[i] !~ '^(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?(,(\*|[0-9]+(-[0-9]+)?)(/[0-9]+)?)*$' then
      raise exception 'invalid cron schedule "%": % field "%" is not a number, *, range, list or step', p_schedule, v_names[i], v_fields[i]
        using errcode = '22023';
    end if;
    for v_number in select m[1] from regexp_matches(regexp_replace(v_fields[i], '/[0-9]+', '', 'g'), '([0-9]+)', 'g') as m loop
      if v_number::int not between v_low[i] and v_high[i] then
        raise exception 'invalid cron schedule "%": % % is outside %-%', p_schedule, v_names[i], v_number, v_low[i], v_high[i]
          using errcode = '22023';
      end if;
    end loop;
    for v_number in select m[1] from regexp_matches(v_fields[i], '/([0-9]+)', 'g') as m loop
      if v_number::int = 0 then
        raise exception 'invalid cron schedule "%": step /0 in the % field', p_schedule, v_names[i]
          using errcode = '22023';
      end if;
    end loop;
  end loop;
  return v_schedule;
end
$$;

grant execute on function public.assert_cron_schedule(text) to public;

-- The jobs this project schedules, and the SQL each one runs in the application database.
--   sql  mode: CALL the procedure above (plain PostgreSQL with pg_cron, no pg_net).
--   http mode: POST to the edge function with pg_net, the API key read from Vault at run time
--              (hosted Supabase does not allow ALTER DATABASE … SET for a settings-based key).
--              The project URL is configuration: given here (e.g. SUPABASE_URL), or, when not
--              given, read at run time from the Vault secret 'project_url'.
-- p_mode null picks http when pg_net's net.http_post exists here, sql otherwise.
create or replace function public.overdue_cron_jobs(
    p_mode               text    default null,
    p_project_url        text    default null,
    p_secret_name        text    default 'update_installment_statuses_key',
    p_timeout_ms         integer default 10000,
    p_frequent_schedule  text    default '* * * * *',
    p_daily_schedule     text    default '0 7 * * *',
    p_prune_schedule     text    default '30 7 * * *')
  returns table (jobname text, schedule text, command text)
  language plpgsql
  stable
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_mode     text := lower(btrim(coalesce(p_mode, '')));
  v_url      text := rtrim(btrim(coalesce(p_project_url, '')), '/');
  v_url_sql  text;
  v_command  text;
begin
  if v_mode = '' then
    v_mode := case when to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is not null
                   then 'http' else 'sql' end;
  end if;

  if v_mode = 'sql' then
    v_command := 'CALL public.run_update_installment_statuses_job(''pg_cron'')';
  elsif v_mode = 'http' then
    if to_regprocedure('net.http_post(text, jsonb, jsonb, jsonb, integer)') is null then
      raise exception 'http mode needs pg_net (net.http_post) in database %, and it is not installed', current_database()
        using errcode = '55000',
              hint = 'On Supabase: create extension pg_net. On plain PostgreSQL use --mode sql.';
    end if;
    if to_regclass('vault.decrypted_secrets') is null then
      raise exception 'http mode reads the API key from Vault (vault.decrypted_secrets), which is not available in database %', current_database()
        using errcode = '55000',
              hint = 'On Supabase Vault is built in; elsewhere use --mode sql.';
    end if;
    if p_secret_name is null or btrim(p_secret_name) = '' then
      raise exception 'the Vault secret name for the API key must not be empty' using errcode = '22023';
    end if;
    if not exists (select 1 from vault.decrypted_secrets s where s.name = p_secret_name) then
      raise exception 'Vault has no secret named "%" holding the function''s API key', p_secret_name
        using errcode = '22023',
              hint = format('select vault.create_secret(''<SUPABASE_FUNCTION_KEY>'', %L);', p_secret_name);
    end if;
    if v_url <> '' then
      if v_url !~ '^https?://[^/\s''"]+(/[^\s''"]*)?$' then
        raise exception 'invalid project URL "%": expected http(s)://host, e.g. https://<project-ref>.supabase.co', p_project_url
          using errcode = '22023';
      end if;
      v_url_sql := quote_literal(v_url);
    elsif exists (select 1 from vault.decrypted_secrets s where s.name = 'project_url') then
      v_url_sql := '(select decrypted_secret from vault.decrypted_secrets where name = ''project_url'')';
    else
      raise exception 'http mode needs the project URL: set SUPABASE_URL (or pass --project-url), or store it in Vault as the secret "project_url"'
        using errcode = '22023';
    end if;
    if p_timeout_ms is null or p_timeout_ms not between 1000 and 300000 then
      raise exception 'invalid timeout % ms: expected 1000 to 300000', p_timeout_ms using errcode = '22023';
    end if;
    v_command := format(
      'select net.http_post(url := %s || ''/functions/v1/update-installment-statuses'', '
      'headers := jsonb_build_object(''Content-Type'', ''application/json'', ''X-API-Key'', '
      '(select decrypted_secret from vault.decrypted_secrets where name = %L)), '
      'body := ''{}''::jsonb, timeout_milliseconds := %s)',
      v_url_sql, p_secret_name, p_timeout_ms);
  else
    raise exception 'invalid schedule mode "%": expected sql or http', p_mode using errcode = '22023';
  end if;

  jobname := 'update-installment-statuses-minutely';
  schedule := public.assert_cron_schedule(p_frequent_schedule);
  command := v_command;
  return next;

  jobname := 'update-installment-statuses-daily';
  schedule := public.assert_cron_schedule(p_daily_schedule);
  command := v_command;
  return next;

  jobname := 'prune-jobs-log-daily';
  schedule := public.assert_cron_schedule(p_prune_schedule);
  command := 'select public.prune_jobs_log()';
  return next;
end
$$;

comment on function public.overdue_cron_jobs(text, text, text, integer, text, text, text) is
  'The pg_cron jobs of this project (name, five-field schedule, command run in this database) for mode sql or http.';

revoke all on function public.overdue_cron_jobs(text, text, text, integer, text, text, text) from public, anon, authenticated;
grant execute on function public.overdue_cron_jobs(text, text, text, integer, text, text, text) to service_role;

create or replace function public.overdue_cron_job_names()
  returns text[]
  language sql
  immutable
  set search_path = pg_catalog
as $$
  select array['update-installment-statuses-minutely', 'update-installment-statuses-daily', 'prune-jobs-log-daily']
$$;

grant execute on function public.overdue_cron_job_names() to public;

-- ---------------------------------------------------------------------------------------------
-- pg_cron: the statements that install, show and remove them.
-- ---------------------------------------------------------------------------------------------
-- pg_cron lives in ONE database of the cluster (cron.database_name), often `postgres`, and
-- schedules jobs into others with cron.schedule_in_database. When that is this database (as on
-- Supabase) schedule_install() below runs these statements here. When it is another one, the
-- CLI (`npx overdue schedule install`) connects to it and runs the very same statements there —
-- which is why they are kept as text in one place rather than written twice. Parameters:
--   install: $1 jobs jsonb [{jobname, schedule, command}], $2 target database, $3 username
--   show:    $1 job names text[]
--   remove:  $1 job names text[]
-- Install updates an existing job of the same name (cron.alter_job) instead of adding a second
-- one; remove only unschedules jobs that exist, because pg_cron 1.4's cron.unschedule(name)
-- raises on a missing one.
create or replace function public.cron_statement(p_name text)
  returns text
  language plpgsql
  immutable
  set search_path = pg_catalog
as $$
begin
  case p_name
  when 'install' then return $sql$
    with wanted as (
      select w.jobname, w.schedule, w.command
        from jsonb_to_recordset($1::jsonb) as w(jobname text, schedule text, command text)
    ),
    updated as (
      select j.jobid, j.jobname::text, 'updated'::text as action,
             cron.alter_job(j.jobid, w.schedule, w.command, $2::text, $3::text, true) as done
        from cron.job j
        join wanted w on w.jobname = j.jobname
    ),
    created as (
      select cron.schedule_in_database(w.jobname, w.schedule, w.command, $2::text, $3::text, true) as jobid,
             w.jobname, 'created'::text as action
        from wanted w
       where not exists (select 1 from cron.job j where j.jobname = w.jobname)
    )
    select jobid, jobname, action from updated
    union all
    select jobid, jobname, action from created
    order by jobname
  $sql$;
  when 'show' then return $sql$
    select j.jobid, j.jobname::text, j.schedule, j.command, j.database, j.username, j.active,
           r.status as last_status, r.start_time as last_start, r.end_time as last_end,
           r.return_message as last_message
      from cron.job j
      left join lateral (
        select d.status, d.start_time, d.end_time, d.return_message
          from cron.job_run_details d
         where d.jobid = j.jobid
         order by d.runid desc
         limit 1
      ) r on true
     where j.jobname = any($1::text[])
     order by j.jobname, j.jobid
  $sql$;
  when 'remove' then return $sql$
    select j.jobid, j.jobname::text, cron.unschedule(j.jobid) as removed
      from cron.job j
     where j.jobname = any($1::text[])
     order by j.jobname, j.jobid
  $sql$;
  else
    raise exception 'unknown cron statement "%": expected install, show or remove', p_name using errcode = '22023';
  end case;
end
$$;

grant execute on function public.cron_statement(text) to public;

-- Raises unless pg_cron is installed in this very database; says where it is instead.
create or replace function public.assert_pg_cron_here()
  returns void
  language plpgsql
  stable
  set search_path = pg_catalog
as $$
declare
  v_cron_db text := current_setting('cron.database_name', true);
begin
  if to_regclass('cron.job') is not null then
    return;
  end if;
  if v_cron_db is null or v_cron_db = '' then
    raise exception 'pg_cron is not loaded on this server, so nothing can be scheduled in the database'
      using errcode = '55000',
            hint = 'Load pg_cron (shared_preload_libraries, cron.database_name) or let the Node service''s built-in scheduler run the job (npm start).';
  end if;
  raise exception 'pg_cron lives in database "%" (cron.database_name), not in "%"', v_cron_db, current_database()
    using errcode = '55000',
          hint = format('Run `npx overdue schedule install` with DATABASE_URL pointing at %s: it connects to database %s and schedules the jobs into %s with cron.schedule_in_database.',
                        current_database(), v_cron_db, current_database());
end
$$;

-- The SQL-editor way (Supabase, or any database that is its cluster's cron.database_name):
-- select * from public.schedule_install();             -- mode picked automatically
-- select * from public.schedule_install('http', 'https://<ref>.supabase.co');
create or replace function public.schedule_install(
    p_mode               text    default null,
    p_project_url        text    default null,
    p_secret_name        text    default 'update_installment_statuses_key',
    p_timeout_ms         integer default 10000,
    p_frequent_schedule  text    default '* * * * *',
    p_daily_schedule     text    default '0 7 * * *',
    p_prune_schedule     text    default '30 7 * * *')
  returns table (jobid bigint, jobname text, action text)
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
declare
  v_jobs jsonb;
begin
  perform public.assert_pg_cron_here();
  select jsonb_agg(jsonb_build_object('jobname', j.jobname, 'schedule', j.schedule, 'command', j.command))
    into v_jobs
    from public.overdue_cron_jobs(p_mode, p_project_url, p_secret_name, p_timeout_ms,
                                  p_frequent_schedule, p_daily_schedule, p_prune_schedule) j;
  return query execute public.cron_statement('install') using v_jobs, current_database(), current_user::text;
end
$$;

create or replace function public.schedule_show()
  returns table (jobid bigint, jobname text, schedule text, command text, database text, username text,
                 active boolean, last_status text, last_start timestamptz, last_end timestamptz, last_message text)
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform public.assert_pg_cron_here();
  return query execute public.cron_statement('show') using public.overdue_cron_job_names();
end
$$;

create or replace function public.schedule_remove()
  returns table (jobid bigint, jobname text, removed boolean)
  language plpgsql
  security definer
  set search_path = pg_catalog, pg_temp
as $$
begin
  perform public.assert_pg_cron_here();
  return query execute public.cron_statement('remove') using public.overdue_cron_job_names();
end
$$;

revoke all on function public.assert_pg_cron_here() from public, anon, authenticated;
revoke all on function public.schedule_install(text, text, text, integer, text, text, text) from public, anon, authenticated;
revoke all on function public.schedule_show() from public, anon, authenticated;
revoke all on function public.schedule_remove() from public, anon, authenticated;
grant execute on function public.assert_pg_cron_here() to service_role;
grant execute on function public.schedule_install(text, text, text, integer, text, text, text) to service_role;
grant execute on function public.schedule_show() to service_role;
grant execute on function public.schedule_remove() to service_role;
