// When the built-in scheduler wakes up. The same instants pg_cron uses for `* * * * *` (every
// minute boundary, UTC) and `0 7 * * *` (the daily sweep), so every deployment has one timing
// story: a run at each minute boundary, whose as-of instant is that boundary or a little later.
//
// Why every minute: an installment is overdue once its agency-local cutoff instant has passed,
// and with agencies in every zone a cutoff can fall at any minute of the UTC day (Kathmandu is
// +05:45, Chatham +12:45, and an agency may pick 16:59:30). The first tick strictly after a
// cutoff is at most 60 s later; a tick exactly at the cutoff does not flip it (the rule needs
// as-of > cutoff), so the next one does, 60 s later. test/schedule-timeliness.test.ts checks
// this for every zone and every day of a year.

export const TICK_PERIOD_MS = 60_000;
const DAY_MS = 86_400_000;

/** The daily sweep, `0 7 * * *` in pg_cron terms: 07:00 UTC (17:00 in Brisbane). */
export const DAILY_SWEEP_UTC = { hour: 7, minute: 0 } as const;

/** The first tick strictly after `instantMs` (epoch milliseconds): the next minute boundary. */
export function nextTickAfter(instantMs: number): number {
  return (Math.floor(instantMs / TICK_PERIOD_MS) + 1) * TICK_PERIOD_MS;
}

/** Whether the tick at `tickMs` is the daily sweep (07:00:00 UTC). */
export function isDailySweep(tickMs: number): boolean {
  const msOfDay = ((tickMs % DAY_MS) + DAY_MS) % DAY_MS;
  return msOfDay === (DAILY_SWEEP_UTC.hour * 60 + DAILY_SWEEP_UTC.minute) * 60_000;
}
