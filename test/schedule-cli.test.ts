// `npx overdue next` and the refusals of `npx overdue schedule …`, through the real executable.
// (Installing into the real pg_cron is in test/slow/pg-cron.test.ts: it shares the cluster's
// cron.job table and waits for a real tick.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency } from './support/fixtures.ts';

const db = await freshDatabase();
const BIN = fileURLToPath(new URL('../bin/overdue.js', import.meta.url));

function overdue(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: db.url }) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const clean = { PATH: process.env.PATH, HOME: process.env.HOME, ...env } as NodeJS.ProcessEnv;
    execFile(process.execPath, [BIN, ...args], { env: clean, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('overdue next: the next cutoff per agency, local and UTC, soonest first', async () => {
  const london = await createAgency(db.sql, 'London', 'Europe/London', '17:00');
  const tokyo = await createAgency(db.sql, 'Tokyo', 'Asia/Tokyo', '09:30');
  await createAgency(db.sql, 'Chatham', 'Pacific/Chatham', '00:00');
  await addInstallments(db.sql, london, ['2026-03-29', '2026-03-29']);
  await addInstallments(db.sql, tokyo, ['2026-03-30']);

  // 29 March 2026, 12:00 UTC: London has sprung forward (BST, +01:00) that morning.
  const json = await overdue(['next', '--at', '2026-03-29T12:00:00Z', '--json']);
  assert.equal(json.code, 0, json.stderr);
  const body = JSON.parse(json.stdout);
  assert.equal(body.asOf, '2026-03-29T12:00:00.000Z');
  assert.deepEqual(
    body.agencies.map((a: Record<string, unknown>) => [a.agencyName, a.timezone, a.dueDate, a.cutoffAt, a.cutoffLocal, a.pendingDue]),
    [
      ['London', 'Europe/London', '2026-03-29', '2026-03-29T16:00:00.000Z', '2026-03-29 17:00:00', 2],
      // 21:00 in Tokyo: tomorrow's 09:30.
      ['Tokyo', 'Asia/Tokyo', '2026-03-30', '2026-03-30T00:30:00.000Z', '2026-03-30 09:30:00', 1],
      // Chatham is +13:45 in March (01:45 on the 30th there): 00:00 on the 31st is 10:15 UTC on the 30th.
      ['Chatham', 'Pacific/Chatham', '2026-03-31', '2026-03-30T10:15:00.000Z', '2026-03-31 00:00:00', 0],
    ],
  );

  const human = await overdue(['next', '--at', '2026-03-29T12:00:00Z']);
  assert.equal(human.code, 0, human.stderr);
  const lines = human.stdout.trim().split('\n');
  assert.equal(lines[0], 'as of 2026-03-29T12:00:00.000Z');
  assert.match(lines[1]!, /^next cutoff \(UTC\)\s+local time\s+zone\s+in\s+due date\s+pending\s+agency$/);
  assert.match(lines[2]!, /^2026-03-29 16:00:00\s+2026-03-29 17:00:00\s+Europe\/London\s+4h00m\s+2026-03-29\s+2\s+London$/);
  assert.equal(lines.length, 5);

  // Without --at it answers for the database's now.
  const now = await overdue(['next', '--json']);
  assert.equal(now.code, 0, now.stderr);
  const nowBody = JSON.parse(now.stdout);
  assert.equal(nowBody.agencies.length, 3);
  for (const a of nowBody.agencies) assert.ok(Date.parse(a.cutoffAt) >= Date.parse(nowBody.asOf));
});

test('overdue next refuses bad input with exit code 2', async () => {
  const badAt = await overdue(['next', '--at', 'tomorrow']);
  assert.equal(badAt.code, 2);
  assert.match(badAt.stderr, /--at must be an ISO-8601 instant with a zone.*"tomorrow"/);
  const noZone = await overdue(['next', '--at', '2026-03-29T12:00:00']);
  assert.equal(noZone.code, 2);
  const unknown = await overdue(['next', '--agency', 'x']);
  assert.equal(unknown.code, 2);
  const noDb = await overdue(['next'], {});
  assert.equal(noDb.code, 2);
  assert.match(noDb.stderr, /DATABASE_URL/);
});

test('overdue schedule refuses bad input before touching pg_cron, with exit code 2', async () => {
  const cases: [string[], RegExp][] = [
    [['schedule'], /usage: overdue schedule install/],
    [['schedule', 'launch'], /unknown subcommand "launch"/],
    [['schedule', 'install', '--mode', 'cron'], /--mode must be sql or http; got "cron"/],
    [['schedule', 'install', '--mode', 'sql', '--daily', '0 0 7 * * *'], /invalid cron schedule "0 0 7 \* \* \*": expected five fields/],
    [['schedule', 'install', '--mode', 'sql', '--frequent', '30 seconds'], /"N seconds" schedules are refused/],
    [['schedule', 'install', '--mode', 'http'], /http mode needs pg_net/],
    [['schedule', 'install', '--timeout-ms', 'soon'], /--timeout-ms must be a whole number/],
  ];
  for (const [args, message] of cases) {
    const r = await overdue(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  const noDb = await overdue(['schedule', 'show'], {});
  assert.equal(noDb.code, 2);
  assert.match(noDb.stderr, /DATABASE_URL/);
});
