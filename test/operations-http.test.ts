// Health, metrics, sign-in and the admin page APIs, through the Hono app (app.request, no
// socket) on a real database. The page APIs run their SQL as the signed-in person, so these
// tests also prove RLS does the tenancy work, not just the API checks.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import { freshDatabase } from './support/database.ts';
import { connect } from '../src/db/connect.ts';
import { JobRunner } from '../src/job/runner.ts';
import { silentLogger } from '../src/log.ts';
import { JobMetrics } from '../src/http/metrics.ts';
import { JwtAuth } from '../src/http/auth-jwt.ts';
import { createOpsApp } from '../src/http/ops.ts';
import { asUser } from '../src/web/queries.ts';
import { main as cli } from '../src/cli.ts';

const db = await freshDatabase();
const { sql } = db;
const SECRET = 'test-jwt-secret-0123456789abcdef0123456789';
const auth = new JwtAuth(SECRET);
const STALE_MS = 25 * 3_600_000;
const runner = new JobRunner(sql, { retryDelaysMs: [1], logger: silentLogger });
const metrics = new JobMetrics({ sql, staleAfterMs: STALE_MS, overdueCountCacheMs: 0 });
runner.onFinished((o) => metrics.observeRun(o));
const app = createOpsApp({ sql, runner, logger: silentLogger, metrics, auth, staleAfterMs: STALE_MS });

const ids = {
  brisbane: '',
  perth: '',
  brisbaneAdmin: '11111111-1111-4111-8111-111111111111',
  perthAdmin: '22222222-2222-4222-8222-222222222222',
  brisbaneUser: '33333333-3333-4333-8333-333333333333',
  platform: '44444444-4444-4444-8444-444444444444',
};
const tokens: Record<string, string> = {};

