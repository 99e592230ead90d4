// Bad input gets a clear error and changes nothing (issue 7 §3), and wrong keys never reach the
// database (§5): in SQL, and over HTTP against the Node server and the Deno edge function.
// Every case is bracketed by a checksum of installments, agencies and jobs_log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { autocannon } from './support/load-generator.ts';
import { ADMIN_URL, freshDatabase, type TestDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { startServer, type RunningServer, type Target } from './support/server-process.ts';
import { connect, type Sql } from '../src/db/connect.ts';

const KEY = 'hostile-key-0123456789abcdef-0123456789';

async function checksum(sql: Sql): Promise<string> {
  const [row] = await sql`select
      (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from installments t) ||
      (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from agencies t) ||
      (select md5(coalesce(string_agg(t::text, '|' order by t.id), '')) from jobs_log t) ||
      (select count(*)::text from audit_logs) as sum`;
  return row!.sum as string;
}

// Every database is created before the first describe(): a top-level await after a suite has
// been declared lets that suite run and finish first, and the root's after() hooks then end the
// connections the later suites need.
const sqlDb = await freshDatabase();
const targets: Target[] = ['node', 'deno'];
const databases: Record<Target, TestDatabase> = { node: await freshDatabase(), deno: await freshDatabase() };

describe('bad agency settings in SQL: refused with the value named, nothing changed', () => {
  const db = sqlDb;

  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['time zone Mars/Olympus', { timezone: 'Mars/Olympus' }, /invalid time zone "Mars\/Olympus"/],
    ['empty time zone', { timezone: '' }, /invalid time zone ""/],
    ['time zone with SQL in it', { timezone: 'UTC; drop table agencies' }, /invalid time zone "UTC; drop table agencies"/],
    ['time zone +25:00', { timezone: '+25:00' }, /invalid time zone "\+25:00"/],
    ['cutoff 24:00:01', { overdue_cutoff_time: '24:00:01' }, /24:00:01|out of range/],
    ['cutoff 24:00', { overdue_cutoff_time: '24:00' }, /overdue_cutoff_time|24:00/],
    ['threshold 0', { due_soon_threshold_days: 0 }, /due_soon_threshold_days 0/],
    ['threshold 31', { due_soon_threshold_days: 31 }, /due_soon_threshold_days 31/],
  ];

  test('on insert and on update', async () => {
    const a = await createAgency(db.sql, 'Settled', 'Australia/Brisbane');
    await addInstallments(db.sql, a, [daysAgo(3)]);
    const before = await checksum(db.sql);
    for (const [what, values, message] of cases) {
      const insert = { name: `Bad ${what}`, ...values };
      await assert.rejects(db.sql`insert into agencies ${db.sql(insert)}`, (e: Error & { code?: string }) => {
        assert.match(e.message, message, `insert, ${what}`);
        assert.match(e.code ?? '', /^22/, `insert, ${what}: a data exception, got ${e.code}`);
        return true;
      });
      await assert.rejects(db.sql`update agencies set ${db.sql(values)} where id = ${a.id}`, (e: Error) => {
        assert.match(e.message, message, `update, ${what}`);
        return true;
      });
    }
    const [{ n }] = await db.sql`select count(*)::int as n from pg_tables where tablename = 'agencies'`;
    assert.equal(n, 1, 'agencies still exists');
    assert.equal(await checksum(db.sql), before);
  });
});

interface RawResponse {
  status: number | 'closed';
  body: string;
}

/** An HTTP/1.1 request written byte for byte, so headers can be duplicated or non-ASCII. */
function rawRequest(base: string, head: string[], body: Buffer | string = ''): Promise<RawResponse> {
  const { hostname, port } = new URL(base);
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const lines = [...head, `host: ${hostname}:${port}`, 'connection: close', `content-length: ${payload.length}`];
  return new Promise((resolve) => {
    const socket = netConnect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : 'closed', body: text.slice(text.indexOf('\r\n\r\n') + 4) });
    });
    socket.write(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]));
    setTimeout(() => socket.destroy(), 10_000).unref();
  });
}

const admin = connect(ADMIN_URL, { max: 1 });
after(() => admin.end({ timeout: 2 }));

