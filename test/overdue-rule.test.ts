// The overdue rule, on a real PostgreSQL (issue 2 §4–§5).
//
// A pending installment of an active plan becomes overdue when p_as_of is later than
// (student_due_date + overdue_cutoff_time) AT TIME ZONE agency.timezone. Every expected instant
// below is worked out by hand from the zone's UTC offset on that date and written down as a UTC
// literal; none is computed by the function under test or by PostgreSQL.
//
// Every case runs in a transaction that is rolled back, so cases cannot see each other's rows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { connect } from '../src/db/connect.ts';
import type postgres from 'postgres';

/** A transaction of the test database's connection. */
type Sql = postgres.TransactionSql<Record<string, never>>;

const db = await freshDatabase();

class Rollback {
  constructor(readonly value: unknown) {}
}

/** Runs `body` in a transaction and always rolls it back, returning what `body` returned. */
async function rolledBack<T>(body: (tx: Sql) => Promise<T>): Promise<T> {
  try {
    await db.sql.begin(async (tx) => {
      throw new Rollback(await body(tx));
    });
  } catch (e) {
    if (e instanceof Rollback) return e.value as T;
    throw e;
  }
  throw new Error('unreachable: the transaction always rolls back');
}

interface AgencyFixture {
  id: string;
  /** An active payment plan of the agency. */
  planId: string;
}

async function createAgency(tx: Sql, name: string, timezone: string, cutoff: string): Promise<AgencyFixture> {
  const [agency] = await tx`
    insert into public.agencies (name, timezone, overdue_cutoff_time) values (${name}, ${timezone}, ${cutoff}) returning id`;
  const [plan] = await tx`insert into public.payment_plans (agency_id) values (${agency!.id}) returning id`;
  return { id: agency!.id as string, planId: plan!.id as string };
}

/** One installment per due date, on the fixture's plan; returns their ids in the same order. */
async function addInstallments(tx: Sql, a: AgencyFixture, dueDates: string[], status = 'pending'): Promise<string[]> {
  const rows = await tx`
    insert into public.installments (payment_plan_id, agency_id, amount, student_due_date, status)
    select ${a.planId}, ${a.id}, 100, d.due::date, ${status} from unnest(${dueDates}::text[]) as d(due)
    returning id, student_due_date::text as due`;
  // RETURNING order is not promised: pair each requested date with a row of that date.
  const byDue = new Map<string, string[]>();
  for (const r of rows) byDue.set(r.due as string, [...(byDue.get(r.due as string) ?? []), r.id as string]);
  return dueDates.map((due) => byDue.get(due)!.shift()!);
}

interface StatusChange {
  agency_id: string;
  updated_count: number;
  transitions: { pending_to_overdue: number };
}

// Instants travel as text: postgres.js serialises a timestamptz parameter through a JS Date,
// which would cut '…07:00:00.000001Z' down to whole milliseconds.
async function runAt(tx: Sql, asOf: string): Promise<StatusChange[]> {
  const rows = await tx`select * from public.update_installment_statuses(${asOf}::text::timestamptz)`;
  return rows.map((r) => ({ agency_id: r.agency_id, updated_count: r.updated_count, transitions: r.transitions }));
}

async function previewAt(tx: Sql, asOf: string, agencyId: string | null = null): Promise<StatusChange[]> {
  const rows = await tx`select * from public.preview_installment_status_changes(${asOf}::text::timestamptz, ${agencyId}::uuid)`;
  return rows.map((r) => ({ agency_id: r.agency_id, updated_count: r.updated_count, transitions: r.transitions }));
}

async function statusOf(tx: Sql, id: string): Promise<string> {
  const [row] = await tx`select status from public.installments where id = ${id}`;
  return row!.status as string;
}

async function statusesOf(tx: Sql, ids: string[]): Promise<string[]> {
  const rows = await tx`select id, status from public.installments where id = any(${ids}::uuid[])`;
  const byId = new Map(rows.map((r) => [r.id as string, r.status as string]));
  return ids.map((id) => byId.get(id)!);
}

async function auditCount(tx: Sql): Promise<number> {
  const [{ n }] = await tx`select count(*)::int as n from public.audit_logs`;
  return n as number;
}

function countFor(rows: StatusChange[], agencyId: string): number {
  return rows.find((r) => r.agency_id === agencyId)?.updated_count ?? 0;
}

