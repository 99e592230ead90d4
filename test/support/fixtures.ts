// Small data builders for tests: agencies with plans and installments, set-based.
import type { Sql } from '../../src/db/connect.ts';

export interface AgencyFixture {
  id: string;
  planId: string;
}

export async function createAgency(sql: Sql, name: string, timezone = 'Australia/Brisbane', cutoff = '17:00'): Promise<AgencyFixture> {
  const [agency] = await sql`insert into agencies (name, timezone, overdue_cutoff_time) values (${name}, ${timezone}, ${cutoff}) returning id`;
  const [plan] = await sql`insert into payment_plans (agency_id) values (${agency!.id}) returning id`;
  return { id: agency!.id as string, planId: plan!.id as string };
}

/** Adds installments due `daysFromToday` (agency-local calendar is irrelevant: these are far from the cutoff). */
export async function addInstallments(sql: Sql, a: AgencyFixture, dueDates: string[], status = 'pending'): Promise<string[]> {
  const rows = await sql`
    insert into installments (payment_plan_id, agency_id, amount, student_due_date, status)
    select ${a.planId}, ${a.id}, 100, d::date, ${status} from unnest(${dueDates}::text[]) as d
    returning id`;
  return rows.map((r) => r.id as string);
}

export function daysAgo(n: number): string {
  return new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
}

export async function statusCounts(sql: Sql): Promise<Record<string, number>> {
  const rows = await sql`select status, count(*)::int as n from installments group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}
