#!/usr/bin/env bash
# Runs the pgTAP suites in supabase/tests/ against a fresh database migrated by our own migrator.
#
#   bash scripts/pgtap.sh            (npm run test:pgtap)
#
# The server is TEST_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), as for
# `npm test`. The database is dropped when every test passes and kept when one fails, so the
# evidence can be inspected with psql. Exits non-zero on any failure, including "no tests ran".
set -euo pipefail

cd "$(dirname "$0")/.."

ADMIN_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
DB="overdue_pgtap_$(date +%s)_$$"
# The same server, another database: replace the path of the admin URL (keeps any ?query).
DB_URL=$(node -e 'const u = new URL(process.argv[1]); u.pathname = "/" + process.argv[2]; console.log(u.toString())' "$ADMIN_URL" "$DB")
PSQL=(psql -X -q -v ON_ERROR_STOP=1)

log() { printf '[pgtap] %s\n' "$*" >&2; }

if ! command -v pg_prove >/dev/null; then
  log "pg_prove not found: install libtap-parser-sourcehandler-pgtap-perl (sudo bash scripts/prepare-postgres.sh)"
  exit 2
fi
shopt -s nullglob
tests=(supabase/tests/*.test.sql)
if [ ${#tests[@]} -eq 0 ]; then
  log "no supabase/tests/*.test.sql files: nothing would be tested"
  exit 1
fi

"${PSQL[@]}" -d "$ADMIN_URL" -c "create database \"$DB\""
keep() { log "FAILED — database $DB kept for inspection (psql \"$DB_URL\"); drop it when done"; }

if ! npx --no-install tsx scripts/migrate-url.ts "$DB_URL" >&2; then keep; exit 1; fi
if ! "${PSQL[@]}" -d "$DB_URL" -c 'create extension if not exists pgtap'; then
  log "the pgtap extension is missing: install postgresql-15-pgtap (sudo bash scripts/prepare-postgres.sh)"
  keep; exit 1
fi

# --ext .sql: given a directory, pg_prove looks for *.pg files and would report NOTESTS, exit 0.
if ! pg_prove --ext .sql --failures -d "$DB_URL" supabase/tests/; then keep; exit 1; fi

"${PSQL[@]}" -d "$ADMIN_URL" -c "drop database if exists \"$DB\" with (force)"
