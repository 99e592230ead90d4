// Concurrency (issue 7 §2): twenty triggers at once from every entry point, a payment recorded
// during a run, an agency's settings changed during a run.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency } from './support/fixtures.ts';
import { assertConsistent, holdRowLock, seedAgencies, waitForBlockedRun } from './support/invariants.ts';
import { startServer, type RunningServer } from './support/server-process.ts';
import { connect, type Sql } from '../src/db/connect.ts';
import { main as cli } from '../src/cli.ts';
import { JobRunner } from '../src/job/runner.ts';

const KEY = 'concurrency-key-0123456789abcdef';
const db = await freshDatabase();
let server: RunningServer;
const pools: Sql[] = [];

before(async () => {
  server = await startServer('node', { DATABASE_URL: db.url, SUPABASE_FUNCTION_KEY: KEY, JOB_RETRY_DELAYS_MS: '20,40,80', LOG_LEVEL: 'warn', OVERDUE_SCHEDULER: 'off', WATCHDOG_INTERVAL_SECONDS: '0' });
});
after(async () => {
  await server?.stop();
  for (const p of pools) await p.end({ timeout: 2 });
});

test('twenty triggers at once (HTTP, CLI, scheduler): one run does the work, the expected set flips once, no 5xx', async () => {
  const seeded = await seedAgencies(db.sql, 'Twenty');
  // Hold one due row so the first run to take the job lock is still working when the rest arrive.
  const lock = await holdRowLock(db.url, seeded.due[0]!);
  const env = { DATABASE_URL: db.url, JOB_RETRY_DELAYS_MS: '20,40,80' };
  const quiet = { out: () => {}, err: () => {} };
  type Result = { via: string; worked: number; busy: boolean; error?: string };

  const http = Array.from({ length: 7 }, async (): Promise<Result> => {
    const res = await fetch(server.url, { method: 'POST', headers: { 'x-api-key': KEY } });
    const body = await res.json();
    if (res.status === 409) return { via: 'http', worked: 0, busy: true };
    if (res.status !== 200) return { via: 'http', worked: 0, busy: false, error: `HTTP ${res.status} ${JSON.stringify(body)}` };
    return { via: 'http', worked: body.recordsUpdated, busy: false };
  });
  const fromCli = Array.from({ length: 6 }, async (): Promise<Result> => {
    const lines: string[] = [];
    const code = await cli(['run', '--json'], env, { out: (l) => lines.push(l), err: quiet.err });
    if (code === 3) return { via: 'cli', worked: 0, busy: true };
    if (code !== 0) return { via: 'cli', worked: 0, busy: false, error: `exit ${code}` };
    return { via: 'cli', worked: JSON.parse(lines.join('\n')).recordsUpdated, busy: false };
  });
  // The built-in scheduler calls the runner directly; one runner (and pool) per "replica".
  const scheduled = Array.from({ length: 7 }, async (): Promise<Result> => {
    const pool = connect(db.url, { max: 2 });
    pools.push(pool);
    const outcome = await new JobRunner(pool, { retryDelaysMs: [20, 40, 80] }).run({ trigger: 'schedule' });
    if (outcome.kind === 'busy') return { via: 'schedule', worked: 0, busy: true };
    if (outcome.kind === 'failed') return { via: 'schedule', worked: 0, busy: false, error: outcome.error };
    return { via: 'schedule', worked: outcome.recordsUpdated, busy: false };
  });

  const all = [...http, ...fromCli, ...scheduled];
  await waitForBlockedRun(db.sql);
  await new Promise((r) => setTimeout(r, 300)); // let the rest of the twenty arrive while it waits
  await lock.release();
  const results = await Promise.all(all);

  assert.deepEqual(results.filter((r) => r.error), [], 'no trigger may fail');
  const working = results.filter((r) => r.worked > 0);
  assert.equal(working.length, 1, `exactly one run does the work: ${JSON.stringify(results)}`);
  assert.equal(working[0]!.worked, seeded.due.length);
  assert.ok(results.filter((r) => r.busy).length >= 1, 'the others were told a run is in progress (or found nothing left)');
  const [{ n: successRows }] = await db.sql`select count(*)::int as n from jobs_log where status = 'success' and records_updated > 0`;
  assert.equal(successRows, 1);
  const triggers = await db.sql`select distinct metadata->>'trigger' as t from jobs_log`;
  assert.ok(triggers.length >= 1);
  await assertConsistent(db.sql, seeded);
});

