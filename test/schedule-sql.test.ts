// The scheduling SQL: the in-database job (what pg_cron CALLs in sql mode), run-log pruning,
// the next cutoff instants, and the cron job definitions with their refusals.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { connect } from '../src/db/connect.ts';
import { JobRunner } from '../src/job/runner.ts';
import { nextCutoffs } from '../src/schedule/next-cutoffs.ts';

const db = await freshDatabase();
const LOCK = "hashtextextended('update-installment-statuses', 0)";

test('the in-database job flips due installments with the runner\'s jobs_log lifecycle and metadata', async () => {
  const a = await createAgency(db.sql, 'Procedure A', 'Australia/Perth');
  const b = await createAgency(db.sql, 'Procedure B', 'America/Los_Angeles');
  await addInstallments(db.sql, a, [daysAgo(2), daysAgo(1)]);
  await addInstallments(db.sql, b, [daysAgo(3)]);
  await addInstallments(db.sql, b, [daysAgo(30)], 'paid');

  await db.sql`call public.run_update_installment_statuses_job('pg_cron')`;
  const [run] = await db.sql`select * from jobs_log where metadata->>'trigger' = 'pg_cron'`;
  assert.equal(run!.status, 'success');
  assert.equal(run!.job_name, 'update-installment-statuses');
  assert.equal(run!.records_updated, 3);
  assert.ok(run!.completed_at >= run!.started_at);
  const m = run!.metadata;
  assert.equal(m.trigger, 'pg_cron');
  assert.equal(m.attempts, 1);
  assert.match(m.asOf, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.equal(typeof m.durationMs, 'number');
  const agencies = [...m.agencies].sort((x: { updated_count: number }, y: { updated_count: number }) => x.updated_count - y.updated_count);
  assert.deepEqual(agencies, [
    { agency_id: b.id, updated_count: 1, transitions: { pending_to_overdue: 1 } },
    { agency_id: a.id, updated_count: 2, transitions: { pending_to_overdue: 2 } },
  ]);
  // The same keys as a run of the TypeScript runner.
  await db.sql`update installments set status = 'pending' where agency_id = ${a.id} and status = 'overdue'`;
  const outcome = await new JobRunner(db.sql, { retryDelaysMs: [] }).run({ trigger: 'cli' });
  assert.equal(outcome.kind, 'success');
  const [tsRun] = await db.sql`select metadata from jobs_log where metadata->>'trigger' = 'cli'`;
  for (const key of Object.keys(tsRun!.metadata)) assert.ok(key in m, `metadata key ${key} missing from the in-database run`);
  // Audit rows point at the run.
  const [{ n }] = await db.sql`select count(*)::int as n from audit_logs where job_id = ${run!.id}`;
  assert.equal(n, 3);
  // The lock is released afterwards.
  const [{ free }] = await db.sql.unsafe(`select pg_try_advisory_lock(${LOCK}) as free`);
  assert.equal(free, true);
  await db.sql.unsafe(`select pg_advisory_unlock(${LOCK})`);
});

test('the running row is committed before the work, and a busy lock skips quietly', async () => {
  const holder = await db.sql.reserve();
  try {
    await holder.unsafe(`select pg_advisory_lock(${LOCK})`);
    const before = (await db.sql`select count(*)::int as n from jobs_log`)[0]!.n;
    await db.sql`call public.run_update_installment_statuses_job('pg_cron')`;
    assert.equal((await db.sql`select count(*)::int as n from jobs_log`)[0]!.n, before, 'a skipped run writes nothing');
    await holder.unsafe(`select pg_advisory_unlock(${LOCK})`);

    // Block the work on a row lock to look at the run while it is in progress.
    const a = await createAgency(db.sql, 'Slow Agency', 'Asia/Tokyo');
    const [id] = await addInstallments(db.sql, a, [daysAgo(4)]);
    await holder`begin`;
    await holder`select 1 from installments where id = ${id!} for update`;
    const other = connect(db.url, { max: 1 });
    const call = other`call public.run_update_installment_statuses_job('pg_cron')`.then(() => 'done');
    let running: { status: string }[] = [];
    for (let i = 0; i < 100 && running.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      running = await db.sql`select status from jobs_log where status = 'running'`;
    }
    assert.equal(running.length, 1, 'the running row is visible while the work waits');
    await holder`rollback`;
    assert.equal(await call, 'done');
    await other.end();
    assert.equal((await db.sql`select count(*)::int as n from jobs_log where status = 'running'`)[0]!.n, 0);
  } finally {
    holder.release();
  }
});

test('a failing run is recorded as failed with its SQLSTATE, changes nothing, and still raises for cron', async () => {
  const a = await createAgency(db.sql, 'Failing Agency', 'Europe/Paris');
  await addInstallments(db.sql, a, [daysAgo(6)]);
  // A permanent error inside the work: the audit table refuses inserts for the duration.
  await db.sql`alter table audit_logs add constraint audit_refuses check (new_status <> 'overdue') not valid`;
  try {
    await assert.rejects(db.sql`call public.run_update_installment_statuses_job('pg_cron')`, (e: Error & { code?: string }) => {
      assert.equal(e.code, '23514');
      assert.match(e.message, /update-installment-statuses failed \(jobs_log [0-9a-f-]+\)/);
      return true;
    });
  } finally {
    await db.sql`alter table audit_logs drop constraint audit_refuses`;
  }
  const [run] = await db.sql`select * from jobs_log where status = 'failed' order by started_at desc limit 1`;
  assert.match(run!.error_message, /audit_refuses/);
  assert.equal(run!.metadata.code, '23514');
  assert.equal(run!.metadata.trigger, 'pg_cron');
  assert.equal(run!.metadata.attempts[0].code, '23514');
  const [{ pending }] = await db.sql`select count(*)::int as pending from installments where agency_id = ${a.id} and status = 'pending'`;
  assert.equal(pending, 1, 'nothing half done');
  await db.sql`call public.run_update_installment_statuses_job('pg_cron')`;
});

test('abandoned running rows older than 15 minutes are reaped by the next run', async () => {
  const [old] = await db.sql`insert into jobs_log (job_name, started_at, status) values ('update-installment-statuses', now() - interval '16 minutes', 'running') returning id`;
  const [recent] = await db.sql`insert into jobs_log (job_name, started_at, status) values ('update-installment-statuses', now() - interval '5 minutes', 'running') returning id`;
  await db.sql`call public.run_update_installment_statuses_job('pg_cron')`;
  const rows = await db.sql`select id, status, error_message, metadata->>'code' as code from jobs_log where id in (${old!.id}, ${recent!.id})`;
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  assert.equal(byId[old!.id].status, 'failed');
  assert.match(byId[old!.id].error_message, /^abandoned/);
  assert.equal(byId[old!.id].code, 'ABANDONED');
  assert.equal(byId[recent!.id].status, 'running');
  await db.sql`delete from jobs_log where id = ${recent!.id}`;
});

test('prune_jobs_log deletes only old successful runs that changed nothing, never the latest success', async () => {
  await db.sql`delete from jobs_log`;
  await db.sql`
    insert into jobs_log (job_name, started_at, completed_at, status, records_updated, error_message, metadata)
    values ('update-installment-statuses', now() - interval '20 days', now() - interval '20 days', 'success', 0, null, '{"t":"old-nothing-1"}'),
           ('update-installment-statuses', now() - interval '9 days',  now() - interval '9 days',  'success', 0, null, '{"t":"old-nothing-2"}'),
           ('update-installment-statuses', now() - interval '9 days',  now() - interval '9 days',  'success', 4, null, '{"t":"old-changed"}'),
           ('update-installment-statuses', now() - interval '9 days',  now() - interval '9 days',  'failed',  0, 'boom', '{"t":"old-failed"}'),
           ('update-installment-statuses', now() - interval '9 days',  null,                       'running', 0, null, '{"t":"old-running"}'),
           ('update-installment-statuses', now() - interval '1 day',   now() - interval '1 day',   'success', 0, null, '{"t":"recent-nothing"}'),
           ('some-other-job',              now() - interval '30 days', now() - interval '30 days', 'success', 0, null, '{"t":"other-job"}')`;
  const [{ deleted }] = await db.sql`select public.prune_jobs_log() as deleted`;
  assert.equal(deleted, 2);
  const kept = (await db.sql`select metadata->>'t' as t from jobs_log order by t`).map((r) => r.t);
  assert.deepEqual(kept, ['old-changed', 'old-failed', 'old-running', 'other-job', 'recent-nothing']);

  // Only old no-change successes left: the newest of them survives (job_health reads it).
  await db.sql`delete from jobs_log where metadata->>'t' = 'recent-nothing'`;
  await db.sql`insert into jobs_log (job_name, started_at, completed_at, status, records_updated, metadata)
               values ('update-installment-statuses', now() - interval '8 days', now() - interval '8 days', 'success', 0, '{"t":"latest-success"}')`;
  assert.equal((await db.sql`select public.prune_jobs_log(interval '7 days') as d`)[0]!.d, 0);
  assert.equal((await db.sql`select count(*)::int as n from jobs_log where metadata->>'t' = 'latest-success'`)[0]!.n, 1);

  await assert.rejects(db.sql`select public.prune_jobs_log(interval '5 minutes')`, /invalid retention 00:05:00: keep at least 1 hour/);
  await assert.rejects(db.sql`select public.prune_jobs_log(null)`, /invalid retention NULL/);
  await db.sql`delete from jobs_log`;
});

test('next_cutoff_instants: per agency, the next cutoff at or after the instant, DST days included', async () => {
  await db.sql`delete from installments`;
  await db.sql`delete from payment_plans`;
  await db.sql`delete from agencies`;
  const ny = await createAgency(db.sql, 'New York gap', 'America/New_York', '02:30');
  const bris = await createAgency(db.sql, 'Brisbane', 'Australia/Brisbane', '17:00');
  const kat = await createAgency(db.sql, 'Kathmandu', 'Asia/Kathmandu', '17:00');
  await addInstallments(db.sql, ny, ['2026-03-08', '2026-03-08', '2026-03-09']);
  await addInstallments(db.sql, ny, ['2026-03-08'], 'paid');

  // 06:00 UTC on 8 March 2026 = 01:00 EST, before New York's spring-forward gap (02:00-03:00).
  const rows = await nextCutoffs(db.sql, new Date('2026-03-08T06:00:00Z'));
  assert.deepEqual(rows.map((r) => [r.agencyName, r.dueDate, r.cutoffAt, r.cutoffLocal, r.pendingDue]), [
    // 16:00 in Brisbane: today's 17:00 is an hour away.
    ['Brisbane', '2026-03-08', '2026-03-08T07:00:00.000Z', '2026-03-08 17:00:00', 0],
    // 02:30 does not exist that day; PostgreSQL reads it as 02:30 EST = 07:30 UTC = 03:30 EDT.
    ['New York gap', '2026-03-08', '2026-03-08T07:30:00.000Z', '2026-03-08 03:30:00', 2],
    ['Kathmandu', '2026-03-08', '2026-03-08T11:15:00.000Z', '2026-03-08 17:00:00', 0],
  ]);
  // The instants agree with the rule: nothing due that day is overdue at the cutoff, all is just after.
  const [{ at, after }] = await db.sql`
    select (select coalesce(sum(updated_count), 0)::int from preview_installment_status_changes('2026-03-08T07:30:00Z', ${ny.id})) as at,
           (select coalesce(sum(updated_count), 0)::int from preview_installment_status_changes('2026-03-08T07:30:00.001Z', ${ny.id})) as after`;
  assert.deepEqual([at, after], [0, 2]);

  // Exactly at a cutoff it is still the next one (not yet passed); a moment later it moves on.
  const atCutoff = await nextCutoffs(db.sql, new Date('2026-03-09T07:00:00Z'));
  assert.equal(atCutoff.find((r) => r.agencyId === bris.id)!.cutoffAt, '2026-03-09T07:00:00.000Z');
  const later = await nextCutoffs(db.sql, new Date('2026-03-09T07:00:00.001Z'));
  assert.equal(later.find((r) => r.agencyId === bris.id)!.cutoffAt, '2026-03-10T07:00:00.000Z');
  assert.equal(later.find((r) => r.agencyId === kat.id)!.dueDate, '2026-03-09');
});

test('cron job definitions: sql mode by default without pg_net, five-field schedules only', async () => {
  const jobs = await db.sql`select * from public.overdue_cron_jobs()`;
  assert.deepEqual(jobs.map((j) => [j.jobname, j.schedule, j.command]), [
    ['update-installment-statuses-minutely', '* * * * *', "CALL public.run_update_installment_statuses_job('pg_cron')"],
    ['update-installment-statuses-daily', '0 7 * * *', "CALL public.run_update_installment_statuses_job('pg_cron')"],
    ['prune-jobs-log-daily', '30 7 * * *', 'select public.prune_jobs_log()'],
  ]);
  for (const [bad, message] of [
    ['0 0 7 * * *', /expected five fields .* got 6/],
    ['30 seconds', /"N seconds" schedules are refused/],
    ['*/0 * * * *', /step \/0 in the minute field/],
    ['0 24 * * *', /hour 24 is outside 0-23/],
    ['0 7 * * MON', /day of week field "MON" is not a number/],
    ['@daily', /expected five fields/],
  ] as const) {
    await assert.rejects(db.sql`select * from public.overdue_cron_jobs('sql', p_daily_schedule => ${bad})`, (e: Error & { code?: string }) => {
      assert.match(e.message, message);
      assert.equal(e.code, '22023');
      return true;
    }, bad);
  }
  await assert.rejects(db.sql`select * from public.overdue_cron_jobs('cron')`, /invalid schedule mode "cron": expected sql or http/);
  await assert.rejects(db.sql`select * from public.overdue_cron_jobs('http')`, /http mode needs pg_net \(net\.http_post\)/);
});

test('schedule_install here says where pg_cron is when it is not in this database', async () => {
  const [{ cron }] = await db.sql`select current_setting('cron.database_name', true) as cron`;
  for (const call of [db.sql`select * from public.schedule_install()`, db.sql`select * from public.schedule_show()`, db.sql`select * from public.schedule_remove()`]) {
    await assert.rejects(call, (e: Error & { code?: string; hint?: string }) => {
      assert.equal(e.code, '55000');
      if (cron) {
        assert.match(e.message, new RegExp(`pg_cron lives in database "${cron}"`));
        assert.match(e.hint ?? '', /npx overdue schedule install/);
      } else {
        assert.match(e.message, /pg_cron is not loaded/);
      }
      return true;
    });
  }
});

test('the job and the installer are not executable by anon or authenticated', async () => {
  const rows = await db.sql`
    select p.proname, r.rolname, has_function_privilege(r.rolname, p.oid, 'execute') as can
      from pg_proc p cross join (values ('anon'), ('authenticated')) as r(rolname)
     where p.pronamespace = 'public'::regnamespace
       and p.proname in ('run_update_installment_statuses_job', 'prune_jobs_log', 'next_cutoff_instants',
                         'overdue_cron_jobs', 'schedule_install', 'schedule_show', 'schedule_remove')`;
  assert.equal(rows.length, 14);
  for (const r of rows) assert.equal(r.can, false, `${r.rolname} can execute ${r.proname}`);
});
