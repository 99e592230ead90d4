// The embedded database of the quick start: PGlite (PostgreSQL compiled to WebAssembly, running
// inside this process) kept in <dataDir>/pgdata, served on 127.0.0.1 by pglite-socket so that
// everything else talks to it with the same postgres.js client as to a real server.
//
// PGlite is ONE backend session. Every socket connection is multiplexed onto it, which changes
// three things callers must respect (measured with postgres.js 3.4 / pglite 0.5 / pglite-socket 0.2):
//   * Session state is shared by all connections: a session advisory lock taken on one
//     connection is granted again to any other one (it is the same session), so
//     pg_try_advisory_lock excludes nothing between two connections. With a pool of exactly one
//     connection (EMBEDDED_POOL_SIZE), `sql.reserve()` is the exclusion instead: nobody else gets
//     the session until it is released. One process per folder is guaranteed by the folder lock.
//   * While one connection is inside a transaction, the other connections' queries wait until it
//     ends. A caller that opens a transaction on a reserved connection and then awaits a query
//     on another connection waits forever.
//   * With a pool of one, a query on the pool while the only connection is reserved waits for
//     release(): code holding a reservation must do all its work on that reservation.
//   * The session never ends, so named prepared statements of closed connections are never freed;
//     postgres.js reconnects after each idle timeout, and with the built-in scheduler ticking
//     every minute that leaked a set of statements a minute. The URL says `?prepare=false`.
// pglite-socket refuses connections beyond `maxConnections` with a non-protocol message on which
// postgres.js hangs, so the server allows a few more than the pool uses (a pool reconnecting
// after its idle timeout briefly has two sockets; psql can look in for debugging).
import { mkdirSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { connect } from './connect.ts';
import { migrate, type MigrateResult } from './migrate.ts';
import { seedDemoData, type DemoSeedResult } from './demo-seed.ts';
import { lockDataFolder, type DataFolderLock } from './data-folder-lock.ts';

export { loadOrCreateApiKey } from '../api-key-file.ts';
export { DataFolderInUseError } from './data-folder-lock.ts';

/** The only pool size that keeps transactions and advisory locks meaningful on PGlite. */
export const EMBEDDED_POOL_SIZE = 1;

/** Socket connections pglite-socket accepts; more than the pool so a reconnect never hangs. */
const SOCKET_MAX_CONNECTIONS = 4;

/** The shape of src/log.ts's Logger that this module uses. */
export interface EmbeddedLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
}

export interface OpenEmbeddedOptions {
  dataDir: string;
  logger?: EmbeddedLogger;
  /** TCP port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /** Seed the demo agencies into an empty database (default true). */
  seedDemo?: boolean;
}

export interface EmbeddedDatabase {
  /** postgres:// URL of the socket server; connect with `{ max: EMBEDDED_POOL_SIZE }`. */
  url: string;
  /** Absolute path of the data folder. */
  dataDir: string;
  /** Pool size to pass to connect(): always EMBEDDED_POOL_SIZE. */
  poolSize: number;
  migrations: MigrateResult;
  seed: DemoSeedResult | { seeded: false; reason: 'disabled' };
  /** Milliseconds PGlite took to open (a new folder is initialised: a few seconds). */
  openMs: number;
  /**
   * Stops the socket server (closing any client still connected — end your pools first),
   * closes PGlite cleanly and releases the folder lock. Safe to call twice.
   */
  close(): Promise<void>;
}

export async function openEmbedded(options: OpenEmbeddedOptions): Promise<EmbeddedDatabase> {
  const dataDir = resolve(options.dataDir);
  const pgdata = join(dataDir, 'pgdata');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const lock = lockDataFolder(dataDir);

  let db: PGlite | undefined;
  let server: PGLiteSocketServer | undefined;
  try {
    options.logger?.info('opening embedded PostgreSQL (PGlite)', { dataDir: pgdata });
    const started = Date.now();
    try {
      db = await PGlite.create(pgdata);
    } catch (error) {
      throw new Error(
        `could not open the embedded database in ${pgdata}: ${(error as Error).message}. ` +
          `If it was written by another PGlite version or damaged, move ${dataDir} away ` +
          `(deleting it resets the demo data and the generated API key) or set DATABASE_URL.`,
        { cause: error },
      );
    }
    const openMs = Date.now() - started;

    server = new PGLiteSocketServer({
      db,
      host: '127.0.0.1',
      port: options.port ?? 0,
      maxConnections: SOCKET_MAX_CONNECTIONS,
    });
    await server.start();
    // PGlite's own user and database; it trusts every connection, and only 127.0.0.1 can reach it.
    const url = `postgres://postgres@${server.getServerConn()}/postgres?prepare=false`;

    const sql = connect(url, { max: EMBEDDED_POOL_SIZE, applicationName: 'overdue-embedded-setup' });
    let migrations: MigrateResult;
    let seed: EmbeddedDatabase['seed'];
    try {
      migrations = await migrate(sql);
      seed = options.seedDemo === false ? { seeded: false, reason: 'disabled' } : await seedDemoData(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
    options.logger?.info('embedded PostgreSQL ready', {
      url,
      openMs,
      migrationsApplied: migrations.applied.length,
      demoSeeded: seed.seeded,
    });

    return {
      url,
      dataDir,
      poolSize: EMBEDDED_POOL_SIZE,
      migrations,
      seed,
      openMs,
      close: closeOnce(server, db, lock),
    };
  } catch (error) {
    await server?.stop().catch(() => {});
    await db?.close().catch(() => {});
    lock.release();
    throw error;
  }
}

function closeOnce(server: PGLiteSocketServer, db: PGlite, lock: DataFolderLock): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      try {
        await server.stop();
        await db.close();
      } finally {
        lock.release();
      }
    })());
}
