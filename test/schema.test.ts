// What the schema accepts and refuses (issue 2 §3). Bad input gets an error that names the bad
// value, and changes nothing. The shape of the tables (types, defaults, indexes, RLS) is pinned
// by the pgTAP suite supabase/tests/schema.test.sql; this file tests behaviour.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';

const db = await freshDatabase();
const sql = db.sql;

interface PgError extends Error {
  code?: string;
}

/** Asserts the promise is refused with `code`, and that the message contains every `mentions`. */
async function refused(promise: Promise<unknown>, code: string, ...mentions: string[]): Promise<void> {
  await assert.rejects(promise, (e: PgError) => {
    assert.equal(e.code, code, `expected SQLSTATE ${code}, got ${e.code}: ${e.message}`);
    for (const m of mentions) assert.ok(e.message.includes(m), `error "${e.message}" should mention ${m}`);
    return true;
  });
}

async function count(table: 'agencies' | 'payment_plans' | 'installments'): Promise<number> {
  const [{ n }] = await sql`select count(*)::int as n from ${sql(table)}`;
  return n as number;
}

async function newAgency(name = 'Agency'): Promise<string> {
  const [a] = await sql`insert into agencies (name) values (${name}) returning id`;
  return a!.id as string;
}

async function newPlan(agencyId: string): Promise<string> {
  const [p] = await sql`insert into payment_plans (agency_id) values (${agencyId}) returning id`;
  return p!.id as string;
}

test('the minimal inserts of the contract work and fill in the defaults', async () => {
  const [agency] = await sql`insert into agencies (name) values ('Minimal') returning *`;
  assert.equal(agency!.timezone, 'Australia/Brisbane');
  assert.equal(agency!.overdue_cutoff_time, '17:00:00');
  assert.equal(agency!.due_soon_threshold_days, 4);
  assert.match(agency!.id, /^[0-9a-f-]{36}$/);
  assert.ok(agency!.created_at instanceof Date && agency!.updated_at instanceof Date);

  const [plan] = await sql`insert into payment_plans (agency_id) values (${agency!.id}) returning *`;
  assert.equal(plan!.status, 'active');
  assert.match(plan!.id, /^[0-9a-f-]{36}$/);

  const [installment] = await sql`
    insert into installments (payment_plan_id, agency_id, amount, student_due_date)
    values (${plan!.id}, ${agency!.id}, 250.5, '2024-06-01') returning *`;
  assert.equal(installment!.status, 'pending');
  assert.equal(installment!.amount, '250.50');
  assert.equal(installment!.college_due_date, null);
  assert.match(installment!.id, /^[0-9a-f-]{36}$/);

  const [draft] = await sql`
    insert into installments (payment_plan_id, agency_id, amount, student_due_date, status)
    values (${plan!.id}, ${agency!.id}, 10, '2024-07-01', 'draft') returning status`;
  assert.equal(draft!.status, 'draft');
});

for (const bad of ['Mars/Olympus', '', 'UTC; drop table agencies', '+25:00', 'Australia/Brisbane ']) {
  test(`time zone ${JSON.stringify(bad)} is refused on insert and update, naming the value`, async () => {
    const before = await count('agencies');
    await refused(sql`insert into agencies (name, timezone) values ('Bad zone', ${bad})`, '22023', `"${bad}"`);
    assert.equal(await count('agencies'), before, 'nothing inserted');

    const id = await newAgency();
    await refused(sql`update agencies set timezone = ${bad} where id = ${id}`, '22023', `"${bad}"`);
    const [row] = await sql`select timezone from agencies where id = ${id}`;
    assert.equal(row!.timezone, 'Australia/Brisbane', 'nothing changed');
    const [{ exists }] = await sql`select to_regclass('public.agencies') is not null as exists`;
    assert.ok(exists);
  });
}

test('time zone names are matched without regard to case and stored in their canonical spelling', async () => {
  const cases = [
    ['australia/brisbane', 'Australia/Brisbane'],
    ['AMERICA/LOS_ANGELES', 'America/Los_Angeles'],
    ['asia/kathmandu', 'Asia/Kathmandu'],
    ['pacific/chatham', 'Pacific/Chatham'],
    ['utc', 'UTC'],
  ];
  for (const [given, canonical] of cases) {
    const [row] = await sql`insert into agencies (name, timezone) values ('Case', ${given!}) returning id, timezone`;
    assert.equal(row!.timezone, canonical, `${given} on insert`);
    const [updated] = await sql`update agencies set timezone = lower(${canonical!}) where id = ${row!.id} returning timezone`;
    assert.equal(updated!.timezone, canonical, `${given} on update`);
  }
});

