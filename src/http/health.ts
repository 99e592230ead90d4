// Liveness, readiness, the job's health verdict and the Prometheus scrape.
//   GET /healthz    — the process answers (no database): for restarts by the orchestrator.
//   GET /readyz     — the database answers and every migration is applied: 200, else 503.
//   GET /health/job — 200 while the latest success is younger than the limit, else 503, with
//                     the reason; point an external uptime monitor here (the dead-man's switch
//                     that still works when pg_cron or pg_net lost the call).
//   GET /metrics    — Prometheus text.
import { Hono } from 'hono';
import type { Sql } from '../db/connect.ts';
import { pendingMigrations } from '../db/migrate.ts';
import { readJobHealth } from '../alerts/job-health.ts';
import type { JobMetrics } from './metrics.ts';
import * as q from '../web/queries.ts';

export interface HealthDeps {
  sql: Sql;
  metrics: JobMetrics;
  staleAfterMs: number;
  /** How long /readyz waits for the database before answering 503. */
  readyTimeoutMs?: number;
}

const started = Date.now();

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    work,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export function createHealthRoutes(deps: HealthDeps): Hono {
  const app = new Hono();
  const timeout = deps.readyTimeoutMs ?? 3000;

  app.get('/healthz', (c) => c.json({ status: 'ok', uptimeSeconds: Math.round((Date.now() - started) / 1000) }));

  app.get('/readyz', async (c) => {
    try {
      await withTimeout(q.ping(deps.sql), timeout, 'the database');
    } catch (error) {
      return c.json({ status: 'not ready', database: `unreachable: ${(error as Error).message}`, pendingMigrations: null }, 503);
    }
    const pending = await withTimeout(pendingMigrations(deps.sql), timeout, 'the database');
    if (pending.length > 0) {
      return c.json(
        { status: 'not ready', database: 'ok', pendingMigrations: pending, hint: 'run `npx overdue migrate` (or `supabase db push`)' },
        503,
      );
    }
    return c.json({ status: 'ready', database: 'ok', pendingMigrations: [] });
  });

  app.get('/health/job', async (c) => {
    let health;
    try {
      health = await withTimeout(readJobHealth(deps.sql, deps.staleAfterMs), timeout, 'the database');
    } catch (error) {
      return c.json({ healthy: false, reason: `cannot read jobs_log: ${(error as Error).message}` }, 503);
    }
    return c.json(
      {
        healthy: health.healthy,
        reason: health.reason,
        lastSuccessAt: health.lastSuccessAt?.toISOString() ?? null,
        ageSeconds: health.ageSeconds === null ? null : Math.round(health.ageSeconds),
        limitSeconds: health.staleAfterSeconds,
        lastFailureAt: health.lastFailureAt?.toISOString() ?? null,
        lastFailureError: health.lastFailureError,
        runningSince: health.runningSince?.toISOString() ?? null,
        checkedAt: health.checkedAt.toISOString(),
      },
      health.healthy ? 200 : 503,
    );
  });

  app.get('/metrics', async (c) => {
    try {
      const { body, contentType } = await deps.metrics.render();
      return c.body(body, 200, { 'content-type': contentType });
    } catch (error) {
      return c.text(`# metrics unavailable: ${(error as Error).message}\n`, 500);
    }
  });

  return app;
}
