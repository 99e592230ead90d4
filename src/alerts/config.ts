// Alerting and watchdog settings, parsed once from the environment. Every problem names the
// variable and the offending value.

import { ConfigError } from '../config.ts';

export interface AlertConfig {
  /** ALERT_WEBHOOK_URL: Slack-compatible incoming webhook; null = no webhook channel. */
  webhookUrl: string | null;
  /** SMTP_URL, e.g. smtps://user:pass@smtp.example.com:465; null = no e-mail channel. */
  smtpUrl: string | null;
  /** ALERT_EMAIL_TO: comma-separated recipients (required with SMTP_URL). */
  emailTo: string[];
  /** ALERT_EMAIL_FROM. */
  emailFrom: string;
  /** ALERT_STALE_AFTER_HOURS (default 25): no success for this long is an incident. */
  staleAfterMs: number;
  /** ALERT_RETRY_DELAYS_MS (default 1000,5000,30000): waits between delivery attempts. */
  retryDelaysMs: number[];
  /** WATCHDOG_INTERVAL_SECONDS (default 60; 0 turns the in-process watchdog off). */
  watchdogIntervalMs: number;
}

export const DEFAULT_EMAIL_FROM = 'overdue-detection <overdue-alerts@localhost>';

type Env = Record<string, string | undefined>;

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v ? v : undefined;
}

function positiveNumber(env: Env, name: string, fallback: number, { allowZero = false } = {}): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0)) {
    throw new ConfigError(name, `"${raw}" is not a ${allowZero ? 'non-negative' : 'positive'} number`);
  }
  return n;
}

export function loadAlertConfig(env: Env): AlertConfig {
  const webhookUrl = value(env, 'ALERT_WEBHOOK_URL') ?? null;
  if (webhookUrl !== null) {
    let protocol = '';
    try {
      protocol = new URL(webhookUrl).protocol;
    } catch {
      /* reported below */
    }
    if (protocol !== 'http:' && protocol !== 'https:') {
      throw new ConfigError('ALERT_WEBHOOK_URL', 'must be an http(s) URL, e.g. https://hooks.slack.com/services/…');
    }
  }

  const smtpUrl = value(env, 'SMTP_URL') ?? null;
  if (smtpUrl !== null) {
    let protocol = '';
    try {
      protocol = new URL(smtpUrl).protocol;
    } catch {
      /* reported below */
    }
    if (protocol !== 'smtp:' && protocol !== 'smtps:') {
      throw new ConfigError('SMTP_URL', 'must be an smtp:// or smtps:// URL, e.g. smtps://user:password@smtp.example.com:465');
    }
  }

  const toRaw = value(env, 'ALERT_EMAIL_TO');
  const emailTo = (toRaw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (const address of emailTo) {
    if (!/^[^@\s]+@[^@\s]+$/.test(address)) {
      throw new ConfigError('ALERT_EMAIL_TO', `"${address}" is not an e-mail address`);
    }
  }
  if (smtpUrl !== null && emailTo.length === 0) {
    throw new ConfigError('ALERT_EMAIL_TO', 'is required when SMTP_URL is set (comma-separated addresses)');
  }
  if (smtpUrl === null && emailTo.length > 0) {
    throw new ConfigError('SMTP_URL', 'is required when ALERT_EMAIL_TO is set');
  }

  const retryRaw = value(env, 'ALERT_RETRY_DELAYS_MS');
  let retryDelaysMs = [1000, 5000, 30000];
  if (retryRaw !== undefined) {
    retryDelaysMs = retryRaw.split(',').map((s) => Number(s.trim()));
    if (retryDelaysMs.some((n) => !Number.isInteger(n) || n < 0)) {
      throw new ConfigError('ALERT_RETRY_DELAYS_MS', `"${retryRaw}" is not a comma-separated list of milliseconds, e.g. 1000,5000,30000`);
    }
  }

  return {
    webhookUrl,
    smtpUrl,
    emailTo,
    emailFrom: value(env, 'ALERT_EMAIL_FROM') ?? DEFAULT_EMAIL_FROM,
    staleAfterMs: positiveNumber(env, 'ALERT_STALE_AFTER_HOURS', 25) * 3_600_000,
    retryDelaysMs,
    watchdogIntervalMs: positiveNumber(env, 'WATCHDOG_INTERVAL_SECONDS', 60, { allowZero: true }) * 1000,
  };
}
