-- Tenant isolation and privileges (issue 2 §3 "Row level security", §4 EXECUTE grants).
--
-- Every identity is taken the way PostgREST takes it: inside the transaction, the JWT claims go
-- into request.jwt.claims (set_config(..., true)) and the role is switched with SET LOCAL ROLE.
-- auth.uid() is the claims' `sub`; a member is a row in public.users with that id; a platform
-- admin carries app_metadata.platform_admin = true. Two agencies, A and B, with an admin and a
-- user in A and an admin in B.
--
-- Runs under `supabase test db` and under pg_prove (scripts/pgtap.sh); everything is rolled back.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap;
select plan(71);

-- ---------------------------------------------------------------------------------------------
-- Fixtures (as the migration owner)
-- ---------------------------------------------------------------------------------------------
insert into public.agencies (id, name, timezone) values
  ('aaaaaaaa-0000-0000-0000-000000000000', 'Agency A', 'Australia/Brisbane'),
  ('bbbbbbbb-0000-0000-0000-000000000000', 'Agency B', 'America/Los_Angeles');
insert into public.users (id, agency_id, role) values
  ('aaaaaaaa-0000-0000-0000-0000000000ad', 'aaaaaaaa-0000-0000-0000-000000000000', 'agency_admin'),
  ('aaaaaaaa-0000-0000-0000-0000000000c0', 'aaaaaaaa-0000-0000-0000-000000000000', 'agency_user'),
  ('bbbbbbbb-0000-0000-0000-0000000000ad', 'bbbbbbbb-0000-0000-0000-000000000000', 'agency_admin');
insert into public.payment_plans (id, agency_id) values
  ('aaaaaaaa-0000-0000-0001-000000000000', 'aaaaaaaa-0000-0000-0000-000000000000'),
  ('bbbbbbbb-0000-0000-0001-000000000000', 'bbbbbbbb-0000-0000-0000-000000000000');
insert into public.installments (id, payment_plan_id, agency_id, amount, student_due_date) values
  ('aaaaaaaa-0000-0000-0002-000000000000', 'aaaaaaaa-0000-0000-0001-000000000000', 'aaaaaaaa-0000-0000-0000-000000000000', 100, '2024-01-10'),
  ('bbbbbbbb-0000-0000-0002-000000000000', 'bbbbbbbb-0000-0000-0001-000000000000', 'bbbbbbbb-0000-0000-0000-000000000000', 200, '2024-01-10');
-- One real audit row per agency, written by the status function itself.
select * from public.update_installment_statuses('2024-02-01T00:00:00Z');
insert into public.jobs_log (job_name, started_at, status) values ('update-installment-statuses', now(), 'success');

-- ---------------------------------------------------------------------------------------------
-- Privileges in the catalog
-- ---------------------------------------------------------------------------------------------
select is_empty(
  $$select c.relname::text from pg_catalog.pg_class c
     where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
       and pg_catalog.has_table_privilege('anon', c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE')
       -- extensions' own objects (pgTAP's views live in public here) are not ours
       and not exists (select 1 from pg_catalog.pg_depend d
                        where d.classid = 'pg_catalog.pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')$$,
  'anon has no privilege on any of our tables or views in public'
);
select function_privs_are('public', 'update_installment_statuses', array['timestamp with time zone'], 'anon', array[]::text[],
  'anon cannot EXECUTE update_installment_statuses');
select function_privs_are('public', 'update_installment_statuses', array['timestamp with time zone'], 'authenticated', array[]::text[],
  'authenticated cannot EXECUTE update_installment_statuses');
select function_privs_are('public', 'update_installment_statuses', array['timestamp with time zone'], 'service_role', array['EXECUTE'],
  'service_role can EXECUTE update_installment_statuses');
select function_privs_are('public', 'preview_installment_status_changes', array['timestamp with time zone', 'uuid'], 'anon', array[]::text[],
  'anon cannot EXECUTE preview_installment_status_changes');
select function_privs_are('public', 'preview_installment_status_changes', array['timestamp with time zone', 'uuid'], 'authenticated', array[]::text[],
  'authenticated cannot EXECUTE preview_installment_status_changes');
select function_privs_are('public', 'preview_installment_status_changes', array['timestamp with time zone', 'uuid'], 'service_role', array['EXECUTE'],
  'service_role can EXECUTE preview_installment_status_changes');
