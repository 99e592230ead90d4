// `overdue token` and `overdue check`: the operations subcommands of the CLI (src/cli.ts).
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.ts';
import { connect, type Sql } from './db/connect.ts';
// Types only: a value import of cli.ts from here would deadlock its top-level await.
import type { Command, CommandContext } from './cli.ts';
import { JwtAuth, jwtSecretFromEnv } from './http/auth-jwt.ts';
import { readJwtSecretFile } from './jwt-secret-file.ts';
import { loadAlertConfig } from './alerts/config.ts';
import { readJobHealth } from './alerts/job-health.ts';
import { AlertMonitor } from './alerts/monitor.ts';
import { channelsFromConfig } from './alerts/channels.ts';
import { createLogger } from './log.ts';

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

class UsageError extends Error {}

/** Usage errors print like the CLI's own and exit 2; everything else goes to the CLI's handler. */
function command(name: string, fn: Command): Command {
  return async (ctx) => {
    try {
      return await fn(ctx);
    } catch (error) {
      if (!(error instanceof UsageError)) throw error;
      ctx.err(`${name}: ${error.message}`);
      return EXIT.usage;
    }
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function flags(args: string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

async function withDatabase<T>(ctx: CommandContext, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const config = loadConfig(ctx.env, { keyRequired: false });
  if (config.databaseUrl === null) {
    throw new ConfigError('DATABASE_URL', 'is required for this command (postgres://user:password@host:5432/database)');
  }
  const sql = connect(config.databaseUrl, { max: 1, applicationName: 'overdue-cli' });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const TOKEN_USAGE = 'usage: overdue token --platform-admin | --agency-admin AGENCY_ID  [--sub UUID] [--email ADDRESS] [--expires 12h]';

/**
 * Mints a sign-in token for the admin pages, signed with SUPABASE_JWT_SECRET / JWT_SECRET (or the
 * quick start's secret in OVERDUE_DATA_DIR). For an agency admin it also records the membership
 * (public.users: id = sub, role agency_admin), which is what RLS checks.
 */
export const token: Command = command('token', async (ctx) => {
  const v = flags(ctx.args, {
    'platform-admin': { type: 'boolean' },
    'agency-admin': { type: 'string' },
    sub: { type: 'string' },
    email: { type: 'string' },
    expires: { type: 'string' },
  });
  const platformAdmin = v['platform-admin'] === true;
  const agencyId = v['agency-admin'] as string | undefined;
  if (platformAdmin === (agencyId !== undefined)) throw new UsageError(`give exactly one of --platform-admin or --agency-admin\n${TOKEN_USAGE}`);
  if (agencyId !== undefined && !UUID.test(agencyId)) throw new UsageError(`--agency-admin must be an agency id (a UUID); got ${JSON.stringify(agencyId)}`);
  const sub = (v.sub as string | undefined) ?? randomUUID();
  if (!UUID.test(sub)) throw new UsageError(`--sub must be a UUID; got ${JSON.stringify(sub)}`);
  const expires = (v.expires as string | undefined) ?? '12h';
  if (!/^\d+\s*(s|m|h|d|w)$/.test(expires)) throw new UsageError(`--expires must look like 30m, 12h or 7d; got ${JSON.stringify(expires)}`);
  const email = v.email as string | undefined;

  const secret = jwtSecretFromEnv(ctx.env) ?? readJwtSecretFile(ctx.env.OVERDUE_DATA_DIR?.trim() || './.data');
  if (!secret) {
    throw new ConfigError('SUPABASE_JWT_SECRET', 'is required to sign a token (or JWT_SECRET; the embedded quick start keeps one in OVERDUE_DATA_DIR/jwt-secret)');
  }

  if (agencyId !== undefined) {
    await withDatabase(ctx, async (sql) => {
      const [agency] = await sql`select name from public.agencies where id = ${agencyId}`;
      if (!agency) throw new UsageError(`no agency with id ${agencyId}; \`psql -c "select id, name from agencies"\` lists them`);
      await sql`
        insert into public.users (id, agency_id, role, email)
        values (${sub}, ${agencyId}, 'agency_admin', ${email ?? null})
        on conflict (id) do update
          set agency_id = excluded.agency_id, role = 'agency_admin', email = coalesce(excluded.email, users.email), updated_at = now()`;
      ctx.err(`user ${sub} is now agency_admin of ${agency.name} (${agencyId})`);
    });
  }
  const jwt = await new JwtAuth(secret).mint({ sub, platformAdmin, expiresIn: expires, ...(email ? { email } : {}) });
  ctx.err(`token for ${platformAdmin ? 'a platform admin' : 'an agency admin'} (sub ${sub}), valid ${expires}; paste it at /admin/sign-in`);
  ctx.out(jwt);
  return EXIT.ok;
});

/**
 * The dead-man's switch for an external cron or uptime monitor: exit 0 while the last successful
 * run is younger than the limit, 1 otherwise (or when the database cannot be read).
 * With --alert it also opens/resolves the incident and sends the alert through the configured
 * channels — the check that still alerts when the Node service itself is down.
 */
export const check: Command = command('check', async (ctx) => {
  const v = flags(ctx.args, { 'stale-after-hours': { type: 'string' }, alert: { type: 'boolean' }, json: { type: 'boolean' } });
  const alertConfig = loadAlertConfig(ctx.env);
  let staleAfterMs = alertConfig.staleAfterMs;
  if (v['stale-after-hours'] !== undefined) {
    const hours = Number(v['stale-after-hours']);
    if (!Number.isFinite(hours) || hours <= 0) throw new UsageError(`--stale-after-hours must be a positive number; got ${JSON.stringify(v['stale-after-hours'])}`);
    staleAfterMs = hours * 3_600_000;
  }
  return withDatabase(ctx, async (sql) => {
    let health;
    if (v.alert) {
      const logger = createLogger({ service: 'overdue-check' }, { write: (l) => ctx.err(l) });
      const channels = channelsFromConfig(alertConfig);
      const monitor = new AlertMonitor({ sql, channels, retryDelaysMs: alertConfig.retryDelaysMs, staleAfterMs, logger });
      try {
        health = await monitor.checkJobHealth();
        await monitor.settled();
      } finally {
        for (const c of channels) (c as { close?: () => void }).close?.();
      }
    } else {
      health = await readJobHealth(sql, staleAfterMs);
    }
    if (v.json) ctx.out(JSON.stringify(health));
    else {
      ctx.out(`${health.healthy ? 'healthy' : 'UNHEALTHY'}: ${health.reason}`);
      ctx.out(`  last success: ${health.lastSuccessAt?.toISOString() ?? 'never'}`);
      if (health.lastFailureAt) ctx.out(`  last failure: ${health.lastFailureAt.toISOString()} — ${health.lastFailureError}`);
      if (health.runningSince) ctx.out(`  running since: ${health.runningSince.toISOString()}`);
    }
    return health.healthy ? EXIT.ok : EXIT.failed;
  });
});
