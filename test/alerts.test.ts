// Alerting end to end: the real runner fails and recovers against a real database, and the
// alerts arrive at a real HTTP webhook receiver and a real SMTP server.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { startSmtpReceiver, startWebhookReceiver, type SmtpReceiver, type WebhookReceiver } from './support/receivers.ts';
import { JobRunner } from '../src/job/runner.ts';
import { AlertMonitor } from '../src/alerts/monitor.ts';
import { WebhookChannel } from '../src/alerts/webhook.ts';
import { EmailChannel } from '../src/alerts/email.ts';
import { startWatchdog, type Watchdog } from '../src/alerts/watchdog.ts';
import { loadAlertConfig } from '../src/alerts/config.ts';
import { channelsFromConfig } from '../src/alerts/channels.ts';
import { silentLogger } from '../src/log.ts';
import { main as cli } from '../src/cli.ts';

const db = await freshDatabase();
const { sql } = db;
let webhook: WebhookReceiver;
let smtp: SmtpReceiver;
let email: EmailChannel;
let monitor: AlertMonitor;
let runner: JobRunner;
let watchdog: Watchdog;

before(async () => {
  // The template database was migrated a while ago; this install starts being watched now.
  await sql`update job_watch set watched_since = now()`;
  webhook = await startWebhookReceiver();
  smtp = await startSmtpReceiver();
  email = new EmailChannel(smtp.url, ['ops@example.test'], 'overdue <alerts@example.test>', { timeoutMs: 3000 });
  monitor = new AlertMonitor({
    sql,
    channels: [new WebhookChannel(webhook.url, { timeoutMs: 3000 }), email],
    retryDelaysMs: [10, 20, 40],
    staleAfterMs: 25 * 3_600_000,
    logger: silentLogger,
  });
  runner = new JobRunner(sql, { retryDelaysMs: [5, 5, 5], logger: silentLogger });
  runner.onFinished((outcome) => monitor.handleRunFinished(outcome));
  watchdog = startWatchdog({ monitor, reapAbandoned: () => runner.reapAbandoned(), intervalMs: 0, logger: silentLogger });

  const [agency] = await sql`insert into agencies (name, timezone) values ('Brisbane Agency', 'Australia/Brisbane') returning id`;
  const [plan] = await sql`insert into payment_plans (agency_id) values (${agency!.id}) returning id`;
  await sql`insert into installments (payment_plan_id, agency_id, amount, student_due_date)
            values (${plan!.id}, ${agency!.id}, 100, current_date - 10)`;
});

after(async () => {
  await watchdog.stop();
  email.close();
  await webhook.close();
  await smtp.close();
});

// A permanent error (42883 undefined function): the runner fails at once, without retries.
const breakJob = () => sql`alter function public.update_installment_statuses(timestamptz) rename to update_installment_statuses_broken`;
const repairJob = () => sql`alter function public.update_installment_statuses_broken(timestamptz) rename to update_installment_statuses`;

async function deliveries() {
  return sql`select kind, channel, status, attempts, error from alert_deliveries order by id`;
}

test('a fresh install with no run yet is not reported stale: the watchdog stays quiet', async () => {
  await watchdog.tick();
  assert.equal(webhook.messages.length, 0);
  assert.equal(smtp.messages.length, 0);
});

test('a failed run sends one webhook message and one e-mail naming the job id, the error and the attempts', async () => {
  await breakJob();
  const outcome = await runner.run({ trigger: 'test' });
  assert.equal(outcome.kind, 'failed');
  await monitor.settled();
  const jobId = (outcome as { jobId: string }).jobId;

  assert.equal(webhook.messages.length, 1);
  const text = webhook.messages[0]!.text;
  assert.match(text, new RegExp(jobId));
  assert.match(text, /update_installment_statuses/); // the error names the missing function
  assert.match(text, /after 1 attempt\(s\)/);

  assert.equal(smtp.messages.length, 1);
  const mail = smtp.messages[0]!;
  assert.deepEqual(mail.to, ['ops@example.test']);
  assert.match(mail.subject, /\[ALERT\] update-installment-statuses failed/);
  assert.match(mail.raw, new RegExp(jobId));
  assert.match(mail.raw, /after 1 attempt\(s\)/);

  assert.deepEqual(
    (await deliveries()).map((d) => [d.kind, d.channel, d.status, d.attempts]).sort(),
    [
      ['alert', 'email', 'delivered', 1],
      ['alert', 'webhook', 'delivered', 1],
    ],
  );
});

test('a second failure in the same incident, and the watchdog seeing it, send nothing new', async () => {
  const outcome = await runner.run({ trigger: 'test' });
  assert.equal(outcome.kind, 'failed');
  await monitor.settled();
  await watchdog.tick();
  assert.equal(webhook.messages.length, 1);
  assert.equal(smtp.messages.length, 1);
  const [incident] = await sql`select occurrences, resolved_at from alert_incidents where incident_key = 'job-failed:update-installment-statuses'`;
  assert.equal(incident!.occurrences, 3); // two runs + one watchdog sighting
  assert.equal(incident!.resolved_at, null);
});

test('a success after failures sends one recovery message on each channel', async () => {
  await repairJob();
  const outcome = await runner.run({ trigger: 'test' });
  assert.equal(outcome.kind, 'success');
  await monitor.settled();
  assert.equal(webhook.messages.length, 2);
  assert.match(webhook.messages[1]!.text, /Recovered: update-installment-statuses failed/);
  assert.match(webhook.messages[1]!.text, /1 installment\(s\) updated/);
  assert.equal(smtp.messages.length, 2);
  assert.match(smtp.messages[1]!.subject, /\[RESOLVED\]/);

  await watchdog.tick(); // healthy: nothing more
  assert.equal(webhook.messages.length, 2);
  const open = await sql`select 1 from alert_incidents where resolved_at is null`;
  assert.equal(open.length, 0);
});

