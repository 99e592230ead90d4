// The performance benchmark of issue 6 (`npm run bench` runs it through bench/run.ts).
//
// Builds a dataset in a database of its own (overdue_bench_*, dropped at the end), then times,
// side by side and on the same rows: (a) public.update_installment_statuses, (b) the story's
// per-agency loop rebuilt in a bench-only schema (bench/sql/story_baseline.sql), and (c) the
// limit — the same row changes done with the least possible work. Scenarios: the backlog (first
// run), daily (the next day's run; measured twice, with the pages already in the WAL since the
// last checkpoint and right after a checkpoint) and nothing to do (a second run at once). Each
// timed repetition runs in a transaction that is rolled back, then vacuumed, so every repetition
// starts from the same state. Then, end to end, the real server over HTTP, and the batch mode on
// the same backlog. Prints a Markdown table and writes bench/results/<timestamp>.json.
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import { mkdir, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type Sql } from '../src/db/connect.ts';
import { migrate } from '../src/db/migrate.ts';
import type { BenchOptions } from './options.ts';
import * as q from './queries.ts';
import { measureHttp, type HttpResult } from './http.ts';
import {
  evaluateTargets,
  growthCurve,
  type BatchResult,
  type BenchResults,
  type Method,
  type MethodResult,
  type Scenario,
  type ScenarioResult,
} from './report.ts';
import { median, quantile, round } from './statistics.ts';

const OUR_TABLES = ['public.installments', 'public.audit_logs'];
const STORY_TABLES = ['story.installments', 'story.audit_logs'];
const BASELINE_INDEX = 'story.installments (status, student_due_date) — story_installments_status_due_idx';