before(async () => {
  // The template database was migrated a while ago; this install starts being watched now.
  await sql`update job_watch set watched_since = now()`;
  const [b] = await sql`insert into agencies (name, timezone) values ('Brisbane Agency', 'Australia/Brisbane') returning id`;
  const [p] = await sql`insert into agencies (name, timezone, overdue_cutoff_time) values ('Perth Agency', 'Australia/Perth', '16:30') returning id`;
  ids.brisbane = b!.id;
  ids.perth = p!.id;
  await sql`insert into users (id, agency_id, role) values
    (${ids.brisbaneAdmin}, ${ids.brisbane}, 'agency_admin'),
    (${ids.perthAdmin}, ${ids.perth}, 'agency_admin'),
    (${ids.brisbaneUser}, ${ids.brisbane}, 'agency_user')`;
  for (const agency of [ids.brisbane, ids.perth]) {
    const [plan] = await sql`insert into payment_plans (agency_id) values (${agency}) returning id`;
    await sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date)
              select ${plan!.id}, ${agency}, 50, current_date - g from generate_series(3, 5) g`;
  }
  tokens.platform = await auth.mint({ sub: ids.platform, platformAdmin: true });
  tokens.brisbaneAdmin = await auth.mint({ sub: ids.brisbaneAdmin });
  tokens.perthAdmin = await auth.mint({ sub: ids.perthAdmin });
  tokens.brisbaneUser = await auth.mint({ sub: ids.brisbaneUser });
});

const call = (path: string, token?: string, init: RequestInit = {}) =>
  app.request(path, { ...init, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(init.body ? { 'content-type': 'application/json' } : {}) } });

test('/healthz answers without the database; /readyz checks the database and the migrations', async () => {
  assert.equal((await call('/healthz')).status, 200);
  const ready = await call('/readyz');
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'ready', database: 'ok', pendingMigrations: [] });

  const unmigrated = await freshDatabase({ migrated: false });
  const app2 = createOpsApp({ sql: unmigrated.sql, runner, logger: silentLogger, metrics, auth, staleAfterMs: STALE_MS });
  const notReady = await app2.request('/readyz');
  assert.equal(notReady.status, 503);
  const body = (await notReady.json()) as { pendingMigrations: string[] };
  assert.ok(body.pendingMigrations.includes('20251113000500_operations'));

  const down = connect('postgres://postgres@127.0.0.1:1/nowhere', { max: 1, connectTimeoutSeconds: 1 });
  const app3 = createOpsApp({ sql: down, runner, logger: silentLogger, metrics, auth, staleAfterMs: STALE_MS });
  const unreachable = await app3.request('/readyz');
  assert.equal(unreachable.status, 503);
  assert.match(((await unreachable.json()) as { database: string }).database, /^unreachable: /);
  assert.equal((await app3.request('/healthz')).status, 200, 'liveness does not depend on the database');
  await down.end({ timeout: 1 });
});

test('/health/job: a fresh install gets the limit to run once; 200 after a success, 503 with the reason once it is older than the limit', async () => {
  let res = await call('/health/job');
  assert.equal(res.status, 200);
  assert.match(((await res.json()) as { reason: string }).reason, /^no successful run yet; watched for/);
  await sql`update job_watch set watched_since = watched_since - interval '26 hours'`;
  res = await call('/health/job');
  assert.equal(res.status, 503);
  assert.match(((await res.json()) as { reason: string }).reason, /no successful run of update-installment-statuses in the 1 day 02:00:\d\d since it was first watched/);
  const [sqlCheck] = await sql`select healthy from job_health()`;
  assert.equal(sqlCheck!.healthy, false);
  await assert.rejects(sql`select assert_job_healthy()`, /job update-installment-statuses is unhealthy: no successful run/);
  await sql`update job_watch set watched_since = watched_since + interval '26 hours'`;

  const outcome = await runner.run({ trigger: 'test' });
  assert.equal(outcome.kind, 'success');
  res = await call('/health/job');
  assert.equal(res.status, 200);
  const ok = (await res.json()) as Record<string, unknown>;
  assert.equal(ok.healthy, true);
  assert.equal(ok.limitSeconds, 90000);
  assert.equal(typeof ok.lastSuccessAt, 'string');

  await sql`update jobs_log set started_at = started_at - interval '26 hours', completed_at = completed_at - interval '26 hours'`;
  res = await call('/health/job');
  assert.equal(res.status, 503);
  const stale = (await res.json()) as Record<string, unknown>;
  assert.match(String(stale.reason), /no successful run of update-installment-statuses for 1 day 02:00/);
  assert.ok(Number(stale.ageSeconds) >= 26 * 3600);
  await sql`update jobs_log set started_at = started_at + interval '26 hours', completed_at = completed_at + interval '26 hours'`;
});

test('/metrics: Prometheus text with run counters, and last success and overdue count read from the database', async () => {
  // A run recorded by someone else (pg_cron in SQL): the gauge must still see it.
  await sql`insert into jobs_log (job_name, status, started_at, completed_at, records_updated)
            values ('update-installment-statuses', 'success', now(), '2030-01-01T00:00:00Z', 0)`;
  const res = await call('/metrics');
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
  const text = await res.text();
  assert.match(text, /^installment_status_job_runs_total\{status="success"\} 1$/m);
  assert.match(text, /^installment_status_job_runs_total\{status="failed"\} 0$/m);
  assert.match(text, /^installment_status_job_duration_seconds_count\{status="success"\} 1$/m);
  assert.match(text, /^installment_status_job_records_updated_total 6$/m);
  assert.match(text, /^installment_status_job_last_success_timestamp_seconds 1893456000$/m);
  assert.match(text, /^installment_status_installments_overdue 6$/m);
  assert.match(text, /^installment_status_job_healthy 1$/m);
  metrics.observeDelivery({ channel: 'webhook', status: 'failed', attempts: 4, error: 'x' });
  assert.match(await (await call('/metrics')).text(), /^installment_status_alert_deliveries_total\{channel="webhook",outcome="failed"\} 1$/m);
  await sql`delete from jobs_log where completed_at = '2030-01-01T00:00:00Z'`;
});

test('sign-in: no token, a forged, expired or non-user token are refused with 401 and a reason', async () => {
  assert.equal((await call('/admin/api/me')).status, 401);
  const forged = await new JwtAuth('another-secret-0123456789abcdef0123456789').mint({ sub: ids.platform, platformAdmin: true });
  let res = await call('/admin/api/me', forged);
  assert.equal(res.status, 401);
  assert.match(((await res.json()) as { error: string }).error, /not signed with this project's JWT secret/);
  const expired = await new SignJWT({ role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' }).setSubject(ids.platform)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(new TextEncoder().encode(SECRET));
  res = await call('/admin/api/me', expired);
  assert.match(((await res.json()) as { error: string }).error, /expired/);
  const anon = await new SignJWT({ role: 'anon' }).setProtectedHeader({ alg: 'HS256' }).setSubject(ids.platform)
    .setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
  res = await call('/admin/api/me', anon);
  assert.equal(res.status, 401);
  assert.match(((await res.json()) as { error: string }).error, /role "anon"/);

  const me = (await (await call('/admin/api/me', tokens.brisbaneAdmin)).json()) as Record<string, unknown>;
  assert.deepEqual(me.agency, { id: ids.brisbane, name: 'Brisbane Agency', role: 'agency_admin' });
  assert.equal(me.platformAdmin, false);

  const disabled = createOpsApp({ sql, runner, logger: silentLogger, metrics, auth: null, staleAfterMs: STALE_MS });
  const off = await disabled.request('/admin/api/me', { headers: { authorization: `Bearer ${tokens.platform}` } });
  assert.equal(off.status, 503);
  assert.match(((await off.json()) as { error: string }).error, /SUPABASE_JWT_SECRET/);
});

test('dashboard APIs are for platform admins: runs, one run per agency, health, cutoffs, preview, run now', async () => {
  const refused = await call('/admin/api/dashboard', tokens.brisbaneAdmin);
  assert.equal(refused.status, 403);
  assert.equal((await call('/admin/api/preview', tokens.brisbaneAdmin, { method: 'POST', body: '{}' })).status, 403);
  assert.equal((await call('/admin/api/run', tokens.brisbaneAdmin, { method: 'POST' })).status, 403);

  const res = await call('/admin/api/dashboard', tokens.platform);
  assert.equal(res.status, 200);
  const data = (await res.json()) as { runs: { id: string; trigger: string; records_updated: number }[]; health: { healthy: boolean }; cutoffs: { name: string; next_cutoff_local: string; cutoff_time: string }[] };
  assert.equal(data.runs.length, 1);
  assert.equal(data.runs[0]!.records_updated, 6);
  assert.equal(data.health.healthy, true);
  assert.deepEqual(data.cutoffs.map((c) => c.name).sort(), ['Brisbane Agency', 'Perth Agency']);
  assert.equal(data.cutoffs.find((c) => c.name === 'Perth Agency')!.cutoff_time, '16:30');

  const detail = (await (await call(`/admin/api/runs/${data.runs[0]!.id}`, tokens.platform)).json()) as { agencies: { agency_name: string; updated_count: number }[] };
  assert.deepEqual(detail.agencies.map((a) => [a.agency_name, a.updated_count]).sort(), [['Brisbane Agency', 3], ['Perth Agency', 3]]);
  assert.equal((await call('/admin/api/runs/not-a-uuid', tokens.platform)).status, 400);

  // Preview a week ahead: nothing is pending in the past any more; a new installment due
  // tomorrow would flip. Nothing is changed.
  const [plan] = await sql`select id from payment_plans where agency_id = ${ids.brisbane} limit 1`;
  await sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date) values (${plan!.id}, ${ids.brisbane}, 10, current_date + 1)`;
  const preview = await call('/admin/api/preview', tokens.platform, { method: 'POST', body: JSON.stringify({ asOf: new Date(Date.now() + 7 * 86400_000).toISOString() }) });
  assert.equal(preview.status, 200);
  const p = (await preview.json()) as { recordsWouldUpdate: number; agencies: { agency_name: string }[] };
  assert.equal(p.recordsWouldUpdate, 1);
  assert.equal(p.agencies[0]!.agency_name, 'Brisbane Agency');
  const [{ pending }] = await sql`select count(*)::int as pending from installments where status = 'pending'`;
  assert.equal(pending, 1, 'preview changed nothing');
  const bad = await call('/admin/api/preview', tokens.platform, { method: 'POST', body: JSON.stringify({ asOf: 'tomorrow' }) });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /invalid asOf "tomorrow"/);

  const run = await call('/admin/api/run', tokens.platform, { method: 'POST' });
  assert.equal(run.status, 200);
  const [last] = await sql`select metadata ->> 'trigger' as trigger from jobs_log order by started_at desc limit 1`;
  assert.equal(last!.trigger, 'dashboard');
});

