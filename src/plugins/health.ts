/** `/healthz`: the process runs. `/readyz`: it can serve (503 while the upstream is known down). */
import type { Plugin } from 'graphql-yoga';

export interface Readiness {
  /** null when ready, else why not. */
  problem(): string | null;
  /** Extra facts for the body (e.g. where the rate budget lives). */
  details(): Record<string, unknown>;
}

export function useHealth(readiness: Readiness): Plugin {
  return {
    onRequest({ url, endResponse, fetchAPI }) {
      if (url.pathname === '/healthz') {
        endResponse(new fetchAPI.Response(JSON.stringify({ status: 'ok' }), { status: 200, headers: json() }));
      } else if (url.pathname === '/readyz') {
        const problem = readiness.problem();
        const body = {
          status: problem ? 'unavailable' : 'ready',
          ...(problem ? { problem } : {}),
          ...readiness.details(),
        };
        endResponse(new fetchAPI.Response(JSON.stringify(body), { status: problem ? 503 : 200, headers: json() }));
      }
    },
  };
}

/** A fresh object each time: the Response keeps (and fills in content-length on) the one it is given. */
const json = () => ({ 'content-type': 'application/json' });
