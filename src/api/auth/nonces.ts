/**
 * The nonces of accepted requests, remembered until their timestamp leaves
 * the window (after that the timestamp alone refuses a replay). Bounded: at
 * `max` entries, expired ones are swept; if none has expired the store is
 * full and the caller refuses the request rather than forget a nonce.
 */
export class NonceStore {
  private readonly seen = new Map<string, number>();
  private sinceSweep = 0;

  constructor(
    private readonly max = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /**
   * Records the nonce; `'reused'` if this consumer already used it with this
   * timestamp, `'full'` if it cannot be remembered, `'fresh'` otherwise.
   */
  remember(consumerKey: string, timestamp: number, nonce: string, expiresAtMs: number): 'fresh' | 'reused' | 'full' {
    const id = `${consumerKey}\u0000${timestamp}\u0000${nonce}`;
    const known = this.seen.get(id);
    const now = this.now();
    if (known !== undefined && known > now) return 'reused';
    // Swept now and then, so that memory follows the request rate rather than the uptime.
    if (this.seen.size >= this.max || ++this.sinceSweep >= 1024) this.sweep(now);
    if (this.seen.size >= this.max) return 'full';
    this.seen.set(id, expiresAtMs);
    return 'fresh';
  }

  private sweep(now: number): void {
    this.sinceSweep = 0;
    for (const [id, expires] of this.seen) if (expires <= now) this.seen.delete(id);
  }
}