test('agency settings: its admin changes zone and cutoff; bad values are refused with the database\'s words', async () => {
  const url = `/admin/api/agencies/${ids.brisbane}`;
  const put = (token: string, body: unknown) => call(url, token, { method: 'PUT', body: JSON.stringify(body) });

  const view = (await (await call(url, tokens.brisbaneAdmin)).json()) as { agency: { can_edit: boolean }; sentence: string };
  assert.equal(view.agency.can_edit, true);
  assert.match(view.sentence, /^An installment due today becomes overdue at 17:00 Australia\/Brisbane, 07:00 UTC; next cutoff: \d{4}-\d\d-\d\d 17:00 Australia\/Brisbane \(\d{4}-\d\d-\d\d 07:00 UTC\)\.$/);

  let res = await put(tokens.brisbaneAdmin, { timezone: 'asia/tokyo', cutoffTime: '18:30' });
  assert.equal(res.status, 200);
  const saved = (await res.json()) as { agency: { timezone: string; overdue_cutoff_time: string }; sentence: string };
  assert.equal(saved.agency.timezone, 'Asia/Tokyo', 'canonical spelling from the database');
  assert.equal(saved.agency.overdue_cutoff_time, '18:30:00');
  assert.match(saved.sentence, /at 18:30 Asia\/Tokyo, 09:30 UTC/);

  res = await put(tokens.brisbaneAdmin, { timezone: 'Mars/Olympus_Mons', cutoffTime: '17:00' });
  assert.equal(res.status, 400);
  const zoneError = (await res.json()) as { error: string; code: string };
  assert.equal(zoneError.code, '22023');
  assert.match(zoneError.error, /invalid time zone "Mars\/Olympus_Mons"/);

  res = await put(tokens.brisbaneAdmin, { timezone: 'Asia/Tokyo', cutoffTime: '24:00' });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /invalid overdue_cutoff_time "24:00:00"/);

  res = await put(tokens.brisbaneAdmin, { timezone: 'Asia/Tokyo', cutoffTime: '5pm' });
  assert.equal(res.status, 400);
  assert.match(((await res.json()) as { error: string }).error, /invalid cutoff time "5pm": use HH:MM/);

  const [row] = await sql`select timezone, overdue_cutoff_time::text as cutoff from agencies where id = ${ids.brisbane}`;
  assert.deepEqual({ ...row }, { timezone: 'Asia/Tokyo', cutoff: '18:30:00' }, 'refused changes changed nothing');
});

