// The operations sub-app: health, metrics, the admin pages and their APIs. Node only (it serves
// files and speaks SMTP through the monitor), so the Node server mounts it next to the job's
// handler; the edge function does not carry it.
import { Hono } from 'hono';
import type { Sql } from '../db/connect.ts';
import type { JobRunner } from '../job/runner.ts';
import type { Logger } from '../log.ts';
import type { JwtAuth } from './auth-jwt.ts';
import { createHealthRoutes } from './health.ts';
import type { JobMetrics } from './metrics.ts';
import { createAdminApi } from '../web/api.ts';
import { createPages } from '../web/pages.ts';

export interface OpsDeps {
  sql: Sql;
  runner: Pick<JobRunner, 'run'>;
  logger: Logger;
  metrics: JobMetrics;
  /** null when no JWT secret is configured: the pages say so and their APIs answer 503. */
  auth: JwtAuth | null;
  staleAfterMs: number;
}

export function createOpsApp(deps: OpsDeps): Hono {
  const app = new Hono();
  app.route('/', createHealthRoutes({ sql: deps.sql, metrics: deps.metrics, staleAfterMs: deps.staleAfterMs }));
  app.route('/admin/api', createAdminApi(deps));
  app.route('/', createPages());
  return app;
}
