// The admin pages in a real headless Chromium (Debian's /usr/bin/chromium driven by
// playwright-core), against the real Node HTTP server and a real database: sign in with a token,
// the runs and the chart, one run's breakdown, preview, run now, an agency admin changing the
// cutoff (and a bad zone refused), another agency's admin refused. Screenshots of each page at
// laptop and phone sizes go to test-artifacts/screenshots/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { freshDatabase } from '../support/database.ts';
import { JobRunner } from '../../src/job/runner.ts';
import { createApp } from '../../src/http/app.ts';
import { silentLogger } from '../../src/log.ts';
import { loadAlertConfig } from '../../src/alerts/config.ts';
import { startOperations, type Operations } from '../../src/operations.ts';
import { JwtAuth } from '../../src/http/auth-jwt.ts';

const SHOTS = new URL('../../test-artifacts/screenshots/', import.meta.url).pathname;
const SECRET = 'browser-test-jwt-secret-0123456789abcdef';
const LAPTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };

const db = await freshDatabase();
const { sql } = db;
const auth = new JwtAuth(SECRET);
let server: ServerType;
let base: string;
let operations: Operations;
let context: BrowserContext;
let userDataDir: string;
const ids = { brisbane: '', perth: '', tokyo: '' };
const tokens = { platform: '', brisbaneAdmin: '', perthAdmin: '' };

before(async () => {
  // The template database was migrated a while ago; this install starts being watched now.
  await sql`update job_watch set watched_since = now()`;
  mkdirSync(SHOTS, { recursive: true });
  const runner = new JobRunner(sql, { retryDelaysMs: [1], logger: silentLogger });
  const app = await createApp({ sql, runner, config: { functionKeys: ['browser-test-function-key-0123456789'], corsOrigins: [] }, logger: silentLogger });
  operations = startOperations({ sql, runner, app, logger: silentLogger, config: { alerts: loadAlertConfig({ WATCHDOG_INTERVAL_SECONDS: '0' }), jwtSecret: SECRET } });
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  // Three agencies, installments due over the last days, and a run history with a failure.
  for (const [key, name, zone] of [['brisbane', 'Brisbane Agency', 'Australia/Brisbane'], ['perth', 'Perth Agency', 'Australia/Perth'], ['tokyo', 'Tokyo Agency', 'Asia/Tokyo']] as const) {
    const [a] = await sql`insert into agencies (name, timezone) values (${name}, ${zone}) returning id`;
    ids[key] = a!.id;
    const [plan] = await sql`insert into payment_plans (agency_id) values (${a!.id}) returning id`;
    await sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date)
              select ${plan!.id}, ${a!.id}, 100, current_date - (g % 9) - 1 from generate_series(1, 12 + length(${name})) g`;
    await sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date)
              select ${plan!.id}, ${a!.id}, 100, current_date + 1 + (g % 3) from generate_series(1, 5) g`;
  }
  const brisbaneAdmin = '11111111-1111-4111-8111-111111111111';
  const perthAdmin = '22222222-2222-4222-8222-222222222222';
  await sql`insert into users (id, agency_id, role) values (${brisbaneAdmin}, ${ids.brisbane}, 'agency_admin'), (${perthAdmin}, ${ids.perth}, 'agency_admin')`;
  tokens.platform = await auth.mint({ sub: '44444444-4444-4444-8444-444444444444', platformAdmin: true, email: 'ops@example.test' });
  tokens.brisbaneAdmin = await auth.mint({ sub: brisbaneAdmin });
  tokens.perthAdmin = await auth.mint({ sub: perthAdmin });

  // History: runs spread over the past days, as the real runner records them.
  for (let day = 8; day >= 1; day--) {
    if (day === 3) {
      await sql`alter function public.update_installment_statuses(timestamptz) rename to update_installment_statuses_off`;
      await runner.run({ trigger: 'pg_cron' });
      await sql`alter function public.update_installment_statuses_off(timestamptz) rename to update_installment_statuses`;
    } else {
      await runner.run({ trigger: day % 2 ? 'schedule' : 'http', asOf: new Date(Date.now() - day * 86400_000) });
    }
    await sql`update jobs_log set started_at = started_at - make_interval(days => ${day}), completed_at = completed_at - make_interval(days => ${day})
               where started_at > now() - interval '1 hour'`;
  }
  await operations.monitor.settled();
  const [incident] = await sql`insert into alert_incidents (incident_key, summary) values ('job-failed:demo', 'update-installment-statuses failed') returning id`;
  await sql`insert into alert_deliveries (incident_id, kind, channel, status, attempts, subject, error)
            values (${incident!.id}, 'alert', 'webhook', 'failed', 4, 'update-installment-statuses failed', 'webhook hooks.example.test answered HTTP 503: unavailable')`;
  await sql`update alert_incidents set resolved_at = now() where id = ${incident!.id}`;

  userDataDir = mkdtempSync(join(tmpdir(), 'overdue-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: LAPTOP,
  });
});

