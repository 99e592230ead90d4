// The two ways update_installment_statuses writes (migration 20251113000700): through the
// candidates index for small runs, in one pass over the table for large ones (issue 6).
//
// 1. Both paths flip exactly the installments whose own cutoff instant has passed, written the
//    way the issue states the rule — (student_due_date + cutoff) AT TIME ZONE zone < as_of —
//    over zones with DST, half-hour and 45-minute offsets, a skipped date (Pacific/Apia 2011)
//    and cutoffs inside spring-forward gaps and fall-back repeats.
// 2. The function picks the pass exactly when the count of due rows reaches
//    overdue_one_pass_threshold(), and the pass audits every change once.
// 3. Both paths under concurrency: a payment committed mid-run wins, a row otherwise edited
//    mid-run is judged again and still flips, and the agency's settings are read once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { connect, type Sql } from '../src/db/connect.ts';
import type postgres from 'postgres';

const ZONES = [
  'UTC', 'America/New_York', 'America/Los_Angeles', 'America/St_Johns', 'Europe/London', 'Europe/Berlin',
  'Australia/Sydney', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Chatham', 'Pacific/Apia', 'Pacific/Kiritimati',
];
const CUTOFFS = ['00:00', '00:30', '01:59', '02:30', '12:00', '17:00', '23:59'];

/** Days around which installments fall due: 2026's DST changes in these zones, and Apia's skipped 30 Dec 2011. */
const AROUND = ['2011-12-30', '2026-03-08', '2026-03-29', '2026-04-05', '2026-10-04', '2026-10-25', '2026-11-01'];

/** Instants to judge at: 00:00Z of each day from the day before to two days after, plus odd offsets. */
function instantsAround(day: string): string[] {
  const base = Date.parse(`${day}T00:00:00Z`) - 86_400_000;
  const out: string[] = [];
  for (let ms = 0; ms <= 3 * 86_400_000; ms += 5 * 3_600_000 + 7 * 60_000 + 30_000) out.push(new Date(base + ms).toISOString());
  return out;
}

/** The rule as the issue states it, per row: the oracle both paths are checked against. */
async function oracle(sql: Sql, asOf: string): Promise<string[]> {
  const rows = await sql`
    select i.id from installments i join agencies a on a.id = i.agency_id
     where i.status = 'pending' and i.plan_active
       and (i.student_due_date + a.overdue_cutoff_time) at time zone a.timezone < ${asOf}::timestamptz
     order by i.id`;
  return rows.map((r) => r.id as string);
}

interface PathRun {
  flipped: string[];
  counted: number;
  audited: number;
  seqScans: number;
}

/** Runs one path (or the whole function) in a transaction that is rolled back. */
async function runRolledBack(sql: Sql, call: string, asOf: string): Promise<PathRun> {
  let result: PathRun | undefined;
  await sql
    .begin(async (tx) => {
      const before = await seqScans(tx);
      const counts = await tx.unsafe(`select * from ${call}`, [asOf]);
      const seq = (await seqScans(tx)) - before; // read first: the queries below scan the table too
      const flipped = await tx`select id from installments where status = 'overdue' order by id`;
      const [{ audited }] = await tx`select count(*)::int as audited from audit_logs`;
      result = {
        flipped: flipped.map((r) => r.id as string),
        counted: counts.reduce((n, r) => n + (r.updated_count as number), 0),
        audited,
        seqScans: seq,
      };
      throw new RolledBack();
    })
    .catch((e) => {
      if (!(e instanceof RolledBack)) throw e;
    });
  return result!;
}
class RolledBack extends Error {}

/** Sequential scans of installments by this backend not yet flushed to the cumulative
 *  statistics. PostgreSQL 15 may carry them over from earlier transactions, so callers take the
 *  difference of two readings inside one transaction. */
async function seqScans(tx: postgres.TransactionSql<Record<string, never>>): Promise<number> {
  const [row] = await tx`select seq_scan::int as n from pg_stat_xact_user_tables where relid = 'public.installments'::regclass`;
  return row!.n as number;
}

