// The whole HTTP contract as one fetch handler (Hono): the Node server and the Supabase Edge
// Function are a few lines each around createApp().
import { Hono } from 'hono';
import type { Config } from '../config.ts';
import type { Sql } from '../db/connect.ts';
import type { JobRunner, RunOutcome } from '../job/runner.ts';
import type { Logger } from '../log.ts';
import { ApiKeyVerifier } from './api-key.ts';
import { BodyError, parseRunRequest } from './request-body.ts';

export const FUNCTION_PATH = '/functions/v1/update-installment-statuses';

export interface AppDeps {
  sql: Sql;
  runner: JobRunner;
  config: Pick<Config, 'functionKeys' | 'corsOrigins'>;
  logger: Logger;
}

const UNAUTHORIZED = { success: false, error: 'Unauthorized' } as const;
const CORS_ALLOW_HEADERS = 'authorization, x-api-key, content-type';
const CORS_ALLOW_METHODS = 'POST, OPTIONS';

export async function createApp(deps: AppDeps): Promise<Hono> {
  const app = new Hono();
  const keys = await ApiKeyVerifier.create(deps.config.functionKeys);
  const origins = new Set(deps.config.corsOrigins);

  // CORS: preflights are always answered; an origin is allowed only when configured
  // (CORS_ALLOWED_ORIGINS). This is a server-to-server endpoint, so none are by default.
  app.use('*', async (c, next) => {
    const origin = c.req.header('origin');
    const allowed = origin !== undefined && (origins.has(origin) || origins.has('*'));
    if (c.req.method === 'OPTIONS') {
      const headers: Record<string, string> = {
        'access-control-allow-headers': CORS_ALLOW_HEADERS,
        'access-control-allow-methods': CORS_ALLOW_METHODS,
        'access-control-max-age': '600',
        vary: 'Origin',
      };
      if (allowed) headers['access-control-allow-origin'] = origin!;
      return c.body(null, 204, headers);
    }
    await next();
    if (allowed) {
      c.res.headers.set('access-control-allow-origin', origin!);
      c.res.headers.append('vary', 'Origin');
    }
  });

  app.post(FUNCTION_PATH, async (c) => {
    // Authenticate before reading the body or touching the database.
    if (!(await keys.verify(c.req.header('x-api-key')))) {
      deps.logger.warn('rejected request: missing or wrong X-API-Key', { path: FUNCTION_PATH });
      return c.json(UNAUTHORIZED, 401);
    }
    let body;
    try {
      body = await parseRunRequest(c.req.raw);
    } catch (error) {
      if (error instanceof BodyError) return c.json({ success: false, error: error.message }, error.status);
      throw error;
    }
    const outcome = await deps.runner.run({ trigger: 'http', dryRun: body.dryRun, ...(body.asOf ? { asOf: body.asOf } : {}) });
    return respond(outcome);
  });

  app.all(FUNCTION_PATH, (c) =>
    c.json({ success: false, error: `method ${c.req.method} not allowed; use POST` }, 405, { allow: 'POST, OPTIONS' }),
  );

  app.notFound((c) => c.json({ success: false, error: `no route for ${c.req.method} ${new URL(c.req.url).pathname}` }, 404));

  app.onError((error, c) => {
    deps.logger.error('unhandled error', { error: error.message });
    return c.json({ success: false, error: 'internal error; see the server log' }, 500);
  });

  return app;
}

export function respond(outcome: RunOutcome): Response {
  switch (outcome.kind) {
    case 'success':
      return Response.json({
        success: true,
        jobId: outcome.jobId,
        recordsUpdated: outcome.recordsUpdated,
        agencies: outcome.agencies,
        durationMs: outcome.durationMs,
        dryRun: outcome.dryRun,
        asOf: outcome.asOf,
        attempts: outcome.attempts,
      });
    case 'busy':
      return Response.json({ success: false, error: 'a run is already in progress; try again when it has finished' }, { status: 409 });
    case 'failed':
      return Response.json(
        { success: false, jobId: outcome.jobId, error: outcome.error, ...(outcome.code ? { code: outcome.code } : {}), attempts: outcome.attempts },
        { status: 500 },
      );
  }
}
