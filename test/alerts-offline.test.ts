// A failed run must alert even when the database — where incidents are recorded — is the thing
// that is down: once, not once per tick, and without a second alert when it comes back.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { freshDatabase } from './support/database.ts';
import { freePort } from './support/server-process.ts';
import { startWebhookReceiver } from './support/receivers.ts';
import { connect } from '../src/db/connect.ts';
import { AlertMonitor } from '../src/alerts/monitor.ts';
import { WebhookChannel } from '../src/alerts/webhook.ts';
import { silentLogger } from '../src/log.ts';

const db = await freshDatabase();
const webhook = await startWebhookReceiver();
const port = await freePort();
const target = new URL(db.url);

// A TCP proxy in front of PostgreSQL that we switch on and off: a real network outage.
let proxy: Server | null = null;
const sockets = new Set<Socket>();
function proxyUp(): Promise<void> {
  proxy = createServer((client) => {
    const upstream = tcpConnect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) => proxy!.listen(port, '127.0.0.1', resolve));
}

const url = new URL(db.url);
url.port = String(port);
const sql = connect(url.toString(), { max: 1, connectTimeoutSeconds: 2 });
const monitor = new AlertMonitor({
  sql,
  channels: [new WebhookChannel(webhook.url, { timeoutMs: 3000 })],
  retryDelaysMs: [10],
  staleAfterMs: 25 * 3_600_000,
  logger: silentLogger,
});

after(async () => {
  await sql.end({ timeout: 1 });
  for (const s of sockets) s.destroy();
  await new Promise((r) => (proxy ? proxy.close(r) : r(null)));
  await webhook.close();
});

const failed = { kind: 'failed' as const, jobId: null, error: 'connect ECONNREFUSED 127.0.0.1', code: 'ECONNREFUSED', attempts: 4 };

test('the database is down: the failed run alerts once; when it is back, no second alert, then one recovery', async () => {
  await monitor.handleRunFinished(failed);
  assert.equal(webhook.messages.length, 1);
  assert.match(webhook.messages[0]!.text, /failed after 4 attempt/);

  await monitor.handleRunFinished(failed);
  assert.equal(webhook.messages.length, 1, 'a second failure in the same outage is not alerted again');

  await proxyUp();
  await monitor.handleRunFinished({ ...failed, jobId: '00000000-0000-4000-8000-000000000001', error: 'still failing', code: '42883', attempts: 1 });
  assert.equal(webhook.messages.length, 1, 'recording the incident once the database is back does not alert again');
  const [open] = await db.sql`select count(*)::int as n from alert_incidents where resolved_at is null`;
  assert.equal(open!.n, 1);

  await monitor.handleRunFinished({ kind: 'success', jobId: '00000000-0000-4000-8000-000000000002', recordsUpdated: 3 });
  assert.equal(webhook.messages.length, 2);
  assert.match(webhook.messages[1]!.text, /healthy again/);
});
