// The built-in scheduler, driven by a fake clock (no waiting for minutes) with the real runner
// on a real database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { connect } from '../src/db/connect.ts';
import { JobRunner } from '../src/job/runner.ts';
import { BuiltinScheduler, type TickReport, type Timer } from '../src/schedule/scheduler.ts';
import { pruneRunLog } from '../src/schedule/queries.ts';

const db = await freshDatabase();

/** A clock that moves only when told to, firing due timers in order. */
class FakeTimer implements Timer {
  private seq = 0;
  private readonly pending = new Map<number, { at: number; fn: () => void }>();
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  nextAt(): number | null {
    const ats = [...this.pending.values()].map((p) => p.at);
    return ats.length ? Math.min(...ats) : null;
  }
  /** Moves to the earliest timer and fires it. */
  fireNext(): number {
    const [id, next] = [...this.pending.entries()].sort((a, b) => a[1].at - b[1].at)[0]!;
    this.pending.delete(id);
    this.t = Math.max(this.t, next.at);
    next.fn();
    return next.at;
  }
}

function reports(scheduler: BuiltinScheduler) {
  const queue: TickReport[] = [];
  const waiters: ((r: TickReport) => void)[] = [];
  scheduler.onTick((r) => {
    const w = waiters.shift();
    if (w) w(r);
    else queue.push(r);
  });
  return () => (queue.length ? Promise.resolve(queue.shift()!) : new Promise<TickReport>((resolve) => waiters.push(resolve)));
}

const runner = new JobRunner(db.sql, { retryDelaysMs: [10, 10] });

async function scheduleRuns() {
  return db.sql<{ status: string; records_updated: number; trigger: string }[]>`
    select status, records_updated, metadata->>'trigger' as trigger
      from jobs_log where metadata->>'trigger' = 'schedule' order by started_at`;
}

test('start runs at once (a restart loses no due run), then at every minute boundary', async () => {
  const agency = await createAgency(db.sql, 'Scheduled Agency', 'Asia/Tokyo');
  await addInstallments(db.sql, agency, [daysAgo(3), daysAgo(2)]);
  // 12:34:56.789 UTC on some day: the next boundary is 12:35:00.
  const timer = new FakeTimer(Date.parse('2026-05-04T12:34:56.789Z'));
  const scheduler = new BuiltinScheduler({ runner, timer });
  const next = reports(scheduler);
  scheduler.start();

  const first = await next();
  assert.equal(first.tick, null, 'the first run is the catch-up run, not a tick');
  assert.equal(first.outcome.kind, 'success');
  assert.equal(first.outcome.kind === 'success' && first.outcome.recordsUpdated, 2);
  assert.equal(timer.nextAt(), Date.parse('2026-05-04T12:35:00.000Z'), 'armed for the next minute boundary');

  const fired = timer.fireNext();
  const second = await next();
  assert.equal(second.tick, fired);
  assert.equal(second.outcome.kind, 'success');
  assert.equal(timer.nextAt(), Date.parse('2026-05-04T12:36:00.000Z'));

  // A clock that jumps (a laptop waking up, a long run): the next tick is the next boundary
  // after now, not a burst of the missed ones.
  timer.t = Date.parse('2026-05-04T15:00:30Z');
  timer.fireNext();
  await next();
  assert.equal(timer.nextAt(), Date.parse('2026-05-04T15:01:00.000Z'));

  await scheduler.stop();
  assert.equal(timer.nextAt(), null, 'stop clears the timer');
  const runs = await scheduleRuns();
  assert.deepEqual(runs.map((r) => [r.status, r.records_updated]), [['success', 2], ['success', 0], ['success', 0]]);

  // Restart after downtime: an installment that fell due meanwhile is flipped by the start-up
  // run, without waiting for a tick.
  await addInstallments(db.sql, agency, [daysAgo(1)]);
  const restarted = new BuiltinScheduler({ runner, timer });
  const nextAfterRestart = reports(restarted);
  restarted.start();
  const catchUp = await nextAfterRestart();
  assert.equal(catchUp.outcome.kind === 'success' && catchUp.outcome.recordsUpdated, 1);
  await restarted.stop();
  assert.equal(timer.nextAt(), null);
});

test('the 07:00 UTC tick is the daily sweep and prunes the run log', async () => {
  // An old no-change run (pruned) and an old run that changed data (kept).
  await db.sql`
    insert into jobs_log (job_name, started_at, completed_at, status, records_updated, metadata)
    values ('update-installment-statuses', now() - interval '10 days', now() - interval '10 days', 'success', 0, '{"trigger":"old-nothing"}'),
           ('update-installment-statuses', now() - interval '10 days', now() - interval '10 days', 'success', 5, '{"trigger":"old-changed"}')`;
  let pruneCalls = 0;
  const timer = new FakeTimer(Date.parse('2026-05-05T06:58:10Z'));
  const scheduler = new BuiltinScheduler({
    runner,
    timer,
    pruneRunLog: async () => {
      pruneCalls++;
      return (await pruneRunLog(db.sql))[0]!.deleted;
    },
  });
  const next = reports(scheduler);
  scheduler.start();
  await next(); // catch-up
  timer.fireNext();
  const at0659 = await next();
  assert.equal(at0659.tick, Date.parse('2026-05-05T06:59:00Z'));
  assert.equal(at0659.pruned, undefined);
  timer.fireNext();
  const at0700 = await next();
  assert.equal(at0700.tick, Date.parse('2026-05-05T07:00:00Z'));
  assert.equal(at0700.outcome.kind, 'success');
  assert.equal(at0700.pruned, 1);
  assert.equal(pruneCalls, 1);
  timer.fireNext();
  assert.equal((await next()).pruned, undefined, '07:01 is an ordinary tick');
  await scheduler.stop();
  const old = await db.sql`select metadata->>'trigger' as t from jobs_log where started_at < now() - interval '9 days'`;
  assert.deepEqual(old.map((r) => r.t), ['old-changed']);
});

