// The runner's batch mode (JOB_BATCH_SIZE, `overdue run --batch-size N`; issue 6 "Huge
// backlogs"): one transaction per batch, each atomic with its audit rows, one jobs_log row
// counting across the batches, a transient failure in the middle retried from where it stopped.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { JobRunner, JOB_NAME } from '../src/job/runner.ts';
import { main as cli } from '../src/cli.ts';

async function seed(sql: Parameters<typeof createAgency>[0], perAgency: number) {
  const agencies = await Promise.all(['Australia/Brisbane', 'America/Los_Angeles', 'Asia/Kathmandu'].map((z, i) => createAgency(sql, `Batch ${i}`, z)));
  for (const a of agencies) {
    await addInstallments(sql, a, Array.from({ length: perAgency }, (_, i) => daysAgo(2 + (i % 40))));
    await addInstallments(sql, a, [daysAgo(-5)]); // not due
  }
  return agencies;
}

test('batches of 100: every due row flipped once, one jobs_log row with the totals and the batches', async () => {
  const db = await freshDatabase();
  const agencies = await seed(db.sql, 83); // 249 due: batches of 100, 100, 49, then an empty one
  const outcome = await new JobRunner(db.sql, { retryDelaysMs: [5], batchSize: 100 }).run({ trigger: 'test' });
  assert.equal(outcome.kind, 'success');
  if (outcome.kind !== 'success') return;
  assert.equal(outcome.recordsUpdated, 249);
  assert.deepEqual(
    outcome.agencies.map((a) => a.updatedCount),
    [83, 83, 83],
  );
  assert.deepEqual(new Set(outcome.agencies.map((a) => a.agencyId)), new Set(agencies.map((a) => a.id)));

  const logs = await db.sql`select status, records_updated, metadata from jobs_log where job_name = ${JOB_NAME}`;
  assert.equal(logs.length, 1, 'one run, one row');
  assert.equal(logs[0]!.status, 'success');
  assert.equal(logs[0]!.records_updated, 249);
  const batches = logs[0]!.metadata.batches as { size: number; committed: number; longestMs: number };
  assert.deepEqual({ size: batches.size, committed: batches.committed }, { size: 100, committed: 4 });
  assert.ok(batches.longestMs >= 0);
  assert.equal((logs[0]!.metadata.agencies as unknown[]).length, 3);

  const [{ overdue, pending }] = await db.sql`
    select count(*) filter (where status = 'overdue')::int as overdue, count(*) filter (where status = 'pending')::int as pending from installments`;
  assert.deepEqual({ overdue, pending }, { overdue: 249, pending: 3 });
  const [{ audits, distinct, tagged }] = await db.sql`
    select count(*)::int as audits, count(distinct installment_id)::int as distinct,
           count(*) filter (where job_id = ${outcome.jobId!})::int as tagged from audit_logs`;
  assert.deepEqual({ audits, distinct, tagged }, { audits: 249, distinct: 249, tagged: 249 });
});

test('a transient failure in the second batch: the first stays committed, the run goes on and counts both', async () => {
  const db = await freshDatabase();
  await seed(db.sql, 50); // 150 due
  // The second audit INSERT statement (the second batch) fails once with a serialization
  // failure, which the runner retries. A sequence, because it does not roll back.
  await db.sql.unsafe(`
    create sequence audit_statements;
    create function fail_second_batch() returns trigger language plpgsql as $$
    begin
      if nextval('public.audit_statements') = 2 then
        raise exception 'injected: second batch' using errcode = '40001';
      end if;
      return null;
    end $$;
    create trigger fail_second_batch after insert on audit_logs for each statement execute function fail_second_batch();`);
  const outcome = await new JobRunner(db.sql, { retryDelaysMs: [5, 5], batchSize: 60 }).run({ trigger: 'test' });
  assert.equal(outcome.kind, 'success');
  if (outcome.kind !== 'success') return;
  assert.equal(outcome.recordsUpdated, 150);
  assert.equal(outcome.attempts, 2);
  const [log] = await db.sql`select records_updated, metadata from jobs_log where job_name = ${JOB_NAME}`;
  assert.equal(log!.records_updated, 150);
  assert.equal((log!.metadata.attemptErrors as { code?: string }[])[0]!.code, '40001');
  // 60, (failed 60, retried) 60, 30, then empty.
  assert.equal((log!.metadata.batches as { committed: number }).committed, 4);
  const [{ audits, distinct }] = await db.sql`select count(*)::int as audits, count(distinct installment_id)::int as distinct from audit_logs`;
  assert.deepEqual({ audits, distinct }, { audits: 150, distinct: 150 });
});

test('a permanent failure after a committed batch: the run fails, the row says what the committed batches did', async () => {
  const db = await freshDatabase();
  await seed(db.sql, 50);
  await db.sql.unsafe(`
    create sequence audit_statements;
    create function fail_from_second_batch() returns trigger language plpgsql as $$
    begin
      if nextval('public.audit_statements') >= 2 then
        raise exception 'injected: audit table refuses' using errcode = '23514';
      end if;
      return null;
    end $$;
    create trigger fail_from_second_batch after insert on audit_logs for each statement execute function fail_from_second_batch();`);
  const outcome = await new JobRunner(db.sql, { retryDelaysMs: [5], batchSize: 60 }).run({ trigger: 'test' });
  assert.equal(outcome.kind, 'failed');
  const [log] = await db.sql`select status, metadata from jobs_log where job_name = ${JOB_NAME}`;
  assert.equal(log!.status, 'failed');
  assert.equal(log!.metadata.recordsUpdatedInCommittedBatches, 60);
  assert.equal((log!.metadata.batches as { committed: number }).committed, 1);
  const [{ overdue, audits }] = await db.sql`
    select (select count(*)::int from installments where status = 'overdue') as overdue, (select count(*)::int from audit_logs) as audits`;
  assert.deepEqual({ overdue, audits }, { overdue: 60, audits: 60 }, 'whole batches only, each with its audit rows');
});

test('overdue run --batch-size: used when given, refused when not a whole number', async () => {
  const db = await freshDatabase();
  await seed(db.sql, 10);
  const lines: string[] = [];
  const errors: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => errors.push(l) };
  assert.equal(await cli(['run', '--batch-size', 'ten'], { DATABASE_URL: db.url }, io), 2);
  assert.match(errors.join('\n'), /--batch-size must be a whole number of rows/);
  assert.equal(await cli(['run', '--batch-size', '7', '--json'], { DATABASE_URL: db.url, LOG_LEVEL: 'error' }, io), 0);
  assert.equal(JSON.parse(lines.join('\n')).recordsUpdated, 30);
  const [log] = await db.sql`select metadata from jobs_log where job_name = ${JOB_NAME}`;
  assert.deepEqual(log!.metadata.batches.size, 7);
  assert.equal(log!.metadata.batches.committed, 6); // 7, 7, 7, 7, 2, then empty
});