select is_empty(
  $$select p.oid::regprocedure::text
      from pg_catalog.pg_proc p, lateral pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
     where p.oid in ('public.update_installment_statuses(timestamptz)'::regprocedure,
                     'public.preview_installment_status_changes(timestamptz, uuid)'::regprocedure)
       and a.grantee = 0 and a.privilege_type = 'EXECUTE'$$,
  'PUBLIC has no EXECUTE on the status functions'
);
-- The flip itself (migration 20251113000700) runs only inside update_installment_statuses, as
-- its owner: nobody else, not even service_role, can flip rows around the run log and its lock.
select is_empty(
  $$select p.oid::regprocedure::text || ' to ' || coalesce(r.rolname, 'PUBLIC')
      from pg_catalog.pg_proc p
      cross join lateral pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
      left join pg_catalog.pg_roles r on r.oid = a.grantee
     where p.oid in ('public.flip_overdue_installments(timestamptz, uuid)'::regprocedure,
                     'public.flip_overdue_installments_by_index(timestamptz, uuid)'::regprocedure,
                     'public.flip_overdue_installments_in_one_pass(timestamptz, uuid)'::regprocedure)
       and a.privilege_type = 'EXECUTE' and a.grantee <> p.proowner$$,
  'the flip functions are executable by their owner only'
);
select is_empty(
  $$select p.oid::regprocedure::text from pg_catalog.pg_proc p
     where p.oid in ('public.overdue_bounds_at(timestamptz)'::regprocedure,
                     'public.installment_is_overdue(text, boolean, date, date)'::regprocedure,
                     'public.overdue_installments_at(timestamptz)'::regprocedure,
                     'public.overdue_one_pass_threshold()'::regprocedure)
       and (pg_catalog.has_function_privilege('anon', p.oid, 'EXECUTE')
            or pg_catalog.has_function_privilege('authenticated', p.oid, 'EXECUTE'))$$,
  'anon and authenticated cannot EXECUTE the rule or the threshold'
);

-- ---------------------------------------------------------------------------------------------
-- anon sees nothing and runs nothing
-- ---------------------------------------------------------------------------------------------
-- Even carrying a member's sub: anon is anon.
select set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-0000-0000-0000000000ad","role":"anon"}', true);
set local role anon;
select throws_ok(format('select * from public.%I', t), '42501', null, format('anon cannot read %s', t))
  from unnest(array['agencies', 'payment_plans', 'installments', 'users', 'audit_logs', 'jobs_log']) as t;
select throws_ok($$select * from public.update_installment_statuses()$$, '42501', null,
  'anon cannot run update_installment_statuses');
select throws_ok($$select * from public.preview_installment_status_changes()$$, '42501', null,
  'anon cannot run preview_installment_status_changes');
reset role;

-- ---------------------------------------------------------------------------------------------
-- A member (agency_user) of A
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-0000-0000-0000000000c0","role":"authenticated"}', true);
set local role authenticated;

select results_eq($$select id from public.agencies$$,
  $$values ('aaaaaaaa-0000-0000-0000-000000000000'::uuid)$$, 'a member of A sees only agency A');
select results_eq($$select id from public.payment_plans$$,
  $$values ('aaaaaaaa-0000-0000-0001-000000000000'::uuid)$$, 'a member of A sees only A''s payment plans');
select results_eq($$select id from public.installments$$,
  $$values ('aaaaaaaa-0000-0000-0002-000000000000'::uuid)$$, 'a member of A sees only A''s installments');
select results_eq($$select installment_id from public.audit_logs$$,
  $$values ('aaaaaaaa-0000-0000-0002-000000000000'::uuid)$$, 'a member of A sees only A''s audit rows');
select results_eq($$select id from public.users order by id$$,
  $$values ('aaaaaaaa-0000-0000-0000-0000000000ad'::uuid), ('aaaaaaaa-0000-0000-0000-0000000000c0'::uuid)$$,
  'a member of A sees only A''s members');
select is_empty($$select * from public.jobs_log$$, 'a member without the platform admin claim sees no jobs_log rows');

