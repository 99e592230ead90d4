// The runner in-process against a real database: lock, run log lifecycle, retries, reaping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { freePort } from './support/server-process.ts';
import { connect } from '../src/db/connect.ts';
import { JobRunner, JOB_NAME, type RunOutcome } from '../src/job/runner.ts';
import { createLogger } from '../src/log.ts';

const db = await freshDatabase();
const fast = { retryDelaysMs: [5, 5, 5] };

test('the running row is committed and visible before the work starts', async () => {
  const a = await createAgency(db.sql, 'Visible');
  const [id] = await addInstallments(db.sql, a, [daysAgo(3)]);
  const blocker = await db.sql.reserve();
  try {
    await blocker`begin`;
    await blocker`select 1 from installments where id = ${id!} for update`;
    const runner = new JobRunner(db.sql, fast);
    const pending = runner.run({ trigger: 'test' });
    let seen: { status: string } | undefined;
    for (let i = 0; i < 200 && !seen; i++) {
      [seen] = (await db.sql`select status from jobs_log where job_name = ${JOB_NAME} and status = 'running'`) as unknown as { status: string }[];
      if (!seen) await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(seen?.status, 'running');
    await blocker`rollback`;
    const outcome = await pending;
    assert.equal(outcome.kind, 'success');
  } finally {
    blocker.release();
  }
});

test('a second trigger while the lock is held elsewhere is busy and logs nothing', async () => {
  const holder = await db.sql.reserve();
  try {
    await holder`select pg_advisory_lock(hashtextextended(${JOB_NAME}, 0))`;
    const before = (await db.sql`select count(*)::int as n from jobs_log`)[0]!.n;
    const outcome = await new JobRunner(db.sql, fast).run({ trigger: 'test' });
    assert.equal(outcome.kind, 'busy');
    assert.equal((await db.sql`select count(*)::int as n from jobs_log`)[0]!.n, before);
    await holder`select pg_advisory_unlock(hashtextextended(${JOB_NAME}, 0))`;
  } finally {
    holder.release();
  }
});

test('audit rows carry the run id; listeners hear every finished run', async () => {
  const a = await createAgency(db.sql, 'Audited', 'Asia/Kathmandu');
  await addInstallments(db.sql, a, [daysAgo(2), daysAgo(3)]);
  const heard: RunOutcome[] = [];
  const runner = new JobRunner(db.sql, fast);
  runner.onFinished((o) => {
    heard.push(o);
  });
  const outcome = await runner.run({ trigger: 'test' });
  assert.equal(outcome.kind, 'success');
  if (outcome.kind !== 'success') return;
  const rows = await db.sql`select job_id, actor_id, old_status, new_status from audit_logs where agency_id = ${a.id}`;
  assert.equal(rows.length, 2);
  for (const r of rows) assert.deepEqual({ ...r }, { job_id: outcome.jobId, actor_id: null, old_status: 'pending', new_status: 'overdue' });
  assert.equal(heard.length, 1);
  assert.equal(heard[0]!.kind, 'success');
});

test('a dry run changes nothing and writes no jobs_log row', async () => {
  const a = await createAgency(db.sql, 'Dry');
  await addInstallments(db.sql, a, [daysAgo(2)]);
  const runs = (await db.sql`select count(*)::int as n from jobs_log`)[0]!.n;
  const outcome = await new JobRunner(db.sql, fast).run({ trigger: 'test', dryRun: true });
  assert.equal(outcome.kind, 'success');
  if (outcome.kind === 'success') {
    assert.equal(outcome.dryRun, true);
    assert.equal(outcome.jobId, null);
    assert.equal(outcome.agencies.find((x) => x.agencyId === a.id)?.updatedCount, 1);
  }
  assert.equal((await db.sql`select count(*)::int as n from jobs_log`)[0]!.n, runs);
  assert.equal((await db.sql`select count(*)::int as n from installments where agency_id = ${a.id} and status = 'pending'`)[0]!.n, 1);
});

test('an unreachable database is retried with the configured delays, then reported failed with the code', async () => {
  const port = await freePort(); // nothing listens there
  const dead = connect(`postgres://postgres@127.0.0.1:${port}/none`, { max: 1, connectTimeoutSeconds: 2 });
  const lines: string[] = [];
  const waits: number[] = [];
  try {
    const runner = new JobRunner(dead, {
      retryDelaysMs: [1000, 2000, 4000],
      sleep: async (ms) => {
        waits.push(ms);
      },
      logger: createLogger({}, { write: (l) => lines.push(l) }),
    });
    const outcome = await runner.run({ trigger: 'test' });
    assert.equal(outcome.kind, 'failed');
    if (outcome.kind !== 'failed') return;
    assert.equal(outcome.jobId, null);
    assert.equal(outcome.attempts, 4);
    assert.equal(outcome.code, 'ECONNREFUSED');
    assert.deepEqual(waits, [1000, 2000, 4000]);
    assert.ok(lines.some((l) => JSON.parse(l).level === 'error'), 'the failure is logged');
  } finally {
    await dead.end({ timeout: 1 });
  }
});

test('a permanent error is not retried', async () => {
  const waits: number[] = [];
  await db.sql`alter function update_installment_statuses(timestamptz) rename to uis_moved`;
  try {
    const outcome = await new JobRunner(db.sql, { retryDelaysMs: [5, 5, 5], sleep: async (ms) => void waits.push(ms) }).run({ trigger: 'test' });
    assert.equal(outcome.kind, 'failed');
    assert.deepEqual(waits, []);
    if (outcome.kind === 'failed') {
      assert.equal(outcome.code, '42883');
      const [row] = await db.sql`select status, metadata from jobs_log where id = ${outcome.jobId}`;
      assert.equal(row!.status, 'failed');
      assert.equal(row!.metadata.trigger, 'test');
    }
  } finally {
    await db.sql`alter function uis_moved(timestamptz) rename to update_installment_statuses`;
  }
});

test('a serialization failure inside the work is retried and the second attempt succeeds', async () => {
  const a = await createAgency(db.sql, 'Retry');
  await addInstallments(db.sql, a, [daysAgo(6)]);
  // A trigger that fails once with 40001, then lets the update through.
  await db.sql.unsafe(`
    create table fail_once (done boolean not null default false);
    insert into fail_once values (false);
    create function fail_once_trigger() returns trigger language plpgsql as $$
    begin
      if not (select done from public.fail_once) then
        raise exception 'simulated serialization failure' using errcode = '40001';
      end if;
      return new;
    end $$;
    create trigger fail_once before update on installments for each row execute function fail_once_trigger();`);
  try {
    const runner = new JobRunner(db.sql, {
      retryDelaysMs: [5, 5, 5],
      sleep: async () => {
        await db.sql`update fail_once set done = true`;
      },
    });
    const outcome = await runner.run({ trigger: 'test' });
    assert.equal(outcome.kind, 'success');
    if (outcome.kind !== 'success') return;
    assert.equal(outcome.attempts, 2);
    assert.equal(outcome.agencies.find((x) => x.agencyId === a.id)?.updatedCount, 1);
    const [row] = await db.sql`select metadata from jobs_log where id = ${outcome.jobId}`;
    assert.equal(row!.metadata.attempts, 2);
    assert.equal(row!.metadata.attemptErrors[0].code, '40001');
    // Nothing of the failed attempt survived: exactly one audit row for the one change.
    assert.equal((await db.sql`select count(*)::int as n from audit_logs where agency_id = ${a.id}`)[0]!.n, 1);
  } finally {
    await db.sql.unsafe('drop trigger fail_once on installments; drop function fail_once_trigger(); drop table fail_once;');
  }
});

test('reapAbandoned closes only running rows older than the limit', async () => {
  const [old] = await db.sql`insert into jobs_log (job_name, started_at, status) values (${JOB_NAME}, now() - interval '1 hour', 'running') returning id`;
  const [young] = await db.sql`insert into jobs_log (job_name, started_at, status) values (${JOB_NAME}, now(), 'running') returning id`;
  const runner = new JobRunner(db.sql, { abandonAfterMs: 10 * 60_000 });
  assert.equal(await runner.reapAbandoned(), 1);
  const rows = await db.sql`select id, status, error_message from jobs_log where id in (${old!.id}, ${young!.id})`;
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  assert.equal(byId[old!.id].status, 'failed');
  assert.match(byId[old!.id].error_message, /abandoned/);
  assert.equal(byId[young!.id].status, 'running');
  await db.sql`delete from jobs_log where id = ${young!.id}`;
});

test('a failed dry run says it was a dry run (alerts and metrics leave it out) and logs no row', async () => {
  await db.sql`alter function preview_installment_status_changes(timestamptz, uuid) rename to preview_moved`;
  try {
    const runs = (await db.sql`select count(*)::int as n from jobs_log`)[0]!.n;
    const outcome = await new JobRunner(db.sql, fast).run({ trigger: 'test', dryRun: true });
    assert.equal(outcome.kind, 'failed');
    if (outcome.kind === 'failed') {
      assert.equal(outcome.dryRun, true);
      assert.equal(outcome.jobId, null);
    }
    assert.equal((await db.sql`select count(*)::int as n from jobs_log`)[0]!.n, runs);
    const real = await new JobRunner(db.sql, fast).run({ trigger: 'test' });
    assert.equal(real.kind, 'success');
  } finally {
    await db.sql`alter function preview_moved(timestamptz, uuid) rename to preview_installment_status_changes`;
  }
});
