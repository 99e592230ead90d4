// Wires operations into the Node service: alert channels and the incident monitor on
// runner.onFinished, metrics, the watchdog (dead-man's switch + reaping abandoned runs), and the
// ops sub-app (health, metrics, admin pages) mounted on the service's Hono app.
import type { Hono } from 'hono';
import type { Env } from './config.ts';
import type { Sql } from './db/connect.ts';
import type { JobRunner } from './job/runner.ts';
import type { Logger } from './log.ts';
import { loadAlertConfig, type AlertConfig } from './alerts/config.ts';
import { channelsFromConfig } from './alerts/channels.ts';
import { AlertMonitor } from './alerts/monitor.ts';
import { startWatchdog } from './alerts/watchdog.ts';
import { JwtAuth, jwtSecretFromEnv } from './http/auth-jwt.ts';
import { JobMetrics } from './http/metrics.ts';
import { createOpsApp } from './http/ops.ts';

export interface OperationsConfig {
  alerts: AlertConfig;
  /** SUPABASE_JWT_SECRET or JWT_SECRET; null → pages disabled unless the embedded one is used. */
  jwtSecret: string | null;
}

/** Validated with the rest of the configuration at start-up (throws ConfigError). */
export function loadOperationsConfig(env: Env): OperationsConfig {
  return { alerts: loadAlertConfig(env), jwtSecret: jwtSecretFromEnv(env) };
}

export interface Operations {
  monitor: AlertMonitor;
  metrics: JobMetrics;
  stop(): Promise<void>;
}

export function startOperations(input: {
  sql: Sql;
  runner: JobRunner;
  app: Hono;
  logger: Logger;
  config: OperationsConfig;
}): Operations {
  const { sql, runner, app, config } = input;
  const logger = input.logger.child({ component: 'operations' });
  const staleAfterMs = config.alerts.staleAfterMs;
  const metrics = new JobMetrics({ sql, staleAfterMs });
  const channels = channelsFromConfig(config.alerts);
  const monitor = new AlertMonitor({
    sql,
    channels,
    retryDelaysMs: config.alerts.retryDelaysMs,
    staleAfterMs,
    logger,
    onDelivery: (outcome) => metrics.observeDelivery(outcome),
  });

  runner.onFinished((outcome) => {
    metrics.observeRun(outcome);
    // Not awaited: a slow or failing receiver (retries take ~half a minute) must not hold up the
    // HTTP answer of the run. monitor.settled() is awaited at shutdown.
    void monitor.handleRunFinished(outcome).catch((error: Error) =>
      logger.error('alert monitor failed on a finished run', { error: error.message }),
    );
  });

  app.route('/', createOpsApp({ sql, runner, logger, metrics, auth: config.jwtSecret ? new JwtAuth(config.jwtSecret) : null, staleAfterMs }));

  const watchdog = startWatchdog({
    monitor,
    reapAbandoned: () => runner.reapAbandoned(),
    intervalMs: config.alerts.watchdogIntervalMs,
    logger,
  });
  logger.info('operations started', {
    alertChannels: channels.map((c) => c.name),
    watchdogIntervalSeconds: config.alerts.watchdogIntervalMs / 1000,
    staleAfterHours: staleAfterMs / 3_600_000,
    adminPages: config.jwtSecret ? 'enabled' : 'disabled (no SUPABASE_JWT_SECRET / JWT_SECRET)',
  });
  if (channels.length === 0) logger.warn('no alert channel configured: set ALERT_WEBHOOK_URL and/or SMTP_URL + ALERT_EMAIL_TO');

  return {
    monitor,
    metrics,
    async stop() {
      await watchdog.stop();
      await monitor.settled();
      for (const channel of channels) (channel as { close?: () => void }).close?.();
    },
  };
}
