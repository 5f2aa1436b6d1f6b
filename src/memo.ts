/**
 * A function of a string key, each answer made once and kept: `make` builds the answer for a key;
 * past `max` keys (clients choose some of them: headers, operation names) one is made anew each
 * time, so the memory stays bounded. The fast path's header answers and the metric series that
 * requests observe are all kept this way.
 */
export function memoized<T>(make: (key: string) => T, max: number): (key: string) => T {
  const made = new Map<string, T>();
  return (key) => {
    let answer = made.get(key);
    if (answer === undefined) {
      answer = make(key);
      if (made.size < max) made.set(key, answer);
    }
    return answer;
  };
}
