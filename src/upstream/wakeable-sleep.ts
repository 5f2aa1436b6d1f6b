/**
 * A sleep that can be ended early. `hold` is given the function that wakes it as it starts, and
 * null the moment it ends (woken or timed out), so its owner never keeps a stale wake-up: the lookup
 * queue's wait for a fuller call, the Redis budget's wait for its next ask.
 */
export function wakeableSleep(ms: number, hold: (wake: (() => void) | null) => void): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      hold(null);
      resolve();
    };
    const timer = setTimeout(done, ms);
    hold(done);
  });
}
