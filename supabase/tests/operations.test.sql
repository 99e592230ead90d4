-- Operations (issue 5): the alert tables, their RLS, one open incident per key, and the
-- dead-man's switch verdict job_health() / assert_job_healthy() that pg_cron can run without the
-- Node service. Behaviour end to end (alerts delivered, pages) is in test/alerts.test.ts and
-- test/operations-http.test.ts. Everything is rolled back.
begin;
set local client_min_messages = warning;
create extension if not exists pgtap;
select plan(20);

select has_table('public', t, format('table public.%s exists', t))
  from unnest(array['alert_incidents', 'alert_deliveries', 'job_watch']) as t;
select has_function('public', 'job_health', array['interval', 'text'], 'job_health(interval, text) exists');
select has_function('public', 'assert_job_healthy', array['interval', 'text'], 'assert_job_healthy(interval, text) exists');
select ok(not has_function_privilege('anon', 'public.job_health(interval, text)', 'execute'), 'anon cannot ask for the job health');

-- One open incident per key; a resolved one does not block the next.
insert into public.alert_incidents (incident_key, summary) values ('job-failed:t', 'first');
select throws_ok($$insert into public.alert_incidents (incident_key, summary) values ('job-failed:t', 'second')$$,
                 '23505', null, 'a second open incident with the same key is refused');
select lives_ok($$insert into public.alert_incidents (incident_key, summary) values ('job-failed:t', 'second')
                  on conflict (incident_key) where resolved_at is null do nothing$$,
                'the conditional insert the monitor uses is a no-op while one is open');
update public.alert_incidents set resolved_at = now() where incident_key = 'job-failed:t';
select lives_ok($$insert into public.alert_incidents (incident_key, summary) values ('job-failed:t', 'next')$$,
                'after resolution a new incident opens');
insert into public.alert_deliveries (incident_id, kind, channel, status, attempts, subject, error)
select id, 'alert', 'webhook', 'failed', 4, 'next', 'HTTP 503' from public.alert_incidents where summary = 'next';

-- The verdict. The install is watched from now: healthy before the first run.
update public.job_watch set watched_since = clock_timestamp() where job_name = 'update-installment-statuses';
delete from public.jobs_log where job_name = 'update-installment-statuses';
select ok((select healthy from public.job_health()), 'a fresh install is healthy until the limit passes');
update public.job_watch set watched_since = clock_timestamp() - interval '26 hours';
select ok(not (select healthy from public.job_health()), 'no run at all within 25 h of watching is unhealthy');
insert into public.jobs_log (job_name, status, started_at, completed_at)
values ('update-installment-statuses', 'success', now() - interval '26 hours', now() - interval '26 hours'),
       ('update-installment-statuses', 'failed', now() - interval '1 hour', now() - interval '1 hour');
update public.jobs_log set error_message = 'boom' where status = 'failed';
select is((select healthy from public.job_health()), false, 'last success 26 h ago: unhealthy');
select matches((select reason from public.job_health()), '^no successful run of update-installment-statuses for 1 day 02:', 'the reason says for how long');
select is((select last_failure_error from public.job_health()), 'boom', 'the last failure is reported');
select is((select healthy from public.job_health(interval '48 hours')), true, 'the limit is a parameter');
select throws_ok($$select public.assert_job_healthy()$$, 'P0001', null, 'assert_job_healthy raises when unhealthy (visible in cron.job_run_details)');
insert into public.jobs_log (job_name, status, started_at, completed_at) values ('update-installment-statuses', 'success', now(), now());
select lives_ok($$select public.assert_job_healthy()$$, 'and passes after a success');

-- RLS: platform admins read, agency members see nothing, nobody but service_role writes.
set local role authenticated;
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000001","role":"authenticated"}', true);
select is((select count(*) from public.alert_deliveries), 0::bigint, 'a non-admin sees no alert deliveries');
select set_config('request.jwt.claims', '{"sub":"00000000-0000-4000-8000-000000000002","role":"authenticated","app_metadata":{"platform_admin":true}}', true);
select is((select count(*) from public.alert_deliveries), 1::bigint, 'a platform admin sees them');
select throws_ok($$insert into public.alert_incidents (incident_key, summary) values ('x', 'y')$$, '42501', null,
                 'a platform admin cannot write incidents');
reset role;

select * from finish();
rollback;
