/**
 * Requests answered before yoga sees them. Yoga's adapter builds each request's URL from
 * `http://{Host}{target}`; when that fails (a Host with a space, `OPTIONS *`) it answers 500
 * with the TypeError's stack as the body. And requests node itself cannot parse (headers over
 * its size limit, say) get a bare status line. Both are answered here the way every other
 * refusal is: a JSON error with `extensions.code`, and `x-request-id`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { httpErrorBody, writeErrorResponse } from './plugins/error-codes.js';
import { requestIdFrom } from './plugins/request-id.js';

/** host[:port]: a name of the characters a URL host may hold, or a bracketed IPv6 address. */
const HOST = /^(?:[\w.~!$&'()*+,;=-]*|\[[\da-fA-F:.]+\])(?::\d{1,5})?$/;

/**
 * Whether yoga can be handed the request; if not, it has been answered. A target in absolute
 * form (`GET http://host/graphql`), which an HTTP/1.1 server must accept, becomes its path.
 */
export function admitRequest(req: IncomingMessage, res: ServerResponse): boolean {
  const target = req.url ?? '/';
  // Nearly every request names the Host and path the one before it did: those passed already.
  if (target === admitted.target && req.headers.host === admitted.host) return true;
  if (target === '*' && req.method === 'OPTIONS') {
    // A question about the server as a whole: this is all it takes.
    res.writeHead(204, { allow: 'GET, POST', 'x-request-id': idOf(req) }).end();
    return false;
  }
  if (/^https?:\/\//i.test(target) && URL.canParse(target)) {
    const url = new URL(target);
    req.url = `${url.pathname}${url.search}`;
    req.headers.host = url.host;
  }
  const host = req.headers.host ?? '';
  let problem: string | null = null;
  if (req.headers.host === undefined && req.httpVersion === '1.1')
    problem = 'An HTTP/1.1 request must carry a Host header';
  else if (!req.url!.startsWith('/')) problem = 'The request target must be a path, such as /graphql';
  else if (!HOST.test(host) || !URL.canParse(`http://${host || 'localhost'}${req.url}`))
    problem = 'The Host header must be host[:port]';
  if (!problem) {
    if (req.headers.host !== undefined) admitted = { host: req.headers.host, target: req.url! };
    return true;
  }
  writeErrorResponse(res, 400, httpErrorBody(400, problem), { 'x-request-id': idOf(req) });
  return false;
}

/** The Host and target of the last request admitted (a pair of plain strings: what passed once passes again). */
let admitted: { host: string | undefined; target: string | undefined } = { host: undefined, target: undefined };

/** The id is made only for an answer given here: an admitted request gets its own where it is answered. */
const idOf = (req: IncomingMessage) => requestIdFrom(req.headers['x-request-id']);

/** Node's own refusals of what it cannot parse, as coded JSON errors with a request id. */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const body = httpErrorBody(status, `${STATUS_CODES[status]}: the request could not be read as HTTP`);
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestIdFrom(null)}\r\n\r\n${body}`,
    );
  });
}
