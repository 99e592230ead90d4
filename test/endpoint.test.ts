// Black-box tests of POST /functions/v1/update-installment-statuses, run unchanged against the
// Node server and against the Supabase Edge Function under real Deno, each on its own database.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/database.ts';
import { startServer, type RunningServer, type Target } from './support/server-process.ts';
import { addInstallments, createAgency, daysAgo, statusCounts } from './support/fixtures.ts';

const KEY = 'test-key-0123456789abcdef-CURRENT';
const NEXT_KEY = 'test-key-0123456789abcdef-NEXT';

const databases: Record<Target, TestDatabase> = { node: await freshDatabase(), deno: await freshDatabase() };

for (const target of ['node', 'deno'] as Target[]) {
  describe(`endpoint on ${target}`, () => {
    const db = databases[target];
    let server: RunningServer;

    before(async () => {
      server = await startServer(target, {
        DATABASE_URL: db.url,
        SUPABASE_FUNCTION_KEY: KEY,
        SUPABASE_FUNCTION_KEY_NEXT: NEXT_KEY,
        JOB_RETRY_DELAYS_MS: '50,100,200',
        JOB_ABANDON_AFTER_SECONDS: '60',
      });
    });
    after(async () => {
      await server?.stop();
      if (process.env.DEBUG_SERVER_OUTPUT) console.error(server.output());
      // The key must never be written anywhere an operator or attacker could read it.
      assert.ok(!server.output().includes(KEY), 'the API key appeared in the server output');
      assert.ok(!server.output().includes(NEXT_KEY), 'the next API key appeared in the server output');
    });

    const post = (headers: Record<string, string>, body?: string) =>
      fetch(server.url, { method: 'POST', headers, ...(body !== undefined ? { body } : {}) });
    const runCount = async () => Number((await db.sql`select count(*)::int as n from jobs_log`)[0]!.n);

    test('missing, empty, wrong, truncated and extended keys → 401, no run logged, nothing changed', async () => {
      const a = await createAgency(db.sql, 'Auth Agency');
      await addInstallments(db.sql, a, [daysAgo(3)]);
      const cases: Record<string, string>[] = [{}, { 'x-api-key': '' }, { 'x-api-key': 'wrong-key-wrong-key' }, { 'x-api-key': `${KEY}x` }, { 'x-api-key': `${KEY} ${KEY}` }, { 'x-api-key': KEY.slice(0, -1) }, { 'x-api-key': KEY.toLowerCase() }];
      for (const headers of cases) {
        const res = await post(headers);
        assert.equal(res.status, 401, `headers ${JSON.stringify(Object.keys(headers))}`);
        assert.deepEqual(await res.json(), { success: false, error: 'Unauthorized' });
      }
      assert.equal(await runCount(), 0);
      assert.equal((await statusCounts(db.sql)).overdue, undefined);
    });

    test('the right key → 200, installments changed, a success row with per-agency metadata; a second run reports 0', async () => {
      const brisbane = await createAgency(db.sql, 'Brisbane', 'Australia/Brisbane');
      const london = await createAgency(db.sql, 'London', 'Europe/London');
      await addInstallments(db.sql, brisbane, [daysAgo(2), daysAgo(9), daysAgo(-5)]);
      await addInstallments(db.sql, london, [daysAgo(2)]);
      await addInstallments(db.sql, london, [daysAgo(2)], 'paid');

      const res = await post({ 'x-api-key': KEY });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.success, true);
      assert.equal(body.dryRun, false);
      assert.equal(typeof body.durationMs, 'number');
      // Includes the earlier test's agency (its installment was due 3 days ago).
      assert.equal(body.recordsUpdated, 4);
      const byAgency = Object.fromEntries(body.agencies.map((a: { agencyId: string; updatedCount: number }) => [a.agencyId, a]));
      assert.deepEqual(byAgency[brisbane.id], { agencyId: brisbane.id, updatedCount: 2, transitions: { pending_to_overdue: 2 } });
      assert.deepEqual(byAgency[london.id], { agencyId: london.id, updatedCount: 1, transitions: { pending_to_overdue: 1 } });

      const [row] = await db.sql`select * from jobs_log where id = ${body.jobId}`;
      assert.equal(row!.job_name, 'update-installment-statuses');
      assert.equal(row!.status, 'success');
      assert.equal(row!.records_updated, 4);
      assert.ok(row!.completed_at instanceof Date);
      assert.equal(row!.metadata.trigger, 'http');
      assert.equal(row!.metadata.attempts, 1);
      assert.equal(typeof row!.metadata.asOf, 'string');
      assert.equal(typeof row!.metadata.durationMs, 'number');
      assert.deepEqual(
        row!.metadata.agencies.find((a: { agency_id: string }) => a.agency_id === brisbane.id),
        { agency_id: brisbane.id, updated_count: 2, transitions: { pending_to_overdue: 2 } },
      );
      assert.ok(!JSON.stringify(row).includes(KEY));
      const [{ n: audits }] = await db.sql`select count(*)::int as n from audit_logs where job_id = ${body.jobId}`;
      assert.equal(audits, 4);

      const again = await (await post({ 'x-api-key': KEY })).json();
      assert.equal(again.success, true);
      assert.equal(again.recordsUpdated, 0);
      assert.deepEqual(again.agencies, []);
    });

    test('the rotation key is accepted too', async () => {
      const res = await post({ 'x-api-key': NEXT_KEY });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).success, true);
    });

    test('dry run reports what would change and changes nothing; a future asOf needs dryRun', async () => {
      const a = await createAgency(db.sql, 'Dry', 'Asia/Tokyo');
      await addInstallments(db.sql, a, [daysAgo(1), daysAgo(-3)]);
      const before = await statusCounts(db.sql);
      const runs = await runCount();

      const now = await post({ 'x-api-key': KEY, 'content-type': 'application/json' }, '{"dryRun":true}');
      assert.equal(now.status, 200);
      const dry = await now.json();
      assert.equal(dry.dryRun, true);
      assert.equal(dry.agencies.find((x: { agencyId: string }) => x.agencyId === a.id)?.updatedCount, 1);
      assert.equal(dry.jobId, null);

      const future = new Date(Date.now() + 10 * 86_400_000).toISOString();
      const ahead = await (await post({ 'x-api-key': KEY, 'content-type': 'application/json' }, JSON.stringify({ dryRun: true, asOf: future }))).json();
      assert.equal(ahead.agencies.find((x: { agencyId: string }) => x.agencyId === a.id)?.updatedCount, 2);

      const refused = await post({ 'x-api-key': KEY, 'content-type': 'application/json' }, JSON.stringify({ asOf: future }));
      assert.equal(refused.status, 400);
      assert.match((await refused.json()).error, /future.*dryRun/);

      assert.deepEqual(await statusCounts(db.sql), before);
      assert.equal(await runCount(), runs);
    });

    test('asOf replays a past instant', async () => {
      const a = await createAgency(db.sql, 'Replay', 'America/New_York');
      await addInstallments(db.sql, a, ['2026-01-10']);
      // 2026-01-10 17:00 EST is 22:00Z: at 21:59Z it is not yet overdue, at 22:01Z it is.
      const early = await (await post({ 'x-api-key': KEY, 'content-type': 'application/json' }, '{"asOf":"2026-01-10T21:59:00Z"}')).json();
      assert.equal(early.agencies.find((x: { agencyId: string }) => x.agencyId === a.id), undefined);
      const late = await (await post({ 'x-api-key': KEY, 'content-type': 'application/json' }, '{"asOf":"2026-01-10T22:01:00Z"}')).json();
      assert.equal(late.agencies.find((x: { agencyId: string }) => x.agencyId === a.id)?.updatedCount, 1);
    });

    test('bad bodies → 400 naming the problem, 415 for a wrong content type, 413 over 16 KiB; nothing runs', async () => {
      const runs = await runCount();
      const json = { 'x-api-key': KEY, 'content-type': 'application/json' };
      const cases: [string, RegExp][] = [
        ['{"dryRun":', /malformed JSON/],
        ['[]', /JSON object/],
        ['"x"', /JSON object/],
        ['{"dryRun":"yes"}', /dryRun must be a boolean/],
        ['{"asOf":12}', /asOf must be a string/],
        ['{"asOf":"yesterday"}', /ISO-8601/],
        ['{"asOf":"2026-02-30T00:00:00"}', /ISO-8601/],
        ['{"force":true}', /unknown field "force"/],
      ];
      for (const [body, message] of cases) {
        const res = await post(json, body);
        assert.equal(res.status, 400, body);
        const answer = await res.json();
        assert.equal(answer.success, false);
        assert.match(answer.error, message, body);
      }
      const form = await post({ 'x-api-key': KEY, 'content-type': 'application/x-www-form-urlencoded' }, 'dryRun=true');
      assert.equal(form.status, 415);
      const big = await post(json, JSON.stringify({ dryRun: true, pad: 'x'.repeat(17 * 1024) }));
      assert.equal(big.status, 413);
      assert.equal(await runCount(), runs);
    });

    test('OPTIONS preflight allows x-api-key and content-type; no origin allowed by default; other methods → 405', async () => {
      const pre = await fetch(server.url, {
        method: 'OPTIONS',
        headers: { origin: 'https://example.org', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-api-key, content-type' },
      });
      assert.ok(pre.status === 204 || pre.status === 200);
      const allowed = pre.headers.get('access-control-allow-headers') ?? '';
      assert.match(allowed, /x-api-key/);
      assert.match(allowed, /content-type/);
      assert.equal(pre.headers.get('access-control-allow-origin'), null);

      for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
        const res = await fetch(server.url, { method, headers: { 'x-api-key': KEY } });
        assert.equal(res.status, 405, method);
        assert.match(res.headers.get('allow') ?? '', /POST/);
      }
    });

    test('six concurrent requests: one run does the work, the others get 409 or nothing to do; no 5xx, no double counting', async () => {
      const a = await createAgency(db.sql, 'Concurrent', 'Pacific/Auckland');
      await addInstallments(db.sql, a, Array.from({ length: 50 }, (_, i) => daysAgo(2 + i)));
      const responses = await Promise.all(Array.from({ length: 6 }, () => post({ 'x-api-key': KEY })));
      const statuses = responses.map((r) => r.status);
      const bodies = await Promise.all(responses.map((r) => r.json()));
      assert.ok(statuses.every((s) => s === 200 || s === 409), `statuses ${statuses}`);
      const mine = (b: { agencies: { agencyId: string; updatedCount: number }[] }) =>
        b.agencies.find((x) => x.agencyId === a.id)?.updatedCount ?? 0;
      const total = bodies.filter((b) => b.success).reduce((n, b) => n + mine(b), 0);
      assert.equal(total, 50);
      assert.equal(bodies.filter((b) => b.success && mine(b) > 0).length, 1, 'exactly one run did the work');
      const [{ n: audits }] = await db.sql`select count(*)::int as n from audit_logs a join installments i on i.id = a.installment_id where i.agency_id = ${a.id}`;
      assert.equal(audits, 50);
      const [{ n: running }] = await db.sql`select count(*)::int as n from jobs_log where status = 'running'`;
      assert.equal(running, 0);
    });

    test('a transient fault mid-run (backend terminated) is retried and succeeds, attempts recorded', async () => {
      const a = await createAgency(db.sql, 'Transient', 'Europe/Berlin');
      const [blockedId] = await addInstallments(db.sql, a, [daysAgo(4), daysAgo(5)]);
      // Hold a row lock so the run's UPDATE waits; then terminate the run's backend.
      const blocker = await db.sql.reserve();
      try {
        await blocker`begin`;
        await blocker`select 1 from installments where id = ${blockedId!} for update`;
        const pending = post({ 'x-api-key': KEY });
        let pid: number | undefined;
        for (let i = 0; i < 200 && pid === undefined; i++) {
          const [row] = await db.sql`select pid from pg_stat_activity
                                      where datname = current_database() and wait_event_type = 'Lock'
                                        and query like '%update_installment_statuses%'`;
          pid = row?.pid as number | undefined;
          if (pid === undefined) await new Promise((r) => setTimeout(r, 25));
        }
        assert.ok(pid, 'the run never blocked on the held row');
        await db.sql`select pg_terminate_backend(${pid!})`;
        await blocker`rollback`;
        const res = await pending;
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.equal(body.recordsUpdated, 2);
        assert.equal(body.attempts, 2);
        const [row] = await db.sql`select status, metadata from jobs_log where id = ${body.jobId}`;
        assert.equal(row!.status, 'success');
        assert.equal(row!.metadata.attempts, 2);
        assert.equal(row!.metadata.attemptErrors.length, 1);
        assert.equal(row!.metadata.attemptErrors[0].transient, true);
      } finally {
        blocker.release();
      }
    });

    test('a permanent error fails at once: 500 with JSON, a failed row with the code, no retry', async () => {
      await db.sql`alter function update_installment_statuses(timestamptz) rename to update_installment_statuses_moved`;
      try {
        const res = await post({ 'x-api-key': KEY });
        assert.equal(res.status, 500);
        const body = await res.json();
        assert.equal(body.success, false);
        assert.ok(body.jobId);
        assert.match(body.error, /update_installment_statuses/);
        const [row] = await db.sql`select status, error_message, metadata from jobs_log where id = ${body.jobId}`;
        assert.equal(row!.status, 'failed');
        assert.match(row!.error_message, /does not exist/);
        assert.equal(row!.metadata.code, '42883');
        assert.equal(row!.metadata.attempts.length, 1);
        assert.equal(typeof row!.metadata.stack, 'string');
      } finally {
        await db.sql`alter function update_installment_statuses_moved(timestamptz) rename to update_installment_statuses`;
      }
    });

    test('a run abandoned by a dead process is reaped by the next run', async () => {
      const [stale] = await db.sql`insert into jobs_log (job_name, started_at, status) values ('update-installment-statuses', now() - interval '2 hours', 'running') returning id`;
      const res = await post({ 'x-api-key': KEY });
      assert.equal(res.status, 200);
      const [row] = await db.sql`select status, error_message, completed_at from jobs_log where id = ${stale!.id}`;
      assert.equal(row!.status, 'failed');
      assert.match(row!.error_message, /abandoned/);
      assert.ok(row!.completed_at);
    });

    test('an unreachable database → 500 with a JSON error after the retries, and a log line', async () => {
      const { freePort } = await import('./support/server-process.ts');
      const deadPort = await freePort();
      const orphan = await startServer(target, {
        DATABASE_URL: `postgres://postgres@127.0.0.1:${deadPort}/none`,
        SUPABASE_FUNCTION_KEY: KEY,
        JOB_RETRY_DELAYS_MS: '10,10,10',
      });
      try {
        const res = await fetch(orphan.url, { method: 'POST', headers: { 'x-api-key': KEY } });
        assert.equal(res.status, 500);
        const body = await res.json();
        assert.equal(body.success, false);
        assert.equal(body.jobId, null);
        assert.equal(body.attempts, 4);
        assert.ok(body.error);
        assert.match(orphan.output(), /"level":"error".*attempt failed/);
      } finally {
        await orphan.stop();
      }
    });

    test('unknown paths → 404 JSON', async () => {
      const res = await fetch(`${server.base}/functions/v1/nope`, { method: 'POST', headers: { 'x-api-key': KEY } });
      assert.equal(res.status, 404);
      assert.equal((await res.json()).success, false);
    });
  });
}
