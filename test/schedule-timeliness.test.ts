// Timeliness, proved with a simulated clock instead of waiting: for every zone PostgreSQL knows,
// every day of 2026 and several cutoff times (the default 17:00, times inside the spring-forward
// gap and the fall-back overlap of most DST zones, midnight, and a sub-second one), PostgreSQL
// computes the cutoff instant exactly as the rule does — (day + cutoff) AT TIME ZONE zone — and
// the scheduler's own tick function says when the first run after it happens. The lag between
// the two must never exceed 60 s, and the rule must not flip at a tick that falls exactly on
// the cutoff (so the first run that flips is the first tick strictly after it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { nextTickAfter, TICK_PERIOD_MS } from '../src/schedule/ticks.ts';

const db = await freshDatabase();

const YEAR_START = '2026-01-01';
const YEAR_END = '2026-12-31';
// 02:30 is inside the spring-forward gap and the fall-back overlap of Europe's and the US's
// zones (and Sydney's); 01:30 inside the US/UK overlap; 00:00 where DST changes at midnight
// (Santiago, Asuncion, Havana, Beirut…); 23:59:59.5 is not on a second, let alone a minute.
const CUTOFFS = ['17:00', '02:30', '01:30', '00:00', '23:59:59.5'];

interface Worst {
  lagMs: number;
  zone: string;
  day: string;
  cutoff: string;
  cutoffAt: string;
  tickAt: string;
}

test('every zone, every day of 2026: the first tick after each cutoff is at most 60 s later', async () => {
  const started = performance.now();
  // One row per zone: the cutoff instants (epoch ms) ordered by cutoff, then day.
  const rows = await db.sql<{ zone: string; at: number[] }[]>`
    select z.name as zone,
           array_agg(extract(epoch from (d.day + t.cutoff) at time zone z.name) * 1000
                     order by t.n, d.day)::float8[] as at
      from pg_timezone_names z
     cross join lateral (select g::date as day
                           from generate_series(${YEAR_START}::date, ${YEAR_END}::date, interval '1 day') g) as d
     cross join unnest(${CUTOFFS}::time[]) with ordinality as t(cutoff, n)
     group by z.name`;
  const fetchedMs = performance.now() - started;

  const days = Math.round((Date.parse(`${YEAR_END}T00:00:00Z`) - Date.parse(`${YEAR_START}T00:00:00Z`)) / 86_400_000) + 1;
  let checked = 0;
  let worst: Worst | null = null;
  let exactlyOnTick = 0;
  for (const { zone, at } of rows) {
    assert.equal(at.length, days * CUTOFFS.length, `${zone}: one instant per day and cutoff`);
    for (let i = 0; i < at.length; i++) {
      const cutoff = at[i]!;
      const tick = nextTickAfter(cutoff);
      const lag = tick - cutoff;
      // Strictly after the cutoff, and the first such tick: the one before is not after it.
      assert.ok(tick > cutoff, `${zone}: tick ${tick} is not after cutoff ${cutoff}`);
      assert.ok(tick - TICK_PERIOD_MS <= cutoff, `${zone}: a tick between ${cutoff} and ${tick} was skipped`);
      assert.ok(lag <= 60_000, `${zone}: lag ${lag} ms exceeds 60 s`);
      if (lag === TICK_PERIOD_MS) exactlyOnTick++;
      if (!worst || lag > worst.lagMs) {
        const day = new Date(Date.parse(`${YEAR_START}T00:00:00Z`) + (i % days) * 86_400_000).toISOString().slice(0, 10);
        worst = { lagMs: lag, zone, day, cutoff: CUTOFFS[Math.floor(i / days)]!, cutoffAt: new Date(cutoff).toISOString(), tickAt: new Date(tick).toISOString() };
      }
      checked++;
    }
  }
  assert.ok(rows.length > 400, `pg_timezone_names has only ${rows.length} zones`);
  assert.ok(worst);
  assert.ok(worst.lagMs <= 60_000);
  // Cutoffs on a minute boundary wait the full minute: the tick at the cutoff itself must not
  // flip (next test), so the next one does. That is the worst case, and it is within 60 s.
  assert.equal(worst.lagMs, 60_000);
  console.log(
    `timeliness: ${checked} cutoff instants (${rows.length} zones x ${days} days x ${CUTOFFS.length} cutoffs) in ${Math.round(performance.now() - started)} ms ` +
      `(SQL ${Math.round(fetchedMs)} ms); largest lag ${worst.lagMs / 1000} s, first at ${worst.zone} ${worst.day} cutoff ${worst.cutoff} ` +
      `(${worst.cutoffAt} -> tick ${worst.tickAt}); ${exactlyOnTick} cutoffs fall exactly on a tick and wait the full 60 s`,
  );
});

