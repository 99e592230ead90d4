// `overdue schedule install | show | remove` and `overdue next`, as entries of the CLI's command
// table (src/cli.ts). Exit codes: 0 ok, 2 usage or configuration error; anything unexpected is
// thrown and reported by the CLI as a failure (1).
import { parseArgs } from 'node:util';
import type { Command, CommandContext } from '../cli.ts';
import { ConfigError, loadConfig } from '../config.ts';
import { connect, type Sql } from '../db/connect.ts';
import { formatNextCutoffs, nextCutoffs } from './next-cutoffs.ts';
import { installSchedule, removeSchedule, resolveCronTarget, ScheduleConfigError, showSchedule, type ScheduleMode } from './pg-cron.ts';
import * as q from './queries.ts';

const OK = 0;
const USAGE = 2;

export const SCHEDULE_USAGE = `usage: overdue schedule install [--mode sql|http] [--project-url URL] [--secret-name NAME]
                               [--timeout-ms N] [--frequent CRON] [--daily CRON] [--prune CRON] [--json]
       overdue schedule show [--json]
       overdue schedule remove [--json]

  install  creates or updates the pg_cron jobs for the database in DATABASE_URL:
             update-installment-statuses-minutely  * * * * *   (each agency's cutoff, within 60 s)
             update-installment-statuses-daily     0 7 * * *   (the daily sweep)
             prune-jobs-log-daily                  30 7 * * *  (drops old runs that changed nothing)
           --mode sql  runs the job inside the database (CALL public.run_update_installment_statuses_job)
           --mode http POSTs to the edge function with pg_net, API key from Vault (default when pg_net exists)
           --project-url (or SUPABASE_URL) is the Supabase project URL for http mode; without it the
           command reads the Vault secret "project_url" at run time.
  show     the installed jobs and their last run (cron.job, cron.job_run_details)
  remove   unschedules them; nothing installed is not an error

Environment: DATABASE_URL; CRON_DATABASE_URL when pg_cron lives in a database that the
DATABASE_URL credentials cannot reach by name (default: DATABASE_URL with cron.database_name).`;

export const NEXT_USAGE = `usage: overdue next [--at ISO] [--json]
  the next cutoff instant of every agency, local and UTC, soonest first`;

class Usage extends Error {}

function parse(args: string[], options: Record<string, { type: 'string' | 'boolean' }>) {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new Usage((error as Error).message);
  }
}

function databaseUrlOf(env: CommandContext['env'], what: string): string {
  const config = loadConfig(env, { keyRequired: false });
  if (config.databaseUrl === null) {
    throw new ConfigError('DATABASE_URL', `is required for ${what} (postgres://user:password@host:5432/database)`);
  }
  return config.databaseUrl;
}

/** Our SQL functions refuse bad input with 22023 and missing pieces (pg_cron, pg_net, Vault) with 55000. */
function isConfigurationRefusal(error: unknown): error is Error & { code: string; hint?: string } {
  const code = (error as { code?: unknown })?.code;
  return code === '22023' || code === '55000';
}

async function guarded(ctx: CommandContext, name: string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof Usage) {
      ctx.err(`${name}: ${error.message}`);
      return USAGE;
    }
    if (error instanceof ConfigError || error instanceof ScheduleConfigError) {
      ctx.err(`${name}: configuration error: ${error.message}`);
      return USAGE;
    }
    if (isConfigurationRefusal(error)) {
      ctx.err(`${name}: ${error.message}${error.hint ? `\n  hint: ${error.hint}` : ''}`);
      return USAGE;
    }
    throw error;
  }
}