// ---------------------------------------------------------------------------------------------
// The calendar: yesterday, a week ago, today before / at / after the cutoff, tomorrow
// ---------------------------------------------------------------------------------------------
// Brisbane is UTC+10 all year (no DST), so 17:00 on 2024-06-10 local is 2024-06-10T07:00:00Z.
const BRISBANE_CUTOFF_ON_JUNE_10 = '2024-06-10T07:00:00Z';

const calendarCases = [
  { when: 'a second before the cutoff', asOf: '2024-06-10T06:59:59Z', today: 'pending' },
  { when: 'exactly at the cutoff', asOf: BRISBANE_CUTOFF_ON_JUNE_10, today: 'pending' },
  { when: 'a microsecond after the cutoff', asOf: '2024-06-10T07:00:00.000001Z', today: 'overdue' },
  { when: 'late the same evening', asOf: '2024-06-10T13:59:59Z', today: 'overdue' },
];

for (const c of calendarCases) {
  test(`Brisbane 17:00 cutoff, ${c.when}: a week ago and yesterday overdue, today ${c.today}, tomorrow pending`, async () => {
    await rolledBack(async (tx) => {
      const agency = await createAgency(tx, 'Brisbane', 'Australia/Brisbane', '17:00');
      const [weekAgo, yesterday, today, tomorrow] = await addInstallments(tx, agency, [
        '2024-06-03', '2024-06-09', '2024-06-10', '2024-06-11',
      ]);
      const preview = await previewAt(tx, c.asOf);
      const rows = await runAt(tx, c.asOf);
      assert.deepEqual(preview, rows, 'the preview at the same instant agrees with the update');
      const expectedCount = c.today === 'overdue' ? 3 : 2;
      assert.deepEqual(rows, [{ agency_id: agency.id, updated_count: expectedCount, transitions: { pending_to_overdue: expectedCount } }]);
      assert.deepEqual(await statusesOf(tx, [weekAgo!, yesterday!, today!, tomorrow!]), ['overdue', 'overdue', c.today, 'pending']);
    });
  });
}

test('without p_as_of the function uses now(): long past due flips, far future due does not', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Brisbane', 'Australia/Brisbane', '17:00');
    // Seven days either side of today's UTC date is beyond any zone's offset and any cutoff.
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const [past, future] = await addInstallments(tx, agency, [day(-7), day(7)]);
    const rows = await tx`select * from public.update_installment_statuses()`;
    assert.equal(rows.length, 1);
    assert.deepEqual(await statusesOf(tx, [past!, future!]), ['overdue', 'pending']);
  });
});

// ---------------------------------------------------------------------------------------------
// Several zones at the same instant
// ---------------------------------------------------------------------------------------------
// Each agency's cutoff is set to its own local wall-clock time at the instant, so its installment
// due on that local date has its cutoff instant exactly at the instant: still pending then, and
// overdue one second later. An offset wrong by a single second, or a date taken in the wrong zone,
// turns one of the checks red. Local times worked out from the zone's UTC offset on the date:
const zonesAt = [
  {
    season: 'January (northern winter, southern summer)',
    instant: '2024-01-15T06:30:00Z',
    oneSecondLater: '2024-01-15T06:30:01Z',
    zones: [
      { zone: 'Australia/Brisbane', localDate: '2024-01-15', localTime: '16:30', why: 'AEST +10:00' },
      { zone: 'America/Los_Angeles', localDate: '2024-01-14', localTime: '22:30', why: 'PST -08:00, the day before' },
      { zone: 'Asia/Tokyo', localDate: '2024-01-15', localTime: '15:30', why: 'JST +09:00' },
      { zone: 'Asia/Kathmandu', localDate: '2024-01-15', localTime: '12:15', why: '+05:45' },
      { zone: 'America/St_Johns', localDate: '2024-01-15', localTime: '03:00', why: 'NST -03:30' },
      { zone: 'Pacific/Chatham', localDate: '2024-01-15', localTime: '20:15', why: 'CHADT +13:45 (summer)' },
      { zone: 'Pacific/Kiritimati', localDate: '2024-01-15', localTime: '20:30', why: '+14:00' },
      { zone: 'Pacific/Pago_Pago', localDate: '2024-01-14', localTime: '19:30', why: 'SST -11:00, the day before' },
    ],
  },
  {
    season: 'July (northern summer, southern winter)',
    instant: '2024-07-15T06:30:00Z',
    oneSecondLater: '2024-07-15T06:30:01Z',
    zones: [
      { zone: 'Australia/Brisbane', localDate: '2024-07-15', localTime: '16:30', why: 'AEST +10:00, no DST' },
      { zone: 'America/Los_Angeles', localDate: '2024-07-14', localTime: '23:30', why: 'PDT -07:00, the day before' },
      { zone: 'Asia/Tokyo', localDate: '2024-07-15', localTime: '15:30', why: 'JST +09:00' },
      { zone: 'Asia/Kathmandu', localDate: '2024-07-15', localTime: '12:15', why: '+05:45' },
      { zone: 'America/St_Johns', localDate: '2024-07-15', localTime: '04:00', why: 'NDT -02:30' },
      { zone: 'Pacific/Chatham', localDate: '2024-07-15', localTime: '19:15', why: 'CHAST +12:45 (winter)' },
      { zone: 'Pacific/Kiritimati', localDate: '2024-07-15', localTime: '20:30', why: '+14:00' },
      { zone: 'Pacific/Pago_Pago', localDate: '2024-07-14', localTime: '19:30', why: 'SST -11:00, the day before' },
    ],
  },
];

