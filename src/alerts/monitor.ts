// Turns run outcomes and the job's health into incidents, and incidents into messages.
//
// Two ways in, one bookkeeping:
//   * handleRunFinished() — hooked to runner.onFinished in this process: a failed run opens
//     the "job-failed" incident at once; a success resolves "job-failed" and "job-stale".
//   * checkJobHealth() — called by the watchdog every minute: reads public.job_health() and the
//     newest finished run in jobs_log, so it also notices runs made elsewhere (pg_cron in SQL,
//     the edge function, another replica) and the absence of any success (dead-man's switch).
// Incidents are opened/resolved by conditional SQL (incidents.ts), so however many replicas and
// hooks see the same failure, one alert goes out per incident and one recovery when it ends.
import type { Sql } from '../db/connect.ts';
import { silentLogger, type Alert, type AlertChannel, type AlertLogger } from './channel.ts';
import { deliverWithRetry, type DeliveryOutcome } from './deliver.ts';
import { openIncident, resolveIncident, recordDelivery, type Incident } from './incidents.ts';
import { isTransient } from '../job/transient.ts';
import { countAttempts, latestFinishedRun, readJobHealth, MONITORED_JOB_NAME, type JobHealth } from './job-health.ts';

/** The runner's RunOutcome as far as alerting needs it (src/job/runner.ts). */
export type FinishedRun =
  | { kind: 'success'; jobId: string | null; recordsUpdated: number; dryRun?: boolean; attempts?: unknown }
  | { kind: 'failed'; jobId: string | null; error: string; code?: string; attempts?: unknown; dryRun?: boolean }
  | { kind: 'busy' };

export interface AlertMonitorOptions {
  sql: Sql;
  channels: AlertChannel[];
  retryDelaysMs: readonly number[];
  staleAfterMs: number;
  logger?: AlertLogger;
  jobName?: string;
  /** Called once per delivery outcome (metrics). */
  onDelivery?: (outcome: DeliveryOutcome, kind: 'alert' | 'recovery') => void;
}

export class AlertMonitor {
  readonly failedKey: string;
  readonly staleKey: string;
  private readonly jobName: string;
  private readonly logger: AlertLogger;
  private readonly pending = new Set<Promise<unknown>>();
  /**
   * Incidents alerted while the database could not record them (it was unreachable: the very
   * failure being reported). Kept in this process so the outage alerts once, and so the
   * database record made once it is back does not alert a second time.
   */
  private readonly unrecorded = new Map<string, Incident>();

  constructor(private readonly options: AlertMonitorOptions) {
    this.jobName = options.jobName ?? MONITORED_JOB_NAME;
    this.failedKey = `job-failed:${this.jobName}`;
    this.staleKey = `job-stale:${this.jobName}`;
    this.logger = options.logger ?? silentLogger;
  }

  /** For runner.onFinished. Resolves once any alert it caused has been delivered or given up. */
  handleRunFinished(outcome: FinishedRun): Promise<void> {
    return this.track(this.onRun(outcome));
  }

  /** The watchdog's check. Returns the verdict it acted on. */
  checkJobHealth(): Promise<JobHealth> {
    return this.track(this.onCheck());
  }

