// The endpoint's body: empty, or JSON {"dryRun"?: boolean, "asOf"?: ISO-8601 instant}.
// Anything else is refused with a message that names the problem.

export const MAX_BODY_BYTES = 16 * 1024;

export class BodyError extends Error {
  constructor(
    readonly status: 400 | 413 | 415,
    message: string,
  ) {
    super(message);
  }
}

export interface RunRequest {
  dryRun: boolean;
  asOf?: Date;
}

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const ALLOWED_FIELDS = new Set(['dryRun', 'asOf']);

async function readLimited(request: Request): Promise<string> {
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > MAX_BODY_BYTES) {
    throw new BodyError(413, `request body is ${declared} bytes; the limit is ${MAX_BODY_BYTES}`);
  }
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel().catch(() => {});
      throw new BodyError(413, `request body is over the limit of ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    all.set(c, offset);
    offset += c.byteLength;
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(all);
  } catch {
    throw new BodyError(400, 'request body is not valid UTF-8');
  }
}

export function parseInstant(value: string, field: string): Date {
  const date = ISO_INSTANT.test(value) ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new BodyError(400, `${field} must be an ISO-8601 instant with a time zone, like 2026-11-29T07:00:00Z; got ${JSON.stringify(value).slice(0, 80)}`);
  }
  return date;
}

export async function parseRunRequest(request: Request, now: Date = new Date()): Promise<RunRequest> {
  const text = await readLimited(request);
  if (text.trim() === '') return { dryRun: false };

  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') {
    throw new BodyError(415, `content-type must be application/json for a non-empty body; got ${type ? JSON.stringify(type) : 'none'}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    throw new BodyError(400, `malformed JSON body: ${(error as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new BodyError(400, `body must be a JSON object like {"dryRun": true}; got ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}`);
  }
  const fields = body as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !ALLOWED_FIELDS.has(k));
  if (unknown.length > 0) {
    throw new BodyError(400, `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k.slice(0, 40))).join(', ')}; allowed: dryRun, asOf`);
  }
  if (fields.dryRun !== undefined && typeof fields.dryRun !== 'boolean') {
    throw new BodyError(400, `dryRun must be a boolean; got ${typeof fields.dryRun}`);
  }
  const dryRun = fields.dryRun === true;
  let asOf: Date | undefined;
  if (fields.asOf !== undefined) {
    if (typeof fields.asOf !== 'string') throw new BodyError(400, `asOf must be a string (ISO-8601 instant); got ${typeof fields.asOf}`);
    asOf = parseInstant(fields.asOf, 'asOf');
    if (!dryRun && asOf.getTime() > now.getTime()) {
      throw new BodyError(400, `asOf ${fields.asOf} is in the future; a future instant is allowed only with "dryRun": true`);
    }
  }
  return { dryRun, ...(asOf ? { asOf } : {}) };
}
