// What "nothing lost, nothing half done" means, as queries: used after every fault and every
// concurrency test. The fixtures never insert an installment as overdue, so every overdue row
// must have been flipped by a run, and every flip must be recorded exactly once.
import assert from 'node:assert/strict';
import { connect, type Sql } from '../../src/db/connect.ts';
import { addInstallments, createAgency, daysAgo } from './fixtures.ts';

export interface Seeded {
  /** Installments due in the past (pending): the set every run must eventually flip. */
  due: string[];
  /** Due in the future, or already paid: must never flip. */
  untouchable: string[];
}

/** Three agencies in different zones: 40 past-due, 5 future and 3 paid installments each. */
export async function seedAgencies(sql: Sql, prefix = 'Agency'): Promise<Seeded> {
  const due: string[] = [];
  const untouchable: string[] = [];
  for (const zone of ['Australia/Brisbane', 'America/New_York', 'Europe/London']) {
    const a = await createAgency(sql, `${prefix} ${zone}`, zone);
    due.push(...(await addInstallments(sql, a, Array.from({ length: 40 }, (_, i) => daysAgo(2 + i)))));
    untouchable.push(...(await addInstallments(sql, a, Array.from({ length: 5 }, (_, i) => daysAgo(-3 - i)))));
    untouchable.push(...(await addInstallments(sql, a, [daysAgo(5), daysAgo(6), daysAgo(7)], 'paid')));
  }
  return { due, untouchable };
}

export interface Consistency {
  overdue: number;
  auditRows: number;
  runs: Record<string, number>;
}

/**
 * Every installment that changed has exactly one audit row, nothing changed without one, every
 * audit row belongs to a run that committed as success, the success rows count exactly the
 * audit rows, and no run is left `running`.
 */
export async function assertConsistent(sql: Sql, seeded?: Seeded): Promise<Consistency> {
  const duplicates = await sql`select installment_id, count(*)::int as n from audit_logs group by installment_id having count(*) > 1`;
  assert.deepEqual([...duplicates], [], 'an installment has more than one audit row');

  const unaudited = await sql`select i.id from installments i
                               where i.status = 'overdue'
                                 and not exists (select 1 from audit_logs a where a.installment_id = i.id)`;
  assert.deepEqual([...unaudited], [], 'an installment changed without an audit row');

  const phantom = await sql`select a.installment_id, i.status from audit_logs a join installments i on i.id = a.installment_id
                             where i.status is distinct from a.new_status`;
  assert.deepEqual([...phantom], [], 'an audit row records a change the installment does not have');

  const orphaned = await sql`select a.id, j.status from audit_logs a left join jobs_log j on j.id = a.job_id
                              where j.status is distinct from 'success'`;
  assert.deepEqual([...orphaned], [], 'an audit row belongs to no successful run (a half-done run leaked)');

  const [totals] = await sql`select (select count(*)::int from audit_logs) as audits,
                                    (select coalesce(sum(records_updated), 0)::int from jobs_log where status = 'success') as counted,
                                    (select count(*)::int from installments where status = 'overdue') as overdue`;
  assert.equal(totals!.counted, totals!.audits, 'jobs_log success rows do not count exactly the audit rows');

  const running = await sql`select id, started_at from jobs_log where status = 'running'`;
  assert.deepEqual([...running], [], 'a run was left running');

  if (seeded) {
    const [state] = await sql`select
        count(*) filter (where id = any(${seeded.due}::uuid[]) and status = 'overdue')::int as caught_up,
        count(*) filter (where id = any(${seeded.untouchable}::uuid[]) and status = 'overdue')::int as wrongly_flipped
      from installments`;
    assert.equal(state!.caught_up, seeded.due.length, 'not every due installment was caught up');
    assert.equal(state!.wrongly_flipped, 0, 'a future or paid installment was flipped');
  }

  const runs = Object.fromEntries(
    (await sql`select status, count(*)::int as n from jobs_log group by status`).map((r) => [r.status as string, r.n as number]),
  );
  return { overdue: totals!.overdue, auditRows: totals!.audits, runs };
}

/** Polls until a backend of this database waits on a lock inside the status function; its pid. */
export async function waitForBlockedRun(sql: Sql, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql`select pid from pg_stat_activity
                             where datname = current_database() and wait_event_type = 'Lock'
                               and query like '%update_installment_statuses%'`;
    if (row) return row.pid as number;
    if (Date.now() > deadline) throw new Error('the run never blocked on the held row lock');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Holds a row lock on one installment, from a one-connection pool of its own (not a reserved
 * connection of the caller's pool: a fault may kill it, and postgres.js must not be asked to
 * write to a reserved connection whose socket is gone).
 */
export async function holdRowLock(url: string, installmentId: string): Promise<{ pid: number; release(): Promise<void> }> {
  const conn = connect(url, { max: 1 });
  await conn.unsafe('begin');
  await conn`select 1 from installments where id = ${installmentId} for update`;
  const [{ pid }] = (await conn`select pg_backend_pid() as pid`) as unknown as [{ pid: number }];
  let released = false;
  return {
    pid,
    async release() {
      if (released) return;
      released = true;
      await conn.unsafe('rollback').catch(() => {});
      await conn.end({ timeout: 2 }).catch(() => {});
    },
  };
}