function log(options: BenchOptions, line: string): void {
  if (!options.quiet) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function urlFor(adminUrl: string, database: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${database}`;
  return u.toString();
}

function shiftIso(iso: string, ms: number): string {
  return new Date(Date.parse(iso) + ms).toISOString();
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await work();
  return { ms: performance.now() - t0, value };
}

interface Repetition {
  ms: number;
  flips: number;
  fingerprint: string;
  walBytes: number;
}

/** The limit is run twice: as the planner plans it (a hash join over the whole table once many
 *  rows flip) and forced to one primary-key probe per row. The faster is "the limit". */
type RunMethod = Method | 'limitByKey';

/** One repetition of one method, in a transaction that is rolled back. */
async function repetition(db: Sql, method: RunMethod, asOf: string, limitFlips: number): Promise<Repetition> {
  const audit: q.AuditTable = method === 'story' ? 'story.audit_logs' : 'public.audit_logs';
  const since = await q.auditHighWater(db, audit);
  const lsn = await q.walPosition(db);
  await db.unsafe('begin');
  try {
    if (method === 'limitByKey') await q.forcePrimaryKeyProbes(db);
    const { ms, value: flips } = await timed(async () => {
      if (method === 'ours') return q.runOurs(db, asOf);
      if (method === 'story') return q.runStory(db, asOf);
      await q.runLimit(db);
      return limitFlips;
    });
    // Outside the timing: what exactly was changed, and how much WAL it wrote.
    const fingerprint = await q.auditFingerprint(db, audit, since);
    const walBytes = await q.walBytesSince(db, lsn);
    return { ms, flips, fingerprint, walBytes };
  } finally {
    await db.unsafe('rollback');
  }
}

async function measureScenario(
  db: Sql,
  options: BenchOptions,
  scenario: Scenario,
  asOf: string,
  repetitions: number,
  methods: RunMethod[],
): Promise<ScenarioResult> {
  const writes = scenario !== 'idle';
  // Other work on the machine shows in the timings; the load average goes into the results.
  const loadAverage = loadavg()[0]!;
  // CHECKPOINT before each timed write: the repetition then pays a full-page image for every
  // page it is first to change, as a once-a-day job does in production (nothing else touched
  // those pages since the last checkpoint). Without it, the vacuum after the previous
  // repetition has already logged the very same pages, and the figure is the cheaper case.
  const checkpointFirst = scenario === 'backlog' || scenario === 'dailyAfterCheckpoint';
  const limitFlips = methods.some((m) => m.startsWith('limit')) ? await q.prepareLimit(db, asOf) : 0;
  const samples = new Map<RunMethod, Repetition[]>(methods.map((m) => [m, []]));

  if (scenario !== 'backlog') {
    // Warm-up, untimed: plans prepared, zone files loaded in this backend, pages in cache.
    for (const m of methods) {
      await repetition(db, m, asOf, limitFlips);
      if (writes) await q.vacuum(db, m === 'story' ? STORY_TABLES : OUR_TABLES);
    }
  }
  // Writes: rotate the order so that no method always runs first, or right after another.
  // Nothing to do: each method's repetitions in a row after its own warm-up run, because the
  // story's loop sweeps shared_buffers (128 MB here) and the next method would otherwise time
  // reloading its index pages from the OS cache (measured: 5.5 ms instead of 3.2 ms for ours) —
  // a job that runs every minute finds its ~500 index pages in memory.
  const schedule: RunMethod[][] =
    scenario === 'idle'
      ? methods.flatMap((m) => [[m], ...Array.from({ length: repetitions }, () => [m])])
      : Array.from({ length: repetitions }, (_, r) => methods.map((_, i) => methods[(i + r) % methods.length]!));
  const warmUps = new Set<number>(scenario === 'idle' ? methods.map((_, k) => k * (repetitions + 1)) : []);
  for (let r = 0; r < schedule.length; r++) {
    const order = schedule[r]!;
    for (const m of order) {
      if (warmUps.has(r)) {
        await repetition(db, m, asOf, limitFlips);
        continue;
      }
      if (checkpointFirst) await q.checkpoint(db);
      const rep = await repetition(db, m, asOf, limitFlips);
      samples.get(m)!.push(rep);
      log(options, `${scenario} ${m} #${samples.get(m)!.length}: ${rep.ms.toFixed(2)} ms, ${rep.flips} rows`);
      // Roll-back leaves dead row versions; vacuum so the next repetition starts clean.
      if (writes) await q.vacuum(db, m === 'story' ? STORY_TABLES : OUR_TABLES);
    }
  }

  const measured = new Map<RunMethod, MethodResult>();
  for (const [m, reps] of samples) {
    measured.set(m, {
      samplesMs: reps.map((x) => round(x.ms, 3)),
      medianMs: round(median(reps.map((x) => x.ms)), 3),
      flips: reps[0]!.flips,
      walBytes: reps[0]!.walBytes,
    });
  }
  const methodResults: Partial<Record<Method, MethodResult>> = {};
  for (const m of ['ours', 'story'] as const) if (measured.has(m)) methodResults[m] = measured.get(m)!;
  const byPlanner = measured.get('limit');
  const byKey = measured.get('limitByKey');
  let limitPlans: ScenarioResult['limitPlans'] = null;
  // Which of the limit's two plans is "the limit": its median goes into the table, its samples
  // into the per-round ratios.
  let limitMethod: RunMethod | null = byPlanner ? 'limit' : byKey ? 'limitByKey' : null;
  if (byPlanner && byKey) {
    const chosen = byKey.medianMs < byPlanner.medianMs ? 'primaryKeyProbes' : 'plannerChoice';
    limitMethod = chosen === 'primaryKeyProbes' ? 'limitByKey' : 'limit';
    limitPlans = { plannerChoiceMs: byPlanner.medianMs, primaryKeyProbesMs: byKey.medianMs, chosen };
  }
  if (limitMethod) methodResults.limit = measured.get(limitMethod)!;
  // Rounds: the k-th sample of every method was taken in the k-th round of the rotation.
  const limitSamples = limitMethod ? samples.get(limitMethod) : undefined;
  const oursSamples = samples.get('ours');
  const byRound =
    oursSamples && limitSamples && scenario !== 'idle' && oursSamples.length === limitSamples.length && limitSamples.every((x) => x.ms > 0)
      ? oursSamples.map((x, k) => x.ms / limitSamples[k]!.ms)
      : null;
  const fingerprints = new Set([...samples.values()].flatMap((reps) => reps.map((x) => x.fingerprint)));
  const ratio = (a?: MethodResult, b?: MethodResult) => (a && b && b.medianMs > 0 ? round(a.medianMs / b.medianMs, 3) : null);
  return {
    scenario,
    asOf,
    repetitions,
    loadAverageAtStart: round(loadAverage, 2),
    flips: methodResults.ours?.flips ?? limitFlips,
    methods: methodResults,
    limitPlans,
    oursToLimit: ratio(methodResults.ours, methodResults.limit),
    oursToLimitByRound: byRound
      ? { median: round(median(byRound), 3), min: round(Math.min(...byRound), 3), max: round(Math.max(...byRound), 3) }
      : null,
    oursToStory: ratio(methodResults.ours, methodResults.story),
    storyToLimit: ratio(methodResults.story, methodResults.limit),
    sameChanges: fingerprints.size === 1,
  };
}

