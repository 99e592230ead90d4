// The `overdue` CLI: every command and every exit code, against a real database.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { freshDatabase } from './support/database.ts';
import { addInstallments, createAgency, daysAgo } from './support/fixtures.ts';
import { main } from '../src/cli.ts';
import { JOB_NAME } from '../src/job/runner.ts';

const db = await freshDatabase();
const root = fileURLToPath(new URL('../', import.meta.url));

async function cli(args: string[], env: Record<string, string | undefined> = { DATABASE_URL: db.url, JOB_RETRY_DELAYS_MS: '5,5,5' }) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('run: 0 on success with a readable summary, --json for machines', async () => {
  const a = await createAgency(db.sql, 'Cli', 'Asia/Tokyo');
  await addInstallments(db.sql, a, [daysAgo(3), daysAgo(4)]);
  const human = await cli(['run']);
  assert.equal(human.code, 0, human.err);
  assert.match(human.out, /marked 2 installment\(s\) overdue in 1 agency/);
  const json = await cli(['run', '--json']);
  assert.equal(json.code, 0);
  const parsed = JSON.parse(json.out);
  assert.equal(parsed.kind, 'success');
  assert.equal(parsed.recordsUpdated, 0);
  const [row] = await db.sql`select metadata from jobs_log where id = ${parsed.jobId}`;
  assert.equal(row!.metadata.trigger, 'cli');
});

test('run --dry-run and --as-of; a future --as-of without --dry-run is a usage error (2)', async () => {
  const a = await createAgency(db.sql, 'CliDry', 'Europe/London');
  await addInstallments(db.sql, a, ['2026-06-01']);
  const dry = await cli(['run', '--dry-run', '--as-of', '2026-06-01T16:01:00Z', '--json']);
  assert.equal(dry.code, 0);
  // 17:00 BST on 1 June is 16:00Z: one minute later it is overdue.
  assert.equal(JSON.parse(dry.out).agencies.find((x: { agencyId: string }) => x.agencyId === a.id)?.updatedCount, 1);
  const future = await cli(['run', '--as-of', '2099-01-01T00:00:00Z']);
  assert.equal(future.code, 2);
  assert.match(future.err, /future.*--dry-run/);
  const badDate = await cli(['run', '--as-of', 'tomorrow']);
  assert.equal(badDate.code, 2);
  assert.match(badDate.err, /ISO-8601/);
  const replay = await cli(['run', '--as-of', '2026-06-01T16:01:00Z', '--json']);
  assert.equal(replay.code, 0);
  assert.equal(JSON.parse(replay.out).asOf, '2026-06-01T16:01:00.000Z');
});

test('run: 3 when another run holds the lock', async () => {
  const holder = await db.sql.reserve();
  try {
    await holder`select pg_advisory_lock(hashtextextended(${JOB_NAME}, 0))`;
    const busy = await cli(['run']);
    assert.equal(busy.code, 3);
    assert.match(busy.err, /another run is in progress/);
  } finally {
    await holder`select pg_advisory_unlock(hashtextextended(${JOB_NAME}, 0))`;
    holder.release();
  }
});

test('run: 1 when the run fails', async () => {
  await db.sql`alter function update_installment_statuses(timestamptz) rename to uis_cli_moved`;
  try {
    const failed = await cli(['run']);
    assert.equal(failed.code, 1);
    assert.match(failed.err, /run failed \(job [0-9a-f-]+\) after 1 attempt\(s\)/);
  } finally {
    await db.sql`alter function uis_cli_moved(timestamptz) rename to update_installment_statuses`;
  }
});

test('preview: by agency and at a future instant, changes nothing', async () => {
  const a = await createAgency(db.sql, 'CliPreview', 'America/St_Johns');
  await addInstallments(db.sql, a, [daysAgo(-2)]);
  const future = new Date(Date.now() + 5 * 86_400_000).toISOString();
  const res = await cli(['preview', '--agency', a.id, '--at', future, '--json']);
  assert.equal(res.code, 0, res.err);
  const parsed = JSON.parse(res.out);
  assert.deepEqual(parsed.agencies, [{ agencyId: a.id, updatedCount: 1, transitions: { pending_to_overdue: 1 } }]);
  assert.equal((await db.sql`select count(*)::int as n from installments where agency_id = ${a.id} and status = 'pending'`)[0]!.n, 1);
  const human = await cli(['preview', '--agency', a.id, '--at', future]);
  assert.match(human.out, /1 installment\(s\) would become overdue/);
  const bad = await cli(['preview', '--agency', 'not-a-uuid']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--agency must be an agency id/);
});

test('history: a readable table, --failed filters, --limit validated', async () => {
  const all = await cli(['history', '--limit', '50']);
  assert.equal(all.code, 0);
  assert.match(all.out.split('\n')[0]!, /started \(UTC\)\s+status\s+trigger\s+duration\s+records\s+error\s+job id/);
  assert.match(all.out, /success\s+cli/);
  const failed = await cli(['history', '--failed', '--json']);
  const rows = JSON.parse(failed.out);
  assert.ok(rows.length >= 1);
  assert.ok(rows.every((r: { status: string }) => r.status === 'failed'));
  const bad = await cli(['history', '--limit', '0']);
  assert.equal(bad.code, 2);
});

test('migrate: already applied is a no-op', async () => {
  const res = await cli(['migrate', '--json']);
  assert.equal(res.code, 0, res.err);
  assert.deepEqual(JSON.parse(res.out).applied, []);
});

test('key generate: a strong random key each time', async () => {
  const a = await cli(['key', 'generate'], {});
  const b = await cli(['key', 'generate'], {});
  assert.equal(a.code, 0);
  assert.match(a.out, /^[A-Za-z0-9_-]{43}$/);
  assert.notEqual(a.out, b.out);
});

test('usage and configuration errors exit 2 and name the problem', async () => {
  assert.equal((await cli([])).code, 2);
  const unknown = await cli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.err, /unknown command "frobnicate"/);
  const flag = await cli(['run', '--nope']);
  assert.equal(flag.code, 2);
  assert.match(flag.err, /--nope/);
  const noDb = await cli(['run'], {});
  assert.equal(noDb.code, 2);
  assert.match(noDb.err, /DATABASE_URL/);
  const badUrl = await cli(['run'], { DATABASE_URL: 'mysql://x' });
  assert.equal(badUrl.code, 2);
  assert.match(badUrl.err, /DATABASE_URL: expected a postgres:\/\//);
  const badDelays = await cli(['run'], { DATABASE_URL: db.url, JOB_RETRY_DELAYS_MS: '1s,2s' });
  assert.equal(badDelays.code, 2);
  assert.match(badDelays.err, /JOB_RETRY_DELAYS_MS/);
});

test('the installed bin (npx overdue) runs the same CLI', async () => {
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, [`${root}bin/overdue.js`, 'history', '--limit', '1'], { env: { ...process.env, DATABASE_URL: db.url } });
  assert.match(stdout, /started \(UTC\)/);
  await assert.rejects(run(process.execPath, [`${root}bin/overdue.js`, 'bogus']), (e: { code: number }) => e.code === 2);
});

test('an unreachable database: the run is reported failed, exit 1', async () => {
  const { freePort } = await import('./support/server-process.ts');
  const port = await freePort();
  const res = await cli(['run'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/none`, JOB_RETRY_DELAYS_MS: '1,1,1' });
  assert.equal(res.code, 1);
  assert.match(res.err, /run failed after 4 attempt\(s\)/);
});