function shiftDate(date: string, days: number): string {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

for (const at of zonesAt) {
  test(`${at.season}: ${at.zones.length} zones at ${at.instant} each judge by their own clock`, async () => {
    await rolledBack(async (tx) => {
      const agencies: { zone: string; agency: AgencyFixture; dayBefore: string; onTheDay: string; dayAfter: string }[] = [];
      for (const z of at.zones) {
        const agency = await createAgency(tx, z.zone, z.zone, z.localTime);
        const [dayBefore, onTheDay, dayAfter] = await addInstallments(tx, agency, [
          shiftDate(z.localDate, -1), z.localDate, shiftDate(z.localDate, 1),
        ]);
        agencies.push({ zone: z.zone, agency, dayBefore: dayBefore!, onTheDay: onTheDay!, dayAfter: dayAfter! });
      }

      const previewAtInstant = await previewAt(tx, at.instant);
      const atInstant = await runAt(tx, at.instant);
      assert.deepEqual(previewAtInstant, atInstant, 'the preview agrees with the update exactly at the cutoffs');
      for (const a of agencies) {
        assert.equal(countFor(atInstant, a.agency.id), 1, `${a.zone} at ${at.instant}: only the day-before installment flips`);
        assert.deepEqual(await statusesOf(tx, [a.dayBefore, a.onTheDay, a.dayAfter]), ['overdue', 'pending', 'pending'],
          `${a.zone} at ${at.instant} (exactly its local cutoff)`);
      }

      const previewLater = await previewAt(tx, at.oneSecondLater);
      const later = await runAt(tx, at.oneSecondLater);
      assert.deepEqual(previewLater, later, 'the preview agrees with the update one second later');
      for (const a of agencies) {
        assert.equal(countFor(later, a.agency.id), 1, `${a.zone} at ${at.oneSecondLater}: the on-the-day installment flips`);
        assert.deepEqual(await statusesOf(tx, [a.dayBefore, a.onTheDay, a.dayAfter]), ['overdue', 'overdue', 'pending'],
          `${a.zone} one second after its local cutoff`);
      }
    });
  });
}

// The README's worked example: one instant, Brisbane and Los Angeles, both with the default 17:00.
test('README example: at 2024-07-15T07:30Z Brisbane is past 17:00 on the 15th, Los Angeles is not yet at 17:00 on the 15th', async () => {
  await rolledBack(async (tx) => {
    const brisbane = await createAgency(tx, 'Brisbane', 'Australia/Brisbane', '17:00');
    const losAngeles = await createAgency(tx, 'Los Angeles', 'America/Los_Angeles', '17:00');
    const [bne14, bne15] = await addInstallments(tx, brisbane, ['2024-07-14', '2024-07-15']);
    const [lax14, lax15] = await addInstallments(tx, losAngeles, ['2024-07-14', '2024-07-15']);
    // Brisbane: 17:00 AEST (+10) on the 15th = 07:00Z on the 15th, passed at 07:30Z.
    // Los Angeles: 17:00 PDT (-7) on the 14th = 00:00Z on the 15th, passed;
    //              17:00 PDT on the 15th = 00:00Z on the 16th, not yet.
    await runAt(tx, '2024-07-15T07:30:00Z');
    assert.deepEqual(await statusesOf(tx, [bne14!, bne15!, lax14!, lax15!]), ['overdue', 'overdue', 'overdue', 'pending']);
    // Exactly at Los Angeles' cutoff for the 15th it stays pending; a second later it flips.
    await runAt(tx, '2024-07-16T00:00:00Z');
    assert.equal(await statusOf(tx, lax15!), 'pending');
    await runAt(tx, '2024-07-16T00:00:01Z');
    assert.equal(await statusOf(tx, lax15!), 'overdue');
  });
});

// ---------------------------------------------------------------------------------------------
// DST change days
// ---------------------------------------------------------------------------------------------
// A local cutoff inside the missing hour (spring forward) does not exist; one inside the repeated
// hour (fall back) happens twice. PostgreSQL resolves both by reading the local time as STANDARD
// time (PostgreSQL docs, "Handling of Invalid or Ambiguous Timestamps"), so that is the instant
// the rule uses. `cutoffInstant` is that instant worked out by hand; `notYet` is an instant after
// the other reading (summer time) where the installment must still be pending.
const dstCases = [
  {
    name: 'Europe/London spring forward 2024-03-31 (01:00 GMT -> 02:00 BST), cutoff 01:30 inside the missing hour',
    zone: 'Europe/London', due: '2024-03-31', cutoff: '01:30',
    cutoffInstant: '2024-03-31T01:30:00Z', // 01:30 read as GMT (+00) = 02:30 BST
    notYet: '2024-03-31T00:30:01Z', //         just after 01:30 read as BST (+01)
  },
  {
    name: 'Europe/London fall back 2024-10-27 (02:00 BST -> 01:00 GMT), cutoff 01:30 inside the repeated hour',
    zone: 'Europe/London', due: '2024-10-27', cutoff: '01:30',
    cutoffInstant: '2024-10-27T01:30:00Z', // the second 01:30, GMT (+00)
    notYet: '2024-10-27T00:30:01Z', //         just after the first 01:30, BST (+01)
  },
  {
    name: 'Europe/London spring forward day, 17:00 cutoff is already summer time',
    zone: 'Europe/London', due: '2024-03-31', cutoff: '17:00',
    cutoffInstant: '2024-03-31T16:00:00Z', // 17:00 BST (+01)
    notYet: '2024-03-31T15:59:59Z',
  },
  {
    name: 'America/New_York spring forward 2024-03-10 (02:00 EST -> 03:00 EDT), cutoff 02:30 inside the missing hour',
    zone: 'America/New_York', due: '2024-03-10', cutoff: '02:30',
    cutoffInstant: '2024-03-10T07:30:00Z', // 02:30 read as EST (-05) = 03:30 EDT
    notYet: '2024-03-10T06:30:01Z', //         just after 02:30 read as EDT (-04)
  },
  {
    name: 'America/New_York fall back 2024-11-03 (02:00 EDT -> 01:00 EST), cutoff 01:30 inside the repeated hour',
    zone: 'America/New_York', due: '2024-11-03', cutoff: '01:30',
    cutoffInstant: '2024-11-03T06:30:00Z', // the second 01:30, EST (-05)
    notYet: '2024-11-03T05:30:01Z', //         just after the first 01:30, EDT (-04)
  },
  {
    name: 'America/New_York fall back day, 17:00 cutoff is already standard time',
    zone: 'America/New_York', due: '2024-11-03', cutoff: '17:00',
    cutoffInstant: '2024-11-03T22:00:00Z', // 17:00 EST (-05)
    notYet: '2024-11-03T21:59:59Z',
  },
  {
    name: 'Australia/Sydney spring forward 2024-10-06 (02:00 AEST -> 03:00 AEDT), cutoff 02:30 inside the missing hour',
    zone: 'Australia/Sydney', due: '2024-10-06', cutoff: '02:30',
    cutoffInstant: '2024-10-05T16:30:00Z', // 02:30 read as AEST (+10) = 03:30 AEDT
    notYet: '2024-10-05T15:30:01Z', //         just after 02:30 read as AEDT (+11)
  },
  {
    name: 'Australia/Sydney fall back 2024-04-07 (03:00 AEDT -> 02:00 AEST), cutoff 02:30 inside the repeated hour',
    zone: 'Australia/Sydney', due: '2024-04-07', cutoff: '02:30',
    cutoffInstant: '2024-04-06T16:30:00Z', // the second 02:30, AEST (+10)
    notYet: '2024-04-06T15:30:01Z', //         just after the first 02:30, AEDT (+11)
  },
  {
    name: 'Australia/Sydney spring forward day, 17:00 cutoff is already summer time',
    zone: 'Australia/Sydney', due: '2024-10-06', cutoff: '17:00',
    cutoffInstant: '2024-10-06T06:00:00Z', // 17:00 AEDT (+11)
    notYet: '2024-10-06T05:59:59Z',
  },
];

function plusOneSecond(iso: string): string {
  return new Date(Date.parse(iso) + 1000).toISOString();
}

for (const c of dstCases) {
  test(`DST: ${c.name}`, async () => {
    await rolledBack(async (tx) => {
      const agency = await createAgency(tx, c.zone, c.zone, c.cutoff);
      const [id] = await addInstallments(tx, agency, [c.due]);
      await runAt(tx, c.notYet);
      assert.equal(await statusOf(tx, id!), 'pending', `pending at ${c.notYet}`);
      assert.deepEqual(await runAt(tx, c.cutoffInstant), [], `nothing flips exactly at ${c.cutoffInstant}`);
      assert.equal(await statusOf(tx, id!), 'pending', `pending exactly at ${c.cutoffInstant}`);
      const after = plusOneSecond(c.cutoffInstant);
      assert.deepEqual(await runAt(tx, after), [{ agency_id: agency.id, updated_count: 1, transitions: { pending_to_overdue: 1 } }]);
      assert.equal(await statusOf(tx, id!), 'overdue', `overdue at ${after}`);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// What is never touched
// ---------------------------------------------------------------------------------------------
test('every status other than pending is left as it is', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Statuses', 'Australia/Brisbane', '17:00');
    const others = ['draft', 'overdue', 'paid', 'cancelled'];
    const otherIds: string[] = [];
    for (const status of others) otherIds.push(...(await addInstallments(tx, agency, ['2024-06-03'], status)));
    const [pending] = await addInstallments(tx, agency, ['2024-06-03']);
    const before = await tx`select id, status, updated_at from public.installments where id = any(${otherIds}::uuid[]) order by id`;

    const rows = await runAt(tx, '2024-06-20T00:00:00Z');
    assert.deepEqual(rows, [{ agency_id: agency.id, updated_count: 1, transitions: { pending_to_overdue: 1 } }]);
    assert.equal(await statusOf(tx, pending!), 'overdue');
    const after = await tx`select id, status, updated_at from public.installments where id = any(${otherIds}::uuid[]) order by id`;
    assert.deepEqual(after, before, 'draft, overdue, paid and cancelled rows are not even rewritten');
    const audited = await tx`select installment_id from public.audit_logs`;
    assert.deepEqual(audited.map((r) => r.installment_id), [pending]);
  });
});

test('installments of completed and cancelled plans are untouched; a plan made active again becomes eligible', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Plans', 'Australia/Brisbane', '17:00');
    const plan = async (status: string) => {
      const [p] = await tx`insert into public.payment_plans (agency_id, status) values (${agency.id}, ${status}) returning id`;
      return { id: agency.id, planId: p!.id as string };
    };
    const completed = await plan('completed');
    const cancelled = await plan('cancelled');
    const laterCompleted = await plan('active');
    const [ofCompleted] = await addInstallments(tx, completed, ['2024-06-03']);
    const [ofCancelled] = await addInstallments(tx, cancelled, ['2024-06-03']);
    const [ofLaterCompleted] = await addInstallments(tx, laterCompleted, ['2024-06-03']);
    const [ofActive] = await addInstallments(tx, agency, ['2024-06-03']);
    // A plan completed after its installments were created (the plan_active sync trigger) ...
    await tx`update public.payment_plans set status = 'completed' where id = ${laterCompleted.planId}`;
    // ... and an installment moved from an active plan onto the completed one.
    const [moved] = await addInstallments(tx, agency, ['2024-06-03']);
    await tx`update public.installments set payment_plan_id = ${completed.planId} where id = ${moved!}`;

    assert.deepEqual(await runAt(tx, '2024-06-20T00:00:00Z'), [
      { agency_id: agency.id, updated_count: 1, transitions: { pending_to_overdue: 1 } },
    ]);
    assert.deepEqual(await statusesOf(tx, [ofCompleted!, ofCancelled!, ofLaterCompleted!, moved!, ofActive!]),
      ['pending', 'pending', 'pending', 'pending', 'overdue']);
    assert.deepEqual(await previewAt(tx, '2024-06-20T00:00:00Z'), [], 'the preview ignores inactive plans too');

    // Completed -> active again: its pending installments are candidates once more.
    await tx`update public.payment_plans set status = 'active' where id = ${completed.planId}`;
    assert.deepEqual(await previewAt(tx, '2024-06-20T00:00:00Z'), [
      { agency_id: agency.id, updated_count: 2, transitions: { pending_to_overdue: 2 } },
    ]);
    assert.deepEqual(await runAt(tx, '2024-06-20T00:00:00Z'), [
      { agency_id: agency.id, updated_count: 2, transitions: { pending_to_overdue: 2 } },
    ]);
    assert.deepEqual(await statusesOf(tx, [ofCompleted!, moved!, ofCancelled!, ofLaterCompleted!]),
      ['overdue', 'overdue', 'pending', 'pending']);
  });
});

