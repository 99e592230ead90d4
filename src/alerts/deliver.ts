// Sends one message through one channel, retrying with backoff. Never throws: the outcome is
// returned so the caller can record it (alert_deliveries) and count it (metrics).
import type { Alert, AlertChannel } from './channel.ts';

export interface DeliveryOutcome {
  channel: string;
  status: 'delivered' | 'failed';
  attempts: number;
  /** The last error when failed. */
  error: string | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * One attempt, then one more after each delay in `retryDelaysMs`
 * (default config: 1 s, 5 s, 30 s — four attempts over about half a minute).
 */
export async function deliverWithRetry(
  channel: AlertChannel,
  alert: Alert,
  retryDelaysMs: readonly number[],
): Promise<DeliveryOutcome> {
  let lastError = '';
  for (let attempt = 1; attempt <= retryDelaysMs.length + 1; attempt++) {
    try {
      await channel.send(alert);
      return { channel: channel.name, status: 'delivered', attempts: attempt, error: null };
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      const delay = retryDelaysMs[attempt - 1];
      if (delay === undefined) break;
      await sleep(delay);
    }
  }
  return { channel: channel.name, status: 'failed', attempts: retryDelaysMs.length + 1, error: lastError };
}