/** Commits a run of the given method (the state the next scenario starts from). */
async function commitRun(db: Sql, method: 'ours' | 'story', asOf: string): Promise<{ ms: number; flips: number; walBytes: number }> {
  const lsn = await q.walPosition(db);
  const { ms, value: flips } = await timed(() => (method === 'ours' ? q.runOurs(db, asOf) : q.runStory(db, asOf)));
  return { ms, flips, walBytes: await q.walBytesSince(db, lsn) };
}

async function measureBatches(db: Sql, options: BenchOptions, asOf: string, singleStatementMs: number | null): Promise<BatchResult | { skipped: string }> {
  if (options.batchSize === 0) return { skipped: 'skipped (--batch-size 0)' };
  if (!(await q.hasBatchFunction(db))) return { skipped: 'skipped: public.update_installment_statuses_batch is not in the migrations' };
  await q.resetToBeforeBacklog(db);
  await q.vacuumAnalyze(db, OUR_TABLES);
  await q.checkpoint(db);
  log(options, `batch mode: backlog in batches of ${options.batchSize}`);
  const durations: number[] = [];
  let flips = 0;
  const total = await timed(async () => {
    for (;;) {
      // Autocommit: each call is its own transaction, so its duration bounds every lock it takes.
      const { ms, value } = await timed(() => q.runOneBatch(db, asOf, options.batchSize));
      // As a caller does: until a batch flips nothing (a concurrent change can make a batch
      // short without the backlog being done). The last, empty batch is counted too.
      durations.push(ms);
      flips += value;
      if (value === 0) break;
    }
  });
  return {
    batchSize: options.batchSize,
    batches: durations.length,
    flips,
    totalMs: round(total.ms, 1),
    longestLockHoldMs: round(Math.max(...durations), 2),
    medianBatchMs: round(median(durations), 2),
    p95BatchMs: round(quantile(durations, 0.95), 2),
    singleStatementMs: singleStatementMs === null ? null : round(singleStatementMs, 1),
  };
}

async function machineFacts(db: Sql): Promise<Record<string, string | number>> {
  const pg = await q.serverFacts(db);
  const gib = (b: number) => `${(b / 2 ** 30).toFixed(1)} GiB`;
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memory: gib(totalmem()),
    freeMemoryAtStart: gib(freemem()),
    loadAverageAtStart: loadavg().map((l) => l.toFixed(2)).join(' '),
    node: process.version,
    postgres: pg.server_version!.split(' ')[0]!,
    ...pg,
  };
}

