// Sign-in for the admin pages and their APIs, the Supabase way: an HS256 JWT signed with the
// project's JWT secret, `role: authenticated`, `sub` = the user id, and
// `app_metadata.platform_admin: true` for platform administrators. Agency admins are rows in
// public.users (id = sub, role 'agency_admin'); the database's RLS reads those claims from
// request.jwt.claims (see src/web/queries.ts asUser). The function's API key is never used here.
import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from 'jose';
import { ConfigError, type Env } from '../config.ts';

export const MIN_JWT_SECRET_LENGTH = 32;

/** SUPABASE_JWT_SECRET (what Supabase calls it), else JWT_SECRET; null when neither is set. */
export function jwtSecretFromEnv(env: Env): string | null {
  for (const name of ['SUPABASE_JWT_SECRET', 'JWT_SECRET']) {
    const raw = env[name];
    if (raw === undefined || raw.trim() === '') continue;
    if (raw.length < MIN_JWT_SECRET_LENGTH) {
      // Never echo the value: it is a secret.
      throw new ConfigError(name, `too short (${raw.length} characters); use at least ${MIN_JWT_SECRET_LENGTH} (Supabase: Project Settings → API → JWT secret)`);
    }
    return raw;
  }
  return null;
}

export interface Principal {
  sub: string;
  platformAdmin: boolean;
  email: string | null;
  /** The verified claims, handed to the database as request.jwt.claims. */
  claims: JWTPayload & Record<string, unknown>;
}

export class AuthError extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class JwtAuth {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  /** Reads `Authorization: Bearer <jwt>`; throws AuthError(401) with the reason. */
  async verifyHeader(header: string | undefined): Promise<Principal> {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) throw new AuthError(401, 'sign in: send Authorization: Bearer <token> (npx overdue token --platform-admin makes one)');
    return this.verify(match[1]!);
  }

  async verify(token: string): Promise<Principal> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'] }));
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw new AuthError(401, 'token expired; sign in again with a new token');
      throw new AuthError(401, 'invalid token: not signed with this project\'s JWT secret, or malformed');
    }
    if (payload.role !== 'authenticated') {
      throw new AuthError(401, `token role "${String(payload.role)}" cannot sign in; a user token has role "authenticated"`);
    }
    if (typeof payload.sub !== 'string' || !UUID.test(payload.sub)) {
      throw new AuthError(401, 'token has no user id: claim "sub" must be a UUID');
    }
    const appMetadata = (payload.app_metadata ?? {}) as Record<string, unknown>;
    return {
      sub: payload.sub,
      platformAdmin: appMetadata.platform_admin === true,
      email: typeof payload.email === 'string' ? payload.email : null,
      claims: payload as Principal['claims'],
    };
  }

  /** For `overdue token` and tests. */
  async mint(input: { sub: string; platformAdmin?: boolean; email?: string; expiresIn?: string }): Promise<string> {
    return new SignJWT({
      role: 'authenticated',
      aud: 'authenticated',
      ...(input.email ? { email: input.email } : {}),
      app_metadata: input.platformAdmin ? { platform_admin: true } : {},
    })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(input.sub)
      .setIssuedAt()
      .setExpirationTime(input.expiresIn ?? '12h')
      .sign(this.key);
  }
}
