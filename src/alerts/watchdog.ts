// The in-process dead-man's switch: every interval, reap runs abandoned by dead processes and
// ask the monitor to judge the job's health from jobs_log. It cannot notice that this very
// process is down — public.job_health() / `overdue check` / GET /health/job, asked from outside,
// cover that (docs/operations.md, "Who notices what").
import type { AlertLogger } from './channel.ts';
import type { AlertMonitor } from './monitor.ts';

export interface Watchdog {
  /** Runs one check now (also what each tick does). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

export function startWatchdog(options: {
  monitor: AlertMonitor;
  /** runner.reapAbandoned: marks 'running' rows older than the abandon limit failed. */
  reapAbandoned?: () => Promise<number>;
  intervalMs: number;
  logger: AlertLogger;
}): Watchdog {
  const { monitor, reapAbandoned, intervalMs, logger } = options;
  let current: Promise<void> = Promise.resolve();
  let stopped = false;

  const check = async () => {
    try {
      const reaped = reapAbandoned ? await reapAbandoned() : 0;
      if (reaped > 0) logger.warn('watchdog marked abandoned runs failed', { reaped });
      const health = await monitor.checkJobHealth();
      if (!health.healthy) logger.warn('job unhealthy', { reason: health.reason });
    } catch (error) {
      // The database being down is itself what /readyz and the external check report.
      logger.error('watchdog check failed', { error: (error as Error).message });
    }
  };

  const tick = () => {
    if (stopped) return current;
    current = current.then(check);
    return current;
  };

  const timer = intervalMs > 0 ? setInterval(() => void tick(), intervalMs) : null;
  (timer as { unref?: () => void } | null)?.unref?.();
  // A first look soon after start, so a service restarted after a long outage reports it at once.
  const first = intervalMs > 0 ? setTimeout(() => void tick(), Math.min(intervalMs, 5000)) : null;
  (first as { unref?: () => void } | null)?.unref?.();

  return {
    tick,
    async stop() {
      stopped = true;
      if (timer) clearInterval(timer);
      if (first) clearTimeout(first);
      await current;
      await monitor.settled();
    },
  };
}
