// The one runner behind every entry point (HTTP, CLI, the built-in scheduler).
//
//   lock ── one run at a time across processes and hosts: a session advisory lock held on a
//           reserved connection for the whole run (the in-database pg_cron job takes the same);
//   log  ── a `running` jobs_log row is committed before any work, so a run is visible while it
//           happens and a dead process leaves evidence; it is closed as success in the SAME
//           transaction as the status changes (so the count can never be lost or doubled), or as
//           failed with every attempt;
//   retry── transient failures (see transient.ts) are retried after retryDelaysMs; the database
//           function is all-or-nothing and idempotent, so a retry can never double-apply.
import type postgres from 'postgres';
import type { Sql } from '../db/connect.ts';
import { silentLogger, type Logger } from '../log.ts';
import * as q from './queries.ts';
import { classify } from './transient.ts';

export const JOB_NAME = 'update-installment-statuses';

export interface AgencyResult {
  agencyId: string;
  updatedCount: number;
  transitions: Record<string, number>;
}

export interface AttemptError {
  attempt: number;
  at: string;
  error: string;
  code?: string;
  transient: boolean;
}

export type RunOutcome =
  | {
      kind: 'success';
      jobId: string | null;
      recordsUpdated: number;
      agencies: AgencyResult[];
      durationMs: number;
      dryRun: boolean;
      attempts: number;
      asOf: string;
      trigger: string;
    }
  | {
      kind: 'failed';
      jobId: string | null;
      error: string;
      code?: string;
      attempts: number;
      attemptErrors: AttemptError[];
      durationMs: number;
      trigger: string;
      /** A failed dry run changed nothing; alerts and metrics leave it out. */
      dryRun: boolean;
    }
  | { kind: 'busy'; trigger: string };

export interface RunOptions {
  /** Who asked: http, cli, schedule, pg_cron, dashboard… recorded in jobs_log.metadata. */
  trigger: string;
  /** The instant to judge at; defaults to the database's now(). */
  asOf?: Date;
  /** Report what would change; change nothing and write no jobs_log row. */
  dryRun?: boolean;
  /** Rows per transaction (batch mode); overrides the runner's batchSize. 0: one transaction. */
  batchSize?: number;
}

export interface RunnerOptions {
  retryDelaysMs?: number[];
  abandonAfterMs?: number;
  statementTimeoutMs?: number;
  /** Batch mode (JOB_BATCH_SIZE): flip at most this many rows per transaction, each batch
   *  atomic with its audit rows, one jobs_log row counting across them. 0: one transaction. */
  batchSize?: number;
  logger?: Logger;
  /** Injected for tests; defaults to setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

type Listener = (outcome: RunOutcome) => void | Promise<void>;

class LockTakenOver extends Error {
  code = 'LOCK_TAKEN_OVER';
  constructor() {
    super('another run took the job lock while this run was reconnecting; it is doing the work');
  }
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class JobRunner {
  readonly retryDelaysMs: number[];
  readonly abandonAfterMs: number;
  readonly statementTimeoutMs: number;
  readonly batchSize: number;
  private readonly logger: Logger;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly listeners: Listener[] = [];
  private inProcess = false;

  constructor(
    private readonly sql: Sql,
    options: RunnerOptions = {},
  ) {
    this.retryDelaysMs = options.retryDelaysMs ?? [1000, 2000, 4000];
    this.abandonAfterMs = options.abandonAfterMs ?? 15 * 60_000;
    this.statementTimeoutMs = options.statementTimeoutMs ?? 10 * 60_000;
    this.batchSize = options.batchSize ?? 0;
    this.logger = options.logger ?? silentLogger;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** Called after every run that was not `busy` (alerts and metrics hook in here). */
  onFinished(listener: Listener): void {
    this.listeners.push(listener);
  }

  async run(options: RunOptions): Promise<RunOutcome> {
    // Cheap first gate inside one process; the advisory lock is the real one across processes.
    if (!options.dryRun && this.inProcess) return { kind: 'busy', trigger: options.trigger };
    if (!options.dryRun) this.inProcess = true;
    try {
      const outcome = options.dryRun ? await this.preview(options) : await this.execute(options);
      if (outcome.kind !== 'busy') await this.notify(outcome);
      return outcome;
    } finally {
      if (!options.dryRun) this.inProcess = false;
    }
  }

  /** Closes `running` rows older than abandonAfterMs as failed; returns how many. */
  async reapAbandoned(): Promise<number> {
    const rows = await q.reapAbandoned(this.sql, JOB_NAME, this.abandonAfterMs);
    if (rows.length > 0) this.logger.warn('reaped abandoned runs', { jobIds: rows.map((r) => r.id) });
    return rows.length;
  }

