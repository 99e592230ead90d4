// The quick start's API key: when SUPABASE_FUNCTION_KEY is not configured, a key is generated
// once and kept with the data, so the URL and key a newcomer copied keep working after a restart.
// Node-only (the edge function always gets its key from the environment).
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const API_KEY_FILE_NAME = 'api-key';

/** Shorter than this cannot be one of ours (32 random bytes are 43 base64url characters). */
const MIN_KEY_LENGTH = 32;

/** 32 random bytes, base64url: what `overdue key generate` prints and what the quick start stores. */
export function generateApiKey(): string {
  return randomBytes(32).toString('base64url');
}

export function apiKeyPath(dataDir: string): string {
  return join(dataDir, API_KEY_FILE_NAME);
}

/** The key kept in <dataDir>/api-key (mode 0600), generated there on first use. */
export function loadOrCreateApiKey(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = apiKeyPath(dataDir);
  const key = generateApiKey();
  let fd: number;
  try {
    // O_EXCL: never overwrite a key someone may already have copied into a scheduler.
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return readKey(path);
  }
  try {
    writeSync(fd, key + '\n');
  } finally {
    closeSync(fd);
  }
  return key;
}

function readKey(path: string): string {
  // The key grants running the job; a file others can read is tightened rather than trusted as is.
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
  const key = readFileSync(path, 'utf8').trim();
  if (key.length < MIN_KEY_LENGTH || /\s/.test(key)) {
    throw new Error(
      `API key file ${path} does not hold a key (expected one line of at least ${MIN_KEY_LENGTH} characters ` +
        `without spaces, found ${key.length} characters): delete it to generate a new key, or set SUPABASE_FUNCTION_KEY`,
    );
  }
  return key;
}
