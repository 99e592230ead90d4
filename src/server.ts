// Node entry point (`npm start`): the same fetch handler as the edge function, on PORT.
// With no DATABASE_URL it runs on an embedded PostgreSQL (PGlite) under OVERDUE_DATA_DIR.
import { serve } from '@hono/node-server';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createService } from './http/service.ts';
import { createLogger } from './log.ts';
import { loadOperationsConfig, startOperations, type OperationsConfig } from './operations.ts';
import { schedulerSetting, startBuiltinScheduler } from './schedule/builtin.ts';

async function main(): Promise<void> {
  let config: Config;
  let opsConfig: OperationsConfig;
  try {
    config = loadConfig(process.env);
    opsConfig = loadOperationsConfig(process.env);
    schedulerSetting(process.env); // OVERDUE_SCHEDULER, validated with the rest
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`configuration error: ${error.message}`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ service: 'overdue' }, { level: config.logLevel });

  let databaseUrl: string | null = config.databaseUrl;
  let closeEmbedded: (() => Promise<void>) | undefined;
  let generatedKey = false;
  if (databaseUrl === null) {
    const embedded = await import('./db/embedded.ts');
    const db = await embedded.openEmbedded({ dataDir: config.dataDir, logger }).catch((error: unknown) => {
      if (!(error instanceof embedded.DataFolderInUseError)) throw error;
      console.error(error.message); // a second `npm start` on the same folder: say which process has it
      process.exit(1);
    });
    databaseUrl = db.url;
    closeEmbedded = db.close;
    if (config.functionKeys.length === 0) {
      config = { ...config, functionKeys: [await embedded.loadOrCreateApiKey(config.dataDir)] };
      generatedKey = true;
    }
    // The quick start signs admin-page tokens with a secret kept with the data (`npx overdue token`).
    if (opsConfig.jwtSecret === null) {
      opsConfig = { ...opsConfig, jwtSecret: (await import('./jwt-secret-file.ts')).loadOrCreateJwtSecret(config.dataDir) };
    }
  }

  if (databaseUrl === null) throw new Error('unreachable: no database URL after start-up');
  const service = await createService({ ...config, databaseUrl }, logger, closeEmbedded ? 1 : 4);
  const operations = startOperations({ ...service, logger, config: opsConfig });
  // Without pg_cron (embedded, managed PostgreSQL without it) the service runs the job every
  // minute itself; OVERDUE_SCHEDULER=auto|on|off, see docs/scheduling.md.
  const scheduler = await startBuiltinScheduler({ sql: service.sql, runner: service.runner, env: process.env, embedded: closeEmbedded !== undefined, logger });
  const server = serve({ fetch: service.app.fetch, port: config.port, hostname: config.host }, (info) => {
    const url = `http://${config.host}:${info.port}/functions/v1/update-installment-statuses`;
    logger.info('listening', { url, embedded: closeEmbedded !== undefined });
    if (closeEmbedded) {
      const shownKey = generatedKey ? config.functionKeys[0] : '$SUPABASE_FUNCTION_KEY';
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 19) + 'Z';
      // The quick start prints what a newcomer needs to try it; the key is theirs, locally generated.
      console.error(
        [
          '',
          `  Overdue job listening on ${url}`,
          generatedKey ? `  API key (generated, kept in ${config.dataDir}/): ${config.functionKeys[0]}` : '  API key: the SUPABASE_FUNCTION_KEY you configured',
          '',
          '  Try it:',
          `    curl -s -X POST ${url} -H "X-API-Key: ${shownKey}"`,
          '',
          scheduler
            ? '  The built-in scheduler has just run the job and runs it every minute, so what is due is\n  already overdue (OVERDUE_SCHEDULER=off leaves the first run to you). What tomorrow brings:'
            : '  What tomorrow brings (a dry run changes nothing):',
          `    curl -s -X POST ${url} -H "X-API-Key: ${shownKey}" -H 'content-type: application/json' -d '{"dryRun":true,"asOf":"${tomorrow}"}'`,
          '',
          `  Dashboard: http://${config.host}:${info.port}/admin/jobs — sign in with the output of \`npx overdue token --platform-admin\``,
          '',
        ].join('\n'),
      );
    }
  });

  const stop = async (signal: string) => {
    logger.info('shutting down', { signal });
    server.close();
    await scheduler?.stop();
    await operations.stop();
    await service.close();
    await closeEmbedded?.();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

await main();
