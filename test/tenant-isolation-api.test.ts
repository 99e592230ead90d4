// Tenant isolation beyond what supabase/tests/tenant_security.test.sql already proves (its 69
// checks cover the core tables' select/update/delete/insert for a member, an agency admin, a
// platform admin and anon, and EXECUTE on the two status functions):
//   * a catalog sweep: no SECURITY DEFINER function is executable by anon or authenticated
//     unless it is on a short, reviewed list — so a future migration cannot slip one in;
//   * every job, scheduling and operations function refuses a member and anon (42501);
//   * the operations tables (alert_incidents, alert_deliveries, job_watch) are invisible;
//   * and the same isolation through the admin pages' HTTP API with real signed JWTs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { freshDatabase } from './support/database.ts';
import { startServer, type RunningServer } from './support/server-process.ts';
import { JwtAuth } from '../src/http/auth-jwt.ts';
import type { Sql } from '../src/db/connect.ts';

const db = await freshDatabase();
const SECRET = 'tenant-isolation-jwt-secret-0123456789abcdef';
const A = 'aaaaaaaa-0000-0000-0000-000000000000';
const B = 'bbbbbbbb-0000-0000-0000-000000000000';
const A_ADMIN = 'aaaaaaaa-0000-0000-0000-0000000000ad';
const A_USER = 'aaaaaaaa-0000-0000-0000-0000000000c0';
const B_ADMIN = 'bbbbbbbb-0000-0000-0000-0000000000ad';
const PLATFORM = 'cccccccc-0000-0000-0000-0000000000ad';

let bRunId = '';

