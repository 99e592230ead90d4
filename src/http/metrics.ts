// Prometheus metrics (prom-client, a Registry of our own so nothing global leaks in).
//
// Counted in this process, from runner.onFinished and the alert monitor:
//   installment_status_job_runs_total{status}, installment_status_job_duration_seconds,
//   installment_status_job_records_updated_total, installment_status_alert_deliveries_total.
// Read from the database at scrape time, so they are right after a restart and include runs made
// by pg_cron, the edge function or another replica:
//   installment_status_job_last_success_timestamp_seconds, installment_status_job_healthy,
//   installment_status_installments_overdue.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Sql } from '../db/connect.ts';
import type { DeliveryOutcome } from '../alerts/deliver.ts';
import type { FinishedRun } from '../alerts/monitor.ts';
import { MONITORED_JOB_NAME } from '../alerts/job-health.ts';
import * as q from '../web/queries.ts';

export interface MetricsOptions {
  sql: Sql;
  staleAfterMs: number;
  /** The overdue count is O(overdue rows); scrapes within this window reuse the last value. */
  overdueCountCacheMs?: number;
  jobName?: string;
}

export class JobMetrics {
  readonly registry = new Registry();
  private readonly runs: Counter<'status'>;
  private readonly duration: Histogram<'status'>;
  private readonly records: Counter;
  private readonly deliveries: Counter<'channel' | 'outcome'>;
  private overdueCache: { value: number; at: number } | null = null;

  constructor(private readonly options: MetricsOptions) {
    const registers = [this.registry];
    const jobName = options.jobName ?? MONITORED_JOB_NAME;
    this.runs = new Counter({
      name: 'installment_status_job_runs_total',
      help: 'Runs of the installment status job finished by this process, by status.',
      labelNames: ['status'],
      registers,
    });
    this.runs.labels('success').inc(0);
    this.runs.labels('failed').inc(0);
    this.duration = new Histogram({
      name: 'installment_status_job_duration_seconds',
      help: 'Duration of runs of the installment status job, by status.',
      labelNames: ['status'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.records = new Counter({
      name: 'installment_status_job_records_updated_total',
      help: 'Installments whose status the job changed (runs finished by this process).',
      registers,
    });
    this.deliveries = new Counter({
      name: 'installment_status_alert_deliveries_total',
      help: 'Alert and recovery messages by channel and outcome (delivered or failed after retries).',
      labelNames: ['channel', 'outcome'],
      registers,
    });

    const sql = options.sql;
    const lastSuccess = new Gauge({
      name: 'installment_status_job_last_success_timestamp_seconds',
      help: 'Unix time of the latest successful run in jobs_log (any runner); 0 when none.',
      registers,
      collect: async () => {
        const [row] = await q.lastSuccessEpoch(sql, jobName);
        lastSuccess.set(row?.epoch ?? 0);
      },
    });
    const healthy = new Gauge({
      name: 'installment_status_job_healthy',
      help: '1 while the latest success is younger than ALERT_STALE_AFTER_HOURS, else 0 (the dead-man switch).',
      registers,
      collect: async () => {
        const [row] = await q.jobHealthy(sql, options.staleAfterMs, jobName);
        healthy.set(row?.healthy ? 1 : 0);
      },
    });
    const overdue = new Gauge({
      name: 'installment_status_installments_overdue',
      help: 'Installments currently in status overdue (cached for a short while between scrapes).',
      registers,
      collect: async () => {
        const now = Date.now();
        if (!this.overdueCache || now - this.overdueCache.at > (options.overdueCountCacheMs ?? 30_000)) {
          const [row] = await q.countOverdue(sql);
          this.overdueCache = { value: Number(row!.count), at: now };
        }
        overdue.set(this.overdueCache.value);
      },
    });
  }

  /** For runner.onFinished. Dry runs change nothing and are not counted. */
  observeRun(outcome: FinishedRun & { durationMs?: number }): void {
    if (outcome.kind === 'busy' || outcome.dryRun) return;
    this.runs.labels(outcome.kind).inc();
    if (typeof outcome.durationMs === 'number') this.duration.labels(outcome.kind).observe(outcome.durationMs / 1000);
    if (outcome.kind === 'success') this.records.inc(outcome.recordsUpdated);
  }

  observeDelivery(outcome: DeliveryOutcome): void {
    this.deliveries.labels(outcome.channel, outcome.status).inc();
  }

  /** Prometheus text; a database that cannot be read fails the scrape (500), which alerts too. */
  async render(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType };
  }
}