after(async () => {
  await context?.close();
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  await operations?.stop();
  await new Promise((resolve) => server.close(resolve));
});

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(`${base}/admin/sign-in`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(/\/admin\/(jobs|agencies\/)/);
}

async function noHorizontalScroll(page: Page): Promise<void> {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `page is ${overflow}px wider than the viewport`);
}

test('a platform admin signs in and sees the health verdict, the chart and the runs; opens a run; previews; runs now', async () => {
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  await page.goto(`${base}/admin/jobs`);
  await page.waitForURL(/\/admin\/sign-in/); // not signed in: sent to sign in
  await page.screenshot({ path: join(SHOTS, 'sign-in-laptop.png'), fullPage: true });

  await signIn(page, tokens.platform);
  assert.match(page.url(), /\/admin\/jobs$/);
  await page.waitForSelector('#runs tbody tr[data-run-id]');
  assert.equal(await page.locator('#runs tbody tr[data-run-id]').count(), 8);
  assert.equal(await page.locator('#runs tbody tr.failed').count(), 1);
  assert.match(await page.locator('#runs tbody tr.failed td.error').innerText(), /update_installment_statuses/);
  assert.equal(await page.locator('#chart svg rect.bar').count(), 8);
  assert.equal(await page.locator('#chart svg .fail-mark').count(), 1);
  assert.equal(await page.locator('#chart svg polyline.duration').count(), 1);
  assert.equal(await page.locator('#verdict').innerText(), 'Healthy');
  assert.equal(await page.locator('#cutoffs tbody tr').count(), 3);
  assert.match(await page.locator('#failed-deliveries').innerText(), /HTTP 503/);
  await page.screenshot({ path: join(SHOTS, 'dashboard-laptop.png'), fullPage: true });

  // The first run flipped everything overdue by then: its per-agency breakdown.
  await page.locator('#runs tbody tr[data-run-id]').last().locator('a').click();
  await page.waitForSelector('#run-agencies tbody tr');
  const breakdown = await page.locator('#run-agencies tbody').innerText();
  assert.match(breakdown, /Brisbane Agency/);
  assert.match(breakdown, /Tokyo Agency/);
  await page.locator('#run-detail').screenshot({ path: join(SHOTS, 'run-detail-laptop.png') });

  // Preview two days ahead: the installments due tomorrow would flip; nothing changes.
  const [{ before: pendingBefore }] = await sql`select count(*)::int as before from installments where status = 'pending'`;
  const ahead = new Date(Date.now() + 2 * 86400_000 + 12 * 3600_000);
  const local = new Date(ahead.getTime() - ahead.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  await page.fill('#preview-at', local);
  await page.click('#preview-button');
  await page.waitForSelector('#preview-summary');
  assert.match(await page.locator('#preview-summary').innerText(), /[1-9]\d* installment\(s\) would become overdue\. Nothing was changed\./);
  assert.equal(await page.locator('#preview-agencies li').count(), 3);
  const [{ after: pendingAfter }] = await sql`select count(*)::int as after from installments where status = 'pending'`;
  assert.equal(pendingAfter, pendingBefore);
  await page.screenshot({ path: join(SHOTS, 'dashboard-preview-laptop.png') });

  page.once('dialog', (d) => void d.accept());
  await page.click('#run-button');
  await page.waitForSelector('#run-summary');
  assert.match(await page.locator('#run-summary').innerText(), /^Run [0-9a-f-]{36} succeeded/);
  await page.waitForFunction(() => document.querySelectorAll('#runs tbody tr[data-run-id]').length === 9);
  assert.match(await page.locator('#runs tbody tr').first().innerText(), /dashboard/);

  assert.deepEqual(errors, []);
  await page.close();
});

test('an agency admin changes the cutoff, sees the sentence, and a bad time zone is refused', async () => {
  const page = await context.newPage();
  await signIn(page, tokens.brisbaneAdmin);
  assert.match(page.url(), new RegExp(`/admin/agencies/${ids.brisbane}$`));
  await page.waitForSelector('#settings-form:not([hidden])');
  assert.equal(await page.inputValue('#timezone'), 'Australia/Brisbane');
  assert.match(await page.locator('#sentence').innerText(), /^An installment due today becomes overdue at 17:00 Australia\/Brisbane, 07:00 UTC; next cutoff: \d{4}-\d\d-\d\d 17:00 Australia\/Brisbane/);
  // The searchable list of IANA zones (pg_timezone_names) arrives just after the form.
  await page.waitForFunction(() => document.querySelectorAll('#timezones option').length > 300);
  assert.equal(await page.locator('#timezones option[value="America/New_York"]').count(), 1);
  assert.equal(await page.locator('[data-nav="jobs"]').count(), 0, 'no dashboard link for agency admins');

  await page.fill('#cutoff', '18:00');
  await page.click('#save');
  await page.waitForSelector('#message.ok');
  assert.match(await page.locator('#sentence').innerText(), /at 18:00 Australia\/Brisbane, 08:00 UTC/);
  const [row] = await sql`select overdue_cutoff_time::text as cutoff from agencies where id = ${ids.brisbane}`;
  assert.equal(row!.cutoff, '18:00:00');
  await page.screenshot({ path: join(SHOTS, 'settings-saved-laptop.png'), fullPage: true });

  await page.fill('#timezone', 'Mars/Olympus_Mons');
  await page.click('#save');
  await page.waitForSelector('#message.error');
  assert.match(await page.locator('#message').innerText(), /Not saved: invalid time zone "Mars\/Olympus_Mons": not a time zone this server knows/);
  await page.screenshot({ path: join(SHOTS, 'settings-refused-laptop.png'), fullPage: true });

  await page.fill('#timezone', 'Australia/Brisbane');
  await page.fill('#cutoff', '24:00');
  await page.click('#save');
  await page.waitForFunction(() => /overdue_cutoff_time/.test(document.getElementById('message')!.textContent ?? ''));
  const [unchanged] = await sql`select timezone, overdue_cutoff_time::text as cutoff from agencies where id = ${ids.brisbane}`;
  assert.deepEqual({ ...unchanged }, { timezone: 'Australia/Brisbane', cutoff: '18:00:00' });
  await page.close();
});

test('an admin of another agency is refused', async () => {
  const page = await context.newPage();
  await signIn(page, tokens.perthAdmin);
  await page.goto(`${base}/admin/agencies/${ids.brisbane}`);
  await page.waitForSelector('#settings.refused');
  assert.match(await page.locator('#message').innerText(), /Refused: agency [0-9a-f-]{36} not found, or you are not a member of it/);
  assert.equal(await page.locator('#settings-form').isHidden(), true);
  await page.screenshot({ path: join(SHOTS, 'settings-other-agency-refused-laptop.png') });

  await page.goto(`${base}/admin/jobs`);
  await page.waitForSelector('#message.error');
  assert.match(await page.locator('#message').innerText(), /for platform administrators/);
  await page.close();
});

test('the pages are readable on a phone', async () => {
  const page = await context.newPage();
  await page.setViewportSize(PHONE);
  await page.goto(`${base}/admin/sign-in`);
  await noHorizontalScroll(page);
  await page.screenshot({ path: join(SHOTS, 'sign-in-phone.png'), fullPage: true });
  await signIn(page, tokens.platform);
  await page.waitForSelector('#chart svg rect.bar');
  await noHorizontalScroll(page);
  await page.screenshot({ path: join(SHOTS, 'dashboard-phone.png'), fullPage: true });
  await page.goto(`${base}/admin/agencies/${ids.tokyo}`);
  await page.waitForSelector('#settings-form:not([hidden])');
  assert.equal(await page.locator('#readonly-note').isVisible(), true, 'platform admins see, but only agency admins change');
  await noHorizontalScroll(page);
  await page.screenshot({ path: join(SHOTS, 'settings-readonly-phone.png'), fullPage: true });

  const agencyPage = await context.newPage();
  await agencyPage.setViewportSize(PHONE);
  await signIn(agencyPage, tokens.brisbaneAdmin);
  await agencyPage.waitForSelector('#settings-form:not([hidden])');
  await noHorizontalScroll(agencyPage);
  await agencyPage.screenshot({ path: join(SHOTS, 'settings-phone.png'), fullPage: true });
  await agencyPage.close();
  await page.close();
});
