/**
 * DNS rebinding: a page on a name its owner points at 127.0.0.1 reaches a gateway on this machine
 * as its own origin, so CORS does not stop it, and in `none` mode it could write tags. What the
 * page cannot change is the `Host` its browser sends (the rebound name), so the gateway answers
 * only the names it is served under: the loopback names, HOST, and ALLOWED_HOSTS (config.ts).
 * `/healthz` and `/readyz` answer any Host: load balancers probe by address, and they tell nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpErrorBody, writeErrorResponse } from './plugins/error-codes.js';
import { requestIdFrom } from './plugins/request-id.js';

const PROBES = new Set(['/healthz', '/readyz']);

/** Whether the request names a Host this gateway serves; if not, it has been answered 400. */
export function admitHost(req: IncomingMessage, res: ServerResponse, allowed: ReadonlySet<string> | 'any'): boolean {
  if (allowed === 'any') return true;
  if (req.headers.host === served.host && allowed === served.allowed) return true;
  const host = (req.headers.host ?? '').toLowerCase();
  // host[:port] or [v6][:port]; admitRequest has already refused anything else.
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  if (allowed.has(name.replace(/\.$/, ''))) {
    served = { host: req.headers.host, allowed };
    return true;
  }
  if (PROBES.has((req.url ?? '').split('?')[0]!)) return true;
  const body = httpErrorBody(
    400,
    `This gateway is not served as ${JSON.stringify(name.slice(0, 64))}: list the name in ALLOWED_HOSTS to use it`,
  );
  writeErrorResponse(res, 400, body, {
    'x-request-id': requestIdFrom(req.headers['x-request-id']),
    connection: 'close',
  });
  return false;
}

/** The last Host found served, and under which list: nearly every request names the one before it did. */
let served: { host: string | undefined; allowed: ReadonlySet<string> | null } = { host: undefined, allowed: null };
