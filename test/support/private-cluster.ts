// A throwaway PostgreSQL 15 cluster of our own, for faults that take the whole server down
// (restart, unreachable). The shared cluster at 127.0.0.1:5432 serves every other test and must
// never be stopped, so these tests initdb a cluster into a temp folder, run it on a free port
// with its socket in that folder, and remove it at the end — also when the test failed.
import { execFile, execFileSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after } from 'node:test';
import { connect, type Sql } from '../../src/db/connect.ts';
import { migrate } from '../../src/db/migrate.ts';
import { freePort } from './server-process.ts';

const run = promisify(execFile);
const BIN = '/usr/lib/postgresql/15/bin';

export interface PrivateCluster {
  port: number;
  dir: string;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url(database?: string): string;
  /** Creates a database (migrated unless told otherwise) and returns its URL. */
  createDatabase(name: string, options?: { migrated?: boolean }): Promise<string>;
  start(): Promise<void>;
  /** pg_ctl stop -m fast: every backend is terminated (57P01), new connections are refused. */
  stop(): Promise<void>;
  /** pg_ctl restart -m fast. */
  restart(): Promise<void>;
  destroy(): Promise<void>;
}

// initdb and the server refuse to run as root: everything runs as the postgres OS user.
function asPostgres(args: string[]): string[] {
  return process.getuid?.() === 0 ? ['-u', 'postgres', '--', ...args] : args;
}

async function pgCtl(args: string[]): Promise<void> {
  const [cmd, ...rest] = process.getuid?.() === 0 ? ['runuser', ...asPostgres([`${BIN}/pg_ctl`, ...args])] : [`${BIN}/pg_ctl`, ...args];
  await run(cmd!, rest, { timeout: 60_000 });
}

/** Call at a test file's module level (like freshDatabase), so the clean-up is the file's. */
export async function startPrivateCluster(): Promise<PrivateCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'overdue_chaos_pg_'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  const port = await freePort();
  let running = false;

  const initdb = [`${BIN}/initdb`, '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C'];
  if (process.getuid?.() === 0) await run('runuser', asPostgres(initdb), { timeout: 120_000 });
  else await run(initdb[0]!, initdb.slice(1), { timeout: 120_000 });

  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60 -c shared_buffers=16MB`;
  const cluster: PrivateCluster = {
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    async createDatabase(name, opts = {}) {
      const admin = connect(cluster.url(), { max: 1 });
      try {
        await admin.unsafe(`create database "${name}"`);
      } finally {
        await admin.end();
      }
      if (opts.migrated !== false) {
        const db = connect(cluster.url(name), { max: 1 });
        try {
          await migrate(db);
        } finally {
          await db.end();
        }
      }
      return cluster.url(name);
    },
    async start() {
      await pgCtl(['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', 'start']);
      running = true;
    },
    async stop() {
      await pgCtl(['-D', data, '-m', 'fast', '-w', 'stop']);
      running = false;
    },
    async restart() {
      await pgCtl(['-D', data, '-o', options, '-l', join(dir, 'server.log'), '-m', 'fast', '-w', 'restart']);
      running = true;
    },
    async destroy() {
      if (running) await pgCtl(['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Removed however the test file ends; registered before start so a failed start is cleaned too.
  after(() => cluster.destroy());
  // …and when the run is interrupted (Ctrl-C, a CI timeout), where `after` hooks do not run.
  const emergencyStop = () => {
    if (running) {
      const stop = [`${BIN}/pg_ctl`, '-D', data, '-m', 'immediate', '-w', 'stop'];
      try {
        if (process.getuid?.() === 0) execFileSync('runuser', asPostgres(stop), { stdio: 'ignore', timeout: 20_000 });
        else execFileSync(stop[0]!, stop.slice(1), { stdio: 'ignore', timeout: 20_000 });
      } catch {
        /* already stopped */
      }
      running = false;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', emergencyStop);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      emergencyStop();
      process.exit(130);
    });
  }
  await cluster.start();
  return cluster;
}

export type { Sql };
