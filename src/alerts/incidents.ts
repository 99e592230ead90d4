// The SQL of alerting: incidents opened and resolved with conditional statements so that every
// replica agrees, and the record of each delivery.
import type { Sql } from '../db/connect.ts';
import type { DeliveryOutcome } from './deliver.ts';

export interface Incident {
  id: string;
  incidentKey: string;
  severity: 'critical' | 'warning';
  summary: string;
  details: Record<string, unknown>;
  openedAt: Date;
  resolvedAt: Date | null;
  occurrences: number;
}

function toIncident(row: Record<string, unknown>): Incident {
  return {
    id: row.id as string,
    incidentKey: row.incident_key as string,
    severity: row.severity as Incident['severity'],
    summary: row.summary as string,
    details: row.details as Record<string, unknown>,
    openedAt: row.opened_at as Date,
    resolvedAt: (row.resolved_at as Date | null) ?? null,
    occurrences: row.occurrences as number,
  };
}

/**
 * Opens the incident unless one with this key is already open. Returns the new incident when this
 * call opened it (the caller sends the alert), null when it was already open (then only
 * last_seen_at and occurrences move).
 */
export async function openIncident(
  sql: Sql,
  input: { key: string; severity: 'critical' | 'warning'; summary: string; details: Record<string, unknown> },
): Promise<Incident | null> {
  const [opened] = await sql`
    insert into public.alert_incidents (incident_key, severity, summary, details)
    values (${input.key}, ${input.severity}, ${input.summary}, ${sql.json(input.details as never)})
    on conflict (incident_key) where resolved_at is null do nothing
    returning *`;
  if (opened) return toIncident(opened);
  await sql`
    update public.alert_incidents
       set last_seen_at = now(), occurrences = occurrences + 1
     where incident_key = ${input.key} and resolved_at is null`;
  return null;
}

/** Resolves the open incident with this key; returns it when this call resolved it. */
export async function resolveIncident(sql: Sql, key: string): Promise<Incident | null> {
  const [resolved] = await sql`
    update public.alert_incidents
       set resolved_at = now()
     where incident_key = ${key} and resolved_at is null
    returning *`;
  return resolved ? toIncident(resolved) : null;
}

export async function openIncidents(sql: Sql): Promise<Incident[]> {
  const rows = await sql`
    select * from public.alert_incidents where resolved_at is null order by opened_at`;
  return rows.map(toIncident);
}

export async function recordDelivery(
  sql: Sql,
  input: { incidentId: string; kind: 'alert' | 'recovery'; subject: string; outcome: DeliveryOutcome },
): Promise<void> {
  await sql`
    insert into public.alert_deliveries (incident_id, kind, channel, status, attempts, subject, error)
    values (${input.incidentId}, ${input.kind}, ${input.outcome.channel}, ${input.outcome.status},
            ${input.outcome.attempts}, ${input.subject}, ${input.outcome.error})`;
}
