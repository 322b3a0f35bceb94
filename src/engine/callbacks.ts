/**
 * `parameters.callbacks`: every status change is PUT to each URL as the
 * image's JSON, retried with backoff, never blocking the build. Credentials
 * in a URL become Basic auth and are never logged.
 */
export interface CallbackOptions {
  retries?: number;
  baseDelayMs?: number;
  log: (line: string) => void;
}

export function callbackUrls(parameters: Record<string, unknown>): string[] {
  const raw = parameters.callbacks;
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  return list.filter((u): u is string => typeof u === 'string' && /^https?:\/\//i.test(u));
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

export async function deliverCallback(url: string, body: unknown, opts: CallbackOptions): Promise<boolean> {
  const retries = opts.retries ?? 4;
  const base = opts.baseDelayMs ?? 500;
  const u = new URL(url);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (u.username || u.password) {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}`;
    u.username = '';
    u.password = '';
  }
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      const res = await fetch(u, { method: 'PUT', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return true;
      opts.log(`callback ${redactUrl(url)} answered ${res.status} (attempt ${attempt + 1})`);
    } catch (e) {
      opts.log(`callback ${redactUrl(url)} failed: ${(e as Error).message} (attempt ${attempt + 1})`);
    }
    if (attempt < retries) await new Promise((r) => setTimeout(r, base * 2 ** attempt));
  }
  return false;
}