-- Writes aimed at B silently match nothing (RLS hides B's rows) ...
with u as (update public.installments set status = 'paid' where id = 'bbbbbbbb-0000-0000-0002-000000000000' returning 1)
select is(count(*)::int, 0, 'a member of A cannot update B''s installment') from u;
with d as (delete from public.installments where id = 'bbbbbbbb-0000-0000-0002-000000000000' returning 1)
select is(count(*)::int, 0, 'a member of A cannot delete B''s installment') from d;
with u as (update public.payment_plans set status = 'cancelled' where id = 'bbbbbbbb-0000-0000-0001-000000000000' returning 1)
select is(count(*)::int, 0, 'a member of A cannot update B''s payment plan') from u;
with d as (delete from public.payment_plans where id = 'bbbbbbbb-0000-0000-0001-000000000000' returning 1)
select is(count(*)::int, 0, 'a member of A cannot delete B''s payment plan') from d;
with u as (update public.agencies set name = 'taken over' where id = 'bbbbbbbb-0000-0000-0000-000000000000' returning 1)
select is(count(*)::int, 0, 'a member of A cannot update agency B') from u;
-- ... and writes that would create or move rows into B are refused.
select throws_ok(
  $$insert into public.payment_plans (agency_id) values ('bbbbbbbb-0000-0000-0000-000000000000')$$,
  '42501', null, 'a member of A cannot create a payment plan in B');
select throws_ok(
  $$update public.payment_plans set agency_id = 'bbbbbbbb-0000-0000-0000-000000000000'
     where id = 'aaaaaaaa-0000-0000-0001-000000000000'$$,
  '42501', null, 'a member of A cannot move A''s payment plan to B');
select throws_ok(
  $$insert into public.installments (payment_plan_id, agency_id, amount, student_due_date)
    values ('bbbbbbbb-0000-0000-0001-000000000000', 'bbbbbbbb-0000-0000-0000-000000000000', 1, '2024-01-01')$$,
  null, null, 'a member of A cannot add an installment to B''s plan');
select throws_ok(
  $$update public.installments set agency_id = 'bbbbbbbb-0000-0000-0000-000000000000'
     where id = 'aaaaaaaa-0000-0000-0002-000000000000'$$,
  null, null, 'a member of A cannot move A''s installment to B');
-- The audit trail and the memberships are read-only for members.
select throws_ok(
  $$insert into public.audit_logs (agency_id, installment_id, old_status, new_status)
    values ('aaaaaaaa-0000-0000-0000-000000000000', 'aaaaaaaa-0000-0000-0002-000000000000', 'pending', 'paid')$$,
  '42501', null, 'a member cannot write audit rows');
select throws_ok($$update public.audit_logs set new_status = 'paid'$$, '42501', null, 'a member cannot alter audit rows');
select throws_ok($$delete from public.audit_logs$$, '42501', null, 'a member cannot delete audit rows');
select throws_ok(
  $$update public.users set role = 'agency_admin' where id = 'aaaaaaaa-0000-0000-0000-0000000000c0'$$,
  '42501', null, 'a member cannot promote themselves to agency_admin');
select throws_ok(
  $$insert into public.users (id, agency_id, role)
    values ('aaaaaaaa-0000-0000-0000-0000000000c0', 'bbbbbbbb-0000-0000-0000-000000000000', 'agency_admin')$$,
  '42501', null, 'a member cannot add a membership');
-- agency_user cannot change the agency's settings.
with u as (update public.agencies set overdue_cutoff_time = '09:00' where id = 'aaaaaaaa-0000-0000-0000-000000000000' returning 1)
select is(count(*)::int, 0, 'an agency_user cannot change their own agency''s settings') from u;
-- Neither the job nor its preview.
select throws_ok($$select * from public.update_installment_statuses()$$, '42501', null,
  'authenticated cannot run update_installment_statuses');
select throws_ok($$select * from public.preview_installment_status_changes()$$, '42501', null,
  'authenticated cannot run preview_installment_status_changes');
select throws_ok($$insert into public.jobs_log (job_name, started_at) values ('forged', now())$$, '42501', null,
  'authenticated cannot write jobs_log');
-- The member's own agency is theirs to work in.
with u as (update public.installments set status = 'paid' where id = 'aaaaaaaa-0000-0000-0002-000000000000' returning 1)
select is(count(*)::int, 1, 'a member of A can update A''s installment') from u;
select lives_ok(
  $$insert into public.payment_plans (agency_id) values ('aaaaaaaa-0000-0000-0000-000000000000')$$,
  'a member of A can create a payment plan in A');
reset role;

-- Nothing of B changed.
select results_eq(
  $$select a.name, a.overdue_cutoff_time, p.status, i.status, i.agency_id
      from public.agencies a
      join public.payment_plans p on p.agency_id = a.id
      join public.installments i on i.payment_plan_id = p.id
     where a.id = 'bbbbbbbb-0000-0000-0000-000000000000'$$,
  $$values ('Agency B', '17:00'::time, 'active', 'overdue', 'bbbbbbbb-0000-0000-0000-000000000000'::uuid)$$,
  'after all that, agency B, its plan and its installment are unchanged');
select is((select overdue_cutoff_time from public.agencies where id = 'aaaaaaaa-0000-0000-0000-000000000000'),
  '17:00'::time, 'agency A''s settings are unchanged by its agency_user');

-- ---------------------------------------------------------------------------------------------
-- An agency_admin of A
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"sub":"aaaaaaaa-0000-0000-0000-0000000000ad","role":"authenticated"}', true);
set local role authenticated;
with u as (update public.agencies set overdue_cutoff_time = '18:30', timezone = 'asia/tokyo'
            where id = 'aaaaaaaa-0000-0000-0000-000000000000' returning 1)
select is(count(*)::int, 1, 'an agency_admin can change their own agency''s settings') from u;
with u as (update public.agencies set overdue_cutoff_time = '06:00' where id = 'bbbbbbbb-0000-0000-0000-000000000000' returning 1)
select is(count(*)::int, 0, 'an agency_admin of A cannot change agency B''s settings') from u;
select throws_ok(
  $$update public.agencies set id = gen_random_uuid() where id = 'aaaaaaaa-0000-0000-0000-000000000000'$$,
  '42501', null, 'an agency_admin cannot change the agency id');