  private async preview(options: RunOptions): Promise<RunOutcome> {
    const started = performance.now();
    const log = this.logger.child({ trigger: options.trigger, dryRun: true });
    const attemptErrors: AttemptError[] = [];
    for (let attempt = 1; ; attempt++) {
      try {
        const asOf = options.asOf ?? (await q.databaseNow(this.sql))[0]!.now;
        const rows = await q.previewStatuses(this.sql, asOf);
        const agencies = rows.map(toAgencyResult);
        const outcome: RunOutcome = {
          kind: 'success',
          jobId: null,
          recordsUpdated: agencies.reduce((n, a) => n + a.updatedCount, 0),
          agencies,
          durationMs: Math.round(performance.now() - started),
          dryRun: true,
          attempts: attempt,
          asOf: asOf.toISOString(),
          trigger: options.trigger,
        };
        log.info('dry run', { recordsUpdated: outcome.recordsUpdated, asOf: outcome.asOf });
        return outcome;
      } catch (error) {
        const retry = this.recordAttempt(attemptErrors, attempt, error, log);
        if (!retry) return this.failedOutcome(null, error, attemptErrors, started, options.trigger, true);
        await this.sleep(this.retryDelaysMs[attempt - 1]!);
      }
    }
  }

  private async execute(options: RunOptions): Promise<RunOutcome> {
    const started = performance.now();
    const attemptErrors: AttemptError[] = [];
    let conn: postgres.ReservedSql<Record<string, never>> | null = null;
    let connectionDied = false;
    let jobId: string | null = null;
    let log = this.logger.child({ trigger: options.trigger });
    const batchSize = options.batchSize ?? this.batchSize;
    // Batch mode: what the committed batches did, kept across attempts (a retry goes on from the
    // next batch; the function finds what is left).
    const progress: BatchProgress = { batchSize, batches: 0, recordsUpdated: 0, longestBatchMs: 0, byAgency: new Map(), asOf: null };

    // 'unlock': give the lock back and the connection to the pool. 'idle': the connection is
    // fine but holds no lock. 'dead': the connection is gone (and with it the lock); postgres.js
    // has already moved it to its closed queue, and releasing it would put a socket-less
    // connection back into the pool, so it is only forgotten.
    const dropConnection = async (state: 'unlock' | 'idle' | 'dead') => {
      if (!conn) return;
      const c = conn;
      conn = null;
      if (state === 'dead') return;
      if (state === 'unlock') await q.unlock(c, JOB_NAME).catch(() => {});
      c.release();
    };

    try {
      for (let attempt = 1; ; attempt++) {
        try {
          if (!conn) {
            // Never reserve() on a pool that cannot connect: in postgres.js a reserve() that
            // fails (connection refused, or the FATAL error a connection killed mid-query
            // replays on its next handshake) leaves its request queued, and the next connection
            // that opens is handed to that dead request — lost to the pool for good. After an
            // outage longer than the pool size's worth of retries no run (and on the embedded
            // pool of one, nothing at all) would ever get a connection again. Plain queries fail
            // cleanly, so they go first: one, or after a death one per pool slot, which also
            // absorbs the replayed error.
            const probe = (n: number) => Promise.allSettled(Array.from({ length: n }, () => q.probe(this.sql)));
            let probes = await probe(connectionDied ? poolSize(this.sql) : 1);
            // A replayed shutdown/termination error (57P0x) is gone once reported: ask again.
            if (connectionDied && !probes.some((p) => p.status === 'fulfilled') && probes.some((p) => p.status === 'rejected' && /^57P0/.test(classify(p.reason).code ?? ''))) {
              probes = await probe(1);
            }
            connectionDied = false;
            const failedProbe = probes.every((p) => p.status === 'rejected') ? (probes[0] as PromiseRejectedResult).reason : null;
            if (failedProbe) throw failedProbe;
            conn = await this.sql.reserve();
            const locked = (await q.tryLock(conn, JOB_NAME))[0]?.locked === true;
            if (!locked) {
              await dropConnection('idle');
              if (jobId === null) {
                log.info('another run is in progress; not starting a second one');
                return { kind: 'busy', trigger: options.trigger };
              }
              throw new LockTakenOver();
            }
            if (jobId === null) {
              const reaped = await q.reapAbandoned(conn, JOB_NAME, this.abandonAfterMs);
              if (reaped.length > 0) log.warn('reaped abandoned runs', { jobIds: reaped.map((r) => r.id) });
              const [row] = await q.insertRunning(conn, JOB_NAME, {
                trigger: options.trigger,
                ...(options.asOf ? { asOf: options.asOf.toISOString() } : {}),
              });
              jobId = row!.id;
              log = log.child({ runId: jobId });
              log.info('run started');
            }
          }

          const c = conn;
          const id = jobId!;
          const run = { trigger: options.trigger, attempt, attemptErrors, started, asOf: options.asOf };
          const result = batchSize > 0 ? await this.flipInBatches(c, id, progress, run) : await this.flipInOneTransaction(c, id, run);
          log.info('run succeeded', {
            recordsUpdated: result.recordsUpdated,
            agencies: result.agencies.length,
            attempts: attempt,
            durationMs: result.durationMs,
          });
          return {
            kind: 'success',
            jobId,
            recordsUpdated: result.recordsUpdated,
            agencies: result.agencies,
            durationMs: result.durationMs,
            dryRun: false,
            attempts: attempt,
            asOf: result.asOf.toISOString(),
            trigger: options.trigger,
          };
        } catch (error) {
          // A broken connection has lost the lock already; a healthy one keeps it across the wait.
          if (isConnectionError(error)) {
            connectionDied = true;
            await dropConnection('dead');
          }
          const retry = this.recordAttempt(attemptErrors, attempt, error, log);
          if (!retry) {
            const outcome = this.failedOutcome(jobId, error, attemptErrors, started, options.trigger, false);
            await this.recordFailure(conn, outcome, error, log, batchSize > 0 ? progress : null);
            return outcome;
          }
          await this.sleep(this.retryDelaysMs[attempt - 1]!);
        }
      }
    } finally {
      await dropConnection('unlock');
    }
  }