test('DST change days in every zone: the rule does not flip at a tick exactly on the cutoff, and flips at the first tick after', async () => {
  // The days of 2026 whose length is not 24 h in a zone (spring forward, fall back, and zones
  // that shift at other times), plus one ordinary winter and summer day per zone; for each,
  // the boundary function of the rule (last_overdue_due_date, which decides which due dates
  // the job reads) is asked at the cutoff instant and at the scheduler's first tick after it.
  const rows = await db.sql<{ zone: string; day: string; cutoff: string; at: number; flipped_at_cutoff: boolean; flipped_at_tick: boolean | null; flipped_before_tick: boolean | null; tick: number }[]>`
    with days as (
      select z.name as zone, d::date as day
        from pg_timezone_names z
       cross join generate_series(${YEAR_START}::date, ${YEAR_END}::date, interval '1 day') d
       where ((d::date + 1)::timestamp at time zone z.name) - (d::date::timestamp at time zone z.name) <> interval '24 hours'
          or d::date in (date '2026-01-15', date '2026-07-15')
    ), cutoffs as (
      select zone, day, t.cutoff, (day + t.cutoff) at time zone zone as at
        from days cross join unnest(${CUTOFFS}::time[]) as t(cutoff)
    ), ticks as (
      -- The tick the scheduler would pick is checked against nextTickAfter below.
      select c.*, date_trunc('minute', c.at) + interval '1 minute' as tick from cutoffs c
    )
    select zone, day::text as day, cutoff::text as cutoff,
           (extract(epoch from at) * 1000)::float8 as at,
           (extract(epoch from tick) * 1000)::float8 as tick,
           public.last_overdue_due_date(zone, cutoff, at) >= day as flipped_at_cutoff,
           public.last_overdue_due_date(zone, cutoff, tick) >= day and at < tick as flipped_at_tick,
           public.last_overdue_due_date(zone, cutoff, tick - interval '1 minute') >= day and at < tick - interval '1 minute' as flipped_before_tick
      from ticks`;
  let dstDays = 0;
  for (const r of rows) {
    assert.equal(nextTickAfter(r.at), r.tick, `${r.zone} ${r.day} ${r.cutoff}: tick`);
    assert.equal(r.flipped_at_cutoff, false, `${r.zone} ${r.day} ${r.cutoff}: flipped exactly at the cutoff instant`);
    assert.equal(r.flipped_at_tick, true, `${r.zone} ${r.day} ${r.cutoff}: not flipped at the first tick after the cutoff`);
    assert.equal(r.flipped_before_tick, false, `${r.zone} ${r.day} ${r.cutoff}: flipped at the tick before the cutoff`);
    if (!r.day.endsWith('-01-15') && !r.day.endsWith('-07-15')) dstDays++;
  }
  assert.ok(dstDays > 300, `expected hundreds of DST change days across the zones, found ${dstDays / CUTOFFS.length}`);
  console.log(`timeliness on DST days: ${rows.length} (zone, day, cutoff) cases, ${dstDays / CUTOFFS.length} zone-days with a clock change`);
});

