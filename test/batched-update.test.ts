// public.update_installment_statuses_batch: the batch mode for huge backlogs (issue 6).
// Same rule as update_installment_statuses, at most p_batch_size rows (with their audit rows)
// per call, so a caller can loop with one short transaction per batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';

const db = await freshDatabase();
const sql = db.sql;

// Brisbane has no DST: the cutoff instant of a due date D at 17:00 local is D 07:00 UTC.
const AS_OF = '2026-03-10T12:00:00Z';

interface Fixture {
  agencies: string[];
  /** Installments that must flip at AS_OF. */
  due: string[];
  /** Installments that must not: due later, due today before the cutoff, other statuses, inactive plans. */
  untouched: string[];
  statusBefore: Map<string, string>;
}

async function setUp(): Promise<Fixture> {
  await sql`truncate public.agencies cascade`;
  await sql`truncate public.audit_logs`;
  const agencies: string[] = [];
  const due: string[] = [];
  const untouched: string[] = [];
  for (const [name, zone] of [
    ['Brisbane agency', 'Australia/Brisbane'],
    ['Tokyo agency', 'Asia/Tokyo'],
    ['Los Angeles agency', 'America/Los_Angeles'],
  ] as const) {
    const [a] = await sql`insert into public.agencies (name, timezone, overdue_cutoff_time) values (${name}, ${zone}, '17:00') returning id`;
    agencies.push(a!.id as string);
    const [active] = await sql`insert into public.payment_plans (agency_id) values (${a!.id}) returning id`;
    const [closed] = await sql`insert into public.payment_plans (agency_id, status) values (${a!.id}, 'cancelled') returning id`;
    // 9 pending installments due between 2 and 10 days before AS_OF: all overdue in every zone.
    const flips = await sql`
      insert into public.installments (payment_plan_id, agency_id, amount, student_due_date)
      select ${active!.id}, ${a!.id}, 100, date '2026-03-10' - g from generate_series(2, 10) g
      returning id`;
    due.push(...flips.map((r) => r.id as string));
    const stay = await sql`
      insert into public.installments (payment_plan_id, agency_id, amount, student_due_date, status)
      values (${active!.id}, ${a!.id}, 100, date '2026-03-20', 'pending'),
             (${active!.id}, ${a!.id}, 100, date '2026-03-01', 'paid'),
             (${active!.id}, ${a!.id}, 100, date '2026-03-01', 'draft'),
             (${active!.id}, ${a!.id}, 100, date '2026-03-01', 'cancelled'),
             (${closed!.id}, ${a!.id}, 100, date '2026-03-01', 'pending')
      returning id`;
    untouched.push(...stay.map((r) => r.id as string));
  }
  // Due on AS_OF's local day in Brisbane (22:00 there): past the 17:00 cutoff, so it flips...
  const [bne] = await sql`select id from public.payment_plans where agency_id = ${agencies[0]!} and status = 'active'`;
  const [today] = await sql`
    insert into public.installments (payment_plan_id, agency_id, amount, student_due_date)
    values (${bne!.id}, ${agencies[0]!}, 100, date '2026-03-10') returning id`;
  due.push(today!.id as string);
  // ...while in Los Angeles it is still 05:00 on 2026-03-10 (PDT): due that day stays pending.
  const [la] = await sql`select id from public.payment_plans where agency_id = ${agencies[2]!} and status = 'active'`;
  const [notYet] = await sql`
    insert into public.installments (payment_plan_id, agency_id, amount, student_due_date)
    values (${la!.id}, ${agencies[2]!}, 100, date '2026-03-10') returning id`;
  untouched.push(notYet!.id as string);
  return { agencies, due, untouched, statusBefore: await statusOf(untouched) };
}

async function batch(size: number): Promise<{ agency_id: string; updated_count: number; transitions: { pending_to_overdue: number } }[]> {
  return (await sql`select * from public.update_installment_statuses_batch(${AS_OF}::timestamptz, ${size})`) as never;
}

async function statusOf(ids: string[]): Promise<Map<string, string>> {
  const rows = await sql`select id, status from public.installments where id = any(${ids}::uuid[])`;
  return new Map(rows.map((r) => [r.id as string, r.status as string]));
}

