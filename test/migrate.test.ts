import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/database.ts';
import { connect } from '../src/db/connect.ts';
import { migrate, pendingMigrations, readMigrations, defaultMigrationsDir } from '../src/db/migrate.ts';

const db = await freshDatabase({ migrated: false });

test('applies every migration once, records it, and a second run is a no-op', async () => {
  const files = await readMigrations(defaultMigrationsDir);
  assert.deepEqual(await pendingMigrations(db.sql), files.map((m) => `${m.version}_${m.name}`));

  const first = await migrate(db.sql);
  assert.equal(first.applied.length, files.length);
  assert.deepEqual(first.skipped, []);

  const second = await migrate(db.sql);
  assert.deepEqual(second.applied, []);
  assert.equal(second.skipped.length, files.length);
  assert.deepEqual(await pendingMigrations(db.sql), []);

  const rows = await db.sql`select version from supabase_migrations.schema_migrations order by version`;
  assert.deepEqual(rows.map((r) => r.version), files.map((m) => m.version));
});

test('two migrators racing apply nothing twice', async () => {
  const race = await freshDatabase({ migrated: false });
  const a = connect(race.url, { max: 1 });
  const b = connect(race.url, { max: 1 });
  try {
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    const files = await readMigrations(defaultMigrationsDir);
    assert.equal(ra.applied.length + rb.applied.length, files.length);
    assert.equal(new Set([...ra.applied, ...rb.applied]).size, files.length);
  } finally {
    await a.end();
    await b.end();
  }
});

test('a failing migration rolls back whole and names the file', async () => {
  const broken = await freshDatabase({ migrated: false });
  const migrations = [
    { version: '20990101000000', name: 'creates_then_fails', sql: 'create table half_done(id int); select 1/0;' },
  ];
  await assert.rejects(migrate(broken.sql, migrations), /20990101000000_creates_then_fails\.sql failed: division by zero/);
  const [{ t }] = await broken.sql`select to_regclass('public.half_done') as t`;
  assert.equal(t, null);
  assert.deepEqual(await pendingMigrations(broken.sql, migrations), ['20990101000000_creates_then_fails']);
});
