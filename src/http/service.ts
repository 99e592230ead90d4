// Builds the pieces every entry point needs — connection, runner, handler — from a Config.
import type { Hono } from 'hono';
import type { Config } from '../config.ts';
import { connect, type Sql } from '../db/connect.ts';
import { JobRunner } from '../job/runner.ts';
import type { Logger } from '../log.ts';
import { createApp } from './app.ts';

export interface Service {
  sql: Sql;
  runner: JobRunner;
  app: Hono;
  close(): Promise<void>;
}

export async function createService(config: Config & { databaseUrl: string }, logger: Logger, poolSize = 4): Promise<Service> {
  const sql = connect(config.databaseUrl, { max: poolSize, applicationName: 'overdue-service' });
  const runner = new JobRunner(sql, {
    retryDelaysMs: config.retryDelaysMs,
    abandonAfterMs: config.abandonAfterMs,
    statementTimeoutMs: config.statementTimeoutMs,
    batchSize: config.batchSize,
    logger,
  });
  const app = await createApp({ sql, runner, config, logger });
  return {
    sql,
    runner,
    app,
    close: () => sql.end({ timeout: 5 }),
  };
}
