// Applies supabase/migrations/*.sql in filename order, each in its own transaction.
//
// Applied versions are recorded in supabase_migrations.schema_migrations — the table the
// Supabase CLI keeps — so `supabase db push` and this migrator agree on what is applied.
// Every transaction first takes one advisory lock, so two migrators racing (two replicas
// starting at once) apply each file once: the second waits, then sees it recorded.
import type { Sql } from './connect.ts';

export interface Migration {
  version: string;
  name: string;
  sql: string;
}

export interface MigrateResult {
  applied: string[];
  skipped: string[];
}

/** Arbitrary constant shared by every migrator of this project. */
export const MIGRATION_LOCK_KEY = 727_001;

const FILE_PATTERN = /^(\d{14})_([a-z0-9_]+)\.sql$/;

export async function readMigrations(dir: URL | string): Promise<Migration[]> {
  const { readdir, readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const path = typeof dir === 'string' ? dir : fileURLToPath(dir);
  const files = (await readdir(path)).filter((f) => f.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = FILE_PATTERN.exec(file);
    if (!match) {
      throw new Error(
        `migration file name "${file}" is not <YYYYMMDDHHMMSS>_<name>.sql; rename it so it sorts into place`,
      );
    }
    migrations.push({ version: match[1]!, name: match[2]!, sql: await readFile(join(path, file), 'utf8') });
  }
  return migrations;
}

export const defaultMigrationsDir = new URL('../../supabase/migrations/', import.meta.url);

export async function migrate(sql: Sql, migrations?: Migration[]): Promise<MigrateResult> {
  const list = migrations ?? (await readMigrations(defaultMigrationsDir));
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
    await tx.unsafe(`
      create schema if not exists supabase_migrations;
      create table if not exists supabase_migrations.schema_migrations (
        version text primary key,
        statements text[],
        name text
      );`);
  });

  const result: MigrateResult = { applied: [], skipped: [] };
  for (const m of list) {
    const applied = await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`;
      const done = await tx`select 1 from supabase_migrations.schema_migrations where version = ${m.version}`;
      if (done.length > 0) return false;
      try {
        await tx.unsafe(m.sql);
      } catch (error) {
        const e = error as Error;
        e.message = `migration ${m.version}_${m.name}.sql failed: ${e.message}`;
        throw e;
      }
      await tx`insert into supabase_migrations.schema_migrations (version, name, statements)
               values (${m.version}, ${m.name}, ${[m.sql]})`;
      return true;
    });
    (applied ? result.applied : result.skipped).push(`${m.version}_${m.name}`);
  }
  return result;
}

/** Versions on disk that the database has not recorded (for /readyz and `overdue migrate --check`). */
export async function pendingMigrations(sql: Sql, migrations?: Migration[]): Promise<string[]> {
  const list = migrations ?? (await readMigrations(defaultMigrationsDir));
  const [{ exists }] = await sql`select to_regclass('supabase_migrations.schema_migrations') is not null as exists`;
  if (!exists) return list.map((m) => `${m.version}_${m.name}`);
  const rows = await sql`select version from supabase_migrations.schema_migrations`;
  const have = new Set(rows.map((r) => r.version as string));
  return list.filter((m) => !have.has(m.version)).map((m) => `${m.version}_${m.name}`);
}