test('plan_active cannot be set by hand: an installment of a completed plan stays untouched', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Hand-set', 'Australia/Brisbane', '17:00');
    const [p] = await tx`insert into public.payment_plans (agency_id, status) values (${agency.id}, 'completed') returning id`;
    const [ofCompleted] = await addInstallments(tx, { id: agency.id, planId: p!.id as string }, ['2024-06-03']);
    const [ofActive] = await addInstallments(tx, agency, ['2024-06-03']);
    // Any member may update their installments; the copied flag must still follow the plan.
    await tx`update public.installments set plan_active = true where id = ${ofCompleted!}`;
    await tx`update public.installments set plan_active = false where id = ${ofActive!}`;
    await runAt(tx, '2024-06-20T00:00:00Z');
    assert.deepEqual(await statusesOf(tx, [ofCompleted!, ofActive!]), ['pending', 'overdue']);
  });
});

// ---------------------------------------------------------------------------------------------
// What it returns, what it writes, and when it writes nothing
// ---------------------------------------------------------------------------------------------
test('returns one row per agency that changed, with its count and transitions; none for the others', async () => {
  await rolledBack(async (tx) => {
    const three = await createAgency(tx, 'Three', 'Australia/Brisbane', '17:00');
    const one = await createAgency(tx, 'One', 'America/Los_Angeles', '17:00');
    const none = await createAgency(tx, 'Nothing due', 'Asia/Tokyo', '17:00');
    const empty = await createAgency(tx, 'No installments', 'Europe/London', '17:00');
    await addInstallments(tx, three, ['2024-06-01', '2024-06-02', '2024-06-03', '2024-12-01']);
    await addInstallments(tx, one, ['2024-06-01', '2024-12-01']);
    await addInstallments(tx, none, ['2024-12-01']);
    void empty;

    const rows = await runAt(tx, '2024-06-20T00:00:00Z');
    const expected = [
      { agency_id: three.id, updated_count: 3, transitions: { pending_to_overdue: 3 } },
      { agency_id: one.id, updated_count: 1, transitions: { pending_to_overdue: 1 } },
    ].sort((a, b) => a.agency_id.localeCompare(b.agency_id));
    assert.deepEqual(rows, expected);
    const [{ n }] = await tx`select count(*)::int as n from public.installments where status = 'overdue'`;
    assert.equal(n, 4, 'the counts returned are the rows changed');
  });
});

