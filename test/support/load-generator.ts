// autocannon, typed for what the reliability suites use (bench/autocannon.d.ts declares only the
// benchmark's part: no request lists, fixed counts, paced rates or the fuller result).
import autocannonUntyped from 'autocannon';

export interface LoadHistogram {
  average: number;
  total: number;
  min: number;
  max: number;
  p50: number;
  p90: number;
  p99: number;
}

export interface LoadResult {
  requests: LoadHistogram;
  latency: LoadHistogram;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  statusCodeStats: Record<string, { count: number }>;
}

export interface LoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  connections?: number;
  /** Seconds; or use amount. */
  duration?: number;
  amount?: number;
  /** Requests per second over all connections. */
  overallRate?: number;
  requests?: { method?: string; headers?: Record<string, string>; body?: string }[];
}

/** The returned promise also has stop(), which ends a duration-bound run early. */
export const autocannon = autocannonUntyped as unknown as (options: LoadOptions) => Promise<LoadResult> & { stop(): void };
