// Real pg_cron (npm run test:cron). pg_cron works at minute boundaries, so the tick test waits
// up to ~75 s. pg_cron lives in database `postgres` (cron.database_name) and the jobs are
// scheduled into a fresh test database with cron.schedule_in_database — the cross-database case.
//
//   1. sql mode: `overdue schedule install` → one real tick → an installment flipped, a jobs_log
//      row with trigger pg_cron, and the cron.job_run_details entry; install again updates in
//      place; remove, and remove again (nothing there is not an error).
//   2. http mode (Supabase): with stand-ins for pg_net and Vault in the test database only
//      (test/support/supabase-standins.sql), install picks http mode; the exact command read
//      back from cron.job is run against the real endpoint (createApp), which does the work.
// Every cron job created here is removed afterwards, even when a test fails.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { serve } from '@hono/node-server';
import { ADMIN_URL, freshDatabase } from '../support/database.ts';
import { addInstallments, createAgency, daysAgo } from '../support/fixtures.ts';
import { connect } from '../../src/db/connect.ts';
import { JobRunner } from '../../src/job/runner.ts';
import { createApp } from '../../src/http/app.ts';
import { silentLogger } from '../../src/log.ts';

const BIN = fileURLToPath(new URL('../../bin/overdue.js', import.meta.url));
const JOB_NAMES = ['update-installment-statuses-minutely', 'update-installment-statuses-daily', 'prune-jobs-log-daily'];

const cronDb = connect(ADMIN_URL, { max: 1 }); // database postgres, where pg_cron is
const [{ cron_database }] = await cronDb`select current_setting('cron.database_name', true) as cron_database`;
assert.equal(cron_database, 'postgres', 'these tests expect pg_cron with cron.database_name = postgres');

const created: string[] = [];
after(async () => {
  // Never leave a job behind: it would run every minute against a dropped database.
  await cronDb`select cron.unschedule(jobid) from cron.job where database = any(${created}::text[])`;
  await cronDb.end();
});

function overdue(args: string[], env: Record<string, string>) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const ourJobs = (database: string) =>
  cronDb<{ jobid: string; jobname: string; schedule: string; command: string; database: string; active: boolean }[]>`
    select jobid, jobname, schedule, command, database, active from cron.job
     where jobname = any(${JOB_NAMES}::text[]) and database = ${database} order by jobname`;