  /** Waits for every alert in flight (tests, graceful shutdown). */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.pending.add(work);
    work.finally(() => this.pending.delete(work)).catch(() => {});
    return work;
  }

  private async onRun(outcome: FinishedRun): Promise<void> {
    // A failed dry run (preview) is not a failed run of the job: nothing was due to change.
    if (outcome.kind === 'failed' && !outcome.dryRun) {
      await this.openFailed({
        jobId: outcome.jobId,
        error: outcome.error,
        code: outcome.code ?? null,
        attempts: countAttempts(outcome.attempts),
      });
    } else if (outcome.kind === 'success' && !outcome.dryRun) {
      await this.resolveAll(`run ${outcome.jobId ?? '(no id)'} succeeded, ${outcome.recordsUpdated} installment(s) updated`);
    }
  }

  private async onCheck(): Promise<JobHealth> {
    const latest = await latestFinishedRun(this.options.sql, this.jobName);
    if (latest?.status === 'failed') {
      await this.openFailed({ jobId: latest.id, error: latest.errorMessage ?? '(no error message)', code: latest.code, attempts: latest.attempts });
    } else if (latest?.status === 'success') {
      await this.resolve(this.failedKey, `run ${latest.id} succeeded, ${latest.recordsUpdated ?? 0} installment(s) updated`);
    }

    const health = await readJobHealth(this.options.sql, this.options.staleAfterMs, this.jobName);
    if (!health.healthy) {
      const hours = Math.round(this.options.staleAfterMs / 360_000) / 10;
      const incident = await openIncident(this.options.sql, {
        key: this.staleKey,
        severity: 'critical',
        summary: `${this.jobName}: no successful run for more than ${hours} h`,
        details: { reason: health.reason, lastSuccessAt: health.lastSuccessAt, lastFailureAt: health.lastFailureAt, lastFailureError: health.lastFailureError },
      });
      if (incident) {
        await this.send(incident, 'alert', {
          subject: incident.summary,
          severity: 'critical',
          incidentKey: incident.incidentKey,
          text: [
            `No run of ${this.jobName} has succeeded within the last ${hours} hours: ${health.reason}.`,
            `Last success: ${health.lastSuccessAt?.toISOString() ?? 'never'}.`,
            `Last failure: ${health.lastFailureAt ? `${health.lastFailureAt.toISOString()} — ${health.lastFailureError}` : 'none'}.`,
            health.runningSince ? `A run marked running since ${health.runningSince.toISOString()}.` : '',
            'Overdue installments are not being flipped. Check the scheduler (pg_cron / pg_net / the Node service) — runbook: docs/operations.md, "No run happened".',
          ].filter(Boolean).join('\n'),
        });
      }
    } else {
      await this.resolve(this.staleKey, health.reason);
    }
    return health;
  }

  /** openIncident, or — when the database cannot be reached — an incident kept in memory. */
  private async open(input: { key: string; severity: 'critical' | 'warning'; summary: string; details: Record<string, unknown> }): Promise<Incident | null> {
    try {
      const incident = await openIncident(this.options.sql, input);
      if (incident && this.unrecorded.delete(input.key)) {
        this.logger.info('incident recorded now that the database is back; it was alerted already', { incidentKey: input.key });
        return null;
      }
      return incident;
    } catch (error) {
      if (!isTransient(error)) throw error;
      if (this.unrecorded.has(input.key)) return null;
      const incident: Incident = { id: '', incidentKey: input.key, severity: input.severity, summary: input.summary, details: input.details, openedAt: new Date(), resolvedAt: null, occurrences: 1 };
      this.unrecorded.set(input.key, incident);
      this.logger.warn('database unreachable: alerting without recording the incident', { incidentKey: input.key, error: (error as Error).message });
      return incident;
    }
  }

  private async openFailed(run: { jobId: string | null; error: string; code: string | null; attempts: number | null }): Promise<void> {
    const incident = await this.open({
      key: this.failedKey,
      severity: 'critical',
      summary: `${this.jobName} failed`,
      details: run,
    });
    if (!incident) {
      this.logger.info('run failed again; its incident is already open, no new alert', { incidentKey: this.failedKey, jobId: run.jobId });
      return;
    }
    await this.send(incident, 'alert', {
      subject: `${this.jobName} failed (run ${run.jobId ?? 'without a jobs_log row'})`,
      severity: 'critical',
      incidentKey: incident.incidentKey,
      text: [
        `Run ${run.jobId ?? '(none: the database was unreachable before the run log row was written)'} of ${this.jobName} failed after ${run.attempts ?? '?'} attempt(s).`,
        `Error: ${run.error}${run.code ? ` (SQLSTATE/code ${run.code})` : ''}`,
        'Further failures are not alerted until a run succeeds; you will get a recovery message then.',
        'Runbook: docs/operations.md, "A run failed".',
      ].join('\n'),
    });
  }

  private async resolveAll(why: string): Promise<void> {
    await this.resolve(this.failedKey, why);
    await this.resolve(this.staleKey, why);
  }

  private async resolve(key: string, why: string): Promise<void> {
    const recorded = await resolveIncident(this.options.sql, key);
    const unrecorded = this.unrecorded.get(key);
    this.unrecorded.delete(key);
    const incident = recorded ?? unrecorded;
    if (!incident) return;
    const minutes = Math.round((Date.now() - incident.openedAt.getTime()) / 60_000);
    await this.send(incident, 'recovery', {
      subject: `Recovered: ${incident.summary}`,
      severity: 'resolved',
      incidentKey: incident.incidentKey,
      text: `${this.jobName} is healthy again: ${why}. The incident opened at ${incident.openedAt.toISOString()} (${minutes} min ago, ${incident.occurrences} occurrence(s)) is resolved.`,
    });
  }

  private async send(incident: Incident, kind: 'alert' | 'recovery', alert: Alert): Promise<void> {
    const { channels, retryDelaysMs, sql } = this.options;
    if (channels.length === 0) {
      this.logger.warn('alert not delivered: no alert channel configured (set ALERT_WEBHOOK_URL and/or SMTP_URL + ALERT_EMAIL_TO)', {
        incidentKey: incident.incidentKey,
        kind,
        subject: alert.subject,
      });
      return;
    }
    await Promise.all(
      channels.map(async (channel) => {
        const outcome = await deliverWithRetry(channel, alert, retryDelaysMs);
        this.options.onDelivery?.(outcome, kind);
        const fields = { incidentKey: incident.incidentKey, kind, channel: channel.name, attempts: outcome.attempts, subject: alert.subject };
        if (outcome.status === 'delivered') this.logger.info('alert delivered', fields);
        else this.logger.error('alert delivery failed after retries', { ...fields, error: outcome.error });
        if (incident.id === '') return; // an incident the database could not record (see open())
        try {
          await recordDelivery(sql, { incidentId: incident.id, kind, subject: alert.subject, outcome });
        } catch (error) {
          this.logger.error('could not record alert delivery', { ...fields, error: (error as Error).message });
        }
      }),
    );
  }
}
