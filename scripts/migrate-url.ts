// Applies supabase/migrations to the database at the given URL with our own migrator — the same
// code path `npm run db:migrate` uses — so scripts/pgtap.sh tests the files exactly as shipped.
//
//   tsx scripts/migrate-url.ts postgres://postgres@127.0.0.1:5432/some_db
import { connect, redactUrl } from '../src/db/connect.ts';
import { migrate } from '../src/db/migrate.ts';

const url = process.argv[2];
if (!url) {
  console.error('usage: tsx scripts/migrate-url.ts <postgres-url>  (the database to migrate)');
  process.exit(2);
}

const sql = connect(url, { max: 1, applicationName: 'overdue-migrate' });
try {
  const result = await migrate(sql);
  console.log(`migrated ${redactUrl(url)}: ${result.applied.length} applied, ${result.skipped.length} already applied`);
} catch (error) {
  console.error(`migrating ${redactUrl(url)} failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await sql.end({ timeout: 5 });
}
