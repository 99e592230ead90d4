// A fresh, migrated PostgreSQL database for each test file.
//
// The migrations are applied once to a template database whose name carries a hash of the
// migration files; each test file then gets `CREATE DATABASE … TEMPLATE`, which takes tens of
// milliseconds. A database is dropped when its test file passes and kept when it fails, so the
// evidence is there to inspect (`psql overdue_test_…`).
import { createHash, randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { connect, type Sql } from '../../src/db/connect.ts';
import { migrate, readMigrations, defaultMigrationsDir } from '../../src/db/migrate.ts';

/** The server every test talks to; CI prepares it with scripts/prepare-postgres.sh. */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function urlFor(database: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${database}`;
  return u.toString();
}

const TEMPLATE_LOCK = 727_002;

async function templateName(): Promise<string> {
  const migrations = await readMigrations(defaultMigrationsDir);
  const hash = createHash('sha256');
  for (const m of migrations) hash.update(m.version).update(m.sql);
  return `overdue_template_${hash.digest('hex').slice(0, 12)}`;
}

async function ensureTemplate(admin: Sql): Promise<string> {
  const name = await templateName();
  // Parallel test files race to build it; one builds, the others wait on the lock.
  const reserved = await admin.reserve();
  try {
    await reserved`select pg_advisory_lock(${TEMPLATE_LOCK})`;
    const [row] = await reserved`select datname from pg_database where datname = ${name}`;
    if (!row) {
      const building = `${name}_building`;
      await reserved.unsafe(`drop database if exists "${building}"`);
      await reserved.unsafe(`create database "${building}"`);
      const db = connect(urlFor(building), { max: 1 });
      try {
        await migrate(db);
      } finally {
        await db.end();
      }
      await reserved.unsafe(`alter database "${building}" rename to "${name}"`);
    }
  } finally {
    await reserved`select pg_advisory_unlock(${TEMPLATE_LOCK})`;
    reserved.release();
  }
  return name;
}

export interface TestDatabase {
  name: string;
  url: string;
  /** A service-level connection (superuser) to the test database. */
  sql: Sql;
}

let failed = false;
process.on('uncaughtException', () => {
  failed = true;
});

/**
 * Creates a migrated database for the calling test file and registers its clean-up.
 * Call once at module level: `const db = await freshDatabase()`.
 */
export async function freshDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const admin = connect(ADMIN_URL, { max: 1 });
  const name = `overdue_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  try {
    if (options.migrated === false) {
      await admin.unsafe(`create database "${name}"`);
    } else {
      const template = await ensureTemplate(admin);
      await admin.unsafe(`create database "${name}" template "${template}"`);
    }
  } finally {
    await admin.end();
  }
  const url = urlFor(name);
  const sql = connect(url, { max: 4 });
  after(async () => {
    await sql.end({ timeout: 5 });
    if (failed || process.exitCode) return; // keep the evidence
    const cleanup = connect(ADMIN_URL, { max: 1 });
    try {
      await cleanup.unsafe(`drop database if exists "${name}" with (force)`);
    } finally {
      await cleanup.end();
    }
  });
  return { name, url, sql };
}