test('sql mode: one real pg_cron tick flips an overdue installment and is logged in jobs_log and cron.job_run_details', { timeout: 150_000 }, async () => {
  const db = await freshDatabase();
  created.push(db.name);
  const agency = await createAgency(db.sql, 'Cron Agency', 'America/New_York');
  const [installment] = await addInstallments(db.sql, agency, [daysAgo(2)]);
  const env = { DATABASE_URL: db.url };

  const installed = await overdue(['schedule', 'install', '--mode', 'sql', '--json'], env);
  assert.equal(installed.code, 0, installed.stderr);
  const result = JSON.parse(installed.stdout);
  assert.equal(result.cronDatabase, 'postgres');
  assert.equal(result.database, db.name);
  assert.deepEqual(result.jobs.map((j: { action: string }) => j.action), ['created', 'created', 'created']);
  const jobs = await ourJobs(db.name);
  assert.deepEqual(jobs.map((j) => [j.jobname, j.schedule, j.command, j.active]), [
    ['prune-jobs-log-daily', '30 7 * * *', 'select public.prune_jobs_log()', true],
    ['update-installment-statuses-daily', '0 7 * * *', "CALL public.run_update_installment_statuses_job('pg_cron')", true],
    ['update-installment-statuses-minutely', '* * * * *', "CALL public.run_update_installment_statuses_job('pg_cron')", true],
  ]);
  const minutely = jobs.find((j) => j.jobname === 'update-installment-statuses-minutely')!;

  // Installing again updates in place: same job ids, no duplicates.
  const again = await overdue(['schedule', 'install', '--mode', 'sql', '--json'], env);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(again.stdout).jobs.map((j: { action: string }) => j.action), ['updated', 'updated', 'updated']);
  assert.deepEqual((await ourJobs(db.name)).map((j) => j.jobid), jobs.map((j) => j.jobid));
  const [{ total }] = await cronDb`select count(*)::int as total from cron.job where jobname = any(${JOB_NAMES}::text[])`;
  assert.equal(total, 3, 'one job per name in the whole cluster');

  // Wait for the next minute boundary's run.
  const installedAt = Date.now();
  let run: { status: string; records_updated: number; metadata: Record<string, unknown> } | undefined;
  while (!run && Date.now() - installedAt < 75_000) {
    await new Promise((r) => setTimeout(r, 1000));
    [run] = await db.sql<{ status: string; records_updated: number; metadata: Record<string, unknown> }[]>`
      select status, records_updated, metadata from jobs_log
       where metadata->>'trigger' = 'pg_cron' and status <> 'running' order by started_at limit 1`;
  }
  assert.ok(run, 'no pg_cron run within 75 s');
  console.log(`pg_cron tick ran ${Math.round((Date.now() - installedAt) / 1000)} s after install: ${JSON.stringify(run)}`);
  assert.equal(run.status, 'success');
  assert.equal(run.records_updated, 1);
  assert.deepEqual((run.metadata.agencies as unknown[])[0], { agency_id: agency.id, updated_count: 1, transitions: { pending_to_overdue: 1 } });
  const [{ status }] = await db.sql`select status from installments where id = ${installment!}`;
  assert.equal(status, 'overdue');

  let details: { status: string; database: string; command: string; return_message: string }[] = [];
  for (let i = 0; i < 10 && details.length === 0; i++) {
    details = await cronDb`select status, database, command, return_message from cron.job_run_details
                            where jobid = ${minutely.jobid} and status in ('succeeded', 'failed') order by runid`;
    if (details.length === 0) await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(details.length >= 1, 'no cron.job_run_details entry');
  assert.equal(details[0]!.status, 'succeeded', details[0]!.return_message);
  assert.equal(details[0]!.database, db.name);
  assert.equal(details[0]!.return_message, 'CALL');

  const shown = await overdue(['schedule', 'show', '--json'], env);
  assert.equal(shown.code, 0, shown.stderr);
  const shownJobs = JSON.parse(shown.stdout).jobs as { jobname: string; last_status: string | null }[];
  assert.deepEqual(shownJobs.map((j) => j.jobname), ['prune-jobs-log-daily', 'update-installment-statuses-daily', 'update-installment-statuses-minutely']);
  assert.equal(shownJobs.find((j) => j.jobname === 'update-installment-statuses-minutely')!.last_status, 'succeeded');
  const human = await overdue(['schedule', 'show'], env);
  assert.match(human.stdout, /update-installment-statuses-minutely\s+\* \* \* \* \*\s+overdue_test_\w+\s+true\s+\S+\s+succeeded/);

  const removed = await overdue(['schedule', 'remove', '--json'], env);
  assert.equal(removed.code, 0, removed.stderr);
  assert.equal(JSON.parse(removed.stdout).removed.length, 3);
  assert.equal((await ourJobs(db.name)).length, 0);
  const removedAgain = await overdue(['schedule', 'remove'], env);
  assert.equal(removedAgain.code, 0, removedAgain.stderr);
  assert.match(removedAgain.stdout, /nothing to remove/);
});

