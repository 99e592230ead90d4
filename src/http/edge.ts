// The Supabase Edge Function's handler: SUPABASE_DB_URL (set by Supabase for every function)
// and SUPABASE_FUNCTION_KEY from the function's secrets. Web-standard code only.
import { loadConfig, type Env } from '../config.ts';
import { createLogger } from '../log.ts';
import { createService } from './service.ts';

export async function createEdgeHandler(env: Env): Promise<{ fetch: (request: Request) => Response | Promise<Response>; port: number }> {
  // An edge function talks to the database it is deployed with: SUPABASE_DB_URL wins.
  const config = loadConfig({ ...env, DATABASE_URL: env.SUPABASE_DB_URL ?? env.DATABASE_URL }, { keyRequired: true });
  if (config.databaseUrl === null) {
    throw new Error('SUPABASE_DB_URL: is required for the edge function (Supabase sets it; locally export it)');
  }
  const logger = createLogger({ service: 'overdue-edge' }, { level: config.logLevel });
  // Edge instances are short-lived and many: keep the pool small.
  const service = await createService({ ...config, databaseUrl: config.databaseUrl }, logger, 2);
  return { fetch: service.app.fetch, port: config.port };
}
