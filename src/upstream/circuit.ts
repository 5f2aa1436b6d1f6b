/**
 * A circuit breaker over the upstream: after `threshold` failures in a row it
 * opens and calls fail fast for `cooldownMs`; then one probe call is let
 * through, and its outcome closes the circuit or opens it again.
 */
export type CircuitState = 'closed' | 'open' | 'half-open';

export class Circuit {
  private failures = 0;
  private openedAt = 0;
  private probing = false;
  private listeners: Array<(state: CircuitState) => void> = [];

  constructor(
    private readonly threshold = 5,
    private readonly cooldownMs = 5000,
    private readonly now: () => number = Date.now,
  ) {}

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

  success(): void {
    const was = this.state;
    this.failures = 0;
    this.probing = false;
    if (was !== 'closed') this.emit('closed');
  }

  failure(): void {
    const was = this.state;
    this.probing = false;
    this.failures += 1;
    if (this.failures >= this.threshold) {
      this.openedAt = this.now();
      if (was !== 'open') this.emit('open');
    }
  }

  private emit(state: CircuitState): void {
    for (const l of this.listeners) l(state);
  }
}
