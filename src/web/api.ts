// The JSON APIs behind the admin pages. Every request carries the person's JWT
// (Authorization: Bearer); their SQL runs as that person (queries.asUser), so RLS enforces
// tenancy in the database, and the platform-admin-only actions are checked here as well.
// The function's API key is never involved: "Run now" calls the runner in this process.
import { Hono, type Context } from 'hono';
import type { Sql } from '../db/connect.ts';
import type { Logger } from '../log.ts';
import type { JobRunner } from '../job/runner.ts';
import { AuthError, type JwtAuth, type Principal } from '../http/auth-jwt.ts';
import { MONITORED_JOB_NAME } from '../alerts/job-health.ts';
import * as q from './queries.ts';

export interface AdminApiDeps {
  sql: Sql;
  runner: Pick<JobRunner, 'run'>;
  /** null: no JWT secret configured — the pages answer 503 saying so. */
  auth: JwtAuth | null;
  staleAfterMs: number;
  logger: Logger;
}

type Env = { Variables: { principal: Principal } };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CUTOFF = /^\d{1,2}:\d{2}(:\d{2})?$/;

class ApiError extends Error {
  constructor(
    readonly status: 400 | 403 | 404 | 409 | 413 | 500 | 503,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

function requireUuid(value: string, what: string): string {
  if (!UUID.test(value)) throw new ApiError(400, `invalid ${what} ${JSON.stringify(value)}: expected a UUID`);
  return value;
}

function requirePlatformAdmin(c: Context<Env>): Principal {
  const p = c.get('principal');
  if (!p.platformAdmin) {
    throw new ApiError(403, 'platform administrators only: your token has no app_metadata.platform_admin = true');
  }
  return p;
}

async function jsonBody(c: Context<Env>, allowed: string[]): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.length > 16 * 1024) throw new ApiError(413, 'request body over 16 KiB');
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, 'request body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiError(400, 'request body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw new ApiError(400, `unknown field "${key}"; allowed: ${allowed.join(', ')}`);
  }
  return body as Record<string, unknown>;
}

/** PostgreSQL refusals people can act on, passed through with the database's own words. */
function databaseRefusal(error: unknown): ApiError | null {
  const e = error as { code?: string; message?: string; hint?: string };
  if (!e || typeof e.code !== 'string') return null;
  if (e.code === '22023' || e.code === '22007' || e.code === '22008' || e.code === '23514') {
    return new ApiError(400, e.message ?? 'invalid value', { code: e.code, ...(e.hint ? { hint: e.hint } : {}) });
  }
  if (e.code === '42501') return new ApiError(403, `the database refused: ${e.message}`, { code: e.code });
  return null;
}

function cutoffSentence(row: Record<string, unknown>): string {
  return `An installment due today becomes overdue at ${row.cutoff_time} ${row.timezone}, ${row.cutoff_time_utc_today} UTC; next cutoff: ${row.next_cutoff_local} ${row.timezone} (${row.next_cutoff_utc} UTC).`;
}