test('index path and one pass flip exactly what the per-row rule says, across zones, DST and a skipped date', async () => {
  const db = await freshDatabase();
  await db.sql`
    with a as (
      insert into agencies (name, timezone, overdue_cutoff_time)
      select z || ' ' || c, z, c::time from unnest(${ZONES}::text[]) z, unnest(${CUTOFFS}::text[]) c
      returning id),
    p as (
      insert into payment_plans (agency_id, status)
      select a.id, s from a, unnest(array['active', 'completed']) s
      returning id, agency_id, status)
    insert into installments (payment_plan_id, agency_id, amount, student_due_date, status)
    select p.id, p.agency_id, 10, d::date + k, st
      from p, unnest(${AROUND}::text[]) d, generate_series(-2, 2) k,
           unnest(case when p.status = 'active' then array['pending', 'pending', 'paid'] else array['pending'] end) st`;
  await db.sql`analyze`;
  let judged = 0;
  let nonTrivial = 0;
  for (const day of AROUND) {
    for (const asOf of instantsAround(day)) {
      const expected = await oracle(db.sql, asOf);
      const byIndex = await runRolledBack(db.sql, 'public.flip_overdue_installments_by_index($1::timestamptz, null)', asOf);
      const onePass = await runRolledBack(db.sql, 'public.flip_overdue_installments_in_one_pass($1::timestamptz, null)', asOf);
      assert.deepEqual(byIndex.flipped, expected, `index path at ${asOf}`);
      assert.deepEqual(onePass.flipped, expected, `one pass at ${asOf}`);
      for (const [name, run] of [['index path', byIndex], ['one pass', onePass]] as const) {
        assert.equal(run.counted, expected.length, `${name} at ${asOf}: the counts it returns`);
        assert.equal(run.audited, expected.length, `${name} at ${asOf}: one audit row per change`);
      }
      assert.equal(byIndex.seqScans, 0, 'the index path reads no table sequentially');
      assert.equal(onePass.seqScans, 1, 'the pass reads the table once');
      judged++;
      // The instants are worth judging: around most of them some of the day's rows are due
      // and some not yet, so a path that is off by an hour or a day somewhere shows.
      const [{ due, all }] = await db.sql`
        select count(*) filter (where (i.student_due_date + a.overdue_cutoff_time) at time zone a.timezone < ${asOf}::timestamptz)::int as due,
               count(*)::int as all
          from installments i join agencies a on a.id = i.agency_id
         where i.status = 'pending' and i.plan_active and i.student_due_date between ${day}::date - 2 and ${day}::date + 2`;
      if (due > 0 && due < all) nonTrivial++;
    }
  }
  assert.ok(judged >= 7 * 14, `judged at ${judged} instants`);
  assert.ok(nonTrivial >= judged / 2, `at ${nonTrivial} of ${judged} instants only part of the rows were due`);
});

/** A database with `due` pending installments due long ago over three agencies, and 50 due later. */
async function backlogDatabase(due: number) {
  const db = await freshDatabase();
  await db.sql`
    with a as (
      insert into agencies (name, timezone, overdue_cutoff_time)
      values ('Brisbane', 'Australia/Brisbane', '17:00'), ('Kathmandu', 'Asia/Kathmandu', '09:15'),
             ('Los Angeles', 'America/Los_Angeles', '23:30')
      returning id),
    p as (insert into payment_plans (agency_id) select id from a returning id, agency_id),
    numbered as (select p.*, row_number() over (order by p.id) - 1 as n from p)
    insert into installments (payment_plan_id, agency_id, amount, student_due_date)
    select n.id, n.agency_id, 10, case when g <= ${due} then date '2026-01-01' - (g % 300) else date '2026-03-01' + g % 30 end
      from generate_series(1, ${due} + 50) g
      join numbered n on n.n = g % 3`;
  await db.sql`analyze installments`;
  return db;
}

const AS_OF = '2026-02-01T00:00:00Z';

test('update_installment_statuses takes the pass when the due rows reach the threshold, the index path below it', async () => {
  const db = await backlogDatabase(12_000);
  const [{ threshold }] = await db.sql`select public.overdue_one_pass_threshold()::int as threshold`;
  assert.equal(threshold, 10_000, 'at 12,050 rows the threshold is its floor, 10,000');

  const large = await runRolledBack(db.sql, 'public.update_installment_statuses($1::timestamptz)', AS_OF);
  assert.equal(large.counted, 12_000);
  assert.deepEqual(large.flipped, await oracle(db.sql, AS_OF));
  assert.equal(large.audited, 12_000);
  assert.equal(large.seqScans, 1, '12,000 due ≥ 10,000: one pass over the table');

  // Exactly the threshold: still the pass. One fewer: the index path.
  const postpone = (n: number) => db.sql`
    update installments set student_due_date = date '2026-06-01'
     where id in (select id from installments where student_due_date < '2026-02-01' order by id limit ${n})`;
  await postpone(2000);
  const atThreshold = await runRolledBack(db.sql, 'public.update_installment_statuses($1::timestamptz)', AS_OF);
  assert.deepEqual([atThreshold.counted, atThreshold.seqScans], [10_000, 1], '10,000 due = the threshold: one pass');
  await postpone(1);
  const small = await runRolledBack(db.sql, 'public.update_installment_statuses($1::timestamptz)', AS_OF);
  assert.equal(small.counted, 9_999);
  assert.deepEqual(small.flipped, await oracle(db.sql, AS_OF));
  assert.equal(small.audited, 9_999);
  assert.equal(small.seqScans, 0, '9,999 due < 10,000: through the index');

  // A committed pass, then a second run at the same instant: nothing left, nothing audited twice.
  const [{ n: first }] = await db.sql`select coalesce(sum(updated_count), 0)::int as n from public.update_installment_statuses(${AS_OF}::timestamptz)`;
  await db.sql`update installments set student_due_date = date '2026-01-15' where student_due_date = '2026-06-01'`;
  await db.sql`analyze installments`;
  const [{ n: second }] = await db.sql`select coalesce(sum(updated_count), 0)::int as n from public.update_installment_statuses(${AS_OF}::timestamptz)`;
  const [{ n: third }] = await db.sql`select coalesce(sum(updated_count), 0)::int as n from public.update_installment_statuses(${AS_OF}::timestamptz)`;
  assert.deepEqual([first, second, third], [9_999, 2_001, 0]);
  const [{ audits, distinct }] = await db.sql`select count(*)::int as audits, count(distinct installment_id)::int as distinct from audit_logs`;
  assert.deepEqual({ audits, distinct }, { audits: 12_000, distinct: 12_000 });
});

