// Whether the Node service runs the built-in scheduler, and starting it.
//
// OVERDUE_SCHEDULER = auto (default) | on | off
//   auto: on for the embedded database and for servers without pg_cron (no cron.database_name
//         setting); off when pg_cron is loaded, because then the schedule belongs in pg_cron
//         (`npx overdue schedule install`), which runs even when no Node process is up.
//   on:   always (e.g. pg_cron is loaded but you prefer the service to drive the job). Running
//         both is safe — the advisory lock makes the second run of a minute `busy` — only
//         noisier.
//   off:  never (several services where only some should tick, or tests).
import { ConfigError } from '../config.ts';
import type { Sql } from '../db/connect.ts';
import type { JobRunner } from '../job/runner.ts';
import { silentLogger, type Logger } from '../log.ts';
import * as q from './queries.ts';
import { BuiltinScheduler, type Timer } from './scheduler.ts';

export type SchedulerSetting = 'auto' | 'on' | 'off';

export function schedulerSetting(env: Record<string, string | undefined>): SchedulerSetting {
  const raw = (env.OVERDUE_SCHEDULER ?? '').trim().toLowerCase();
  if (raw === '') return 'auto';
  if (raw === 'auto' || raw === 'on' || raw === 'off') return raw;
  throw new ConfigError('OVERDUE_SCHEDULER', `expected auto, on or off, got "${env.OVERDUE_SCHEDULER}"`);
}

export async function builtinSchedulerWanted(sql: Sql, setting: SchedulerSetting, embedded: boolean): Promise<{ run: boolean; reason: string }> {
  if (setting === 'on') return { run: true, reason: 'OVERDUE_SCHEDULER=on' };
  if (setting === 'off') return { run: false, reason: 'OVERDUE_SCHEDULER=off' };
  if (embedded) return { run: true, reason: 'embedded database: no pg_cron' };
  let where;
  try {
    [where] = await q.cronLocation(sql);
  } catch (error) {
    // The database is down at start-up. The service must still come up (and report the outage
    // through /readyz and failed runs), so it schedules itself: with pg_cron also running, the
    // job lock makes the second run of a minute `busy`, never a double run.
    return { run: true, reason: `could not ask the database whether pg_cron is loaded (${(error as Error).message}); running the built-in scheduler to be safe` };
  }
  if (where!.cron_database === null) return { run: true, reason: 'pg_cron is not loaded on this server' };
  return {
    run: false,
    reason: `pg_cron is loaded (database "${where!.cron_database}"): schedule the job there with \`npx overdue schedule install\`, or set OVERDUE_SCHEDULER=on`,
  };
}

export interface StartOptions {
  sql: Sql;
  runner: Pick<JobRunner, 'run'>;
  env: Record<string, string | undefined>;
  embedded: boolean;
  logger?: Logger;
  timer?: Timer;
}

/** Starts the built-in scheduler when wanted; returns it (call stop() on shutdown) or null. */
export async function startBuiltinScheduler(options: StartOptions): Promise<BuiltinScheduler | null> {
  const logger = options.logger ?? silentLogger;
  const decision = await builtinSchedulerWanted(options.sql, schedulerSetting(options.env), options.embedded);
  logger.info(decision.run ? 'built-in scheduler on' : 'built-in scheduler off', { reason: decision.reason });
  if (!decision.run) return null;
  const scheduler = new BuiltinScheduler({
    runner: options.runner,
    pruneRunLog: async () => (await q.pruneRunLog(options.sql))[0]!.deleted,
    logger,
    ...(options.timer ? { timer: options.timer } : {}),
  });
  scheduler.start();
  return scheduler;
}
