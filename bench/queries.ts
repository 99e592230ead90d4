// Every SQL statement the benchmark sends, by name. The dataset generator and the story's
// baseline are SQL files (bench/sql/); the statements timed here are kept bare on purpose.
import { readFile } from 'node:fs/promises';
import type { Sql } from '../src/db/connect.ts';

export async function loadSqlFile(sql: Sql, name: string): Promise<void> {
  await sql.unsafe(await readFile(new URL(`./sql/${name}`, import.meta.url), 'utf8'));
}

export interface DatasetShape {
  installments: number;
  plans: number;
  agencies: number;
  zones: number;
  inactivePlanShare: number;
}

/** `overdueBefore`: generate the state after a first run at that instant (growth mode). */
export async function buildDataset(sql: Sql, shape: DatasetShape, now: string, overdueBefore: string | null): Promise<Record<string, number>> {
  const [row] = await sql`
    select bench.build_dataset(${shape.installments}, ${shape.plans}, ${shape.agencies}, ${shape.zones},
                               ${shape.inactivePlanShare}, ${now}::timestamptz, ${overdueBefore}::timestamptz) as info`;
  return row!.info as Record<string, number>;
}

/** Installments whose agency or plan_active disagrees with their plan (must be 0). */
export async function inconsistentInstallments(sql: Sql): Promise<number> {
  const [row] = await sql`select bench.check_dataset()::int as n`;
  return row!.n as number;
}

export async function copyDatasetForStory(sql: Sql): Promise<void> {
  await sql`select story.copy_dataset()`;
}

export async function vacuumAnalyze(sql: Sql, tables: string[]): Promise<void> {
  await sql.unsafe(`vacuum (analyze) ${tables.join(', ')}`);
}

/** After a rolled-back repetition: removes its dead row versions and their index entries. */
export async function vacuum(sql: Sql, tables: string[]): Promise<void> {
  await sql.unsafe(`vacuum (index_cleanup on) ${tables.join(', ')}`);
}

/** Before a timed write: every repetition then starts a checkpoint cycle and pays the same
 *  full-page images, instead of whichever share the last timed checkpoint left it. */
export async function checkpoint(sql: Sql): Promise<void> {
  await sql`checkpoint`;
}

/** A time the dataset is built around: on a whole minute plus 30 s, a little in the past, so
 *  no cutoff (whole minutes in every current zone) falls on a measured instant. */
export async function datasetNow(sql: Sql): Promise<string> {
  const [row] = await sql`
    select to_char(date_trunc('minute', now()) - interval '2 minutes' + interval '30 seconds',
                   'YYYY-MM-DD"T"HH24:MI:SS"Z"') as now`;
  return row!.now as string;
}

// ---- the three methods ------------------------------------------------------------------

export interface RunRow {
  agency_id: string;
  updated_count: number;
}

/** (a) our function. */
export async function runOurs(sql: Sql, asOf: string): Promise<number> {
  const rows = await sql`select agency_id, updated_count from public.update_installment_statuses(${asOf}::timestamptz)`;
  return rows.reduce((n, r) => n + (r.updated_count as number), 0);
}

/** (b) the story's per-agency loop, on its own copy of the tables. */
export async function runStory(sql: Sql, asOf: string): Promise<number> {
  const rows = await sql`select agency_id, updated_count from story.update_installment_statuses(${asOf}::timestamptz)`;
  return rows.reduce((n, r) => n + (r.updated_count as number), 0);
}

/** (c), outside the timing: the ids that flip at asOf, by the rule, into a temp table. */
export async function prepareLimit(sql: Sql, asOf: string): Promise<number> {
  await sql`drop table if exists pg_temp.limit_flips`;
  await sql`
    create temp table limit_flips as
    select i.id, i.agency_id
      from public.installments i
      join public.agencies a on a.id = i.agency_id
     where i.status = 'pending'
       and i.plan_active
       and (i.student_due_date + a.overdue_cutoff_time) at time zone a.timezone < ${asOf}::timestamptz`;
  await sql`analyze pg_temp.limit_flips`;
  const [row] = await sql`select count(*)::int as n from pg_temp.limit_flips`;
  return row!.n as number;
}

