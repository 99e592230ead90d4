// One process at a time per data folder.
//
// PGlite is a single-user PostgreSQL backend writing straight into its folder; it keeps no
// postmaster.pid, so two processes opening the same folder would both write to it and corrupt
// it. This lock file stands in for postmaster.pid: created with O_EXCL, holding our PID, removed
// on close. A lock whose process is gone (killed, crashed) is taken over.
import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE_NAME = 'embedded.lock';

/** A lock written this recently with no readable PID is someone still writing it, not a crash. */
const UNREADABLE_LOCK_GRACE_MS = 5_000;

/**
 * Lock files this process holds. A lock carrying our own PID that we do not hold was left by an
 * earlier process that had the same PID — the usual case in a restarted container, where the
 * server is PID 1 every time — and is stale.
 */
const heldHere = new Set<string>();

export class DataFolderInUseError extends Error {
  readonly pid: number | null;
  readonly lockPath: string;
  constructor(dataDir: string, lockPath: string, pid: number | null) {
    const who = pid === null ? 'another process' : `process ${pid}${pid === process.pid ? ' (this process)' : ''}`;
    super(
      `data folder ${dataDir} is in use by ${who}: stop it first, set OVERDUE_DATA_DIR to another folder, ` +
        `or set DATABASE_URL to use a PostgreSQL server. If ${who} is not an overdue server, delete ${lockPath}.`,
    );
    this.name = 'DataFolderInUseError';
    this.pid = pid;
    this.lockPath = lockPath;
  }
}

export interface DataFolderLock {
  readonly path: string;
  /** Removes the lock file if it is still ours. Safe to call twice. */
  release(): void;
}

interface LockContent {
  pid: number;
  createdAt: string;
}

export function lockDataFolder(dataDir: string): DataFolderLock {
  const path = join(dataDir, LOCK_FILE_NAME);
  if (!tryCreate(path)) {
    const holder = readHolder(path);
    if (holder.state === 'alive') throw new DataFolderInUseError(dataDir, path, holder.pid);
    takeOverStale(dataDir, path, holder.state === 'stale' ? holder.raw : null);
  }
  heldHere.add(path);
  let released = false;
  const releaseOnExit = () => release();
  function release(): void {
    if (released) return;
    released = true;
    process.removeListener('exit', releaseOnExit);
    heldHere.delete(path);
    const holder = readHolder(path);
    if (holder.state !== 'missing' && holder.pid === process.pid) unlinkQuietly(path);
  }
  // An uncaught exception still runs 'exit' handlers; SIGKILL does not, hence the stale takeover.
  process.on('exit', releaseOnExit);
  return { path, release };
}

function tryCreate(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    const content: LockContent = { pid: process.pid, createdAt: new Date().toISOString() };
    writeSync(fd, JSON.stringify(content) + '\n');
  } finally {
    closeSync(fd);
  }
  return true;
}

type Holder =
  | { state: 'missing' }
  | { state: 'alive'; pid: number | null; raw: string }
  | { state: 'stale'; pid: number | null; raw: string };

function readHolder(path: string): Holder {
  let raw: string;
  let ageMs: number;
  try {
    raw = readFileSync(path, 'utf8');
    ageMs = Date.now() - statSync(path).mtimeMs;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw error;
  }
  const pid = parsePid(raw);
  if (pid === null) {
    return { state: ageMs < UNREADABLE_LOCK_GRACE_MS ? 'alive' : 'stale', pid: null, raw };
  }
  const alive = pid === process.pid ? heldHere.has(path) : isAlive(pid);
  return { state: alive ? 'alive' : 'stale', pid, raw };
}

function parsePid(raw: string): number | null {
  try {
    const pid = (JSON.parse(raw) as Partial<LockContent>).pid;
    return Number.isSafeInteger(pid) && (pid as number) > 0 ? (pid as number) : null;
  } catch {
    return null;
  }
}

function pidIn(path: string): number | null {
  try {
    return parsePid(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user — still alive.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

// Two processes may find the same stale lock at once. Only the one that creates the takeover
// guard (O_EXCL again) may delete the stale lock, and only if it is still the stale one it read;
// otherwise a slower process could delete the lock the faster one has just taken.
function takeOverStale(dataDir: string, path: string, staleRaw: string | null): void {
  const guard = `${path}.takeover`;
  if (!tryCreate(guard)) {
    const holder = readHolder(guard);
    if (holder.state === 'alive') throw new DataFolderInUseError(dataDir, path, holder.pid);
    unlinkQuietly(guard); // left by a process that died while taking over
    if (!tryCreate(guard)) throw new DataFolderInUseError(dataDir, path, pidIn(guard));
  }
  try {
    const now = readHolder(path);
    if (now.state === 'alive') throw new DataFolderInUseError(dataDir, path, now.pid);
    if (now.state === 'stale' && now.raw === staleRaw) unlinkQuietly(path);
    if (!tryCreate(path)) throw new DataFolderInUseError(dataDir, path, pidIn(path));
  } finally {
    unlinkQuietly(guard);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
