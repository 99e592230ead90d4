#!/usr/bin/env bash
# Prepares this machine's PostgreSQL 15 for the test suites. Idempotent: run it as often as you
# like; it installs and restarts only what is not already so.
#
#   * Debian packages: pg_cron, pgTAP + pg_prove, PL/Python (the test-only pg_net stand-in),
#     Chromium (the browser tests);
#   * pg_cron loaded (shared_preload_libraries, cron.database_name = postgres) — pg_cron 1.4
#     rejects cron.* settings until the library is loaded, so both go in one conf.d file and the
#     cluster restarts once;
#   * the pg_cron extension created in the `postgres` database.
#
# Needs root (apt-get, /etc/postgresql). Set SKIP_APT=1 to skip the package step.
set -euo pipefail

PG_VERSION=15
CLUSTER=main
CONF_DIR=/etc/postgresql/$PG_VERSION/$CLUSTER/conf.d
CONF_FILE=$CONF_DIR/95-overdue-pg-cron.conf
PSQL=(psql -X -h 127.0.0.1 -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA)

log() { printf '[prepare-postgres] %s\n' "$*"; }

if [ "${SKIP_APT:-0}" != 1 ]; then
  wanted=(postgresql-15-cron postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-plpython3-15 chromium)
  missing=()
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

cluster_online() { pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$CLUSTER" '$1==v && $2==c {print $4}' | grep -q online; }

if ! cluster_online; then
  log "starting PostgreSQL $PG_VERSION/$CLUSTER"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$CLUSTER" start
fi

wait_ready() {
  for _ in $(seq 1 60); do
    "${PSQL[@]}" -c 'select 1' >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  log "PostgreSQL did not become ready"; return 1
}
wait_ready

preload=$("${PSQL[@]}" -c 'show shared_preload_libraries')
if [[ "$preload" != *pg_cron* ]]; then
  log "loading pg_cron (one restart)"
  mkdir -p "$CONF_DIR"
  cat > "$CONF_FILE" <<CONF
# Written by scripts/prepare-postgres.sh (overdue-detection): pg_cron for the scheduling tests.
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
CONF
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$CLUSTER" restart
  wait_ready
fi

"${PSQL[@]}" -c 'create extension if not exists pg_cron' >/dev/null
log "ready: $("${PSQL[@]}" -c "select 'PostgreSQL ' || current_setting('server_version') || ', pg_cron ' || extversion from pg_extension where extname = 'pg_cron'")"
