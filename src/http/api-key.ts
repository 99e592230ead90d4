// X-API-Key check. Both sides are hashed with SHA-256 and the digests compared byte by byte
// without early exit, so the time taken depends neither on the key's length nor on how many
// leading characters a guess gets right. Web Crypto only: runs on Node and Deno.

const encoder = new TextEncoder();

async function digest(value: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(value)));
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ (b[i] ?? 0);
  return diff === 0;
}

export class ApiKeyVerifier {
  private constructor(private readonly digests: Uint8Array[]) {}

  /** keys: the current key and, during a rotation, the next one. */
  static async create(keys: string[]): Promise<ApiKeyVerifier> {
    return new ApiKeyVerifier(await Promise.all(keys.map(digest)));
  }

  /** True when the presented key equals one of the configured keys. Every key is compared. */
  async verify(presented: string | null | undefined): Promise<boolean> {
    if (this.digests.length === 0) return false;
    const candidate = await digest(presented ?? '');
    let ok = false;
    for (const d of this.digests) ok = equalBytes(candidate, d) || ok;
    // An empty or absent key never matches, even if someone configured an empty key.
    return ok && !!presented;
  }
}