test('no success for 25 hours opens the dead-man incident once, and a success recovers it', async () => {
  await sql`update jobs_log set started_at = started_at - interval '30 hours',
                               completed_at = completed_at - interval '30 hours'`;
  await watchdog.tick();
  assert.equal(webhook.messages.length, 3);
  assert.match(webhook.messages[2]!.text, /no successful run for more than 25 h/);
  assert.match(webhook.messages[2]!.text, /Last success: \d{4}-/);
  assert.equal(smtp.messages.length, 3);

  await watchdog.tick();
  await watchdog.tick();
  assert.equal(webhook.messages.length, 3, 'one alert per incident, not one per tick');

  const outcome = await runner.run({ trigger: 'test' });
  assert.equal(outcome.kind, 'success');
  await monitor.settled();
  assert.equal(webhook.messages.length, 4);
  assert.match(webhook.messages[3]!.text, /Recovered: update-installment-statuses: no successful run/);
});

test('a receiver that is down at first gets the alert on a retry', async () => {
  await sql`delete from alert_deliveries`;
  webhook.refuseNext(2);
  smtp.refuseNext(1);
  await breakJob();
  await runner.run({ trigger: 'test' });
  await monitor.settled();
  assert.equal(webhook.messages.length, 5);
  assert.match(webhook.messages[4]!.text, /failed/);
  assert.equal(smtp.messages.length, 5);
  const rows = await deliveries();
  assert.deepEqual(
    rows.map((d) => [d.channel, d.status, d.attempts]).sort(),
    [
      ['email', 'delivered', 2],
      ['webhook', 'delivered', 3],
    ],
  );
  await repairJob();
  await runner.run({ trigger: 'test' });
  await monitor.settled();
});

test('a receiver that keeps failing is recorded as a failed delivery with the last error', async () => {
  await sql`delete from alert_deliveries`;
  webhook.refuseAll(true);
  try {
    await breakJob();
    await runner.run({ trigger: 'test' });
    await monitor.settled();
  } finally {
    webhook.refuseAll(false);
    await repairJob();
  }
  const rows = await sql`select channel, status, attempts, error from alert_deliveries where channel = 'webhook'`;
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.status, 'failed');
  assert.equal(rows[0]!.attempts, 4);
  assert.match(rows[0]!.error, /HTTP 503: receiver unavailable/);
  const [mail] = await sql`select status from alert_deliveries where channel = 'email'`;
  assert.equal(mail!.status, 'delivered', 'one channel failing does not stop the other');
});

test('configuration: channels from the environment, and bad values named', () => {
  const config = loadAlertConfig({ ALERT_WEBHOOK_URL: webhook.url, SMTP_URL: smtp.url, ALERT_EMAIL_TO: 'a@x.test, b@x.test' });
  assert.deepEqual(channelsFromConfig(config).map((c) => c.name), ['webhook', 'email']);
  assert.deepEqual(config.emailTo, ['a@x.test', 'b@x.test']);
  assert.equal(config.staleAfterMs, 25 * 3_600_000);
  assert.deepEqual(channelsFromConfig(loadAlertConfig({})), []);
  assert.throws(() => loadAlertConfig({ ALERT_WEBHOOK_URL: 'hooks.slack.com/x' }), /ALERT_WEBHOOK_URL: must be an http\(s\) URL/);
  assert.throws(() => loadAlertConfig({ SMTP_URL: 'smtp://localhost:25' }), /ALERT_EMAIL_TO: is required when SMTP_URL is set/);
  assert.throws(() => loadAlertConfig({ SMTP_URL: 'smtp://h', ALERT_EMAIL_TO: 'nobody' }), /ALERT_EMAIL_TO: "nobody" is not an e-mail address/);
  assert.throws(() => loadAlertConfig({ ALERT_STALE_AFTER_HOURS: '-1' }), /ALERT_STALE_AFTER_HOURS: "-1" is not a positive number/);
  assert.throws(() => loadAlertConfig({ ALERT_RETRY_DELAYS_MS: '10,abc' }), /ALERT_RETRY_DELAYS_MS: "10,abc"/);
  assert.equal(loadAlertConfig({ ALERT_STALE_AFTER_HOURS: '2' }).staleAfterMs, 7_200_000);
});

test('overdue check --alert, run from outside the service, sends the dead-man alert once and exits 1', async () => {
  assert.equal((await runner.run({ trigger: 'test' })).kind, 'success');
  await monitor.settled();
  await sql`update jobs_log set started_at = started_at - interval '30 hours', completed_at = completed_at - interval '30 hours'`;
  const before = webhook.messages.length;
  const out: string[] = [];
  const io = { out: (l: string) => out.push(l), err: () => {} };
  const env = { DATABASE_URL: db.url, ALERT_WEBHOOK_URL: webhook.url, ALERT_RETRY_DELAYS_MS: '10' };
  assert.equal(await cli(['check', '--alert'], env, io), 1);
  assert.match(out[0]!, /^UNHEALTHY: no successful run of update-installment-statuses for 1 day 06:/);
  assert.equal(webhook.messages.length, before + 1);
  assert.match(webhook.messages.at(-1)!.text, /no successful run for more than 25 h/);
  assert.equal(await cli(['check', '--alert'], env, io), 1);
  assert.equal(webhook.messages.length, before + 1, 'the open incident is not alerted again');
});
