// Load (issue 7 §6): autocannon against 127.0.0.1 for a fixed 15 s with the right key, while
// installments keep falling due so runs have work: no errors, no 5xx, every answer a 200 (a run)
// or a 409 (one in progress), the server's RSS flat, and afterwards every change audited once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { autocannon } from '../support/load-generator.ts';
import { freshDatabase } from '../support/database.ts';
import { addInstallments, createAgency, daysAgo } from '../support/fixtures.ts';
import { assertConsistent } from '../support/invariants.ts';
import { startServer, type RunningServer } from '../support/server-process.ts';
import { percentiles, recordFigures } from '../support/figures.ts';

const KEY = 'load-key-0123456789abcdef-0123456789abcdef';
const DURATION_S = 15;
const db = await freshDatabase();
let server: RunningServer;

before(async () => {
  server = await startServer('node', {
    DATABASE_URL: db.url,
    SUPABASE_FUNCTION_KEY: KEY,
    OVERDUE_SCHEDULER: 'off',
    WATCHDOG_INTERVAL_SECONDS: '0',
    LOG_LEVEL: 'error',
    // Without a cap V8 grows its heap lazily under load (RSS 143 → 218 MiB in 15 s, all of it
    // collectable: see docs/reliability.md). With old space capped at 64 MiB a leak would show as
    // growth up to the cap and then an out-of-memory crash; a flat RSS means the live set is bounded.
    NODE_OPTIONS: '--max-old-space-size=64',
  });
});
after(() => server?.stop());

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

test(`${DURATION_S} s of load while runs happen: no errors, no 5xx, memory flat, every change audited once`, async () => {
  const agencies = await Promise.all(['Asia/Tokyo', 'Europe/Madrid', 'America/Chicago'].map((z, i) => createAgency(db.sql, `Load ${i}`, z)));
  await Promise.all(agencies.map((a) => addInstallments(db.sql, a, Array.from({ length: 2000 }, (_, i) => daysAgo(-1 - (i % 300))))));

  // Warm up so the first samples are not the JIT and the pool filling.
  await autocannon({ url: server.url, method: 'POST', headers: { 'x-api-key': KEY }, connections: 4, duration: 2 });

  const pid = server.child.pid!;
  const rss: number[] = [rssMiB(pid)];
  const sampler = setInterval(() => rss.push(rssMiB(pid)), 1000);
  // New installments fall due all the time, so runs during the load really change rows.
  let added = 0;
  let feeding = true;
  const feeder = (async () => {
    while (feeding) {
      for (const a of agencies) added += (await addInstallments(db.sql, a, Array.from({ length: 20 }, (_, i) => daysAgo(2 + (i % 30))))).length;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  const result = await autocannon({
    url: server.url,
    method: 'POST',
    connections: 16,
    duration: DURATION_S,
    requests: [
      { method: 'POST', headers: { 'x-api-key': KEY } },
      { method: 'POST', headers: { 'x-api-key': KEY, 'content-type': 'application/json' }, body: '{"dryRun":true}' },
    ],
  });
  feeding = false;
  await feeder;
  clearInterval(sampler);
  rss.push(rssMiB(pid));

  // Whatever the last feed added is caught up by one more run. Requests that autocannon gave up
  // on when its time was up may still be running on the server (seen: a run waiting for a pool
  // connection behind four dry runs): the answer is then 409, a run in progress, until it ends.
  const runOnce = () => fetch(server.url, { method: 'POST', headers: { 'x-api-key': KEY } });
  let last = await runOnce();
  for (let tries = 0; last.status === 409 && tries < 50; tries++) {
    await last.body?.cancel();
    await new Promise((r) => setTimeout(r, 100));
    last = await runOnce();
  }
  assert.equal(last.status, 200);

  const codes = Object.fromEntries(Object.entries(result.statusCodeStats).map(([k, v]) => [k, v.count]));
  const [{ runs, changed }] = await db.sql`select count(*)::int as runs, coalesce(sum(records_updated), 0)::int as changed from jobs_log where status = 'success'`;
  const third = Math.max(1, Math.floor(rss.length / 3));
  const mean = (xs: number[]) => Math.round((xs.reduce((a, b) => a + b, 0) / xs.length) * 10) / 10;
  const figures = {
    durationS: DURATION_S,
    connections: 16,
    requests: result.requests.total,
    throughputPerSecond: { average: Math.round(result.requests.average), p50: result.requests.p50, min: result.requests.min },
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max, average: result.latency.average },
    statusCodes: codes,
    errors: result.errors,
    timeouts: result.timeouts,
    successfulRuns: runs,
    installmentsChanged: changed,
    installmentsFedDuringLoad: added,
    rssMiB: { samples: rss, firstThirdMean: mean(rss.slice(0, third)), lastThirdMean: mean(rss.slice(-third)), ...percentiles(rss) },
  };
  recordFigures('load', 'endpoint', figures);

  assert.equal(result.errors, 0, 'connection errors');
  assert.equal(result.timeouts, 0, 'timeouts');
  assert.ok(Object.keys(codes).every((c) => c === '200' || c === '409'), `status codes ${JSON.stringify(codes)}`);
  assert.ok(result.requests.total > DURATION_S * 10, 'the load actually ran');
  // Flat: the last third of the samples within 25 % (and 40 MiB) of the first third.
  assert.ok(
    figures.rssMiB.lastThirdMean <= figures.rssMiB.firstThirdMean * 1.25 && figures.rssMiB.lastThirdMean - figures.rssMiB.firstThirdMean < 40,
    `RSS grew from ${figures.rssMiB.firstThirdMean} to ${figures.rssMiB.lastThirdMean} MiB`,
  );
  assert.equal(server.child.exitCode, null, 'the server survived the load');
  const state = await assertConsistent(db.sql);
  assert.equal(state.overdue, added, 'every installment fed during the load was caught up exactly once');
});
