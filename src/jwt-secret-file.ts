// The quick start's JWT secret for the admin pages: when neither SUPABASE_JWT_SECRET nor
// JWT_SECRET is configured, the embedded server generates one kept with the data (mode 0600),
// and `overdue token` reads it from the same folder, so a newcomer can sign in locally.
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const JWT_SECRET_FILE_NAME = 'jwt-secret';

export function jwtSecretPath(dataDir: string): string {
  return join(dataDir, JWT_SECRET_FILE_NAME);
}

export function readJwtSecretFile(dataDir: string): string | null {
  const path = jwtSecretPath(dataDir);
  if (!existsSync(path)) return null;
  const secret = readFileSync(path, 'utf8').trim();
  return secret.length >= 32 ? secret : null;
}

export function loadOrCreateJwtSecret(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = jwtSecretPath(dataDir);
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    const existing = readJwtSecretFile(dataDir);
    if (!existing) throw new Error(`${path} does not hold a JWT secret of at least 32 characters: delete it, or set SUPABASE_JWT_SECRET`);
    return existing;
  }
  const secret = randomBytes(32).toString('base64url');
  try {
    writeSync(fd, secret + '\n');
  } finally {
    closeSync(fd);
  }
  return secret;
}