test('flips at most p_batch_size rows per call, each with its audit row, until none is left', async () => {
  const f = await setUp();
  assert.equal(f.due.length, 28);
  assert.deepEqual([...f.statusBefore.values()].sort(), [...Array(7).fill('pending'), ...Array(3).fill('paid'), ...Array(3).fill('draft'), ...Array(3).fill('cancelled')].sort());
  const [preview] = await sql`select sum(updated_count)::int as n from public.preview_installment_status_changes(${AS_OF}::timestamptz)`;
  assert.equal(preview!.n, f.due.length, 'the fixture and the preview agree on what is due');

  const sizes: number[] = [];
  for (let call = 0; call < 20; call++) {
    const rows = await batch(10);
    const n = rows.reduce((s, r) => s + r.updated_count, 0);
    for (const r of rows) assert.deepEqual(r.transitions, { pending_to_overdue: r.updated_count });
    sizes.push(n);
    if (n === 0) break;
  }
  assert.deepEqual(sizes, [10, 10, 8, 0]);

  const after = await statusOf([...f.due, ...f.untouched]);
  for (const id of f.due) assert.equal(after.get(id), 'overdue', `installment ${id} is due and must be overdue`);
  for (const id of f.untouched) assert.equal(after.get(id), f.statusBefore.get(id), `installment ${id} must keep its status`);

  const audit = await sql`
    select installment_id, old_status, new_status, actor_id from public.audit_logs order by installment_id`;
  assert.deepEqual(audit.map((r) => r.installment_id).sort(), [...f.due].sort(), 'one audit row per flipped installment, no more');
  for (const r of audit) assert.deepEqual([r.old_status, r.new_status, r.actor_id], ['pending', 'overdue', null]);

  // The main function agrees that nothing is left.
  const rest = await sql`select * from public.update_installment_statuses(${AS_OF}::timestamptz)`;
  assert.equal(rest.length, 0);
});

test('a batch is atomic: when its audit rows fail, none of its status changes stays', async () => {
  const f = await setUp();
  await sql.unsafe(`
    create or replace function pg_temp.refuse_audit() returns trigger language plpgsql as $$
    begin raise exception 'audit refused for the test'; end $$;`);
  await sql`create trigger refuse_audit before insert on public.audit_logs for each row execute function pg_temp.refuse_audit()`;
  try {
    await assert.rejects(batch(5), /audit refused for the test/);
  } finally {
    await sql`drop trigger refuse_audit on public.audit_logs`;
  }
  const after = await statusOf(f.due);
  assert.deepEqual([...new Set(after.values())], ['pending']);
  const [{ n }] = (await sql`select count(*)::int as n from public.audit_logs`) as unknown as [{ n: number }];
  assert.equal(n, 0);
});

test('bad input is refused with the offending value and changes nothing', async () => {
  const f = await setUp();
  for (const size of [0, -5]) {
    await assert.rejects(batch(size), (e: Error) => e.message.includes(`invalid p_batch_size ${size}`));
  }
  await assert.rejects(sql`select * from public.update_installment_statuses_batch(${AS_OF}::timestamptz, null)`, /invalid p_batch_size null/);
  await assert.rejects(sql`select * from public.update_installment_statuses_batch(null, 10)`, /p_as_of must not be null/);
  await assert.rejects(
    sql`select * from public.update_installment_statuses_batch(now() + interval '1 hour', 10)`,
    /is in the future/,
  );
  const after = await statusOf(f.due);
  assert.deepEqual([...new Set(after.values())], ['pending']);
});

test('security: definer with a fixed search_path; only service_role may execute it', async () => {
  const [fn] = await sql`
    select p.prosecdef, p.proconfig,
           has_function_privilege('anon', p.oid, 'execute') as anon,
           has_function_privilege('authenticated', p.oid, 'execute') as authenticated,
           has_function_privilege('service_role', p.oid, 'execute') as service_role
      from pg_proc p
     where p.oid = 'public.update_installment_statuses_batch(timestamptz, integer)'::regprocedure`;
  assert.equal(fn!.prosecdef, true);
  assert.ok((fn!.proconfig as string[]).includes('search_path=pg_catalog, pg_temp'), `proconfig: ${fn!.proconfig}`);
  assert.deepEqual([fn!.anon, fn!.authenticated, fn!.service_role], [false, false, true]);

  await setUp();
  await assert.rejects(
    sql.begin(async (tx) => {
      await tx`set local role authenticated`;
      await tx`select * from public.update_installment_statuses_batch(${AS_OF}::timestamptz, 10)`;
    }),
    /permission denied for function update_installment_statuses_batch/,
  );
  const flipped = await sql.begin(async (tx) => {
    await tx`set local role service_role`;
    return tx`select * from public.update_installment_statuses_batch(${AS_OF}::timestamptz, 10)`;
  });
  assert.equal(flipped.reduce((s, r) => s + (r.updated_count as number), 0), 10);
});
