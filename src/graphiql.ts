/** GraphiQL, served by the gateway itself (no CDN), opened on a document that shows what the API does. */
import type { GraphiQLOptions } from 'graphql-yoga';

/** The first lines: short, so they fit the editor's width. */
const TITLE = `# tim-tags-graphql: Tencent IM user tags.
# Press run (or Ctrl-Enter) and pick an operation.
`;

/** Added under the title when the gateway checks JWTs, next to the pre-filled header. */
const JWT_HINT = `#
# This gateway checks JWTs: in Headers (below),
# put your token in place of <your JWT>.
# Other users' tags need the scope tags:read;
# the mutations need tags:write, pushMessage push:send.
`;

/**
 * A push to the demo tag \`vip\`, commented out: a push reaches people, so it
 * is never one click away. With the embedded emulator GET /__emulator/pushes
 * shows who it reached.
 */
export const PUSH_EXAMPLE = `
# A push to every user tagged "vip" (uncomment to try;
# the emulator's GET /__emulator/pushes shows who it reached):
# mutation PushVips {
#   pushMessage(input: {
#     audience: { tagsAll: ["vip"] }
#     elements: [{ text: "Hello from GraphiQL" }]
#     idempotencyKey: "graphiql-demo-1"
#   }) {
#     taskId
#   }
# }
`;

const OPERATIONS = `
query DemoUsers {
  users(ids: ["alice", "bob", "carol", "frank"]) {
    id
    tags
  }
}

query OneUser($id: ID! = "alice") {
  user(id: $id) {
    id
    tags
  }
}

mutation TagAlice {
  addUserTags(input: [{ id: "alice", tags: ["graphiql-demo"] }]) {
    id
    tags
  }
}

mutation UntagAlice {
  removeUserTags(input: [{ id: "alice", tags: ["graphiql-demo"] }]) {
    id
    tags
  }
}
${PUSH_EXAMPLE}`;

/** The document GraphiQL opens on: several operations, reads and writes, on the demo users. */
export function defaultDocument(jwt: boolean): string {
  return TITLE + (jwt ? JWT_HINT : '') + OPERATIONS;
}

export function graphiqlOptions(authHeaderHint: boolean): GraphiQLOptions {
  return {
    title: 'tim-tags-graphql',
    defaultQuery: defaultDocument(authHeaderHint),
    ...(authHeaderHint ? { headers: JSON.stringify({ Authorization: 'Bearer <your JWT>' }, null, 2) } : {}),
  };
}

/**
 * A renderer for one gateway. The page inlines several MB of JavaScript, so it
 * is rendered once per set of options and kept.
 */
export function offlineGraphiQLRenderer(): (opts: GraphiQLOptions) => Promise<string> {
  let rendered: { key: string; html: string } | null = null;
  return async (opts) => {
    const key = JSON.stringify(opts);
    if (rendered?.key !== key) {
      // Loaded on first use: the inlined bundle costs ~50 MB of memory, which a gateway with GRAPHIQL off never pays.
      const { renderGraphiQL } = await import('@graphql-yoga/render-graphiql');
      rendered = { key, html: renderGraphiQL(opts) };
    }
    return rendered.html;
  };
}
