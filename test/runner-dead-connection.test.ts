// A run whose connection is killed mid-statement must recover on a pool of ONE connection (the
// embedded database's pool size) — and leave the pool usable for the runs after it.
//
// postgres.js keeps the FATAL error it received on the killed connection and replays it on that
// connection's next handshake; if the next handshake is a reserve(), the reservation is
// rejected with the stale error AND the connection is handed to that dead reservation, so every
// later reserve() waits forever. The runner probes the pool with plain queries (which absorb the
// stale error harmlessly) before it reserves again.
import { test } from 'node:test';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { holdRowLock, waitForBlockedRun } from './support/invariants.ts';
import { freePort } from './support/server-process.ts';
import { connect } from '../src/db/connect.ts';
import { JobRunner } from '../src/job/runner.ts';

const db = await freshDatabase();

function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    work,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms (the pool is wedged)`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

test('backend terminated mid-run on a pool of one: the retry succeeds and later runs still get a connection', async () => {
  const a = await createAgency(db.sql, 'Pool of one');
  const ids = await addInstallments(db.sql, a, [daysAgo(2), daysAgo(3), daysAgo(4)]);
  const pool = connect(db.url, { max: 1, applicationName: 'overdue-pool-of-one' });
  try {
    const runner = new JobRunner(pool, { retryDelaysMs: [20, 20, 20] });
    const lock = await holdRowLock(db.url, ids[0]!);
    const pending = runner.run({ trigger: 'test' });
    const pid = await waitForBlockedRun(db.sql);
    await db.sql`select pg_terminate_backend(${pid})`;
    await lock.release();

    const outcome = await withDeadline(pending, 10_000, 'the interrupted run');
    assert.equal(outcome.kind, 'success', JSON.stringify(outcome));
    if (outcome.kind === 'success') {
      assert.equal(outcome.recordsUpdated, 3);
      // One failed attempt (the kill), not two (the kill, then the replayed stale error).
      assert.equal(outcome.attempts, 2);
    }
    const next = await withDeadline(runner.run({ trigger: 'test' }), 10_000, 'the next run');
    assert.equal(next.kind, 'success');
    assert.equal(next.kind === 'success' && next.recordsUpdated, 0);
    const [{ n }] = await withDeadline(pool`select count(*)::int as n from audit_logs`, 5_000, 'a plain query');
    assert.equal(n, 3);
  } finally {
    await pool.end({ timeout: 1 }).catch(() => {});
  }
});

test('database unreachable for a whole run, then back: the next run on the same pool of one gets a connection', async () => {
  const a = await createAgency(db.sql, 'Outage');
  await addInstallments(db.sql, a, [daysAgo(2), daysAgo(3)]);
  // A TCP proxy to the real server that is not listening yet: connections are refused.
  const port = await freePort();
  const target = new URL(db.url);
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = netConnect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
  });
  const viaProxy = new URL(db.url);
  viaProxy.port = String(port);
  const pool = connect(viaProxy.toString(), { max: 1, applicationName: 'overdue-outage' });
  try {
    const runner = new JobRunner(pool, { retryDelaysMs: [10, 10, 10] });
    const down = await withDeadline(runner.run({ trigger: 'test' }), 20_000, 'the run during the outage');
    assert.equal(down.kind, 'failed');
    assert.equal(down.kind === 'failed' && down.code, 'ECONNREFUSED');

    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    const back = await withDeadline(runner.run({ trigger: 'test' }), 20_000, 'the first run after the outage');
    assert.equal(back.kind, 'success', JSON.stringify(back));
    const [{ n }] = await db.sql`select count(*)::int as n from installments where agency_id = ${a.id} and status = 'overdue'`;
    assert.equal(n, 2);
  } finally {
    await pool.end({ timeout: 1 }).catch(() => {});
    for (const s of sockets) s.destroy();
    await new Promise((r) => proxy.close(r));
  }
});