before(async () => {
  await db.sql`insert into agencies (id, name, timezone) values (${A}, 'Agency A', 'Australia/Brisbane'), (${B}, 'Agency B', 'America/Los_Angeles')`;
  await db.sql`insert into users (id, agency_id, role) values (${A_ADMIN}, ${A}, 'agency_admin'), (${A_USER}, ${A}, 'agency_user'), (${B_ADMIN}, ${B}, 'agency_admin')`;
  for (const agency of [A, B]) {
    const [plan] = await db.sql`insert into payment_plans (agency_id) values (${agency}) returning id`;
    await db.sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date) values (${plan!.id}, ${agency}, 100, '2024-01-10')`;
  }
  const [run] = await db.sql`insert into jobs_log (job_name, started_at, status) values ('update-installment-statuses', now(), 'running') returning id`;
  bRunId = run!.id as string;
  await db.sql`select set_config('overdue.job_id', ${bRunId}, false)`;
  await db.sql`select * from update_installment_statuses('2024-02-01T00:00:00Z')`;
  await db.sql`update jobs_log set status = 'success', completed_at = now(), records_updated = 2 where id = ${bRunId}`;
  await db.sql`insert into alert_incidents (incident_key, severity, summary) values ('job-failed:update-installment-statuses', 'critical', 'failed')`.catch(() => {});
});

/** Runs `work` the way PostgREST runs a request: claims in request.jwt.claims, SET LOCAL ROLE. */
function as<T>(role: 'anon' | 'authenticated', claims: Record<string, unknown>, work: (tx: Sql) => Promise<T>): Promise<T> {
  return db.sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    await tx.unsafe(`set local role ${role}`);
    return work(tx as unknown as Sql);
  }) as Promise<T>;
}

const member = (sub: string, extra: Record<string, unknown> = {}) => ({ sub, role: 'authenticated', ...extra });

async function refused(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (e: Error & { code?: string }) => {
    assert.equal(e.code, '42501', `${what}: expected 42501 insufficient_privilege, got ${e.code} ${e.message}`);
    return true;
  }, what);
}

describe('in SQL, as PostgREST would', () => {
  test('no SECURITY DEFINER function is executable by anon or authenticated except the reviewed helpers', async () => {
    const rows = await db.sql`
      select p.oid::regprocedure::text as fn,
             has_function_privilege('anon', p.oid, 'EXECUTE') as anon,
             has_function_privilege('authenticated', p.oid, 'EXECUTE') as authenticated
        from pg_proc p
       where p.pronamespace = 'public'::regnamespace and p.prosecdef
         and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')`;
    // Both read only the caller's own membership (auth.uid()); RLS policies need them.
    const reviewed = new Set(['current_agency_id()', 'is_agency_admin(uuid)']);
    const open = rows.filter((r) => (r.anon || r.authenticated) && !reviewed.has(r.fn as string)).map((r) => r.fn);
    assert.deepEqual(open, [], 'security definer functions executable by anon/authenticated');
    assert.deepEqual(rows.filter((r) => r.anon).map((r) => r.fn), [], 'anon may execute no security definer function');
    assert.ok(rows.length >= 5, 'the sweep found the security definer functions');
  });

  const jobFunctions: [string, string][] = [
    ['select * from public.update_installment_statuses()', 'update_installment_statuses'],
    ['select * from public.preview_installment_status_changes()', 'preview_installment_status_changes'],
    ["call public.run_update_installment_statuses_job('attack')", 'run_update_installment_statuses_job'],
    ["select * from public.prune_jobs_log(interval '0 days')", 'prune_jobs_log'],
    ['select * from public.next_cutoff_instants(now())', 'next_cutoff_instants'],
    ['select * from public.schedule_show()', 'schedule_show'],
    ['select * from public.schedule_remove()', 'schedule_remove'],
    ['select * from public.update_installment_statuses_batch(now(), 10)', 'update_installment_statuses_batch'],
  ];

  for (const [role, claims] of [
    ['authenticated', member(A_ADMIN)],
    ['authenticated', member(A_USER, { app_metadata: { platform_admin: false }, user_metadata: { platform_admin: true } })],
    ['anon', { role: 'anon', sub: A_ADMIN }],
  ] as const) {
    test(`${role} ${JSON.stringify(claims).slice(0, 60)}…: every job, scheduling and pruning function → 42501`, async () => {
      const existing = new Set((await db.sql`select proname from pg_proc where pronamespace = 'public'::regnamespace`).map((r) => r.proname));
      for (const [statement, name] of jobFunctions) {
        if (!existing.has(name)) continue; // owned by another migration that may not exist yet
        await refused(as(role, claims, (tx) => tx.unsafe(statement)), `${role}: ${name}`);
      }
    });
  }

  test("a member of A: B's rows invisible and unchangeable, A's own rows fine; no agency can be created", async () => {
    await as('authenticated', member(A_ADMIN), async (tx) => {
      assert.deepEqual((await tx`select id from agencies`).map((r) => r.id), [A]);
      assert.equal((await tx`select * from installments where agency_id = ${B}`).length, 0);
      assert.equal((await tx`select * from payment_plans where agency_id = ${B}`).length, 0);
      assert.equal((await tx`select * from audit_logs where agency_id = ${B}`).length, 0);
      assert.equal((await tx`select * from audit_logs where agency_id = ${A}`).length, 1);
      assert.equal((await tx`update installments set status = 'paid' where agency_id = ${B} returning id`).length, 0);
      assert.equal((await tx`delete from payment_plans where agency_id = ${B} returning id`).length, 0);
      assert.equal((await tx`update agencies set timezone = 'UTC' where id = ${B} returning id`).length, 0);
    });
    await refused(as('authenticated', member(A_ADMIN), (tx) => tx`insert into agencies (name) values ('Mine now')`), 'create an agency');
    await refused(as('authenticated', member(A_ADMIN), (tx) => tx`delete from agencies where id = ${A}`), 'delete own agency');
    await refused(as('authenticated', member(A_ADMIN), (tx) => tx`truncate installments`), 'truncate installments');
    const [{ tz }] = await db.sql`select timezone as tz from agencies where id = ${B}`;
    assert.equal(tz, 'America/Los_Angeles');
  });

  test('the operations tables are invisible to members and closed to anon; platform admins read them', async () => {
    const tables = (await db.sql`select relname from pg_class where relnamespace = 'public'::regnamespace and relname in ('alert_incidents', 'alert_deliveries', 'job_watch')`).map((r) => r.relname as string);
    for (const t of tables) {
      const rows = await as('authenticated', member(A_ADMIN), (tx) => tx.unsafe(`select * from public.${t}`));
      assert.equal(rows.length, 0, `a member reads ${t}`);
      await refused(as('anon', { role: 'anon' }, (tx) => tx.unsafe(`select * from public.${t}`)), `anon reads ${t}`);
      await assert.rejects(as('authenticated', member(A_ADMIN), (tx) => tx.unsafe(`delete from public.${t}`)), `a member deletes from ${t}`);
    }
    if (tables.includes('alert_incidents')) {
      const seen = await as('authenticated', member(PLATFORM, { app_metadata: { platform_admin: true } }), (tx) => tx`select * from alert_incidents`);
      assert.ok(seen.length >= 1, 'a platform admin reads the incidents');
    }
    const runs = await as('authenticated', member(PLATFORM, { app_metadata: { platform_admin: true } }), (tx) => tx`select id from jobs_log`);
    assert.deepEqual(runs.map((r) => r.id), [bRunId]);
    const hidden = await as('authenticated', member(B_ADMIN), (tx) => tx`select id from jobs_log`);
    assert.equal(hidden.length, 0, 'an agency admin reads no jobs_log rows');
  });
});