for (const path of ['one pass', 'index'] as const) {
  test(`${path} under concurrency: a payment wins, an edited row still flips, the agency is read once`, async () => {
    const db = await backlogDatabase(path === 'one pass' ? 12_000 : 900);
    const [brisbane] = await db.sql`select id from agencies where name = 'Brisbane'`;
    // A due row of Brisbane moved to 2026-01-31: at AS_OF (00:00Z on 1 Feb) past its 17:00
    // cutoff in Brisbane (07:00Z on the 31st), not yet past 23:59 in Pacific/Pago_Pago (10:59Z
    // on 1 Feb). The new row version lands at the end of the table, and it is Brisbane's latest
    // due date: the last of its rows either path reaches.
    const [edited] = await db.sql`
      update installments set student_due_date = '2026-01-31'
       where ctid = (select max(ctid) from installments where agency_id = ${brisbane!.id} and student_due_date < '2026-02-01')
       returning id`;
    // The first due row either path reaches: in physical order for the pass, in (agency, due
    // date) order for the index path, where Brisbane is the first agency.
    const order = path === 'one pass' ? db.sql`ctid` : db.sql`student_due_date, ctid`;
    const [paying] = await db.sql`
      select id from installments where agency_id = ${brisbane!.id} and student_due_date < '2026-02-01' order by ${order} limit 1`;
    const [{ due }] = await db.sql`select count(*)::int as due from installments where student_due_date < '2026-02-01'`;

    const holder = connect(db.url, { max: 1 });
    const runner = connect(db.url, { max: 1 });
    try {
      await holder.unsafe('begin');
      await holder`select 1 from installments where id = ${paying!.id} for update`;
      const [{ pid }] = await runner`select pg_backend_pid() as pid`;
      const run = runner.begin(async (tx) => {
        const before = await seqScans(tx);
        const [{ n }] = await tx`select coalesce(sum(updated_count), 0)::int as n from public.update_installment_statuses(${AS_OF}::timestamptz)`;
        return { n: n as number, seq: (await seqScans(tx)) - before };
      });
      await waitForLockWait(db.sql, pid as number);
      // While the run waits on the held row: the agency moves to another zone and cutoff, another
      // of its installments is edited (still pending: a new row version), and the held row is paid.
      await db.sql`update agencies set timezone = 'Pacific/Pago_Pago', overdue_cutoff_time = '23:59' where id = ${brisbane!.id}`;
      await db.sql`update installments set amount = 11 where id = ${edited!.id}`;
      await holder`update installments set status = 'paid' where id = ${paying!.id}`;
      await holder.unsafe('commit');
      const { n, seq } = await run;

      assert.equal(seq, path === 'one pass' ? 1 : 0, `the run took the ${path} path`);
      assert.equal(n, due - 1, 'every due row but the paid one');
      const [p] = await db.sql`select status from installments where id = ${paying!.id}`;
      assert.equal(p!.status, 'paid', 'the payment is never overwritten');
      assert.equal((await db.sql`select 1 from audit_logs where installment_id = ${paying!.id}`).length, 0);
      const [e] = await db.sql`select status, amount::int as amount from installments where id = ${edited!.id}`;
      assert.deepEqual({ ...e }, { status: 'overdue', amount: 11 },
        'judged again on its new version, by the settings the run had read (Pago Pago would say not yet)');
      const [{ audits, distinct }] = await db.sql`select count(*)::int as audits, count(distinct installment_id)::int as distinct from audit_logs`;
      assert.deepEqual({ audits, distinct }, { audits: due - 1, distinct: due - 1 });
    } finally {
      await holder.unsafe('rollback').catch(() => {});
      await holder.end();
      await runner.end();
    }
  });
}

async function waitForLockWait(sql: Sql, pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [row] = await sql`select wait_event_type from pg_stat_activity where pid = ${pid}`;
    if (row?.wait_event_type === 'Lock') return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`backend ${pid} never waited on a lock`);
}
