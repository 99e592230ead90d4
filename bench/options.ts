// The benchmark's knobs: flags (`npm run bench -- --installments 200000`) win over environment
// variables (BENCH_INSTALLMENTS=200000), which win over the defaults of issue 6. Parsed and
// validated once; a bad value stops the run with the flag, the value and what is expected.

export interface BenchOptions {
  /** Multiplies the default installments and plans (BENCH_SCALE=10 is the growth run). */
  scale: number;
  installments: number;
  plans: number;
  agencies: number;
  zones: number;
  /** Share of plans that are completed or cancelled and keep pending installments. */
  inactivePlanShare: number;
  /** `full`: every scenario and method. `growth`: only what the growth curve needs (our
   *  function and the limit, daily and nothing-to-do), for the large scales. */
  mode: 'full' | 'growth';
  backlogRepetitions: number;
  dailyRepetitions: number;
  idleRepetitions: number;
  /** Rows per transaction for the batch-mode measurement; 0 skips it. */
  batchSize: number;
  /** End-to-end HTTP measurement (starts `src/server.ts` against the bench database). */
  http: boolean;
  httpRequests: number;
  /** Seconds autocannon hammers the endpoint with a rejected key. */
  httpRejectSeconds: number;
  /** Server that hosts the bench database (created there, dropped at the end). */
  adminUrl: string;
  /** Keep the bench database afterwards, for EXPLAIN by hand. */
  keepDatabase: boolean;
  /** Where the JSON goes (`<timestamp>.json` and `latest.json`). */
  resultsDir: string;
  /** Print progress lines on stderr. */
  quiet: boolean;
}

export class BenchOptionError extends Error {}

interface Spec {
  flag: string;
  env: string;
  kind: 'int' | 'number' | 'bool' | 'string';
  min?: number;
  max?: number;
}

const SPECS: Record<string, Spec> = {
  scale: { flag: '--scale', env: 'BENCH_SCALE', kind: 'number', min: 0.0001, max: 100 },
  installments: { flag: '--installments', env: 'BENCH_INSTALLMENTS', kind: 'int', min: 10, max: 500_000_000 },
  plans: { flag: '--plans', env: 'BENCH_PLANS', kind: 'int', min: 1, max: 100_000_000 },
  agencies: { flag: '--agencies', env: 'BENCH_AGENCIES', kind: 'int', min: 1, max: 100_000 },
  zones: { flag: '--zones', env: 'BENCH_ZONES', kind: 'int', min: 1, max: 488 },
  inactivePlanShare: { flag: '--inactive-plan-share', env: 'BENCH_INACTIVE_PLAN_SHARE', kind: 'number', min: 0, max: 0.9 },
  mode: { flag: '--mode', env: 'BENCH_MODE', kind: 'string' },
  backlogRepetitions: { flag: '--backlog-repetitions', env: 'BENCH_BACKLOG_REPETITIONS', kind: 'int', min: 1, max: 50 },
  dailyRepetitions: { flag: '--daily-repetitions', env: 'BENCH_DAILY_REPETITIONS', kind: 'int', min: 1, max: 500 },
  idleRepetitions: { flag: '--idle-repetitions', env: 'BENCH_IDLE_REPETITIONS', kind: 'int', min: 1, max: 5000 },
  batchSize: { flag: '--batch-size', env: 'BENCH_BATCH_SIZE', kind: 'int', min: 0, max: 10_000_000 },
  http: { flag: '--http', env: 'BENCH_HTTP', kind: 'bool' },
  httpRequests: { flag: '--http-requests', env: 'BENCH_HTTP_REQUESTS', kind: 'int', min: 10, max: 100_000 },
  httpRejectSeconds: { flag: '--http-reject-seconds', env: 'BENCH_HTTP_REJECT_SECONDS', kind: 'int', min: 1, max: 60 },
  adminUrl: { flag: '--admin-url', env: 'BENCH_ADMIN_URL', kind: 'string' },
  keepDatabase: { flag: '--keep-database', env: 'BENCH_KEEP_DATABASE', kind: 'bool' },
  resultsDir: { flag: '--results-dir', env: 'BENCH_RESULTS_DIR', kind: 'string' },
  quiet: { flag: '--quiet', env: 'BENCH_QUIET', kind: 'bool' },
};

