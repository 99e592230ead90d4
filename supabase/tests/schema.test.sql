-- The schema contract of issue 2 §3–§4: tables, contract columns, jobs_log exactly as the story
-- defines it, the indexes the job depends on, RLS switched on everywhere, and the shape and
-- privileges of the status functions. Behaviour (defaults in use, refusals, the rule) is tested
-- in test/*.test.ts; this file pins the shape so a migration cannot drift from the contract.
--
-- Runs under `supabase test db` and under pg_prove (scripts/pgtap.sh); everything is rolled back.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap;
select plan(89);

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------
select has_table('public', t, format('table public.%s exists', t))
  from unnest(array['agencies', 'payment_plans', 'installments', 'users', 'audit_logs', 'jobs_log']) as t;

-- Row level security on every table of the public schema, including tables added later.
select is_empty(
  $$select c.relname::text from pg_catalog.pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p') and not c.relrowsecurity$$,
  'row level security is enabled on every table in public'
);

-- ---------------------------------------------------------------------------------------------
-- agencies
-- ---------------------------------------------------------------------------------------------
select col_is_pk('public', 'agencies', 'id', 'agencies.id is the primary key');
select col_type_is('public', 'agencies', 'id', 'uuid', 'agencies.id is uuid');
select col_default_is('public', 'agencies', 'id', 'gen_random_uuid()', 'agencies.id defaults to gen_random_uuid()');
select col_type_is('public', 'agencies', 'name', 'text', 'agencies.name is text');
select col_not_null('public', 'agencies', 'name', 'agencies.name is not null');
select col_type_is('public', 'agencies', 'timezone', 'text', 'agencies.timezone is text');
select col_not_null('public', 'agencies', 'timezone', 'agencies.timezone is not null');
select col_default_is('public', 'agencies', 'timezone', 'Australia/Brisbane'::text, 'agencies.timezone defaults to Australia/Brisbane');
select col_type_is('public', 'agencies', 'overdue_cutoff_time', 'time without time zone', 'agencies.overdue_cutoff_time is time');
select col_not_null('public', 'agencies', 'overdue_cutoff_time', 'agencies.overdue_cutoff_time is not null');
select col_default_is('public', 'agencies', 'overdue_cutoff_time', '17:00:00'::time without time zone, 'agencies.overdue_cutoff_time defaults to 17:00');
select col_type_is('public', 'agencies', 'due_soon_threshold_days', 'integer', 'agencies.due_soon_threshold_days is int');
select col_not_null('public', 'agencies', 'due_soon_threshold_days', 'agencies.due_soon_threshold_days is not null');
select col_default_is('public', 'agencies', 'due_soon_threshold_days', 4, 'agencies.due_soon_threshold_days defaults to 4');
select has_column('public', 'agencies', 'created_at', 'agencies has created_at');
select has_column('public', 'agencies', 'updated_at', 'agencies has updated_at');

-- ---------------------------------------------------------------------------------------------
-- payment_plans
-- ---------------------------------------------------------------------------------------------
select col_is_pk('public', 'payment_plans', 'id', 'payment_plans.id is the primary key');
select col_type_is('public', 'payment_plans', 'id', 'uuid', 'payment_plans.id is uuid');
select col_has_default('public', 'payment_plans', 'id', 'payment_plans.id has a default');
select col_type_is('public', 'payment_plans', 'agency_id', 'uuid', 'payment_plans.agency_id is uuid');
select col_not_null('public', 'payment_plans', 'agency_id', 'payment_plans.agency_id is not null');
select fk_ok('public', 'payment_plans', 'agency_id', 'public', 'agencies', 'id', 'payment_plans.agency_id references agencies');
select col_type_is('public', 'payment_plans', 'status', 'text', 'payment_plans.status is text');
select col_default_is('public', 'payment_plans', 'status', 'active'::text, 'payment_plans.status defaults to active');

-- ---------------------------------------------------------------------------------------------
-- installments
-- ---------------------------------------------------------------------------------------------
select col_is_pk('public', 'installments', 'id', 'installments.id is the primary key');
select col_type_is('public', 'installments', 'id', 'uuid', 'installments.id is uuid');
select col_has_default('public', 'installments', 'id', 'installments.id has a default');
select col_type_is('public', 'installments', 'payment_plan_id', 'uuid', 'installments.payment_plan_id is uuid');
select col_not_null('public', 'installments', 'payment_plan_id', 'installments.payment_plan_id is not null');
select col_type_is('public', 'installments', 'agency_id', 'uuid', 'installments.agency_id is uuid');
select col_not_null('public', 'installments', 'agency_id', 'installments.agency_id is not null');
-- The database (not the application) forces agency_id to be the plan's: a composite foreign key.
select fk_ok('public', 'installments', array['payment_plan_id', 'agency_id'],
             'public', 'payment_plans', array['id', 'agency_id'],
             'installments (payment_plan_id, agency_id) references payment_plans (id, agency_id)');
select col_type_is('public', 'installments', 'amount', 'numeric(12,2)', 'installments.amount is numeric(12,2)');
select col_not_null('public', 'installments', 'amount', 'installments.amount is not null');
select col_type_is('public', 'installments', 'student_due_date', 'date', 'installments.student_due_date is date');
select col_not_null('public', 'installments', 'student_due_date', 'installments.student_due_date is not null');
select col_type_is('public', 'installments', 'college_due_date', 'date', 'installments.college_due_date is date');
select col_is_null('public', 'installments', 'college_due_date', 'installments.college_due_date is nullable');
select col_default_is('public', 'installments', 'status', 'pending'::text, 'installments.status defaults to pending');
select has_column('public', 'installments', 'created_at', 'installments has created_at');
select has_column('public', 'installments', 'updated_at', 'installments has updated_at');

-- The index a run with nothing to do reads: only rows that can still become overdue.
select is(
  (select indexdef from pg_catalog.pg_indexes
    where schemaname = 'public' and indexname = 'installments_overdue_candidates_idx'),
  'CREATE INDEX installments_overdue_candidates_idx ON public.installments USING btree (agency_id, student_due_date) WHERE ((status = ''pending''::text) AND plan_active)',
  'installments_overdue_candidates_idx is (agency_id, student_due_date) over pending rows of active plans'
);

-- ---------------------------------------------------------------------------------------------
-- users, audit_logs
-- ---------------------------------------------------------------------------------------------
select col_is_pk('public', 'users', 'id', 'users.id (the auth user id) is the primary key');
select col_type_is('public', 'users', 'agency_id', 'uuid', 'users.agency_id is uuid');
select col_type_is('public', 'users', 'role', 'text', 'users.role is text');

select has_column('public', 'audit_logs', c, format('audit_logs has %s', c))
  from unnest(array['agency_id', 'installment_id', 'old_status', 'new_status', 'actor_id', 'created_at']) as c;
select col_is_null('public', 'audit_logs', 'actor_id', 'audit_logs.actor_id is nullable (NULL = the job)');

-- ---------------------------------------------------------------------------------------------
-- jobs_log, exactly as the story defines it
-- ---------------------------------------------------------------------------------------------
select columns_are('public', 'jobs_log',
  array['id', 'job_name', 'started_at', 'completed_at', 'records_updated', 'status', 'error_message', 'metadata', 'created_at'],
  'jobs_log has exactly the story''s columns');
select col_is_pk('public', 'jobs_log', 'id', 'jobs_log.id is the primary key');
select col_type_is('public', 'jobs_log', 'id', 'uuid', 'jobs_log.id is uuid');
select col_type_is('public', 'jobs_log', 'job_name', 'text', 'jobs_log.job_name is text');
select col_not_null('public', 'jobs_log', 'job_name', 'jobs_log.job_name is not null');
select col_type_is('public', 'jobs_log', 'started_at', 'timestamp with time zone', 'jobs_log.started_at is timestamptz');
select col_not_null('public', 'jobs_log', 'started_at', 'jobs_log.started_at is not null');
select col_type_is('public', 'jobs_log', 'completed_at', 'timestamp with time zone', 'jobs_log.completed_at is timestamptz');
select col_is_null('public', 'jobs_log', 'completed_at', 'jobs_log.completed_at is nullable');
select col_type_is('public', 'jobs_log', 'records_updated', 'integer', 'jobs_log.records_updated is int');
select col_default_is('public', 'jobs_log', 'records_updated', 0, 'jobs_log.records_updated defaults to 0');
select col_type_is('public', 'jobs_log', 'status', 'text', 'jobs_log.status is text');
select col_type_is('public', 'jobs_log', 'error_message', 'text', 'jobs_log.error_message is text');
select col_type_is('public', 'jobs_log', 'metadata', 'jsonb', 'jobs_log.metadata is jsonb');
select col_type_is('public', 'jobs_log', 'created_at', 'timestamp with time zone', 'jobs_log.created_at is timestamptz');
select col_default_is('public', 'jobs_log', 'created_at', 'now()', 'jobs_log.created_at defaults to now()');

-- The status check: exactly running, success, failed.
select lives_ok(
  $$insert into public.jobs_log (job_name, started_at, status)
    values ('t', now(), 'running'), ('t', now(), 'success'), ('t', now(), 'failed')$$,
  'jobs_log.status accepts running, success and failed'
);
select throws_ok(
  $$insert into public.jobs_log (job_name, started_at, status) values ('t', now(), 'done')$$,
  '23514', null,
  'jobs_log.status refuses any other value'
);
select throws_ok(
  $$insert into public.jobs_log (job_name, started_at) values (null, now())$$,
  '23502', null,
  'jobs_log.job_name refuses null'
);

-- The two indexes, by definition (the story does not name them).
select isnt_empty(
  $$select 1 from pg_catalog.pg_indexes
     where schemaname = 'public' and tablename = 'jobs_log'
       and indexdef like '% USING btree (job_name, started_at DESC)'$$,
  'jobs_log has an index on (job_name, started_at desc)'
);
select isnt_empty(
  $$select 1 from pg_catalog.pg_indexes
     where schemaname = 'public' and tablename = 'jobs_log'
       and indexdef like '% WHERE (status = ''failed''::text)'$$,
  'jobs_log has a partial index on failed runs'
);

-- ---------------------------------------------------------------------------------------------
-- The status functions
-- ---------------------------------------------------------------------------------------------
select has_function('public', 'update_installment_statuses', array['timestamp with time zone'],
  'update_installment_statuses(timestamptz) exists');
select is(
  pg_catalog.pg_get_function_arguments('public.update_installment_statuses(timestamptz)'::regprocedure),
  'p_as_of timestamp with time zone DEFAULT now()',
  'update_installment_statuses takes p_as_of timestamptz default now()'
);
select is(
  pg_catalog.pg_get_function_result('public.update_installment_statuses(timestamptz)'::regprocedure),
  'TABLE(agency_id uuid, updated_count integer, transitions jsonb)',
  'update_installment_statuses returns table(agency_id uuid, updated_count integer, transitions jsonb)'
);
select is_definer('public', 'update_installment_statuses', array['timestamp with time zone'],
  'update_installment_statuses is SECURITY DEFINER');

select has_function('public', 'preview_installment_status_changes', array['timestamp with time zone', 'uuid'],
  'preview_installment_status_changes(timestamptz, uuid) exists');
select is(
  pg_catalog.pg_get_function_arguments('public.preview_installment_status_changes(timestamptz, uuid)'::regprocedure),
  'p_as_of timestamp with time zone DEFAULT now(), p_agency_id uuid DEFAULT NULL::uuid',
  'preview_installment_status_changes takes p_as_of default now(), p_agency_id default null'
);
select is(
  pg_catalog.pg_get_function_result('public.preview_installment_status_changes(timestamptz, uuid)'::regprocedure),
  'TABLE(agency_id uuid, updated_count integer, transitions jsonb)',
  'preview_installment_status_changes returns the same columns as the update'
);
-- Read-only: a STABLE function cannot write (PostgreSQL refuses writes in it).
select volatility_is('public', 'preview_installment_status_changes', array['timestamp with time zone', 'uuid'], 'stable',
  'preview_installment_status_changes is STABLE');

-- SECURITY DEFINER is only safe with a fixed search_path.
select is_empty(
  $$select p.oid::regprocedure::text from pg_catalog.pg_proc p
     where p.oid in ('public.update_installment_statuses(timestamptz)'::regprocedure,
                     'public.preview_installment_status_changes(timestamptz, uuid)'::regprocedure)
       and not exists (select 1 from unnest(p.proconfig) c where c like 'search_path=%')$$,
  'both status functions pin their search_path'
);

select * from finish();
rollback;