  /** Records an attempt's error; true when it should be retried. */
  private recordAttempt(into: AttemptError[], attempt: number, error: unknown, log: Logger): boolean {
    const { transient, code } = classify(error);
    const message = messageOf(error);
    into.push({ attempt, at: new Date().toISOString(), error: message, ...(code ? { code } : {}), transient });
    const retry = transient && attempt <= this.retryDelaysMs.length;
    log[retry ? 'warn' : 'error'](retry ? 'attempt failed; retrying' : 'attempt failed', {
      attempt,
      error: message,
      code,
      transient,
      ...(retry ? { retryInMs: this.retryDelaysMs[attempt - 1] } : {}),
    });
    return retry;
  }

  private failedOutcome(
    jobId: string | null,
    error: unknown,
    attemptErrors: AttemptError[],
    started: number,
    trigger: string,
    dryRun: boolean,
  ): RunOutcome & { kind: 'failed' } {
    const { code } = classify(error);
    return {
      kind: 'failed',
      jobId,
      error: messageOf(error),
      ...(code ? { code } : {}),
      attempts: attemptErrors.length,
      attemptErrors,
      durationMs: Math.round(performance.now() - started),
      trigger,
      dryRun,
    };
  }

  private async recordFailure(
    conn: postgres.ReservedSql<Record<string, never>> | null,
    outcome: RunOutcome & { kind: 'failed' },
    error: unknown,
    log: Logger,
    batches: BatchProgress | null,
  ): Promise<void> {
    if (!outcome.jobId) return; // nothing was logged: the database was never reached
    const metadata = {
      trigger: outcome.trigger,
      code: outcome.code ?? null,
      stack: error instanceof Error ? error.stack : undefined,
      attempts: outcome.attemptErrors,
      durationMs: outcome.durationMs,
      // The batches committed before the failure stay committed, each with its audit rows.
      ...(batches ? { batches: batchSummary(batches), recordsUpdatedInCommittedBatches: batches.recordsUpdated } : {}),
    };
    try {
      await q.markFailed(conn ?? this.sql, outcome.jobId, outcome.error, metadata);
    } catch (writeError) {
      // The row stays 'running' and is reaped as abandoned later; say so now.
      log.error('could not record the failure in jobs_log', { error: messageOf(writeError) });
    }
  }

  /** The whole run in one transaction, closed in it too: the changes and the success row
   *  commit together, or neither does. */
  private async flipInOneTransaction(c: postgres.ReservedSql<Record<string, never>>, id: string, run: RunContext): Promise<RunResult> {
    return inTransaction(c, async (tx) => {
      await q.prepareWorkTransaction(tx, id, this.statementTimeoutMs);
      const asOf = run.asOf ?? (await q.databaseNow(tx))[0]!.now;
      const rows = await q.updateStatuses(tx, asOf);
      const agencies = rows.map(toAgencyResult);
      const recordsUpdated = agencies.reduce((n, a) => n + a.updatedCount, 0);
      const durationMs = Math.round(performance.now() - run.started);
      await q.markSuccess(tx, id, recordsUpdated, {
        trigger: run.trigger,
        attempts: run.attempt,
        asOf: asOf.toISOString(),
        durationMs,
        agencies: rows.map((r) => ({
          agency_id: r.agency_id,
          updated_count: r.updated_count,
          transitions: r.transitions,
        })),
        attemptErrors: run.attemptErrors,
      });
      return { agencies, recordsUpdated, durationMs, asOf };
    });
  }