test('several replicas tick together: the lock lets one do the work, nothing is counted twice', async () => {
  const agency = await createAgency(db.sql, 'Replicated Agency', 'Europe/London');
  await addInstallments(db.sql, agency, [daysAgo(5), daysAgo(4), daysAgo(3)]);
  const pools = [connect(db.url, { max: 2 }), connect(db.url, { max: 2 }), connect(db.url, { max: 2 })];
  try {
    const timer = new FakeTimer(Date.parse('2026-05-06T09:00:59.990Z'));
    const replicas = pools.map((sql) => new BuiltinScheduler({ runner: new JobRunner(sql, { retryDelaysMs: [] }), timer }));
    const nexts = replicas.map(reports);
    const before = (await db.sql`select count(*)::int as n from jobs_log`)[0]!.n as number;
    for (const r of replicas) r.start();
    const outcomes = await Promise.all(nexts.map((n) => n()));
    const kinds = outcomes.map((o) => o.outcome.kind);
    assert.ok(kinds.includes('success'), `no replica ran: ${kinds}`);
    assert.ok(kinds.every((k) => k === 'success' || k === 'busy'), `unexpected outcomes: ${kinds}`);
    const updated = outcomes.reduce((n, o) => n + (o.outcome.kind === 'success' ? o.outcome.recordsUpdated : 0), 0);
    assert.equal(updated, 3, 'each installment flipped exactly once');
    const successes = kinds.filter((k) => k === 'success').length;
    assert.equal((await db.sql`select count(*)::int as n from jobs_log`)[0]!.n, before + successes, 'busy replicas write no row');

    // The lock held elsewhere (the pg_cron procedure, a CLI run): every replica's tick is busy.
    const holder = await db.sql.reserve();
    try {
      await holder`select pg_advisory_lock(hashtextextended('update-installment-statuses', 0))`;
      const ticks = replicas.map(() => timer.fireNext());
      assert.ok(ticks.every((t) => t === Date.parse('2026-05-06T09:01:00Z')));
      const busy = await Promise.all(nexts.map((n) => n()));
      assert.deepEqual(busy.map((b) => b.outcome.kind), ['busy', 'busy', 'busy']);
      await holder`select pg_advisory_unlock(hashtextextended('update-installment-statuses', 0))`;
    } finally {
      holder.release();
    }
    await Promise.all(replicas.map((r) => r.stop()));
    assert.equal(timer.nextAt(), null);
    const [{ running }] = await db.sql`select count(*)::int as running from jobs_log where status = 'running'`;
    assert.equal(running, 0);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('a run that throws is reported and the scheduler keeps ticking', async () => {
  const timer = new FakeTimer(Date.parse('2026-05-07T10:00:00Z'));
  let calls = 0;
  const flaky = {
    run: async (options: { trigger: string }) => {
      calls++;
      if (calls === 1) throw new Error('connection refused');
      return runner.run(options);
    },
  };
  const scheduler = new BuiltinScheduler({ runner: flaky, timer });
  const next = reports(scheduler);
  scheduler.start();
  const failed = await next();
  assert.equal(failed.outcome.kind, 'error');
  assert.equal(timer.nextAt(), Date.parse('2026-05-07T10:01:00Z'), 'still armed after a throw');
  timer.fireNext();
  assert.equal((await next()).outcome.kind, 'success');
  await scheduler.stop();
});

test('OVERDUE_SCHEDULER decides whether the service runs the built-in scheduler', async () => {
  const { schedulerSetting, builtinSchedulerWanted, startBuiltinScheduler } = await import('../src/schedule/builtin.ts');
  assert.equal(schedulerSetting({}), 'auto');
  assert.equal(schedulerSetting({ OVERDUE_SCHEDULER: ' On ' }), 'on');
  assert.throws(() => schedulerSetting({ OVERDUE_SCHEDULER: 'sometimes' }), /OVERDUE_SCHEDULER: expected auto, on or off, got "sometimes"/);

  assert.equal((await builtinSchedulerWanted(db.sql, 'auto', true)).run, true, 'embedded: always');
  assert.equal((await builtinSchedulerWanted(db.sql, 'off', true)).run, false);
  // This cluster loads pg_cron, so auto leaves the schedule to it.
  const auto = await builtinSchedulerWanted(db.sql, 'auto', false);
  assert.equal(auto.run, false);
  assert.match(auto.reason, /pg_cron is loaded \(database "postgres"\).*npx overdue schedule install/);

  const timer = new FakeTimer(Date.parse('2026-05-08T06:59:59Z'));
  assert.equal(await startBuiltinScheduler({ sql: db.sql, runner, env: {}, embedded: false, timer }), null);
  const started = await startBuiltinScheduler({ sql: db.sql, runner, env: { OVERDUE_SCHEDULER: 'on' }, embedded: false, timer });
  assert.ok(started);
  const next = reports(started);
  assert.equal((await next()).outcome.kind, 'success');
  timer.fireNext();
  const sweep = await next();
  assert.equal(sweep.tick, Date.parse('2026-05-08T07:00:00Z'));
  assert.equal(typeof sweep.pruned, 'number', 'the service wires pruning to the daily sweep');
  await started.stop();
});