for (const target of targets) {
  describe(`hostile requests on ${target}`, () => {
    const db = databases[target];
    let server: RunningServer;
    let before0: string;

    before(async () => {
      const a = await createAgency(db.sql, 'Hostile', 'Europe/London');
      await addInstallments(db.sql, a, [daysAgo(2), daysAgo(5), daysAgo(-4)]);
      before0 = await checksum(db.sql);
      server = await startServer(target, {
        DATABASE_URL: db.url,
        SUPABASE_FUNCTION_KEY: KEY,
        JOB_RETRY_DELAYS_MS: '10,10,10',
        WATCHDOG_INTERVAL_SECONDS: '0',
        OVERDUE_SCHEDULER: 'off',
        LOG_LEVEL: 'warn',
      });
    });
    after(async () => {
      await server?.stop();
      assert.ok(!server.output().includes(KEY), 'the key appeared in the server output');
    });

    const path = () => new URL(server.url).pathname;
    const post = (head: string[], body?: Buffer | string) => rawRequest(server.base, [`POST ${path()} HTTP/1.1`, ...head], body);

    test('bodies: malformed, oversized, deeply nested, wrongly typed, wrong content types → 4xx naming the problem', async () => {
      const json = [`x-api-key: ${KEY}`, 'content-type: application/json'];
      const cases: [string[], Buffer | string, number, RegExp][] = [
        [json, '{"dryRun":', 400, /malformed JSON/],
        [json, '{"dryRun": true,}', 400, /malformed JSON/],
        [json, '{dryRun: true}', 400, /malformed JSON/],
        [json, 'x'.repeat(17 * 1024), 413, /limit/],
        [json, `{"dryRun":true,"pad":"${'x'.repeat(1024 * 1024)}"}`, 413, /limit/],
        [json, '['.repeat(100_000), 413, /limit/],
        [json, `${'['.repeat(8000)}${']'.repeat(8000)}`, 400, /JSON object|malformed/],
        [json, `${'{"a":'.repeat(2500)}1${'}'.repeat(2500)}`, 400, /unknown field "a"|malformed/],
        [json, '{"dryRun":1}', 400, /dryRun must be a boolean/],
        [json, '{"dryRun":null}', 400, /dryRun must be a boolean/],
        [json, '{"dryRun":"true"}', 400, /dryRun must be a boolean/],
        [json, '{"asOf":[]}', 400, /asOf must be a string/],
        [json, '{"asOf":{"$gt":""}}', 400, /asOf must be a string/],
        [json, '{"asOf":"2026-13-01T00:00:00Z"}', 400, /ISO-8601/],
        [json, '{"asOf":"2026-01-01T00:00:00Z; drop table agencies"}', 400, /ISO-8601/],
        [json, '{"__proto__":{"dryRun":true}}', 400, /unknown field "__proto__"/],
        [json, '{"constructor":{"prototype":{"x":1}}}', 400, /unknown field "constructor"/],
        [json, 'null', 400, /JSON object/],
        [json, '123', 400, /JSON object/],
        [json, Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 400, /UTF-8/],
        [[`x-api-key: ${KEY}`, 'content-type: text/plain'], '{"dryRun":true}', 415, /content-type/],
        [[`x-api-key: ${KEY}`, 'content-type: multipart/form-data; boundary=x'], '--x--', 415, /content-type/],
        [[`x-api-key: ${KEY}`], '{"dryRun":true}', 415, /content-type/],
        [[`x-api-key: ${KEY}`, 'content-type: application/x-www-form-urlencoded'], 'dryRun=true', 415, /content-type/],
      ];
      for (const [head, body, status, message] of cases) {
        const res = await post(head, body);
        const label = `${head.join(' / ')} ${String(body).slice(0, 40)}`;
        assert.equal(res.status, status, label);
        const answer = JSON.parse(res.body);
        assert.equal(answer.success, false, label);
        assert.match(answer.error, message, label);
      }
      assert.equal(await checksum(db.sql), before0);
    });

    test('header tricks: duplicate, combined, very long, non-ASCII and misplaced keys → 401 (or 431 / 400 from the HTTP parser), never 5xx', async () => {
      const cases: [string, string[], number[]][] = [
        ['the key twice (joined as "k, k")', [`x-api-key: ${KEY}`, `X-API-Key: ${KEY}`], [401]],
        ['a wrong key then the right one', ['x-api-key: wrong', `x-api-key: ${KEY}`], [401]],
        ['the right key then an empty one', [`x-api-key: ${KEY}`, 'x-api-key: '], [401]],
        ['the key joined by hand', [`x-api-key: ${KEY}, ${KEY}`], [401]],
        // Node's parser answers 431 (headers over 16 KiB), Deno's 400.
        ['a 64 KiB key', [`x-api-key: ${'k'.repeat(64 * 1024)}`], [400, 401, 431]],
        ['a 64 KiB key that starts with the right one', [`x-api-key: ${KEY}${'k'.repeat(64 * 1024)}`], [400, 401, 431]],
        ['a non-ASCII key (UTF-8 bytes)', [Buffer.from(`x-api-key: ${KEY.slice(0, -1)}é`, 'utf8').toString('latin1')], [400, 401]],
        ['the key with a trailing tab', [`x-api-key: ${KEY}\t`], [200, 400, 401]],
        ['the key in Authorization instead', [`authorization: Bearer ${KEY}`], [401]],
        ['the key in the query string', [], [401]],
      ];
      for (const [what, head, allowed] of cases) {
        const res =
          what === 'the key in the query string'
            ? await rawRequest(server.base, [`POST ${path()}?apikey=${KEY}&x-api-key=${KEY} HTTP/1.1`])
            : await post([...head, 'content-type: application/json'], '{"dryRun":true}');
        assert.ok(res.status !== 'closed' && allowed.includes(res.status), `${what}: got ${res.status}, expected one of ${allowed}`);
        if (res.status === 401) assert.deepEqual(JSON.parse(res.body), { success: false, error: 'Unauthorized' }, what);
      }
      // A trailing tab is white space HTTP strips: that request is the real key, and a dry run.
      assert.equal(await checksum(db.sql), before0);
    });

    test('10 000 requests with wrong keys make zero database queries', async () => {
      // Counted by the server itself (pg_stat_database of this database, read from another
      // database so the reading is not counted). Backends flush their counters on exit, so the
      // fixture pool's idle sessions are ended first, and the server must not connect at all.
      await admin`select pg_terminate_backend(pid) from pg_stat_activity where datname = ${db.name}`;
      const count = async () => {
        const [row] = await admin`select xact_commit + xact_rollback as n, numbackends from pg_stat_database where datname = ${db.name}`;
        const [sessions] = await admin`select count(*)::int as n from pg_stat_activity where datname = ${db.name}`;
        return { xacts: Number(row!.n), sessions: sessions!.n as number };
      };
      for (let i = 0; i < 100 && (await count()).sessions > 0; i++) await new Promise((r) => setTimeout(r, 50));
      const before = await count();
      assert.equal(before.sessions, 0, 'nothing may be connected to the database before the flood');

      const keys = ['', 'wrong', KEY.slice(0, -1), `${KEY}x`, KEY.toUpperCase(), KEY.slice(0, KEY.length / 2)];
      const result = await autocannon({
        url: server.url,
        method: 'POST',
        connections: 8,
        amount: 10_000,
        requests: keys.map((k) => ({ method: 'POST', headers: k ? { 'x-api-key': k } : ({} as Record<string, string>) })),
      });
      assert.equal(result.errors, 0);
      assert.equal(result['2xx'], 0);
      assert.equal(result.non2xx, 10_000, `status codes ${JSON.stringify(result.statusCodeStats)}`);
      assert.deepEqual(Object.keys(result.statusCodeStats), ['401']);

      await new Promise((r) => setTimeout(r, 1200)); // longer than the stats flush interval (1 s)
      const afterFlood = await count();
      assert.equal(afterFlood.sessions, 0, 'the server opened a database connection');
      assert.equal(afterFlood.xacts - before.xacts, 0, 'wrong keys caused database transactions');

      // The same counter does move for one request with the right key (so it can fail).
      const res = await fetch(server.url, { method: 'POST', headers: { 'x-api-key': KEY } });
      assert.equal(res.status, 200);
      await server.stop(); // its backends exit and flush their counters
      for (let i = 0; i < 100 && (await count()).sessions > 0; i++) await new Promise((r) => setTimeout(r, 50));
      const afterLegit = await count();
      assert.ok(afterLegit.xacts - afterFlood.xacts > 0, 'one legitimate run must register');
      await db.sql`select 1`; // reconnect the fixture pool whose sessions were ended above
      console.log(`# ${target}: 10 000 wrong keys → ${afterFlood.xacts - before.xacts} transactions; 1 right key → ${afterLegit.xacts - afterFlood.xacts}; ${Math.round(result.requests.average)} req/s`);
    });
  });
}