test('end to end on DST days: an installment is not overdue at its cutoff and is at the first tick after', async () => {
  // Real rows through the real read path (preview_installment_status_changes, which applies the
  // same rule as the update and accepts any instant): one agency per zone and cutoff, one
  // installment due on each of the zone's 2026 clock-change days.
  const zones = ['Europe/London', 'America/New_York', 'Australia/Sydney', 'America/Santiago', 'Pacific/Chatham', 'America/St_Johns', 'Australia/Lord_Howe', 'Europe/Berlin'];
  const cases = await db.sql<{ zone: string; cutoff: string; day: string }[]>`
    with agencies as (
      insert into public.agencies (name, timezone, overdue_cutoff_time)
      select z || ' ' || c, z, c::time
        from unnest(${zones}::text[]) z cross join unnest(${CUTOFFS}::text[]) c
      returning id, timezone, overdue_cutoff_time
    ), plans as (
      insert into public.payment_plans (agency_id) select id from agencies returning id, agency_id
    ), days as (
      select a.id as agency_id, p.id as plan_id, a.timezone, a.overdue_cutoff_time as cutoff, d::date as day
        from agencies a join plans p on p.agency_id = a.id
       cross join generate_series(${YEAR_START}::date, ${YEAR_END}::date, interval '1 day') d
       where ((d::date + 1)::timestamp at time zone a.timezone) - (d::date::timestamp at time zone a.timezone) <> interval '24 hours'
    ), inserted as (
      insert into public.installments (payment_plan_id, agency_id, amount, student_due_date)
      select plan_id, agency_id, 100, day from days
      returning id
    )
    select d.timezone as zone, d.cutoff::text as cutoff, d.day::text as day
      from days d
     where (select count(*) from inserted) > 0`;
  assert.ok(cases.length >= zones.length * CUTOFFS.length, `only ${cases.length} DST-day installments`);
  // An agency's installments are days apart, so at any instant the preview counts exactly those
  // whose cutoff has passed: at the k-th one's cutoff that is k-1, at the first tick after, k.
  const verdicts = await db.sql<{ zone: string; cutoff: string; day: string; rank: number; at_cutoff: number; at_tick: number; tick: number; at: number }[]>`
    select a.timezone as zone, a.overdue_cutoff_time::text as cutoff, i.student_due_date::text as day, i.rank::int as rank,
           (extract(epoch from c.at) * 1000)::float8 as at, (extract(epoch from c.tick) * 1000)::float8 as tick,
           (select coalesce(sum(p.updated_count), 0)::int from public.preview_installment_status_changes(c.at, a.id) p) as at_cutoff,
           (select coalesce(sum(p.updated_count), 0)::int from public.preview_installment_status_changes(c.tick, a.id) p) as at_tick
      from (select x.*, row_number() over (partition by x.agency_id order by x.student_due_date) as rank
              from public.installments x) i
      join public.agencies a on a.id = i.agency_id
     cross join lateral (select (i.student_due_date + a.overdue_cutoff_time) at time zone a.timezone as at) c0
     cross join lateral (select c0.at, date_trunc('minute', c0.at) + interval '1 minute' as tick) c`;
  assert.equal(verdicts.length, cases.length);
  for (const v of verdicts) {
    assert.equal(nextTickAfter(v.at), v.tick, `${v.zone} ${v.day} ${v.cutoff}: tick`);
    assert.equal(v.at_cutoff, v.rank - 1, `${v.zone} ${v.day} ${v.cutoff}: overdue exactly at its cutoff`);
    assert.equal(v.at_tick, v.rank, `${v.zone} ${v.day} ${v.cutoff}: still pending at the first tick after its cutoff`);
  }
  console.log(`end to end: ${verdicts.length} installments due on DST change days in ${zones.length} zones`);
});