export async function runBench(options: BenchOptions): Promise<{ results: BenchResults; file: string }> {
  const startedAt = new Date().toISOString();
  const stamp = startedAt.replace(/[:.]/g, '-').replace(/-\d{3}Z$/, 'Z');
  const dbName = `overdue_bench_${stamp.replace(/[^0-9]/g, '').slice(0, 14)}_${process.pid}`;
  const admin = connect(options.adminUrl, { max: 1, applicationName: 'overdue-bench' });
  await admin.unsafe(`create database "${dbName}"`);
  const url = urlFor(options.adminUrl, dbName);
  // One connection for everything: temp tables, transactions and timings stay on one backend.
  const db = connect(url, { max: 1, applicationName: 'overdue-bench', connectTimeoutSeconds: 30 });
  const full = options.mode === 'full';
  const methods: RunMethod[] = full ? ['limit', 'ours', 'story', 'limitByKey'] : ['limit', 'ours', 'limitByKey'];
  try {
    log(options, `database ${dbName}: migrating`);
    await migrate(db);
    await q.loadSqlFile(db, 'dataset.sql');
    if (full) await q.loadSqlFile(db, 'story_baseline.sql');
    const machine = await machineFacts(db);

    const now = await q.datasetNow(db);
    log(options, `building ${options.installments.toLocaleString('en-US')} installments (set-based, in SQL)`);
    // The instants: the backlog run a day before "now", the daily run at "now", the second run
    // a second later (no cutoff falls on :30 past a minute, so it has nothing to do).
    const backlogAt = shiftIso(now, -86_400_000);
    const dailyAt = now;
    const idleAt = shiftIso(now, 1000);
    const build = await timed(() => q.buildDataset(db, options, now, full ? null : backlogAt));
    const bad = await q.inconsistentInstallments(db);
    if (bad !== 0) throw new Error(`dataset is inconsistent: ${bad} installments disagree with their plan (agency or plan_active)`);
    await q.vacuumAnalyze(db, ['public.agencies', 'public.payment_plans', ...OUR_TABLES]);
    let storyCopyMs = 0;
    if (full) {
      log(options, "copying the dataset into the story's schema");
      storyCopyMs = (await timed(() => q.copyDatasetForStory(db))).ms;
      await q.vacuumAnalyze(db, ['story.agencies', 'story.payment_plans', ...STORY_TABLES]);
    }
    const sizes = await q.tableSizes(db);
    const onePassThreshold = await q.onePassThreshold(db);

    const scenarios: ScenarioResult[] = [];
    if (full) {
      log(options, 'scenario: backlog');
      scenarios.push(await measureScenario(db, options, 'backlog', backlogAt, options.backlogRepetitions, methods));
    }
    // Growth mode generated the rows already in this state.
    let committedBacklog = { ms: 0, flips: 0, walBytes: 0 };
    if (full) {
      log(options, 'committing the backlog run');
      await q.checkpoint(db);
      committedBacklog = await commitRun(db, 'ours', backlogAt);
      await commitRun(db, 'story', backlogAt);
      await q.vacuumAnalyze(db, [...OUR_TABLES, ...STORY_TABLES]);
    }

    log(options, 'scenario: daily');
    scenarios.push(await measureScenario(db, options, 'daily', dailyAt, options.dailyRepetitions, methods));
    scenarios.push(await measureScenario(db, options, 'dailyAfterCheckpoint', dailyAt, options.dailyRepetitions, methods));
    await commitRun(db, 'ours', dailyAt);
    if (full) await commitRun(db, 'story', dailyAt);
    await q.vacuumAnalyze(db, full ? [...OUR_TABLES, ...STORY_TABLES] : OUR_TABLES);

    log(options, 'scenario: nothing to do');
    scenarios.push(await measureScenario(db, options, 'idle', idleAt, options.idleRepetitions, methods));

    let http: HttpResult = { skipped: 'skipped (--http false)' };
    if (full && options.http) {
      log(options, 'end to end over HTTP');
      http = await measureHttp(url, { requests: options.httpRequests, rejectSeconds: options.httpRejectSeconds }, (l) => log(options, l));
    } else if (!full) {
      http = { skipped: 'skipped (growth mode)' };
    }

    const batch = full
      ? await measureBatches(db, options, backlogAt, committedBacklog.ms)
      : ({ skipped: 'skipped (growth mode)' } as const);

    const partial = {
      schema: 'overdue-bench/1' as const,
      startedAt,
      finishedAt: new Date().toISOString(),
      mode: options.mode,
      machine,
      dataset: {
        ...build.value,
        inactivePlanShare: options.inactivePlanShare,
        now,
        buildMs: Math.round(build.ms),
        storyCopyMs: Math.round(storyCopyMs),
        onePassThreshold,
        ...Object.fromEntries(Object.entries(sizes).map(([k, v]) => [`${k}Bytes`, v])),
      },
      scenarios,
      committedBacklog: { flips: committedBacklog.flips, ms: round(committedBacklog.ms, 1), walBytes: committedBacklog.walBytes },
      batch,
      http,
      baselineIndex: BASELINE_INDEX,
    };
    const file = `${stamp}.json`;
    const growth = await growthCurve(options.resultsDir, partial, file);
    const withGrowth = { ...partial, growth };
    const results: BenchResults = { ...withGrowth, targets: evaluateTargets(withGrowth) };

    await mkdir(options.resultsDir, { recursive: true });
    const json = `${JSON.stringify(results, null, 2)}\n`;
    // Written whole under a temporary name first: a reader never sees half a file. latest.json
    // is the latest full run (what the README quotes); growth runs only add their own file.
    for (const name of full ? [file, 'latest.json'] : [file]) {
      const tmp = join(options.resultsDir, `${name}.tmp`);
      await writeFile(tmp, json);
      await rename(tmp, join(options.resultsDir, name));
    }
    return { results, file: join(options.resultsDir, file) };
  } finally {
    await db.end({ timeout: 5 });
    if (options.keepDatabase) {
      log(options, `kept database ${dbName} (${url})`);
    } else {
      await admin.unsafe(`drop database if exists "${dbName}" with (force)`);
    }
    await admin.end({ timeout: 5 });
  }
}
