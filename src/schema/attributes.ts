/**
 * Push attributes: `Query.attributeNames`, `User.attributes`, `User.attribute`
 * and the three attribute mutations. Resolvers check arguments and shape
 * answers; lookups go through the request's `attributes` loader (one
 * im_get_attr lookup per user, shared by both fields), names through the
 * upstream's attribute-name cache, writes through the upstream's writes.
 */
import { MAX_ATTR_SLOTS, attrProblem, type Attrs } from '../tim/wire.js';
import { builder } from './builder.js';
import type { GatewayContext } from './context.js';
import { badInput, quote, toGraphQLError } from './errors.js';
import { User, usersAfterWrite } from './user.js';

interface AttributeShape {
  name: string;
  value: string;
}

interface AttributeNameShape {
  slot: number;
  name: string;
}

export const UserAttribute = builder.objectRef<AttributeShape>('UserAttribute').implement({
  description: "One of a user's push attributes.",
  fields: (t) => ({
    name: t.exposeString('name'),
    value: t.exposeString('value'),
  }),
});

export const AttributeName = builder.objectRef<AttributeNameShape>('AttributeName').implement({
  description: 'A named attribute slot of the app.',
  fields: (t) => ({
    slot: t.exposeInt('slot', { description: 'The slot, 0 to 9.' }),
    name: t.exposeString('name'),
  }),
});

const AttributeNameInput = builder.inputType('AttributeNameInput', {
  description: 'A name for one attribute slot.',
  fields: (t) => ({
    slot: t.int({ required: true, description: 'The slot, 0 to 9.' }),
    name: t.string({ required: true, description: '1 to 50 UTF-8 bytes.' }),
  }),
});

/** Shared with push audiences. */
export const UserAttributeInput = builder.inputType('UserAttributeInput', {
  description: 'An attribute and its value.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'A name the app has given a slot.' }),
    value: t.string({ required: true, description: '1 to 50 UTF-8 bytes.' }),
  }),
});

const UserAttributesInput = builder.inputType('UserAttributesInput', {
  description: 'Attributes to set for one user.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The Tencent IM account (UserID).' }),
    attributes: t.field({ type: [UserAttributeInput], required: true }),
  }),
});

const UserAttributeNamesInput = builder.inputType('UserAttributeNamesInput', {
  description: 'Attributes to remove from one user, by name.',
  fields: (t) => ({
    id: t.id({ required: true, description: 'The Tencent IM account (UserID).' }),
    names: t.stringList({ required: true }),
  }),
});

builder.objectFields(User, (t) => ({
  attributes: t.field({
    type: [UserAttribute],
    nullable: true,
    description: "The user's push attributes, sorted by name; [] when none. null only when the lookup failed.",
    resolve: async (user, _args, ctx) => {
      if (user.writeError) throw user.writeError;
      const attrs = await ctx.attributes.load(user.id);
      return Object.entries(attrs)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, value]) => ({ name, value }));
    },
  }),
  attribute: t.field({
    type: 'String',
    nullable: true,
    description:
      "One attribute's value; null when the user has none (or the lookup failed, with an error at this path).",
    args: { name: t.arg.string({ required: true }) },
    resolve: async (user, { name }, ctx) => {
      if (user.writeError) throw user.writeError;
      const attrs: Attrs = await ctx.attributes.load(user.id);
      return Object.hasOwn(attrs, name) ? attrs[name]! : null;
    },
  }),
}));

builder.queryField('attributeNames', (t) =>
  t.field({
    type: [AttributeName],
    description: "The app's push attribute names, by slot (0 to 9), slot order.",
    resolve: async (_root, _args, ctx) => {
      try {
        const slots = await ctx.services.upstream.attributeNames.slots(ctx.deadline);
        return [...slots].map(([slot, name]) => ({ slot, name }));
      } catch (err) {
        throw toGraphQLError(err);
      }
    },
  }),
);