test('http mode (Supabase): the exact cron command POSTs to the endpoint with the key from Vault', { timeout: 60_000 }, async () => {
  const db = await freshDatabase();
  created.push(db.name);
  await db.sql.unsafe(await readFile(new URL('../support/supabase-standins.sql', import.meta.url), 'utf8'));
  const key = 'k_' + 'x'.repeat(30) + Math.random().toString(36).slice(2);
  await db.sql`insert into vault.secrets (name, secret) values ('update_installment_statuses_key', ${key})`;
  const agency = await createAgency(db.sql, 'Supabase Agency', 'Australia/Brisbane');
  const [installment] = await addInstallments(db.sql, agency, [daysAgo(3)]);

  // The real endpoint on a real port, as `npm start` serves it.
  const runner = new JobRunner(db.sql, { retryDelaysMs: [] });
  const app = await createApp({ sql: db.sql, runner, config: { functionKeys: [key], corsOrigins: [] }, logger: silentLogger });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise((resolve) => server.once('listening', resolve));
  const projectUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    // No --mode: pg_net's net.http_post exists in the database, so http mode is chosen.
    const installed = await overdue(['schedule', 'install', '--json'], { DATABASE_URL: db.url, SUPABASE_URL: projectUrl });
    assert.equal(installed.code, 0, installed.stderr);
    const [minutely] = (await ourJobs(db.name)).filter((j) => j.jobname === 'update-installment-statuses-minutely');
    // Read the command back, then take the jobs out of pg_cron before its next tick fires them.
    await overdue(['schedule', 'remove'], { DATABASE_URL: db.url });
    assert.ok(minutely, 'minutely job not installed');
    const command = minutely.command;
    assert.match(command, /^select net\.http_post\(url := 'http:\/\/127\.0\.0\.1:\d+' \|\| '\/functions\/v1\/update-installment-statuses'/);
    assert.match(command, /'X-API-Key', \(select decrypted_secret from vault\.decrypted_secrets where name = 'update_installment_statuses_key'\)/);
    assert.ok(!command.includes(key), 'the key itself is never stored in cron.job');

    // The exact command, as pg_cron would run it in the application database.
    const [{ http_post: requestId }] = await db.sql.unsafe(command);
    const [response] = await db.sql`select status_code, content from net._http_response where id = ${requestId}`;
    assert.equal(response!.status_code, 200, response!.content);
    const body = JSON.parse(response!.content);
    assert.equal(body.success, true);
    assert.equal(body.recordsUpdated, 1);
    const [{ status }] = await db.sql`select status from installments where id = ${installment!}`;
    assert.equal(status, 'overdue');
    const [run] = await db.sql`select status, metadata->>'trigger' as trigger from jobs_log where id = ${body.jobId}`;
    assert.deepEqual({ ...run }, { status: 'success', trigger: 'http' });

    // The key really comes from Vault: change it there and the same command is refused.
    await db.sql`update vault.secrets set secret = 'wrong-key-wrong-key-wrong' where name = 'update_installment_statuses_key'`;
    const [{ http_post: refusedId }] = await db.sql.unsafe(command);
    const [refused] = await db.sql`select status_code, content from net._http_response where id = ${refusedId}`;
    assert.equal(refused!.status_code, 401);
    assert.deepEqual(JSON.parse(refused!.content), { success: false, error: 'Unauthorized' });
    await db.sql`update vault.secrets set secret = ${key} where name = 'update_installment_statuses_key'`;

    // Without a configured URL the command reads the Vault secret project_url at run time.
    await db.sql`insert into vault.secrets (name, secret) values ('project_url', ${projectUrl})`;
    const fromVault = await overdue(['schedule', 'install', '--mode', 'http', '--json'], { DATABASE_URL: db.url });
    assert.equal(fromVault.code, 0, fromVault.stderr);
    const [vaultJob] = (await ourJobs(db.name)).filter((j) => j.jobname === 'update-installment-statuses-daily');
    await overdue(['schedule', 'remove'], { DATABASE_URL: db.url });
    assert.match(vaultJob!.command, /url := \(select decrypted_secret from vault\.decrypted_secrets where name = 'project_url'\) \|\| '\/functions\/v1\/update-installment-statuses'/);
    const [{ http_post: vaultRequest }] = await db.sql.unsafe(vaultJob!.command);
    const [viaVault] = await db.sql`select status_code, content from net._http_response where id = ${vaultRequest}`;
    assert.equal(viaVault!.status_code, 200, viaVault!.content);
    assert.equal(JSON.parse(viaVault!.content).recordsUpdated, 0);

    // Missing pieces are named: no key secret in Vault.
    await db.sql`delete from vault.secrets where name = 'update_installment_statuses_key'`;
    const noSecret = await overdue(['schedule', 'install'], { DATABASE_URL: db.url, SUPABASE_URL: projectUrl });
    assert.equal(noSecret.code, 2);
    assert.match(noSecret.stderr, /Vault has no secret named "update_installment_statuses_key"/);
    assert.match(noSecret.stderr, /vault\.create_secret/);
    assert.equal((await ourJobs(db.name)).length, 0);
  } finally {
    await overdue(['schedule', 'remove'], { DATABASE_URL: db.url });
    server.close();
  }
});
