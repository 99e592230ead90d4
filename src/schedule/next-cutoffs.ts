// The next cutoff instant of every agency (`npx overdue next`): when its installments due on a
// date stop being on time. PostgreSQL computes the instants (public.next_cutoff_instants), with
// the same expression as the rule, so DST days come out exactly as the job will judge them.
import type { Sql } from '../db/connect.ts';
import * as q from './queries.ts';

export interface NextCutoff {
  agencyId: string;
  agencyName: string;
  timezone: string;
  cutoffTime: string;
  /** The due date whose cutoff this is. */
  dueDate: string;
  /** The instant, UTC (ISO-8601). */
  cutoffAt: string;
  /** The agency's wall-clock time at that instant. */
  cutoffLocal: string;
  /** Pending installments of active plans due on dueDate: what will flip just after cutoffAt. */
  pendingDue: number;
}

export async function nextCutoffs(sql: Sql, asOf: Date | null = null): Promise<NextCutoff[]> {
  const rows = await q.nextCutoffInstants(sql, asOf);
  return rows.map((r) => ({
    agencyId: r.agency_id,
    agencyName: r.agency_name,
    timezone: r.timezone,
    cutoffTime: r.overdue_cutoff_time,
    dueDate: r.due_date,
    cutoffAt: r.cutoff_at.toISOString(),
    cutoffLocal: r.cutoff_local,
    pendingDue: Number(r.pending_due),
  }));
}

/** A readable table, soonest first. */
export function formatNextCutoffs(rows: NextCutoff[], asOf: Date): string[] {
  if (rows.length === 0) return [`no agencies yet (as of ${asOf.toISOString()})`];
  const head = ['next cutoff (UTC)', 'local time', 'zone', 'in', 'due date', 'pending', 'agency'];
  const table = rows.map((r) => [
    r.cutoffAt.replace('T', ' ').replace(/\.\d+Z$|Z$/, ''),
    r.cutoffLocal,
    r.timezone,
    humanDuration(Date.parse(r.cutoffAt) - asOf.getTime()),
    r.dueDate,
    String(r.pendingDue),
    r.agencyName,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [`as of ${asOf.toISOString()}`, line(head), ...table.map(line)];
}

function humanDuration(ms: number): string {
  const minutes = Math.max(0, Math.ceil(ms / 60_000));
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : `${m}m`;
}