test('a payment recorded while a run waits on the row stays paid, with no audit row', async () => {
  const a = await createAgency(db.sql, 'Payer', 'Europe/Paris');
  const [payingId, otherId] = await addInstallments(db.sql, a, ['2026-01-05', '2026-01-06']);
  // The payer's transaction: the row is already updated to paid but not committed.
  const payer = connect(db.url, { max: 1 });
  pools.push(payer);
  await payer.unsafe('begin');
  await payer`update installments set status = 'paid' where id = ${payingId!}`;

  const runner = new JobRunner(db.sql, { retryDelaysMs: [20] });
  const run = runner.run({ trigger: 'test' });
  await waitForBlockedRun(db.sql); // the run's UPDATE found the row pending in its snapshot and waits for the payer
  await payer.unsafe('commit');
  const outcome = await run;
  assert.equal(outcome.kind, 'success');

  // READ COMMITTED re-checks the waiting row against its committed version: no longer pending.
  const [paying] = await db.sql`select status from installments where id = ${payingId!}`;
  assert.equal(paying!.status, 'paid');
  const [other] = await db.sql`select status from installments where id = ${otherId!}`;
  assert.equal(other!.status, 'overdue');
  const audits = await db.sql`select installment_id from audit_logs where installment_id = ${payingId!}`;
  assert.equal(audits.length, 0, 'the payment must not be recorded as a status change by the job');
  assert.equal(outcome.kind === 'success' && outcome.agencies.find((x) => x.agencyId === a.id)?.updatedCount, 1);
});

test("an agency's time zone and cutoff changed during a run: the old or the new answer, never a mixture", async () => {
  // At 2026-01-10T12:00Z, in Pacific/Kiritimati (UTC+14) with a 00:00 cutoff, installments due on
  // the 8th, 9th and 10th are overdue; in Pacific/Pago_Pago (UTC-11) with a 23:59 cutoff only the
  // 8th and 9th are.
  const asOf = new Date('2026-01-10T12:00:00Z');
  const a = await createAgency(db.sql, 'Zone switch', 'Pacific/Kiritimati', '00:00');
  const ids = {
    d8: await addInstallments(db.sql, a, ['2026-01-08', '2026-01-08']),
    d9: await addInstallments(db.sql, a, ['2026-01-09', '2026-01-09']),
    d10: await addInstallments(db.sql, a, ['2026-01-10', '2026-01-10', '2026-01-10']),
  };
  const oldAnswer = [...ids.d8, ...ids.d9, ...ids.d10].sort();
  const newAnswer = [...ids.d8, ...ids.d9].sort();

  const lock = await holdRowLock(db.url, ids.d8[0]!);
  const runner = new JobRunner(db.sql, { retryDelaysMs: [20] });
  const run = runner.run({ trigger: 'test', asOf });
  await waitForBlockedRun(db.sql);
  // Committed while the run's statement is in flight.
  await db.sql`update agencies set timezone = 'Pacific/Pago_Pago', overdue_cutoff_time = '23:59' where id = ${a.id}`;
  await lock.release();
  const outcome = await run;
  assert.equal(outcome.kind, 'success');

  const flipped = (await db.sql`select id from installments where agency_id = ${a.id} and status = 'overdue' order by id`).map((r) => r.id as string);
  const answer = JSON.stringify(flipped) === JSON.stringify(oldAnswer) ? 'old' : JSON.stringify(flipped) === JSON.stringify(newAnswer) ? 'new' : 'mixture';
  assert.notEqual(answer, 'mixture', `flipped ${flipped.length} rows: neither the old (${oldAnswer.length}) nor the new (${newAnswer.length}) answer`);
  // One statement, one snapshot of the agency: today PostgreSQL gives the old answer.
  assert.equal(answer, 'old');

  // The next run judges with the new settings; nothing flips back, nothing is audited twice.
  const again = await runner.run({ trigger: 'test', asOf });
  assert.equal(again.kind === 'success' && (again.agencies.find((x) => x.agencyId === a.id)?.updatedCount ?? 0), 0);
  const dupes = await db.sql`select installment_id from audit_logs where agency_id = ${a.id} group by installment_id having count(*) > 1`;
  assert.equal(dupes.length, 0);
});