test('another agency\'s admin, an agency user and a platform admin cannot change an agency; RLS refuses even without the API check', async () => {
  const url = `/admin/api/agencies/${ids.brisbane}`;
  const body = JSON.stringify({ timezone: 'Europe/London', cutoffTime: '09:00' });
  const perthPut = await call(url, tokens.perthAdmin, { method: 'PUT', body });
  assert.equal(perthPut.status, 403);
  assert.match(((await perthPut.json()) as { error: string }).error, /only admins of agency/);
  assert.equal((await call(url, tokens.perthAdmin)).status, 404, 'another tenant cannot even read it');
  assert.equal((await call(url, tokens.brisbaneUser, { method: 'PUT', body })).status, 403);
  assert.equal((await call(url, tokens.platform, { method: 'PUT', body })).status, 403);

  // Straight to the database as the Perth admin: the row is invisible, so nothing is updated.
  const claims = (await auth.verify(tokens.perthAdmin)).claims;
  const updated = await asUser(sql, claims, (tx) => tx`update agencies set timezone = 'Europe/London' where id = ${ids.brisbane} returning id`);
  assert.equal(updated.length, 0);
  const seen = await asUser(sql, claims, (tx) => tx`select id from jobs_log`);
  assert.equal(seen.length, 0, 'jobs_log is for platform admins only');
  await sql`insert into alert_incidents (incident_key, summary) values ('job-failed:rls-test', 'rls test')`;
  const incidents = await asUser(sql, claims, (tx) => tx`select id from alert_incidents`);
  assert.equal(incidents.length, 0, 'alert incidents are for platform admins only');
  const asPlatform = await asUser(sql, (await auth.verify(tokens.platform)).claims, (tx) => tx`select id from alert_incidents`);
  assert.equal(asPlatform.length, 1);
  await assert.rejects(
    asUser(sql, (await auth.verify(tokens.platform)).claims, (tx) => tx`delete from alert_incidents`),
    /permission denied/,
    'nobody but the service writes them',
  );
  const [row] = await sql`select timezone from agencies where id = ${ids.brisbane}`;
  assert.equal(row!.timezone, 'Asia/Tokyo');
});

test('overdue token --agency-admin records the membership and mints a token that works; overdue check exits by health', async () => {
  const out: string[] = [];
  const err: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => err.push(l) };
  const env = { DATABASE_URL: db.url, JWT_SECRET: SECRET };
  const sub = '55555555-5555-4555-8555-555555555555';
  assert.equal(await cli(['token', '--agency-admin', ids.perth, '--sub', sub], env, io), 0);
  const [member] = await sql`select agency_id, role from users where id = ${sub}`;
  assert.deepEqual({ ...member }, { agency_id: ids.perth, role: 'agency_admin' });
  const res = await call(`/admin/api/agencies/${ids.perth}`, out[0]!, { method: 'PUT', body: JSON.stringify({ timezone: 'Australia/Perth', cutoffTime: '17:15' }) });
  assert.equal(res.status, 200);

  assert.equal(await cli(['token', '--agency-admin', '66666666-6666-4666-8666-666666666666'], env, io), 2);
  assert.match(err.at(-1)!, /no agency with id 66666666/);
  assert.equal(await cli(['token'], env, io), 2);

  out.length = 0;
  assert.equal(await cli(['check'], env, io), 0);
  assert.match(out[0]!, /^healthy: last success/);
  await sql`update jobs_log set started_at = started_at - interval '30 hours', completed_at = completed_at - interval '30 hours'`;
  assert.equal(await cli(['check', '--json'], env, io), 1);
  assert.equal(JSON.parse(out.at(-1)!).healthy, false);
  assert.equal(await cli(['check', '--stale-after-hours', '48'], env, io), 0);
});
