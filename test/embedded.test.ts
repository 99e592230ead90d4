// The embedded quick start: a real PGlite in a temporary folder, served over its socket and used
// through the same postgres.js client as everywhere else. One instance is shared by the file
// (a new PGlite folder takes seconds to initialise); reopening an existing one is fast.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../src/db/connect.ts';
import { openEmbedded, EMBEDDED_POOL_SIZE, type EmbeddedDatabase } from '../src/db/embedded.ts';
import { lockDataFolder, LOCK_FILE_NAME } from '../src/db/data-folder-lock.ts';
import { pendingMigrations, readMigrations, defaultMigrationsDir } from '../src/db/migrate.ts';
import { loadOrCreateApiKey, apiKeyPath } from '../src/api-key-file.ts';
import { JobRunner } from '../src/job/runner.ts';

const root = mkdtempSync(join(tmpdir(), 'overdue-embedded-'));
const dataDir = join(root, 'data');
let db: EmbeddedDatabase = await openEmbedded({ dataDir });
after(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});

const lockPath = join(dataDir, LOCK_FILE_NAME);
const srcUrl = (path: string) => fileURLToPath(new URL(`../src/${path}`, import.meta.url));

/** Runs a script in a separate Node process (a real second process, not a second call). */
function runNode(script: string): Promise<{ code: number | null; signal: string | null; stderr: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stderr, pid: child.pid! }));
  });
}

