/**
 * What a browser may do with the gateway: which origins may read its answers
 * (CORS) and which requests it refuses because a page could send them without
 * the user's say (CSRF).
 *
 * The gateway holds the app's admin credential, and in `none` mode it needs no
 * token, so a page on any site the developer visits could otherwise drive a
 * gateway on localhost. Hence: no cross-origin access unless CORS_ORIGINS
 * lists the origin, in either auth mode (GraphiQL is served by the gateway
 * itself, same origin, and needs none), and CSRF prevention always on.
 */
import { useCSRFPrevention } from '@graphql-yoga/plugin-csrf-prevention';
import { createGraphQLError, type CORSOptions, type Plugin } from 'graphql-yoga';

/**
 * Headers a page cannot send without a CORS preflight, any of which marks a
 * request that does not declare a non-simple content type (a GET, or a POST
 * of text/plain, form or multipart data) as coming from a real client. Not
 * `content-type` itself: a simple form POST carries one.
 */
export const CSRF_HEADERS = ['x-graphql-yoga-csrf', 'apollo-require-preflight', 'x-apollo-operation-name'];

/** Request headers a listed origin may send. */
const ALLOWED_HEADERS = ['content-type', 'accept', 'authorization', 'x-request-id', ...CSRF_HEADERS];

/**
 * Refuses (403) POSTs a browser could send cross-site without a preflight.
 * GET is let through, so `curl '.../graphql?query=...'` works as graphql-yoga
 * users expect: yoga runs only queries over GET (a mutation gets 405), a query
 * changes nothing, a page cannot read the answer without CORS, and a bearer
 * token is never attached to a cross-site request. The forms a page can POST
 * (text/plain, form and multipart data) still need a preflight header.
 */
export function useCsrfPrevention(): Plugin {
  const check = useCSRFPrevention({ requestHeaders: CSRF_HEADERS });
  return {
    onRequestParse(payload) {
      // Only a POST can run anything without a preflight: GET is let through (see above), and yoga
      // answers every other method 405 before parsing it, which says more than a CSRF refusal.
      if (payload.request.method !== 'POST') return;
      try {
        return check.onRequestParse?.(payload);
      } catch (err) {
        // Yoga's refusal has no code; every error a client gets carries one.
        throw createGraphQLError('Required CSRF header(s) not present: send x-graphql-yoga-csrf, or POST JSON', {
          extensions: { code: 'CSRF_HEADER_REQUIRED', http: { status: 403 } },
          originalError: err as Error,
        });
      }
    },
  };
}

/**
 * Yoga's `cors` option: CORS headers only for a request from a listed origin,
 * and nothing at all for any other (yoga's own list handling would answer an
 * unlisted origin with `Access-Control-Allow-Origin: null`, which sandboxed
 * frames match). No credentials: the gateway uses bearer tokens, not cookies.
 */
export function corsFor(origins: readonly string[]): false | ((request: Request) => CORSOptions) {
  if (origins.length === 0) return false;
  const allowed = new Set(origins);
  return (request) => {
    const origin = request.headers.get('origin');
    if (!origin || !allowed.has(origin)) return false;
    return {
      origin: [origin],
      methods: ['GET', 'POST'],
      allowedHeaders: ALLOWED_HEADERS,
      exposedHeaders: ['x-request-id'],
      credentials: false,
      maxAge: 600,
    };
  };
}