  /**
   * Batch mode: one transaction per batch of at most `batchSize` rows, until a batch flips
   * nothing, then one more that closes the jobs_log row with the totals. Row locks are held for
   * one batch; a run that stops half way has committed whole batches only, and the next run
   * goes on from there. The instant is fixed once, so every batch judges by the same clock.
   */
  private async flipInBatches(c: postgres.ReservedSql<Record<string, never>>, id: string, progress: BatchProgress, run: RunContext): Promise<RunResult> {
    const asOf = (progress.asOf ??= run.asOf ?? (await q.databaseNow(c))[0]!.now);
    for (;;) {
      const batchStarted = performance.now();
      const rows = await inTransaction(c, async (tx) => {
        await q.prepareWorkTransaction(tx, id, this.statementTimeoutMs);
        return q.updateStatusesBatch(tx, asOf, progress.batchSize);
      });
      const flipped = rows.reduce((n, r) => n + r.updated_count, 0);
      progress.batches++;
      progress.recordsUpdated += flipped;
      progress.longestBatchMs = Math.max(progress.longestBatchMs, performance.now() - batchStarted);
      for (const r of rows) progress.byAgency.set(r.agency_id, (progress.byAgency.get(r.agency_id) ?? 0) + r.updated_count);
      if (flipped === 0) break;
    }
    const agencies = [...progress.byAgency]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([agencyId, updatedCount]) => ({ agencyId, updatedCount, transitions: { pending_to_overdue: updatedCount } }));
    const durationMs = Math.round(performance.now() - run.started);
    await q.markSuccess(c, id, progress.recordsUpdated, {
      trigger: run.trigger,
      attempts: run.attempt,
      asOf: asOf.toISOString(),
      durationMs,
      agencies: agencies.map((a) => ({ agency_id: a.agencyId, updated_count: a.updatedCount, transitions: a.transitions })),
      batches: batchSummary(progress),
      attemptErrors: run.attemptErrors,
    });
    return { agencies, recordsUpdated: progress.recordsUpdated, durationMs, asOf };
  }

  private async notify(outcome: RunOutcome): Promise<void> {
    for (const listener of this.listeners) {
      try {
        await listener(outcome);
      } catch (error) {
        this.logger.error('run listener failed', { error: messageOf(error) });
      }
    }
  }
}

/**
 * A transaction on the reserved connection that holds the lock (postgres.js's sql.begin would
 * take another connection from the pool, outside the lock).
 */
async function inTransaction<T>(conn: postgres.ReservedSql<Record<string, never>>, fn: (tx: postgres.ReservedSql<Record<string, never>>) => Promise<T>): Promise<T> {
  await conn.unsafe('begin');
  try {
    const result = await fn(conn);
    await conn.unsafe('commit');
    return result;
  } catch (error) {
    // On a dead connection there is nothing to roll back (the server already did), and
    // postgres.js crashes the process if asked to write to a reserved connection's closed socket.
    if (!isConnectionError(error)) await conn.unsafe('rollback').catch(() => {});
    throw error;
  }
}

/** One attempt of a run, as the ways of writing it need it. */
interface RunContext {
  trigger: string;
  attempt: number;
  attemptErrors: AttemptError[];
  started: number;
  asOf?: Date;
}

interface RunResult {
  agencies: AgencyResult[];
  recordsUpdated: number;
  durationMs: number;
  asOf: Date;
}

interface BatchProgress {
  batchSize: number;
  batches: number;
  recordsUpdated: number;
  longestBatchMs: number;
  byAgency: Map<string, number>;
  asOf: Date | null;
}

function batchSummary(p: BatchProgress): { size: number; committed: number; longestMs: number } {
  return { size: p.batchSize, committed: p.batches, longestMs: Math.round(p.longestBatchMs) };
}

function poolSize(sql: Sql): number {
  const max = (sql as unknown as { options?: { max?: number } }).options?.max;
  return typeof max === 'number' && max > 0 ? max : 1;
}

function toAgencyResult(row: q.AgencyRow): AgencyResult {
  return { agencyId: row.agency_id, updatedCount: row.updated_count, transitions: row.transitions };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isConnectionError(error: unknown): boolean {
  const { code } = classify(error);
  return (
    code !== undefined &&
    (code.startsWith('08') || code.startsWith('57P') || code.startsWith('E') || code.startsWith('CONNECT') || code === 'LOCK_TAKEN_OVER')
  );
}