async function withPool<T>(fn: (sql: ReturnType<typeof connect>) => Promise<T>): Promise<T> {
  const sql = connect(db.url, { max: EMBEDDED_POOL_SIZE });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

test('every migration applies on PGlite: roles, RLS, time zones, plpgsql', async () => {
  const files = await readMigrations(defaultMigrationsDir);
  assert.deepEqual(db.migrations.applied, files.map((m) => `${m.version}_${m.name}`));
  await withPool(async (sql) => {
    assert.deepEqual(await pendingMigrations(sql), []);
    const roles = await sql`select rolname, rolbypassrls from pg_roles where rolname in ('anon', 'authenticated', 'service_role') order by 1`;
    assert.deepEqual(roles.map((r) => [r.rolname, r.rolbypassrls]), [['anon', false], ['authenticated', false], ['service_role', true]]);
    const [{ unprotected }] = await sql`
      select count(*)::int as unprotected from pg_class
       where oid in ('public.agencies'::regclass, 'public.installments'::regclass, 'public.jobs_log'::regclass)
         and not relrowsecurity`;
    assert.equal(unprotected, 0);

    // Tenant isolation really filters (RLS enforced for a member) and the zone trigger reads
    // pg_timezone_names; all rolled back.
    const rollback = new Error('rollback');
    await assert.rejects(
      sql.begin(async (tx) => {
        const [agency] = await tx`insert into agencies (name, timezone) values ('Zone check', 'asia/kathmandu') returning id, timezone`;
        assert.equal(agency!.timezone, 'Asia/Kathmandu');
        const member = '00000000-0000-4000-8000-000000000001';
        await tx`insert into users (id, agency_id) values (${member}, ${agency!.id})`;
        await tx`set local role authenticated`;
        await tx`select set_config('request.jwt.claims', ${JSON.stringify({ sub: member, role: 'authenticated' })}, true)`;
        const visible = await tx`select name from agencies`;
        assert.deepEqual(visible.map((r) => r.name), ['Zone check']);
        throw rollback;
      }),
      (e) => e === rollback,
    );
  });
});

test('first start seeds six demo agencies in six time zones', async () => {
  assert.deepEqual(db.seed, { seeded: true, agencies: 6, installments: 60 });
  await withPool(async (sql) => {
    const zones = await sql`select timezone from agencies order by timezone`;
    assert.deepEqual(zones.map((r) => r.timezone), [
      'America/Los_Angeles', 'America/New_York', 'Asia/Kathmandu', 'Australia/Brisbane', 'Europe/London', 'Pacific/Auckland',
    ]);
  });
});

test('update_installment_statuses() flips the seeded installments that are due, and only those', async () => {
  await withPool(async (sql) => {
    // Each installment with its offset from its agency's local today, as seeded.
    const snapshot = () => sql`
      select a.name, i.status, p.status as plan_status,
             i.student_due_date - (now() at time zone a.timezone)::date as day,
             (now() at time zone a.timezone)::time >= a.overdue_cutoff_time as cutoff_passed_today
        from installments i join agencies a on a.id = i.agency_id join payment_plans p on p.id = i.payment_plan_id`;
    const before = await snapshot();
    const [{ preview }] = await sql`select coalesce(sum(updated_count), 0)::int as preview from preview_installment_status_changes()`;

    const changed = await sql`select agency_id, updated_count from update_installment_statuses()`;
    const total = changed.reduce((n, r) => n + (r.updated_count as number), 0);
    assert.equal(total, preview);
    assert.ok(total >= 18, `at least 3 per agency (due 10, 3 and 1 days ago) flip; got ${total}`);

    const after = await snapshot();
    const status = (rows: typeof after, name: string, day: number, plan = 'active') =>
      rows.filter((r) => r.name === name && r.day === day && r.plan_status === plan).map((r) => r.status);
    for (const name of new Set(after.map((r) => r.name as string))) {
      for (const day of [-10, -3, -1]) assert.deepEqual(status(after, name, day), ['overdue'], `${name} day ${day}`);
      for (const day of [1, 14]) assert.deepEqual(status(after, name, day), ['pending'], `${name} day ${day}`);
      assert.deepEqual(status(after, name, -7), ['paid'], `${name} paid stays paid`);
      assert.deepEqual(status(after, name, -5, 'completed'), ['pending'], `${name}: a completed plan is not chased`);
      const today = after.find((r) => r.name === name && r.day === 0)!;
      assert.equal(today.status, today.cutoff_passed_today ? 'overdue' : 'pending', `${name} due today`);
    }
    // By construction: a 00:00 cutoff has always passed, a 23:59 one almost never has.
    assert.deepEqual(status(after, 'Himalaya Overseas Education', 0), ['overdue']);
    assert.equal(before.filter((r) => r.status === 'overdue').length + total, after.filter((r) => r.status === 'overdue').length);

    const [{ audited }] = await sql`select count(*)::int as audited from audit_logs where new_status = 'overdue'`;
    assert.equal(audited, total);
    assert.equal((await sql`select * from update_installment_statuses()`).length, 0, 'a second run finds nothing');
  });
});

test('pool of one: reserve + session advisory lock + a transaction on the reserved connection', async () => {
  await withPool(async (sql) => {
    const reserved = await sql.reserve();
    const order: string[] = [];
    let waiting: Promise<unknown> = Promise.resolve();
    try {
      const [{ locked }] = await reserved`select pg_try_advisory_lock(hashtextextended('embedded-test', 0)) as locked`;
      assert.equal(locked, true);
      // The only connection is reserved: a query on the pool waits for release() — which is
      // what excludes a second runner on PGlite, where every connection shares one session.
      waiting = sql`select 1`.then(() => order.push('pool query'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(order.length, 0, 'a pool query waits while the only connection is reserved');
      await reserved.unsafe('begin');
      await reserved`insert into jobs_log (job_name, status) values ('embedded-test', 'running')`;
      await reserved`select set_config('overdue.job_id', 'tagged', true)`;
      const [{ tag }] = await reserved`select current_setting('overdue.job_id', true) as tag`;
      assert.equal(tag, 'tagged');
      await reserved.unsafe('commit');
      const [{ released }] = await reserved`select pg_advisory_unlock(hashtextextended('embedded-test', 0)) as released`;
      assert.equal(released, true);
      order.push('reserved work done');
    } finally {
      reserved.release();
    }
    await waiting;
    assert.deepEqual(order, ['reserved work done', 'pool query']);
    const [{ n, locks }] = await sql`
      select (select count(*)::int from jobs_log where job_name = 'embedded-test') as n,
             (select count(*)::int from pg_locks where locktype = 'advisory') as locks`;
    assert.equal(n, 1);
    assert.equal(locks, 0);
  });
});

test('closed connections leave no prepared statements behind in the one PGlite session', async () => {
  for (let i = 0; i < 3; i++) {
    await withPool(async (sql) => {
      await sql`select count(*) from agencies where name <> ${String(i)}`;
      await sql`select * from preview_installment_status_changes(${new Date()})`;
    });
  }
  const [{ prepared }] = await withPool((sql) => sql`select count(*)::int as prepared from pg_prepared_statements`);
  assert.equal(prepared, 0);
});

test('why the pool must be one: every PGlite connection is the same session', async () => {
  const sql = connect(db.url, { max: 2 });
  const a = await sql.reserve();
  const b = await sql.reserve();
  try {
    const [one] = await a`select pg_backend_pid() as pid, pg_try_advisory_lock(42) as locked`;
    const [two] = await b`select pg_backend_pid() as pid, pg_try_advisory_lock(42) as locked`;
    // On a PostgreSQL server the second would be false. If PGlite ever isolates connections,
    // this fails and EMBEDDED_POOL_SIZE can be raised.
    assert.equal(one!.pid, two!.pid);
    assert.deepEqual([one!.locked, two!.locked], [true, true]);
    await a`select pg_advisory_unlock_all()`;
  } finally {
    a.release();
    b.release();
    await sql.end({ timeout: 5 });
  }
});

test('the job runner works on the embedded database', async () => {
  await withPool(async (sql) => {
    const runner = new JobRunner(sql, { retryDelaysMs: [1, 1, 1] });
    const outcome = await runner.run({ trigger: 'embedded-test' });
    assert.equal(outcome.kind, 'success', JSON.stringify(outcome));
    const [row] = await sql`select status, metadata->>'trigger' as trigger from jobs_log where job_name = 'update-installment-statuses'`;
    assert.deepEqual({ ...row }, { status: 'success', trigger: 'embedded-test' });
  });
});

test('the data folder lock refuses a second opener, here and in another process', async () => {
  const holder = readFileSync(lockPath, 'utf8');
  assert.equal(JSON.parse(holder).pid, process.pid);
  await assert.rejects(
    openEmbedded({ dataDir }),
    new RegExp(`data folder ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by process ${process.pid}`),
  );
  const other = await runNode(`
    import { openEmbedded } from ${JSON.stringify(srcUrl('db/embedded.ts'))};
    try { await openEmbedded({ dataDir: ${JSON.stringify(dataDir)} }); process.exit(0); }
    catch (e) { console.error(e.message); process.exit(3); }`);
  assert.equal(other.code, 3, other.stderr);
  assert.match(other.stderr, new RegExp(`is in use by process ${process.pid}: stop it first`));
  assert.equal(readFileSync(lockPath, 'utf8'), holder, 'a refused opener leaves the lock alone');
  await withPool(async (sql) => assert.equal((await sql`select 1 as one`)[0]!.one, 1));
});

test('data persists across close and reopen; the lock of a killed process is taken over; no second seed', async () => {
  await withPool(async (sql) => {
    await sql`update agencies set overdue_cutoff_time = '16:30' where name = 'Thames Student Services'`;
  });
  const [beforeOverdue] = await withPool((sql) => sql`select count(*)::int as n from installments where status = 'overdue'`);
  await db.close();
  assert.equal(existsSync(lockPath), false, 'close() removes the lock');

  // A process that takes the folder and dies without cleaning up (SIGKILL runs no handler).
  const killed = await runNode(`
    import { lockDataFolder } from ${JSON.stringify(srcUrl('db/data-folder-lock.ts'))};
    lockDataFolder(${JSON.stringify(dataDir)});
    process.kill(process.pid, 'SIGKILL');`);
  assert.equal(killed.signal, 'SIGKILL', killed.stderr);
  assert.equal(JSON.parse(readFileSync(lockPath, 'utf8')).pid, killed.pid);

  const started = Date.now();
  db = await openEmbedded({ dataDir });
  assert.ok(Date.now() - started < 5000, `reopening took ${Date.now() - started} ms`);
  assert.equal(JSON.parse(readFileSync(lockPath, 'utf8')).pid, process.pid);
  assert.deepEqual(db.migrations.applied, []);
  assert.deepEqual(db.seed, { seeded: false, reason: 'agencies already exist' });
  await withPool(async (sql) => {
    const [row] = await sql`
      select (select count(*)::int from agencies) as agencies,
             (select count(*)::int from installments where status = 'overdue') as overdue,
             (select overdue_cutoff_time::text from agencies where name = 'Thames Student Services') as cutoff`;
    assert.deepEqual({ ...row }, { agencies: 6, overdue: beforeOverdue!.n, cutoff: '16:30:00' });
  });
});

test('a lock held by a live process is not taken over; a dead holder\'s or a previous same-PID process\'s is', async () => {
  const dir = join(root, 'held');
  const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  try {
    rmSync(dir, { recursive: true, force: true });
    await import('node:fs/promises').then((fs) => fs.mkdir(dir, { recursive: true }));
    writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: sleeper.pid, createdAt: new Date().toISOString() }));
    assert.throws(() => lockDataFolder(dir), new RegExp(`is in use by process ${sleeper.pid}:`));
  } finally {
    sleeper.kill();
  }
  await new Promise((resolve) => sleeper.once('exit', resolve));
  const lock = lockDataFolder(dir); // its holder is gone now: stale, taken over
  assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE_NAME), 'utf8')).pid, process.pid);
  lock.release();
  assert.equal(existsSync(join(dir, LOCK_FILE_NAME)), false);

  // Our own PID in a lock we do not hold: an earlier process with the same PID (a restarted
  // container, where the server is PID 1 each time). Stale, not "in use by this process".
  writeFileSync(join(dir, LOCK_FILE_NAME), JSON.stringify({ pid: process.pid, createdAt: '2020-01-01T00:00:00Z' }));
  const again = lockDataFolder(dir);
  assert.throws(() => lockDataFolder(dir), /is in use by process \d+ \(this process\)/);
  again.release();
});

test('the generated API key is strong, kept with mode 0600, and the same after a restart', () => {
  const dir = join(root, 'keys');
  const key = loadOrCreateApiKey(dir);
  assert.match(key, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url');
  const path = apiKeyPath(dir);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  assert.equal(loadOrCreateApiKey(dir), key);
  assert.notEqual(loadOrCreateApiKey(join(root, 'keys-elsewhere')), key);

  chmodSync(path, 0o644);
  assert.equal(loadOrCreateApiKey(dir), key);
  assert.equal(statSync(path).mode & 0o777, 0o600, 'a readable key file is tightened');

  writeFileSync(path, 'short\n');
  assert.throws(() => loadOrCreateApiKey(dir), new RegExp(`API key file ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not hold a key.*found 5 characters`));
});