export function createAdminApi(deps: AdminApiDeps): Hono<Env> {
  const { sql, logger } = deps;
  const api = new Hono<Env>();
  const jobName = MONITORED_JOB_NAME;

  api.use('*', async (c, next) => {
    c.header('cache-control', 'no-store');
    if (!deps.auth) {
      return c.json({ error: 'admin pages are disabled: set SUPABASE_JWT_SECRET (or JWT_SECRET) on the server' }, 503);
    }
    try {
      c.set('principal', await deps.auth.verifyHeader(c.req.header('authorization')));
    } catch (error) {
      if (error instanceof AuthError) return c.json({ error: error.message }, error.status);
      throw error;
    }
    await next();
  });

  api.onError((error, c) => {
    const known = error instanceof ApiError ? error : databaseRefusal(error);
    if (known) return c.json({ error: known.message, ...known.extra }, known.status);
    logger.error('admin api error', { path: c.req.path, error: error.message });
    return c.json({ error: 'internal error; see the server log' }, 500);
  });

  api.get('/me', async (c) => {
    const p = c.get('principal');
    const rows = await q.asUser(sql, p.claims, (tx) => q.membership(tx));
    const m = rows[0];
    return c.json({
      sub: p.sub,
      email: p.email,
      platformAdmin: p.platformAdmin,
      agency: m ? { id: m.agency_id, name: m.agency_name, role: m.role } : null,
    });
  });

  api.get('/dashboard', async (c) => {
    const p = requirePlatformAdmin(c);
    const limit = Math.min(Math.max(Number(c.req.query('limit') ?? 60) || 60, 1), 500);
    const data = await q.asUser(sql, p.claims, async (tx) => ({
      health: (await q.jobHealth(tx, deps.staleAfterMs, jobName))[0],
      runs: await q.recentRuns(tx, jobName, limit),
      cutoffs: await q.nextCutoffs(tx, null),
      failedDeliveries: await q.alertDeliveries(tx, true, 20),
      openIncidents: await q.openIncidents(tx),
    }));
    return c.json(data);
  });

  api.get('/runs/:id', async (c) => {
    const p = requirePlatformAdmin(c);
    const id = requireUuid(c.req.param('id'), 'run id');
    const { run, agencies } = await q.asUser(sql, p.claims, async (tx) => ({
      run: (await q.runById(tx, jobName, id))[0],
      agencies: await q.runAgencies(tx, jobName, id),
    }));
    if (!run) throw new ApiError(404, `run ${id} not found in jobs_log`);
    return c.json({ run, agencies });
  });

  api.post('/preview', async (c) => {
    requirePlatformAdmin(c);
    const body = await jsonBody(c, ['asOf', 'agencyId']);
    let asOf: Date | null = null;
    if (body.asOf !== undefined && body.asOf !== null && body.asOf !== '') {
      if (typeof body.asOf !== 'string' || Number.isNaN(Date.parse(body.asOf))) {
        throw new ApiError(400, `invalid asOf ${JSON.stringify(body.asOf)}: expected an ISO-8601 instant like 2025-11-13T07:00:00Z`);
      }
      asOf = new Date(body.asOf);
    }
    const agencyId = body.agencyId ? requireUuid(String(body.agencyId), 'agencyId') : null;
    // preview_installment_status_changes is granted to service_role only; the platform-admin
    // check above is what authorises this read-only call.
    const rows = await q.preview(sql, asOf, agencyId);
    return c.json({
      asOf: (asOf ?? new Date()).toISOString(),
      recordsWouldUpdate: rows.reduce((n, r) => n + Number(r.updated_count), 0),
      agencies: rows,
    });
  });

  api.post('/run', async (c) => {
    const p = requirePlatformAdmin(c);
    logger.info('run requested from the dashboard', { by: p.sub });
    const outcome = await deps.runner.run({ trigger: 'dashboard' });
    if (outcome.kind === 'busy') throw new ApiError(409, 'a run is already in progress; try again when it has finished');
    return c.json(outcome, outcome.kind === 'success' ? 200 : 500);
  });

  api.get('/timezones', async (c) => {
    const rows = await q.timezoneNames(sql);
    c.header('cache-control', 'private, max-age=3600');
    return c.json(rows);
  });

  api.get('/agencies/:id', async (c) => {
    const p = c.get('principal');
    const id = requireUuid(c.req.param('id'), 'agency id');
    const result = await q.asUser(sql, p.claims, async (tx) => ({
      agency: (await q.agency(tx, id))[0],
      cutoff: (await q.nextCutoffs(tx, id))[0],
    }));
    if (!result.agency) throw new ApiError(404, `agency ${id} not found, or you are not a member of it`);
    return c.json({ agency: result.agency, cutoff: result.cutoff, sentence: result.cutoff ? cutoffSentence(result.cutoff) : null });
  });

  api.put('/agencies/:id', async (c) => {
    const p = c.get('principal');
    const id = requireUuid(c.req.param('id'), 'agency id');
    const body = await jsonBody(c, ['timezone', 'cutoffTime']);
    const timezone = typeof body.timezone === 'string' ? body.timezone.trim() : '';
    const cutoff = typeof body.cutoffTime === 'string' ? body.cutoffTime.trim() : '';
    if (timezone === '') throw new ApiError(400, 'time zone is required, e.g. Australia/Brisbane');
    if (timezone.length > 64) throw new ApiError(400, `invalid time zone "${timezone.slice(0, 64)}…": too long`);
    if (!CUTOFF.test(cutoff)) {
      throw new ApiError(400, `invalid cutoff time ${JSON.stringify(cutoff)}: use HH:MM on a 24-hour clock, e.g. 17:00`);
    }
    const result = await q.asUser(sql, p.claims, async (tx) => {
      const [{ admin } = { admin: false }] = await q.isAgencyAdmin(tx, id);
      if (!admin) {
        throw new ApiError(403, `only admins of agency ${id} may change its settings; you are not one of them`);
      }
      const updated = await q.updateAgencySettings(tx, id, timezone, cutoff);
      // RLS would refuse silently (no row) even if the check above were wrong.
      if (updated.length === 0) throw new ApiError(403, `the database refused to change agency ${id} for you (row level security)`);
      return { agency: (await q.agency(tx, id))[0], cutoff: (await q.nextCutoffs(tx, id))[0] };
    });
    logger.info('agency settings changed', { agencyId: id, by: p.sub, timezone: result.agency?.timezone, cutoff: result.agency?.overdue_cutoff_time });
    return c.json({ agency: result.agency, cutoff: result.cutoff, sentence: cutoffSentence(result.cutoff!) });
  });

  return api;
}