select throws_ok(
  $$update public.agencies set timezone = 'Mars/Olympus' where id = 'aaaaaaaa-0000-0000-0000-000000000000'$$,
  '22023', 'invalid time zone "Mars/Olympus": not a time zone this server knows',
  'an agency_admin cannot set a time zone the server does not know');
select is_empty($$select * from public.jobs_log$$, 'an agency_admin without the platform admin claim sees no jobs_log rows');
reset role;
select results_eq(
  $$select id, overdue_cutoff_time, timezone from public.agencies order by id$$,
  $$values ('aaaaaaaa-0000-0000-0000-000000000000'::uuid, '18:30'::time, 'Asia/Tokyo'),
           ('bbbbbbbb-0000-0000-0000-000000000000'::uuid, '17:00'::time, 'America/Los_Angeles')$$,
  'the admin''s change landed on A (zone canonicalised) and B is untouched');

-- ---------------------------------------------------------------------------------------------
-- The admin of B sees B only
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"sub":"bbbbbbbb-0000-0000-0000-0000000000ad","role":"authenticated"}', true);
set local role authenticated;
select results_eq($$select id from public.agencies$$,
  $$values ('bbbbbbbb-0000-0000-0000-000000000000'::uuid)$$, 'a member of B sees only agency B');
select results_eq($$select agency_id from public.installments$$,
  $$values ('bbbbbbbb-0000-0000-0000-000000000000'::uuid)$$, 'a member of B sees only B''s installments');
select results_eq($$select installment_id from public.audit_logs$$,
  $$values ('bbbbbbbb-0000-0000-0002-000000000000'::uuid)$$, 'a member of B sees only B''s audit rows');
with u as (update public.installments set status = 'paid' where agency_id = 'aaaaaaaa-0000-0000-0000-000000000000' returning 1)
select is(count(*)::int, 0, 'a member of B cannot update A''s installments') from u;
reset role;

-- ---------------------------------------------------------------------------------------------
-- Signed in but not a member of any agency; and no claims at all
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"sub":"cccccccc-0000-0000-0000-000000000000","role":"authenticated"}', true);
set local role authenticated;
select is_empty(format('select * from public.%I', t), format('a signed-in non-member sees no %s', t))
  from unnest(array['agencies', 'payment_plans', 'installments', 'users', 'audit_logs', 'jobs_log']) as t;
reset role;
select set_config('request.jwt.claims', '', true);
set local role authenticated;
select is_empty($$select * from public.installments$$, 'authenticated without claims sees no installments');
reset role;

-- ---------------------------------------------------------------------------------------------
-- Platform administrators: app_metadata.platform_admin = true in the JWT
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims',
  '{"sub":"cccccccc-0000-0000-0000-000000000000","role":"authenticated","app_metadata":{"platform_admin":true}}', true);
set local role authenticated;
select results_eq($$select job_name from public.jobs_log$$,
  $$values ('update-installment-statuses'::text)$$, 'a platform admin reads jobs_log');
select throws_ok($$insert into public.jobs_log (job_name, started_at) values ('forged', now())$$, '42501', null,
  'a platform admin cannot write jobs_log (only service_role does)');
select throws_ok($$update public.jobs_log set status = 'failed'$$, '42501', null,
  'a platform admin cannot alter jobs_log');
reset role;
-- user_metadata is writable by the user on Supabase, so it must not grant anything.
select set_config('request.jwt.claims',
  '{"sub":"aaaaaaaa-0000-0000-0000-0000000000c0","role":"authenticated","user_metadata":{"platform_admin":true},"app_metadata":{"platform_admin":false}}', true);
set local role authenticated;
select is_empty($$select * from public.jobs_log$$,
  'platform_admin in user_metadata, or false in app_metadata, does not open jobs_log');
reset role;

-- ---------------------------------------------------------------------------------------------
-- service_role: the job
-- ---------------------------------------------------------------------------------------------
select set_config('request.jwt.claims', '{"role":"service_role"}', true);
set local role service_role;
select is((select count(*)::int from public.installments), 2, 'service_role sees every tenant''s installments');
select lives_ok($$select * from public.preview_installment_status_changes(now() + interval '1 day')$$,
  'service_role can run preview_installment_status_changes');
select lives_ok($$select * from public.update_installment_statuses()$$,
  'service_role can run update_installment_statuses');
select lives_ok(
  $$insert into public.jobs_log (job_name, started_at, status) values ('update-installment-statuses', now(), 'running')$$,
  'service_role writes jobs_log');
reset role;

select * from finish();
rollback;