test('due_soon_threshold_days outside 1–30 is refused, naming the value; 1 and 30 are accepted', async () => {
  const before = await count('agencies');
  for (const bad of [0, 31, -1]) {
    await refused(sql`insert into agencies (name, due_soon_threshold_days) values ('Threshold', ${bad})`, '22023', String(bad));
  }
  assert.equal(await count('agencies'), before);
  const id = await newAgency();
  await refused(sql`update agencies set due_soon_threshold_days = 31 where id = ${id}`, '22023', '31');
  for (const good of [1, 30]) {
    const [row] = await sql`update agencies set due_soon_threshold_days = ${good} where id = ${id} returning due_soon_threshold_days`;
    assert.equal(row!.due_soon_threshold_days, good);
  }
});

test('overdue_cutoff_time must be a time of day: 24:00:01 and 24:00 are refused, 00:00 and 23:59:59 accepted', async () => {
  const before = await count('agencies');
  await refused(sql`insert into agencies (name, overdue_cutoff_time) values ('Cutoff', '24:00:01')`, '22008', '24:00:01');
  await refused(sql`insert into agencies (name, overdue_cutoff_time) values ('Cutoff', '24:00')`, '22023', '24:00');
  assert.equal(await count('agencies'), before);
  const id = await newAgency();
  await refused(sql`update agencies set overdue_cutoff_time = '24:00' where id = ${id}`, '22023', '24:00');
  for (const good of ['00:00:00', '23:59:59']) {
    const [row] = await sql`update agencies set overdue_cutoff_time = ${good} where id = ${id} returning overdue_cutoff_time`;
    assert.equal(row!.overdue_cutoff_time, good);
  }
});

test('an installment whose agency differs from its plan\'s is refused on insert and on update', async () => {
  const a = await newAgency('A');
  const b = await newAgency('B');
  const planA = await newPlan(a);
  const planB = await newPlan(b);
  const before = await count('installments');

  await refused(
    sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date) values (${planA}, ${b}, 100, '2024-06-01')`,
    '23514', b, a, planA,
  );
  assert.equal(await count('installments'), before, 'nothing inserted');

  const [ok] = await sql`
    insert into installments (payment_plan_id, agency_id, amount, student_due_date) values (${planA}, ${a}, 100, '2024-06-01') returning id`;
  const id = ok!.id as string;
  await refused(sql`update installments set agency_id = ${b} where id = ${id}`, '23514', b, a);
  await refused(sql`update installments set payment_plan_id = ${planB} where id = ${id}`, '23514', planB);
  // Moving the plan to another agency would orphan its installment's agency: the composite key refuses.
  await refused(sql`update payment_plans set agency_id = ${b} where id = ${planA}`, '23503');
  const [row] = await sql`
    select i.agency_id, i.payment_plan_id, p.agency_id as plan_agency
      from installments i join payment_plans p on p.id = i.payment_plan_id where i.id = ${id}`;
  assert.deepEqual({ ...row }, { agency_id: a, payment_plan_id: planA, plan_agency: a }, 'nothing changed');

  const missing = '00000000-0000-0000-0000-000000000001';
  await refused(
    sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date) values (${missing}, ${a}, 100, '2024-06-01')`,
    '23503', missing,
  );
});

test('amounts must be positive and statuses must be known values', async () => {
  const a = await newAgency();
  const plan = await newPlan(a);
  const before = await count('installments');
  for (const amount of [0, -5]) {
    await refused(
      sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date) values (${plan}, ${a}, ${amount}, '2024-06-01')`,
      '23514', 'installments_amount_positive',
    );
  }
  await refused(
    sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date, status) values (${plan}, ${a}, 1, '2024-06-01', 'late')`,
    '23514', 'installments_status_valid',
  );
  await refused(sql`insert into payment_plans (agency_id, status) values (${a}, 'paused')`, '23514', 'payment_plans_status_valid');
  await refused(sql`insert into users (id, agency_id, role) values (gen_random_uuid(), ${a}, 'owner')`, '23514', 'users_role_valid');
  assert.equal(await count('installments'), before);
});