async function withApp<T>(url: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = connect(url, { max: 1, applicationName: 'overdue-cli' });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

export const scheduleCommand: Command = (ctx) =>
  guarded(ctx, `schedule ${ctx.args[0] ?? ''}`.trim(), async () => {
    const [sub, ...rest] = ctx.args;
    if (sub === undefined || sub === '--help' || sub === 'help') {
      (sub ? ctx.out : ctx.err)(SCHEDULE_USAGE);
      return sub ? OK : USAGE;
    }
    if (sub === 'install') {
      const v = parse(rest, {
        mode: { type: 'string' },
        'project-url': { type: 'string' },
        'secret-name': { type: 'string' },
        'timeout-ms': { type: 'string' },
        frequent: { type: 'string' },
        daily: { type: 'string' },
        prune: { type: 'string' },
        json: { type: 'boolean' },
      });
      const mode = v.mode as string | undefined;
      if (mode !== undefined && mode !== 'sql' && mode !== 'http') {
        throw new Usage(`--mode must be sql or http; got ${JSON.stringify(mode)}`);
      }
      const timeout = v['timeout-ms'] as string | undefined;
      if (timeout !== undefined && !/^\d+$/.test(timeout)) {
        throw new Usage(`--timeout-ms must be a whole number of milliseconds; got ${JSON.stringify(timeout)}`);
      }
      const url = databaseUrlOf(ctx.env, 'schedule install');
      return withApp(url, async (sql) => {
        const target = await resolveCronTarget(sql, url, ctx.env);
        try {
          const result = await installSchedule(sql, target, {
            mode: (mode as ScheduleMode | undefined) ?? null,
            projectUrl: (v['project-url'] as string | undefined) ?? (ctx.env.SUPABASE_URL?.trim() || null),
            ...(v['secret-name'] !== undefined ? { secretName: v['secret-name'] as string } : {}),
            ...(timeout !== undefined ? { timeoutMs: Number(timeout) } : {}),
            ...(v.frequent !== undefined ? { frequentSchedule: v.frequent as string } : {}),
            ...(v.daily !== undefined ? { dailySchedule: v.daily as string } : {}),
            ...(v.prune !== undefined ? { pruneSchedule: v.prune as string } : {}),
          });
          if (v.json) {
            ctx.out(JSON.stringify(result));
          } else {
            ctx.out(`pg_cron in database "${result.cronDatabase}" runs these jobs in database "${result.database}":`);
            for (const l of table(['action', 'jobid', 'job', 'schedule', 'command'], result.jobs.map((j) => [j.action, j.jobid, j.jobname, j.schedule, j.command]))) ctx.out(`  ${l}`);
          }
          return OK;
        } finally {
          await target.close();
        }
      });
    }
    if (sub === 'show' || sub === 'remove') {
      const v = parse(rest, { json: { type: 'boolean' } });
      const url = databaseUrlOf(ctx.env, `schedule ${sub}`);
      return withApp(url, async (sql) => {
        const target = await resolveCronTarget(sql, url, ctx.env);
        try {
          if (sub === 'show') {
            const rows = await showSchedule(sql, target);
            if (v.json) ctx.out(JSON.stringify({ cronDatabase: target.cronDatabase, database: target.database, jobs: rows }));
            else if (rows.length === 0) ctx.out(`no overdue jobs are scheduled in pg_cron (database "${target.cronDatabase}"); run: overdue schedule install`);
            else {
              for (const l of table(
                ['jobid', 'job', 'schedule', 'database', 'active', 'last run', 'status', 'command'],
                rows.map((r) => [String(r.jobid), r.jobname, r.schedule, r.database, String(r.active), r.last_start ? r.last_start.toISOString() : '-', r.last_status ?? '-', r.command]),
              )) ctx.out(l);
            }
          } else {
            const rows = await removeSchedule(sql, target);
            if (v.json) ctx.out(JSON.stringify({ cronDatabase: target.cronDatabase, removed: rows }));
            else if (rows.length === 0) ctx.out('nothing to remove: no overdue jobs are scheduled');
            else for (const r of rows) ctx.out(`removed ${r.jobname} (jobid ${r.jobid})`);
          }
          return OK;
        } finally {
          await target.close();
        }
      });
    }
    throw new Usage(`unknown subcommand ${JSON.stringify(sub)}; expected install, show or remove\n\n${SCHEDULE_USAGE}`);
  });

export const nextCommand: Command = (ctx) =>
  guarded(ctx, 'next', async () => {
    if (ctx.args[0] === '--help') {
      ctx.out(NEXT_USAGE);
      return OK;
    }
    const v = parse(ctx.args, { at: { type: 'string' }, json: { type: 'boolean' } });
    let at: Date | null = null;
    if (v.at !== undefined) {
      const raw = v.at as string;
      // A full instant with a zone, so "the next cutoff" is not silently read in the server's zone.
      if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(raw) || Number.isNaN(Date.parse(raw))) {
        throw new Usage(`--at must be an ISO-8601 instant with a zone, e.g. 2026-03-08T06:30:00Z; got ${JSON.stringify(raw)}`);
      }
      at = new Date(raw);
    }
    const url = databaseUrlOf(ctx.env, 'next');
    return withApp(url, async (sql) => {
      const asOf = at ?? (await q.databaseNow(sql))[0]!.now;
      const rows = await nextCutoffs(sql, asOf);
      if (v.json) ctx.out(JSON.stringify({ asOf: asOf.toISOString(), agencies: rows }));
      else for (const l of formatNextCutoffs(rows, asOf)) ctx.out(l);
      return OK;
    });
  });