describe('through the admin pages API (Node server, real JWTs)', () => {
  let server: RunningServer;
  const auth = new JwtAuth(SECRET);
  const tokens: Record<string, string> = {};

  before(async () => {
    server = await startServer('node', {
      DATABASE_URL: db.url,
      SUPABASE_FUNCTION_KEY: 'tenant-key-0123456789abcdef-0123456789',
      SUPABASE_JWT_SECRET: SECRET,
      OVERDUE_SCHEDULER: 'off',
      WATCHDOG_INTERVAL_SECONDS: '0',
      LOG_LEVEL: 'warn',
    });
    tokens.aAdmin = await auth.mint({ sub: A_ADMIN });
    tokens.aUser = await auth.mint({ sub: A_USER });
    tokens.platform = await auth.mint({ sub: PLATFORM, platformAdmin: true });
    tokens.otherSecret = await new JwtAuth('another-project-secret-0123456789abcdef').mint({ sub: A_ADMIN, platformAdmin: true });
    tokens.expired = await new SignJWT({ role: 'authenticated', app_metadata: { platform_admin: true } })
      .setProtectedHeader({ alg: 'HS256' }).setSubject(PLATFORM).setIssuedAt(Math.floor(Date.now() / 1000) - 7200).setExpirationTime(Math.floor(Date.now() / 1000) - 3600)
      .sign(new TextEncoder().encode(SECRET));
    tokens.serviceRole = await new SignJWT({ role: 'service_role' }).setProtectedHeader({ alg: 'HS256' }).setSubject(PLATFORM).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    tokens.userMetadataAdmin = await new SignJWT({ role: 'authenticated', user_metadata: { platform_admin: true } }).setProtectedHeader({ alg: 'HS256' }).setSubject(A_USER).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ role: 'authenticated', sub: PLATFORM, app_metadata: { platform_admin: true } })).toString('base64url');
    tokens.algNone = `${header}.${payload}.`;
  });
  after(() => server?.stop());

  const api = async (token: string | null, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.base}/admin/api${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json().catch(() => null) };
  };

  test("an admin of A cannot read or change agency B; B's settings are unchanged", async () => {
    assert.equal((await api(tokens.aAdmin!, 'GET', `/agencies/${A}`)).status, 200);
    assert.equal((await api(tokens.aAdmin!, 'GET', `/agencies/${B}`)).status, 404);
    const put = await api(tokens.aAdmin!, 'PUT', `/agencies/${B}`, { timezone: 'UTC', cutoffTime: '09:00' });
    assert.ok([403, 404].includes(put.status), `PUT B → ${put.status}`);
    const put2 = await api(tokens.aUser!, 'PUT', `/agencies/${A}`, { timezone: 'UTC', cutoffTime: '09:00' });
    assert.equal(put2.status, 403, 'an agency_user cannot change settings');
    const [b] = await db.sql`select timezone, overdue_cutoff_time::text as cutoff from agencies where id = ${B}`;
    assert.deepEqual({ ...b }, { timezone: 'America/Los_Angeles', cutoff: '17:00:00' });
  });

  test('platform-only endpoints refuse members (403) and every forged, expired or foreign token (401)', async () => {
    for (const [method, path, body] of [
      ['GET', '/dashboard'],
      ['GET', `/runs/${bRunId}`],
      ['POST', '/preview', {}],
      ['POST', '/run', {}],
    ] as [string, string, unknown?][]) {
      assert.equal((await api(tokens.aAdmin!, method, path, body)).status, 403, `agency admin ${method} ${path}`);
      assert.equal((await api(tokens.userMetadataAdmin!, method, path, body)).status, 403, `user_metadata claim ${method} ${path}`);
      for (const t of ['otherSecret', 'expired', 'serviceRole', 'algNone'] as const) {
        assert.equal((await api(tokens[t]!, method, path, body)).status, 401, `${t} ${method} ${path}`);
      }
      assert.equal((await api(null, method, path, body)).status, 401, `no token ${method} ${path}`);
    }
    assert.equal((await api(tokens.platform!, 'GET', '/dashboard')).status, 200);
    const [{ n }] = await db.sql`select count(*)::int as n from jobs_log`;
    assert.equal(n, 1, 'no refused request started a run');
  });

  test('bad settings through the API: a clear 400 naming the value, nothing changed', async () => {
    const before = await db.sql`select * from agencies order by id`;
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ timezone: 'Mars/Olympus', cutoffTime: '17:00' }, /Mars\/Olympus/],
      [{ timezone: '', cutoffTime: '17:00' }, /time zone/],
      [{ timezone: 'UTC; drop table agencies', cutoffTime: '17:00' }, /UTC; drop table agencies/],
      [{ timezone: '+25:00', cutoffTime: '17:00' }, /\+25:00/],
      [{ timezone: 'UTC', cutoffTime: '24:00:01' }, /24:00:01/],
      [{ timezone: 'UTC', cutoffTime: '17:00', dueSoonThresholdDays: 31 }, /dueSoonThresholdDays|unknown field/],
      [{ timezone: 42, cutoffTime: '17:00' }, /time zone/],
    ];
    for (const [body, message] of cases) {
      const res = await api(tokens.aAdmin!, 'PUT', `/agencies/${A}`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error, message, JSON.stringify(body));
    }
    assert.deepEqual(await db.sql`select * from agencies order by id`, before);
  });
});
