// Starts the real endpoint as a child process — the Node server (`tsx src/server.ts`) or the
// edge function under real Deno (`npm run serve:edge`'s command) — on a free port, and stops it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export type Target = 'node' | 'deno';

const root = fileURLToPath(new URL('../../', import.meta.url));

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export interface RunningServer {
  target: Target;
  base: string;
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

export async function startServer(target: Target, env: Record<string, string>): Promise<RunningServer> {
  const port = await freePort();
  // The built-in scheduler would compete with the requests under test; tests that want it say so.
  const common = { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'debug', OVERDUE_SCHEDULER: 'off', ...env };
  const child =
    target === 'node'
      ? spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: root, env: common, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(
          `${root}node_modules/.bin/deno`,
          ['run', '--allow-net', '--allow-env', '--config', 'supabase/functions/update-installment-statuses/deno.json', 'supabase/functions/update-installment-statuses/index.ts'],
          { cwd: root, env: { ...common, SUPABASE_DB_URL: env.DATABASE_URL ?? env.SUPABASE_DB_URL ?? '', DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${target} server exited with ${child.exitCode}:\n${output}`);
    try {
      await fetch(`${base}/`, { signal: AbortSignal.timeout(1000) });
      break;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${target} server did not start within 60 s:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 150));
    }
  }
  return {
    target,
    base,
    url: `${base}/functions/v1/update-installment-statuses`,
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return; // a signal-killed child has no exit code
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
