// Demo agencies for the embedded quick start (the data itself is in demo-seed.sql).
//
// Seeds only a database with no agency at all: a database someone has put their own data in,
// or one seeded on an earlier start, is left exactly as it is.
import { readFile } from 'node:fs/promises';
import type { Sql } from './connect.ts';

/** Arbitrary constant; serialises two seeders so the "no agency yet" check cannot race. */
export const DEMO_SEED_LOCK_KEY = 727_003;

const demoSeedFile = new URL('./demo-seed.sql', import.meta.url);

export type DemoSeedResult =
  | { seeded: true; agencies: number; installments: number }
  | { seeded: false; reason: 'agencies already exist' };

export async function seedDemoData(sql: Sql): Promise<DemoSeedResult> {
  const seedSql = await readFile(demoSeedFile, 'utf8');
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${DEMO_SEED_LOCK_KEY})`;
    const [{ exists }] = await tx`select exists (select 1 from public.agencies) as exists`;
    if (exists) return { seeded: false, reason: 'agencies already exist' } as const;
    await tx.unsafe(seedSql);
    const [counts] = await tx`
      select (select count(*) from public.agencies)::int as agencies,
             (select count(*) from public.installments)::int as installments`;
    return { seeded: true, agencies: counts!.agencies as number, installments: counts!.installments as number } as const;
  }) as Promise<DemoSeedResult>;
}
