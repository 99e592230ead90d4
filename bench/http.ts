// End to end: the real Node server (`src/server.ts`, what `npm start` runs) against the bench
// database, on 127.0.0.1 only. Measures the HTTP trigger to its answer for runs with nothing to
// do, and how many rejected-key requests per second it answers (autocannon, bounded duration).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { median, quantile, round } from './statistics.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const ENDPOINT = '/functions/v1/update-installment-statuses';

export type HttpResult =
  | { skipped: string }
  | {
      requests: number;
      p50Ms: number;
      p95Ms: number;
      p99Ms: number;
      maxMs: number;
      /** What the measured runs answered (records updated summed over them; 0 = nothing to do). */
      recordsUpdated: number;
      rejected: { seconds: number; connections: number; requestsPerSecond: number; total: number; non401: number };
      logLevel: string;
    };

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function measureHttp(
  databaseUrl: string,
  options: { requests: number; rejectSeconds: number },
  progress: (line: string) => void,
): Promise<HttpResult> {
  if (!existsSync(`${root}src/server.ts`) || !existsSync(`${root}src/http/app.ts`)) {
    return { skipped: 'server not available (src/server.ts or src/http/app.ts missing)' };
  }
  const port = await freePort();
  const key = randomBytes(24).toString('hex');
  const logLevel = 'info';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: root,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      SUPABASE_FUNCTION_KEY: key,
      SUPABASE_FUNCTION_KEY_NEXT: '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: logLevel,
      // Only the measured requests run the job: no minute ticks in between.
      OVERDUE_SCHEDULER: 'off',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Keep only the tail of the log: autocannon makes thousands of "rejected" lines.
  let tail = '';
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-4000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const base = `http://127.0.0.1:${port}`;
  const url = `${base}${ENDPOINT}`;

  try {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) return { skipped: `server not available: it exited with ${child.exitCode}: ${tail.trim()}` };
      try {
        await fetch(`${base}/`, { signal: AbortSignal.timeout(1000) });
        break;
      } catch {
        if (Date.now() > deadline) return { skipped: `server not available: no answer within 60 s: ${tail.trim()}` };
        await new Promise((r) => setTimeout(r, 200));
      }
    }

    const trigger = async (): Promise<{ ms: number; updated: number }> => {
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'x-api-key': key } });
      const body = (await res.json()) as Record<string, unknown>;
      const ms = performance.now() - t0;
      if (res.status !== 200) throw new Error(`POST ${ENDPOINT} answered ${res.status}: ${JSON.stringify(body)}`);
      const updated = Number(body.recordsUpdated ?? 0);
      return { ms, updated };
    };

    // Warm-up: the first run flips what became due between the bench's "daily" instant and now,
    // and each pooled connection loads the agencies' zone files once.
    for (let i = 0; i < 10; i++) await trigger();

    progress(`http: ${options.requests} sequential runs with nothing to do`);
    const samples: number[] = [];
    let recordsUpdated = 0;
    for (let i = 0; i < options.requests; i++) {
      const { ms, updated } = await trigger();
      samples.push(ms);
      recordsUpdated += updated;
    }

    progress(`http: rejected keys for ${options.rejectSeconds} s (autocannon, 10 connections)`);
    const connections = 10;
    const cannon = await autocannon({
      url,
      method: 'POST',
      headers: { 'x-api-key': 'wrong-key-wrong-key-wrong-key' },
      connections,
      duration: options.rejectSeconds,
    });
    const answered401 = (cannon.statusCodeStats as Record<string, { count: number }> | undefined)?.['401']?.count ?? 0;

    return {
      requests: samples.length,
      p50Ms: round(median(samples)),
      p95Ms: round(quantile(samples, 0.95)),
      p99Ms: round(quantile(samples, 0.99)),
      maxMs: round(Math.max(...samples)),
      recordsUpdated,
      rejected: {
        seconds: options.rejectSeconds,
        connections,
        requestsPerSecond: round(cannon.requests.average, 0),
        total: cannon.requests.total,
        non401: cannon.requests.total - answered401,
      },
      logLevel,
    };
  } finally {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
  }
}
