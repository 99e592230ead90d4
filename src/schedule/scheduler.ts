// The built-in scheduler: runs the job at every minute boundary when no pg_cron does it (the
// embedded PGlite quick start, managed PostgreSQL without pg_cron).
//
//   start ── runs once at once: a restart never loses a due run, because catching up is just a
//            run at now() (the rule flips everything whose cutoff has passed, however long ago);
//   tick  ── then at every minute boundary (ticks.ts), and at the 07:00 UTC tick also prunes the
//            run log (prune_jobs_log), as pg_cron's prune-jobs-log-daily job does;
//   once  ── with several replicas every one of them ticks, and the runner's advisory lock lets
//            exactly one run do the work; the others get `busy` and log it at debug level. A
//            run that outlasts a minute simply delays the next tick: a timer is armed only
//            after the previous run finished, so runs never pile up in one process;
//   stop  ── clears the timer and waits for a run in flight (tests, graceful shutdown).
//
// Time comes from an injectable Timer so tests drive it with a fake clock instead of waiting.
import { silentLogger, type Logger } from '../log.ts';
import type { RunOptions, RunOutcome } from '../job/runner.ts';
import { isDailySweep, nextTickAfter } from './ticks.ts';

export interface Timer {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemTimer: Timer = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface SchedulerDeps {
  runner: { run(options: RunOptions): Promise<RunOutcome> };
  /** Deletes old no-change runs (public.prune_jobs_log); called after the daily sweep's run. */
  pruneRunLog?: () => Promise<number>;
  timer?: Timer;
  logger?: Logger;
  /** Recorded in jobs_log.metadata.trigger. */
  trigger?: string;
}

export interface TickReport {
  /** The minute boundary this run was for; null for the catch-up run at start. */
  tick: number | null;
  outcome: RunOutcome | { kind: 'error'; error: string };
  pruned?: number;
}

export class BuiltinScheduler {
  private readonly timer: Timer;
  private readonly logger: Logger;
  private readonly trigger: string;
  private handle: unknown = null;
  private inFlight: Promise<void> | null = null;
  private running = false;
  private readonly listeners: ((report: TickReport) => void)[] = [];

  constructor(private readonly deps: SchedulerDeps) {
    this.timer = deps.timer ?? systemTimer;
    this.logger = (deps.logger ?? silentLogger).child({ component: 'scheduler' });
    this.trigger = deps.trigger ?? 'schedule';
  }

  /** Called after each tick's run (tests and metrics). */
  onTick(listener: (report: TickReport) => void): void {
    this.listeners.push(listener);
  }

  /** The next minute boundary the scheduler will run at, or null when stopped. */
  nextTick(): number | null {
    return this.running ? nextTickAfter(this.timer.now()) : null;
  }

  /** Runs the catch-up run now, then ticks every minute until stop(). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.logger.info('built-in scheduler started', { every: '1 minute', dailySweep: '07:00 UTC' });
    this.fire(null);
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.handle !== null) this.timer.clearTimeout(this.handle);
    this.handle = null;
    await this.inFlight;
  }

  private arm(): void {
    if (!this.running) return;
    const tick = nextTickAfter(this.timer.now());
    this.handle = this.timer.setTimeout(() => {
      this.handle = null;
      this.fire(tick);
    }, Math.max(0, tick - this.timer.now()));
  }

  private fire(tick: number | null): void {
    this.inFlight = this.runOnce(tick).then((report) => {
      this.inFlight = null;
      this.arm();
      // After re-arming, so a listener sees the scheduler as it will be until the next tick.
      for (const listener of this.listeners) {
        try {
          listener(report);
        } catch (error) {
          this.logger.error('tick listener threw', { error: error instanceof Error ? error.message : String(error) });
        }
      }
    });
  }

  private async runOnce(tick: number | null): Promise<TickReport> {
    const report: TickReport = { tick, outcome: { kind: 'error', error: 'not run' } };
    try {
      // No asOf: the runner judges at the database's now(), which is at or after the tick.
      report.outcome = await this.deps.runner.run({ trigger: this.trigger });
      if (report.outcome.kind === 'busy') {
        this.logger.debug('tick skipped: another replica or process is running the job', { tick: iso(tick) });
      }
      if (tick !== null && isDailySweep(tick) && this.deps.pruneRunLog) {
        report.pruned = await this.deps.pruneRunLog();
        this.logger.info('pruned run log', { deleted: report.pruned });
      }
    } catch (error) {
      report.outcome = { kind: 'error', error: error instanceof Error ? error.message : String(error) };
      this.logger.error('scheduled run threw', { tick: iso(tick), error: report.outcome.error });
    }
    return report;
  }
}

function iso(tick: number | null): string | null {
  return tick === null ? null : new Date(tick).toISOString();
}