test('idempotent: a second call at the same instant changes nothing and returns no rows', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Twice', 'Australia/Brisbane', '17:00');
    await addInstallments(tx, agency, ['2024-06-01', '2024-06-02']);
    assert.equal((await runAt(tx, '2024-06-20T00:00:00Z')).length, 1);
    const audits = await auditCount(tx);
    const updatedAt = await tx`select id, updated_at from public.installments order by id`;
    assert.deepEqual(await runAt(tx, '2024-06-20T00:00:00Z'), []);
    assert.equal(await auditCount(tx), audits, 'no new audit rows');
    assert.deepEqual(await tx`select id, updated_at from public.installments order by id`, updatedAt, 'rows not rewritten');
  });
});

test('writes one audit row per change, in the same transaction, actor NULL, pending -> overdue', async () => {
  await rolledBack(async (tx) => {
    const a = await createAgency(tx, 'A', 'Australia/Brisbane', '17:00');
    const b = await createAgency(tx, 'B', 'Asia/Kathmandu', '17:00');
    const aIds = await addInstallments(tx, a, ['2024-06-01', '2024-06-02']);
    const bIds = await addInstallments(tx, b, ['2024-06-01']);
    await addInstallments(tx, a, ['2024-06-01'], 'paid');
    await runAt(tx, '2024-06-20T00:00:00Z');

    const audit = await tx`
      select agency_id, installment_id, old_status, new_status, actor_id, xmin::text as xid
        from public.audit_logs order by installment_id`;
    const expected = [...aIds.map((id) => ({ agency: a.id, id })), ...bIds.map((id) => ({ agency: b.id, id }))]
      .sort((x, y) => x.id.localeCompare(y.id));
    assert.deepEqual(
      audit.map((r) => ({ agency_id: r.agency_id, installment_id: r.installment_id, old_status: r.old_status, new_status: r.new_status, actor_id: r.actor_id })),
      expected.map((e) => ({ agency_id: e.agency, installment_id: e.id, old_status: 'pending', new_status: 'overdue', actor_id: null })),
    );
    // Same transaction: the audit rows and the status changes carry the same transaction id.
    const changed = await tx`select distinct xmin::text as xid from public.installments where status = 'overdue'`;
    assert.equal(changed.length, 1);
    assert.deepEqual([...new Set(audit.map((r) => r.xid))], [changed[0]!.xid]);
  });
});

