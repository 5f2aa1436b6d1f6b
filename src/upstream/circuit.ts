/**
 * A circuit breaker over the upstream: after `threshold` failures in a row it
 * opens and calls fail fast for `cooldownMs`; then one probe call is let
 * through, and its outcome closes the circuit or opens it again. Every call
 * that `allow` let through must end in `success`, `failure` or `inconclusive`,
 * or a probe would hold the circuit half-open for good.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export interface CircuitOptions {
  /** Failures in a row that open the circuit; default 5. */
  threshold?: number;
  /** How long it stays open before a probe; default 5000 ms. */
  cooldownMs?: number;
}

export class Circuit {
  readonly threshold: number;
  readonly cooldownMs: number;
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private listeners: Array<(state: CircuitState) => void> = [];

  constructor(
    opts: CircuitOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.threshold = opts.threshold ?? 5;
    this.cooldownMs = opts.cooldownMs ?? 5000;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) {
      throw new RangeError(`circuit threshold must be a positive integer, got ${this.threshold}`);
    }
    if (!(this.cooldownMs >= 0)) throw new RangeError(`circuit cooldown must be >= 0 ms, got ${this.cooldownMs}`);
  }

  onChange(listener: (state: CircuitState) => void): void {
    this.listeners.push(listener);
  }

  get state(): CircuitState {
    if (this.failures < this.threshold) return 'closed';
    return this.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** Whether a call may go now; in half-open state only one probe at a time. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  /** The upstream answered: it works. */
  success(): void {
    const was = this.state;
    this.failures = 0;
    this.probing = false;
    if (was !== 'closed') this.emit('closed');
  }

  /** The upstream gave no usable answer. */
  failure(): void {
    const was = this.state;
    this.probing = false;
    this.failures += 1;
    if (this.failures >= this.threshold) {
      this.openedAt = this.now();
      if (was !== 'open') this.emit('open');
    }
  }

  /** The call ended in a way that says nothing about the upstream (it was busy, or the caller ran out of time). */
  inconclusive(): void {
    this.probing = false;
  }

  private emit(state: CircuitState): void {
    for (const l of this.listeners) l(state);
  }
}