/** (c), timed: a bare UPDATE by primary key of exactly those rows and a bare INSERT of as many
 *  audit rows — no join to agencies or plans, no rule. */
export async function runLimit(sql: Sql): Promise<void> {
  await sql`
    with flipped as (
      update public.installments i
         set status = 'overdue', updated_at = now()
        from pg_temp.limit_flips f
       where i.id = f.id
    )
    insert into public.audit_logs (agency_id, installment_id, action, old_status, new_status, actor_id)
    select f.agency_id, f.id, 'status_change', 'pending', 'overdue', null
      from pg_temp.limit_flips f`;
}

/** Inside the limit's transaction, before the timing: one primary-key probe per flipped row
 *  instead of the hash join the planner picks once many rows flip. */
export async function forcePrimaryKeyProbes(sql: Sql): Promise<void> {
  await sql`select set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)`;
}

// ---- checks that the three methods made the same changes --------------------------------

export type AuditTable = 'public.audit_logs' | 'story.audit_logs';

export async function auditHighWater(sql: Sql, table: AuditTable): Promise<string> {
  const [row] = await sql.unsafe(`select coalesce(max(id), 0)::text as id from ${table}`);
  return row!.id as string;
}

/** Count and an order-independent checksum of the installments audited after `since`. */
export async function auditFingerprint(sql: Sql, table: AuditTable, since: string): Promise<string> {
  const [row] = await sql.unsafe(
    `select count(*) || ':' || coalesce(sum(hashtext(installment_id::text)::bigint), 0) as f from ${table} where id > $1`,
    [since],
  );
  return row!.f as string;
}

// ---- batch mode ------------------------------------------------------------------------

export async function hasBatchFunction(sql: Sql): Promise<boolean> {
  const [row] = await sql`
    select to_regprocedure('public.update_installment_statuses_batch(timestamptz, integer)') is not null as present`;
  return row!.present as boolean;
}

/** Puts back the state before any run: the dataset had no overdue rows, the bench made them all. */
export async function resetToBeforeBacklog(sql: Sql): Promise<void> {
  await sql`update public.installments set status = 'pending' where status = 'overdue'`;
  await sql`truncate public.audit_logs`;
}

export async function runOneBatch(sql: Sql, asOf: string, batchSize: number): Promise<number> {
  const rows = await sql`
    select agency_id, updated_count from public.update_installment_statuses_batch(${asOf}::timestamptz, ${batchSize})`;
  return rows.reduce((n, r) => n + (r.updated_count as number), 0);
}

// ---- the machine and the tables ------------------------------------------------------------

/** From how many rows due our function takes one pass over the table instead of the index. */
export async function onePassThreshold(sql: Sql): Promise<number> {
  const [row] = await sql`select public.overdue_one_pass_threshold()::bigint as n`;
  return Number(row!.n);
}

export async function serverFacts(sql: Sql): Promise<Record<string, string>> {
  const [row] = await sql`
    select current_setting('server_version') as server_version,
           current_setting('shared_buffers') as shared_buffers,
           current_setting('work_mem') as work_mem,
           current_setting('max_wal_size') as max_wal_size,
           current_setting('synchronous_commit') as synchronous_commit,
           current_setting('wal_level') as wal_level,
           current_setting('jit') as jit`;
  return row as unknown as Record<string, string>;
}

export async function tableSizes(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql`
    select c.relname as name, pg_total_relation_size(c.oid)::bigint as bytes
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = 'public' and c.relname in ('installments', 'payment_plans', 'agencies', 'audit_logs')`;
  return Object.fromEntries(rows.map((r) => [r.name as string, Number(r.bytes)]));
}

export async function walPosition(sql: Sql): Promise<string> {
  const [row] = await sql`select pg_current_wal_insert_lsn()::text as lsn`;
  return row!.lsn as string;
}

export async function walBytesSince(sql: Sql, lsn: string): Promise<number> {
  const [row] = await sql`select pg_wal_lsn_diff(pg_current_wal_insert_lsn(), ${lsn}::pg_lsn)::bigint as bytes`;
  return Number(row!.bytes);
}