test('all or nothing: when an audit row cannot be written, no status changes either', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Atomic', 'Australia/Brisbane', '17:00');
    const [first, second] = await addInstallments(tx, agency, ['2024-06-01', '2024-06-02']);
    // Refuse the audit row of the second installment only: the first flip and its audit row
    // must be undone with it.
    await tx.unsafe(`
      create function public.test_refuse_one_audit_row() returns trigger language plpgsql as $$
      begin raise exception 'audit refused by the test'; end $$;
      create trigger test_refuse_one_audit_row before insert on public.audit_logs
        for each row when (new.installment_id = '${second}') execute function public.test_refuse_one_audit_row();`);
    await assert.rejects(
      tx.savepoint((sp) => sp`select * from public.update_installment_statuses('2024-06-20T00:00:00Z')`),
      /audit refused by the test/,
    );
    assert.deepEqual(await statusesOf(tx, [first!, second!]), ['pending', 'pending']);
    assert.equal(await auditCount(tx), 0);
  });
});

test('the future is refused with an error naming the instant, and nothing changes', async () => {
  await rolledBack(async (tx) => {
    const agency = await createAgency(tx, 'Future', 'Australia/Brisbane', '17:00');
    const [id] = await addInstallments(tx, agency, ['2024-06-01']);
    const [{ future }] = await tx`select (clock_timestamp() + interval '1 minute')::text as future`;
    await assert.rejects(
      tx.savepoint((sp) => sp`select * from public.update_installment_statuses(${future}::text::timestamptz)`),
      (e: Error & { code?: string }) => {
        assert.match(e.message, /is in the future/);
        assert.ok(e.message.includes(String(future).slice(0, 16)), `"${e.message}" should name ${future}`);
        assert.equal(e.code, '22023');
        return true;
      },
    );
    assert.equal(await statusOf(tx, id!), 'pending');
    assert.equal(await auditCount(tx), 0);
    await assert.rejects(
      tx.savepoint((sp) => sp`select * from public.update_installment_statuses(null)`),
      /p_as_of must not be null/,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The read-only preview
// ---------------------------------------------------------------------------------------------
test('preview returns exactly what the update then does, and changes nothing itself', async () => {
  await rolledBack(async (tx) => {
    const zones = ['Australia/Brisbane', 'America/Los_Angeles', 'Asia/Kathmandu', 'Pacific/Chatham'];
    for (const zone of zones) {
      const agency = await createAgency(tx, zone, zone, '17:00');
      await addInstallments(tx, agency, ['2024-07-13', '2024-07-14', '2024-07-15', '2024-07-16']);
    }
    const instant = '2024-07-15T06:30:00Z';
    const preview = await previewAt(tx, instant);
    assert.ok(preview.length > 0);
    assert.equal(await auditCount(tx), 0, 'the preview writes no audit rows');
    const [{ n }] = await tx`select count(*)::int as n from public.installments where status <> 'pending'`;
    assert.equal(n, 0, 'the preview changes no status');
    assert.deepEqual(await runAt(tx, instant), preview);
  });
});

test('preview accepts future instants and filters by agency', async () => {
  await rolledBack(async (tx) => {
    const a = await createAgency(tx, 'A', 'Australia/Brisbane', '17:00');
    const b = await createAgency(tx, 'B', 'America/Los_Angeles', '17:00');
    // Due three days after today's UTC date: not overdue now in any zone, overdue in every zone
    // five days from now.
    const inThreeDays = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const inFiveDays = new Date(Date.now() + 5 * 86_400_000).toISOString();
    await addInstallments(tx, a, [inThreeDays, inThreeDays]);
    await addInstallments(tx, b, [inThreeDays]);

    assert.deepEqual(await previewAt(tx, new Date().toISOString()), []);
    const all = await previewAt(tx, inFiveDays);
    assert.deepEqual(all, [
      { agency_id: a.id, updated_count: 2, transitions: { pending_to_overdue: 2 } },
      { agency_id: b.id, updated_count: 1, transitions: { pending_to_overdue: 1 } },
    ].sort((x, y) => x.agency_id.localeCompare(y.agency_id)));
    assert.deepEqual(await previewAt(tx, inFiveDays, b.id), [{ agency_id: b.id, updated_count: 1, transitions: { pending_to_overdue: 1 } }]);
    assert.deepEqual(await previewAt(tx, inFiveDays, '00000000-0000-0000-0000-000000000000'), []);
    const [{ n }] = await tx`select count(*)::int as n from public.installments where status = 'pending'`;
    assert.equal(n, 3, 'still all pending');
  });
});

// ---------------------------------------------------------------------------------------------
// Two runs at once
// ---------------------------------------------------------------------------------------------
test('two overlapping runs change and audit each installment once', async () => {
  // Committed data, so it gets a database of its own instead of a rolled-back transaction.
  const race = await freshDatabase();
  const first = connect(race.url, { max: 1 });
  const second = connect(race.url, { max: 1 });
  try {
    const ids: string[] = [];
    for (const zone of ['Australia/Brisbane', 'America/Los_Angeles', 'Asia/Kathmandu']) {
      const [agency] = await race.sql`insert into public.agencies (name, timezone) values (${zone}, ${zone}) returning id`;
      const [plan] = await race.sql`insert into public.payment_plans (agency_id) values (${agency!.id}) returning id`;
      const rows = await race.sql`
        insert into public.installments (payment_plan_id, agency_id, amount, student_due_date)
        select ${plan!.id}, ${agency!.id}, 10, date '2024-06-01' - n from generate_series(0, 49) n returning id`;
      ids.push(...rows.map((r) => r.id as string));
    }
    const asOf = '2024-06-20T00:00:00Z';
    const [{ pid: secondPid }] = await second`select pg_backend_pid() as pid`;
    let secondRun: Promise<postgres.RowList<postgres.Row[]>> | undefined;
    let secondWaited = false;
    const firstRows = await first.begin(async (tx) => {
      const rows = await tx`select * from public.update_installment_statuses(${asOf}::text::timestamptz)`;
      // The second run starts while the first still holds its row locks, and must wait for them.
      secondRun = second`select * from public.update_installment_statuses(${asOf}::text::timestamptz)`.execute();
      for (let i = 0; i < 200; i++) {
        const [w] = await race.sql`select wait_event_type from pg_stat_activity where pid = ${secondPid}`;
        if (w?.wait_event_type === 'Lock') {
          secondWaited = true;
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return rows;
    });
    const secondRows = await secondRun!;
    assert.ok(secondWaited, 'the second run overlapped the first (it waited on its row locks)');
    const total = (rows: readonly postgres.Row[]) => rows.reduce((n, r) => n + (r.updated_count as number), 0);
    assert.equal(total(firstRows), ids.length);
    assert.equal(total(secondRows), 0, 'the second run finds nothing left to change');
    const [{ n, distinct }] = await race.sql`
      select count(*)::int as n, count(distinct installment_id)::int as distinct from public.audit_logs`;
    assert.deepEqual({ n, distinct }, { n: ids.length, distinct: ids.length });
  } finally {
    await first.end();
    await second.end();
  }
});
