// The `overdue` command line. Exit codes: 0 success, 1 run failed, 2 usage or configuration
// error, 3 already running. Human-readable by default, --json for machines.
import { parseArgs } from 'node:util';
import { generateApiKey } from './api-key-file.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { connect, redactUrl, type Sql } from './db/connect.ts';
import { migrate } from './db/migrate.ts';
import { JobRunner, JOB_NAME, type RunOutcome } from './job/runner.ts';
import { previewStatuses, recentRuns } from './job/queries.ts';
import { createLogger } from './log.ts';
import { BodyError, parseInstant } from './http/request-body.ts';

export const EXIT = { ok: 0, failed: 1, usage: 2, busy: 3 } as const;

export class UsageError extends Error {}

export interface CommandContext {
  args: string[];
  env: Record<string, string | undefined>;
  out: (line: string) => void;
  err: (line: string) => void;
}

export type Command = (ctx: CommandContext) => Promise<number>;

const USAGE = `usage: overdue <command> [options]

  run [--dry-run] [--as-of ISO] [--batch-size N] [--json]
                                            run the job once (as-of: replay a past instant;
                                            batch-size: at most N rows per transaction)
  preview [--agency ID] [--at ISO] [--json] what would flip at an instant (future allowed)
  history [--limit N] [--failed] [--json]  recent runs from jobs_log
  migrate [--json]                          apply supabase/migrations to DATABASE_URL
  key generate                              print a strong random API key
  schedule install|show|remove [--json]    the pg_cron jobs (see \`overdue schedule --help\`)
  next [--at ISO] [--json]                  the next cutoff instant of every agency, local and UTC
  token --platform-admin | --agency-admin ID  mint a sign-in token for the admin pages
  check [--alert] [--stale-after-hours H]   exit 1 when no run succeeded within the limit (dead-man's switch)

Environment: DATABASE_URL (or SUPABASE_DB_URL); see README "Configuration".
Exit codes: 0 ok, 1 run failed, 2 usage/configuration error, 3 already running.`;

function configFrom(env: CommandContext['env']): Config & { databaseUrl: string } {
  const config = loadConfig(env, { keyRequired: false });
  if (config.databaseUrl === null) {
    throw new ConfigError('DATABASE_URL', 'is required for this command (postgres://user:password@host:5432/database)');
  }
  return config as Config & { databaseUrl: string };
}