export const USAGE = `npm run bench [-- options]   (each option also reads from its BENCH_* variable)
${Object.values(SPECS)
  .map((s) => `  ${s.flag.padEnd(24)} ${s.env}`)
  .join('\n')}
Defaults: 2,000,000 installments × scale on installments/10 plans, 500 agencies over 400 zones,
12 % inactive plans, mode full, repetitions 5 / 7 / 25, batch size 10000, HTTP on.`;

function parseValue(spec: Spec, source: string, raw: string): number | boolean | string {
  switch (spec.kind) {
    case 'bool': {
      if (['', '1', 'true', 'yes', 'on'].includes(raw)) return true;
      if (['0', 'false', 'no', 'off'].includes(raw)) return false;
      throw new BenchOptionError(`${source}: expected true or false, got "${raw}"`);
    }
    case 'string':
      if (raw.trim() === '') throw new BenchOptionError(`${source}: must not be empty`);
      return raw;
    default: {
      const cleaned = raw.replace(/_/g, '');
      const n = Number(cleaned);
      const ok = cleaned !== '' && Number.isFinite(n) && (spec.kind === 'number' || Number.isInteger(n));
      if (!ok || n < spec.min! || n > spec.max!) {
        const what = spec.kind === 'int' ? 'a whole number' : 'a number';
        throw new BenchOptionError(`${source}: expected ${what} from ${spec.min} to ${spec.max}, got "${raw}"`);
      }
      return n;
    }
  }
}

export function parseBenchOptions(argv: string[], env: Record<string, string | undefined>): BenchOptions {
  const given: Record<string, number | boolean | string> = {};
  for (const [key, spec] of Object.entries(SPECS)) {
    const raw = env[spec.env];
    if (raw !== undefined && raw !== '') given[key] = parseValue(spec, spec.env, raw);
  }
  const byFlag = new Map(Object.entries(SPECS).map(([key, spec]) => [spec.flag, key]));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') throw new BenchOptionError(USAGE);
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const key = byFlag.get(flag);
    if (!key) throw new BenchOptionError(`unknown option "${arg}"\n${USAGE}`);
    const spec = SPECS[key]!;
    let raw = inline;
    if (raw === undefined) {
      const next = argv[i + 1];
      if (spec.kind === 'bool' && (next === undefined || next.startsWith('--'))) raw = 'true';
      else if (next === undefined) throw new BenchOptionError(`${flag}: needs a value`);
      else raw = argv[++i]!;
    }
    given[key] = parseValue(spec, flag, raw);
  }

  const scale = (given.scale as number | undefined) ?? 1;
  const installments = (given.installments as number | undefined) ?? Math.round(2_000_000 * scale);
  const plans = (given.plans as number | undefined) ?? Math.max(1, Math.round(installments / 10));
  const agencies = (given.agencies as number | undefined) ?? Math.min(500, plans);
  const zones = (given.zones as number | undefined) ?? Math.min(400, agencies);
  const mode = (given.mode as string | undefined) ?? 'full';
  if (mode !== 'full' && mode !== 'growth') {
    throw new BenchOptionError(`--mode / BENCH_MODE: expected full or growth, got "${mode}"`);
  }
  if (plans > installments) throw new BenchOptionError(`--plans ${plans} is more than --installments ${installments}: every plan needs an installment`);
  if (agencies > plans) throw new BenchOptionError(`--agencies ${agencies} is more than --plans ${plans}: every agency needs a plan`);
  if (zones > agencies) throw new BenchOptionError(`--zones ${zones} is more than --agencies ${agencies}: every zone needs an agency`);

  return {
    scale,
    installments,
    plans,
    agencies,
    zones,
    inactivePlanShare: (given.inactivePlanShare as number | undefined) ?? 0.12,
    mode,
    backlogRepetitions: (given.backlogRepetitions as number | undefined) ?? 5,
    dailyRepetitions: (given.dailyRepetitions as number | undefined) ?? 7,
    idleRepetitions: (given.idleRepetitions as number | undefined) ?? 25,
    batchSize: (given.batchSize as number | undefined) ?? 10_000,
    http: (given.http as boolean | undefined) ?? true,
    httpRequests: (given.httpRequests as number | undefined) ?? 300,
    httpRejectSeconds: (given.httpRejectSeconds as number | undefined) ?? 5,
    adminUrl: (given.adminUrl as string | undefined) ?? env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    keepDatabase: (given.keepDatabase as boolean | undefined) ?? false,
    resultsDir: (given.resultsDir as string | undefined) ?? new URL('./results/', import.meta.url).pathname,
    quiet: (given.quiet as boolean | undefined) ?? false,
  };
}
