/**
 * The bench's floor: a bare node:http server that does the least any JSON-over-HTTP GraphQL server
 * must do for a request (read the body, parse it, write a small JSON answer) and nothing else. Under
 * the same load in the same run, its requests per second are what the machine and the load generator
 * leave to any server at all; the gateway's share of it tells its own cost apart from the machine's
 * speed, which moved by a factor of two between runs on the same 2-core machine type.
 *
 * It answers every POST as the gateway answers a single-user lookup (`"tags":[` marks a user
 * found, as the load counts them). Plain JavaScript, no packages: `node floor.mjs` with PORT and HOST.
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let id = null;
    try {
      id = JSON.parse(Buffer.concat(chunks).toString()).variables?.id ?? null;
    } catch {
      // Not JSON: answered all the same, as the load never sends it.
    }
    const body = JSON.stringify({ data: { user: { id, tags: ['floor'] } } });
    res.writeHead(200, {
      'content-type': 'application/graphql-response+json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
});
server.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? '127.0.0.1', () => {
  console.log(`listening on ${JSON.stringify(server.address())}`);
});