builder.mutationFields((t) => ({
  setAttributeNames: t.field({
    type: [AttributeName],
    description: 'Names attribute slots; slots not given keep their names. Returns every named slot after the write.',
    args: { names: t.arg({ type: [AttributeNameInput], required: true }) },
    resolve: async (_root, { names }, ctx) => {
      const given = checkAttributeNames(names);
      try {
        const slots = await ctx.services.upstream.attributeNames.rename(given, ctx.deadline);
        return [...slots].map(([slot, name]) => ({ slot, name }));
      } catch (err) {
        throw toGraphQLError(err);
      }
    },
  }),
  setUserAttributes: t.field({
    type: [User],
    description: "Sets the attributes given; a user's other attributes stay.",
    args: { input: t.arg({ type: [UserAttributesInput], required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const writes = checkEntries(input, ctx, (entry) => {
        if (entry.attributes.length === 0) return [];
        const attrs: Attrs = {};
        for (const { name, value } of entry.attributes) {
          checkText(name, 'Attribute name', entry.id);
          checkText(value, `The value of attribute ${quote(name)}`, entry.id);
          attrs[name] = value;
        }
        return attrs;
      });
      await checkNamed(
        writes.flatMap((w) => Object.keys(w.Attrs)),
        ctx,
      );
      return usersAfterWrite(await ctx.services.upstream.writes.setAttributes(writes, ctx.deadline, ctx.trace), ctx);
    },
  }),
  removeUserAttributes: t.field({
    type: [User],
    description: 'Removes the attributes named from each user.',
    args: { input: t.arg({ type: [UserAttributeNamesInput], required: true }) },
    resolve: async (_root, { input }, ctx) => {
      const writes = checkEntries(input, ctx, (entry) => {
        for (const name of entry.names) checkText(name, 'Attribute name', entry.id);
        return [...entry.names];
      });
      await checkNamed(
        writes.flatMap((w) => w.Attrs),
        ctx,
      );
      return usersAfterWrite(await ctx.services.upstream.writes.removeAttributes(writes, ctx.deadline, ctx.trace), ctx);
    },
  }),
}));

/** Slot -> name as given: slots 0 to 9, each once; names 1 to 50 bytes, each once. */
function checkAttributeNames(names: ReadonlyArray<{ slot: number; name: string }>): Map<number, string> {
  if (names.length === 0) throw badInput('names must name at least one slot', { argument: 'names' });
  const given = new Map<number, string>();
  const taken = new Set<string>();
  for (const { slot, name } of names) {
    if (!Number.isInteger(slot) || slot < 0 || slot >= MAX_ATTR_SLOTS)
      throw badInput(`Attribute slot ${slot} is not 0 to 9`, { argument: 'names', slot });
    if (given.has(slot)) throw badInput(`Attribute slot ${slot} is named twice`, { argument: 'names', slot });
    checkText(name, 'Attribute name');
    if (taken.has(name))
      throw badInput(`Attribute name ${quote(name)} is given to two slots`, { argument: 'names', name });
    taken.add(name);
    given.set(slot, name);
  }
  return given;
}

/**
 * Admits each entry's id and reads its attributes with `read` (which throws
 * BAD_USER_INPUT for a bad name or value); an entry with none is refused.
 */
function checkEntries<E extends { id: string | number }, A extends Attrs | string[]>(
  input: readonly E[],
  ctx: GatewayContext,
  read: (entry: E & { id: string }) => A | [],
): Array<{ To_Account: string; Attrs: A }> {
  if (input.length === 0) throw badInput('input must name at least one user', { argument: 'input' });
  return input.map((entry) => {
    const [account] = ctx.ids.admit([entry.id], 'input', { refuseRequest: false }) as [string];
    const attrs = read({ ...entry, id: account });
    if (Array.isArray(attrs) ? attrs.length === 0 : Object.keys(attrs).length === 0)
      throw badInput(`The attribute list for user ${quote(account)} is empty`, {
        argument: 'input',
        id: account,
      });
    return { To_Account: account, Attrs: attrs as A };
  });
}

/** An attribute name or value: 1 to 50 bytes. */
function checkText(text: string, what: string, id?: string): void {
  const problem = attrProblem(text);
  if (!problem) return;
  const whose = id === undefined ? '' : ` for user ${quote(id)}`;
  throw badInput(`${what} ${quote(text)}${whose} ${problem} (1 to 50 bytes)`, {
    argument: id === undefined ? 'names' : 'input',
    ...(id === undefined ? {} : { id }),
  });
}

/** Refuses, naming it, the first attribute the app has not named; no write call is made. */
async function checkNamed(names: readonly string[], ctx: GatewayContext): Promise<void> {
  let unknown: string[];
  try {
    unknown = await ctx.services.upstream.attributeNames.unknown(names, ctx.deadline);
  } catch (err) {
    throw toGraphQLError(err);
  }
  if (unknown.length > 0) {
    throw badInput(
      `Attribute ${quote(unknown[0])} is not one of the app's attribute names (set it with setAttributeNames first)`,
      { argument: 'input', attribute: unknown[0] },
    );
  }
}