async function withDatabase<T>(ctx: CommandContext, fn: (sql: Sql, config: Config & { databaseUrl: string }) => Promise<T>): Promise<T> {
  const config = configFrom(ctx.env);
  const sql = connect(config.databaseUrl, { max: 2, applicationName: 'overdue-cli' });
  try {
    return await fn(sql, config);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

type Flags = Record<string, { type: 'string' | 'boolean' }>;

function parse(args: string[], options: Flags): Record<string, string | boolean | undefined> {
  try {
    return parseArgs({ args, options, allowPositionals: false, strict: true }).values as Record<string, string | boolean | undefined>;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function instant(value: string | undefined, flag: string): Date | undefined {
  if (value === undefined) return undefined;
  try {
    return parseInstant(value, flag);
  } catch (error) {
    if (error instanceof BodyError) throw new UsageError(error.message);
    throw error;
  }
}

function printOutcome(ctx: CommandContext, outcome: RunOutcome, json: boolean): void {
  if (json) {
    ctx.out(JSON.stringify(outcome));
    return;
  }
  switch (outcome.kind) {
    case 'busy':
      ctx.err('another run is in progress; nothing started');
      return;
    case 'failed':
      ctx.err(`run failed${outcome.jobId ? ` (job ${outcome.jobId})` : ''} after ${outcome.attempts} attempt(s): ${outcome.error}`);
      return;
    case 'success': {
      const verb = outcome.dryRun ? 'would mark' : 'marked';
      ctx.out(`${outcome.dryRun ? 'dry run' : `run ${outcome.jobId}`} at ${outcome.asOf}: ${verb} ${outcome.recordsUpdated} installment(s) overdue in ${outcome.agencies.length} agenc${outcome.agencies.length === 1 ? 'y' : 'ies'} (${outcome.durationMs} ms, ${outcome.attempts} attempt(s))`);
      for (const a of outcome.agencies) ctx.out(`  ${a.agencyId}  ${String(a.updatedCount).padStart(8)}`);
    }
  }
}

const run: Command = async (ctx) => {
  const v = parse(ctx.args, { 'dry-run': { type: 'boolean' }, 'as-of': { type: 'string' }, 'batch-size': { type: 'string' }, json: { type: 'boolean' } });
  const asOf = instant(v['as-of'] as string | undefined, '--as-of');
  const rawBatch = v['batch-size'] as string | undefined;
  if (rawBatch !== undefined && !/^\d+$/.test(rawBatch.trim())) {
    throw new UsageError(`--batch-size must be a whole number of rows (0 = one transaction); got ${JSON.stringify(rawBatch)}`);
  }
  const batchSize = rawBatch === undefined ? undefined : Number(rawBatch.trim());
  if (asOf && !v['dry-run'] && asOf.getTime() > Date.now()) {
    throw new UsageError(`--as-of ${v['as-of']} is in the future; a future instant is allowed only with --dry-run`);
  }
  return withDatabase(ctx, async (sql, config) => {
    const logger = createLogger({ service: 'overdue-cli' }, { level: config.logLevel, write: (l) => ctx.err(l) });
    const runner = new JobRunner(sql, {
      retryDelaysMs: config.retryDelaysMs,
      abandonAfterMs: config.abandonAfterMs,
      statementTimeoutMs: config.statementTimeoutMs,
      batchSize: config.batchSize,
      logger,
    });
    const outcome = await runner.run({
      trigger: 'cli',
      dryRun: v['dry-run'] === true,
      ...(asOf ? { asOf } : {}),
      ...(batchSize !== undefined ? { batchSize } : {}),
    });
    printOutcome(ctx, outcome, v.json === true);
    return outcome.kind === 'success' ? EXIT.ok : outcome.kind === 'busy' ? EXIT.busy : EXIT.failed;
  });
};

const preview: Command = async (ctx) => {
  const v = parse(ctx.args, { agency: { type: 'string' }, at: { type: 'string' }, json: { type: 'boolean' } });
  const at = instant(v.at as string | undefined, '--at');
  const agency = v.agency as string | undefined;
  if (agency !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(agency)) {
    throw new UsageError(`--agency must be an agency id (a UUID); got ${JSON.stringify(agency)}`);
  }
  return withDatabase(ctx, async (sql) => {
    const when = at ?? (await sql`select now() as now`)[0]!.now as Date;
    const rows = await previewStatuses(sql, when, agency ?? null);
    const total = rows.reduce((n, r) => n + r.updated_count, 0);
    if (v.json) {
      ctx.out(JSON.stringify({ asOf: when.toISOString(), recordsUpdated: total, agencies: rows.map((r) => ({ agencyId: r.agency_id, updatedCount: r.updated_count, transitions: r.transitions })) }));
    } else {
      ctx.out(`at ${when.toISOString()}: ${total} installment(s) would become overdue`);
      for (const r of rows) ctx.out(`  ${r.agency_id}  ${String(r.updated_count).padStart(8)}`);
    }
    return EXIT.ok;
  });
};

const history: Command = async (ctx) => {
  const v = parse(ctx.args, { limit: { type: 'string' }, failed: { type: 'boolean' }, json: { type: 'boolean' } });
  const rawLimit = (v.limit as string | undefined) ?? '20';
  if (!/^\d+$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 1000) {
    throw new UsageError(`--limit must be a whole number from 1 to 1000; got ${JSON.stringify(rawLimit)}`);
  }
  return withDatabase(ctx, async (sql) => {
    const rows = await recentRuns(sql, JOB_NAME, Number(rawLimit), v.failed === true);
    if (v.json) {
      ctx.out(JSON.stringify(rows));
      return EXIT.ok;
    }
    const table = rows.map((r) => [
      r.started_at.toISOString().replace('T', ' ').slice(0, 19),
      r.status,
      String((r.metadata?.trigger as string | undefined) ?? ''),
      r.completed_at ? `${r.completed_at.getTime() - r.started_at.getTime()} ms` : '',
      String(r.records_updated ?? 0),
      (r.error_message ?? '').slice(0, 60),
      r.id,
    ]);
    const head = ['started (UTC)', 'status', 'trigger', 'duration', 'records', 'error', 'job id'];
    const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
    const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
    ctx.out(line(head));
    for (const row of table) ctx.out(line(row));
    if (rows.length === 0) ctx.out(v.failed ? '(no failed runs)' : '(no runs yet)');
    return EXIT.ok;
  });
};

const migrateCommand: Command = async (ctx) => {
  const v = parse(ctx.args, { json: { type: 'boolean' } });
  return withDatabase(ctx, async (sql, config) => {
    const result = await migrate(sql);
    if (v.json) ctx.out(JSON.stringify(result));
    else {
      ctx.out(`${redactUrl(config.databaseUrl)}: applied ${result.applied.length}, already applied ${result.skipped.length}`);
      for (const m of result.applied) ctx.out(`  applied ${m}`);
    }
    return EXIT.ok;
  });
};

const key: Command = async (ctx) => {
  if (ctx.args[0] !== 'generate' || ctx.args.length > 1) throw new UsageError('usage: overdue key generate');
  ctx.out(generateApiKey());
  return EXIT.ok;
};

/** Subcommands by name; other modules add theirs here. */
export const commands: Record<string, Command> = {
  run,
  preview,
  history,
  migrate: migrateCommand,
  key,
  // Operations (src/ops-cli.ts), loaded on use.
  token: async (ctx) => (await import('./ops-cli.ts')).token(ctx),
  check: async (ctx) => (await import('./ops-cli.ts')).check(ctx),
  // Scheduling (src/schedule/cli-commands.ts), loaded on use.
  schedule: async (ctx) => (await import('./schedule/cli-commands.ts')).scheduleCommand(ctx),
  next: async (ctx) => (await import('./schedule/cli-commands.ts')).nextCommand(ctx),
};

export async function main(argv: string[], env: CommandContext['env'] = process.env, io = { out: (l: string) => console.log(l), err: (l: string) => console.error(l) }): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    (name ? io.out : io.err)(USAGE);
    return name ? EXIT.ok : EXIT.usage;
  }
  const command = commands[name];
  if (!command) {
    io.err(`unknown command "${name}"\n\n${USAGE}`);
    return EXIT.usage;
  }
  try {
    return await command({ args, env, ...io });
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${name}: ${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof ConfigError) {
      io.err(`configuration error: ${error.message}`);
      return EXIT.usage;
    }
    io.err(`${name} failed: ${(error as Error).message}`);
    return EXIT.failed;
  }
}

const invokedDirectly = process.argv[1] !== undefined && /(cli\.ts|overdue(\.js)?)$/.test(process.argv[1]);
if (invokedDirectly) {
  process.exitCode = await main(process.argv.slice(2));
}
