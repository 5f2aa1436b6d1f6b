/** GraphiQL, served by the gateway itself (no CDN), opened on a document that shows what the API does. */
import { renderGraphiQL } from '@graphql-yoga/render-graphiql';
import type { GraphiQLOptions } from 'graphql-yoga';

export const DEFAULT_DOCUMENT = `# tim-tags-graphql: Tencent IM user tags over GraphQL.
# Press the run button (or Ctrl-Enter) and pick an operation.

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
`;

export function graphiqlOptions(authHeaderHint: boolean): GraphiQLOptions {
  return {
    title: 'tim-tags-graphql',
    defaultQuery: DEFAULT_DOCUMENT,
    ...(authHeaderHint ? { headers: JSON.stringify({ Authorization: 'Bearer <your JWT>' }, null, 2) } : {}),
  };
}

let rendered: { key: string; html: string } | null = null;

/** The page inlines several MB of JavaScript; render it once per set of options. */
export function renderOfflineGraphiQL(opts: GraphiQLOptions): string {
  const key = JSON.stringify(opts);
  if (rendered?.key !== key) rendered = { key, html: renderGraphiQL(opts) };
  return rendered.html;
}
