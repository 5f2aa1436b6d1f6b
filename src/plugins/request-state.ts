/**
 * What a plugin keeps about one request while it is served, kept on the request object itself
 * under a symbol of the plugin's own. A WeakMap per plugin cost every request a set, lookups and
 * a delete, and its entries are ephemerons that each young-generation collection must trace:
 * at thousands of requests a second, more than the state itself.
 */
export interface RequestState<T> {
  get(request: Request): T | undefined;
  set(request: Request, value: T): void;
  delete(request: Request): void;
}

export function requestState<T>(name: string): RequestState<T> {
  const key = Symbol(name);
  type Holder = { [key]?: T };
  return {
    get: (request) => (request as Holder)[key],
    set: (request, value) => void ((request as Holder)[key] = value),
    delete: (request) => void ((request as Holder)[key] = undefined),
  };
}
