/** Mutation.pushMessage: checks the input, hands the push to the sender, answers its TaskId. */
import { planPush, PushInputProblem, type PushInput } from '../tim/push.js';
import { UserAttributeInput } from './attributes.js';
import { builder } from './builder.js';
import { badInput, toGraphQLError } from './errors.js';

const PushTask = builder.objectRef<{ taskId: string }>('PushTask').implement({
  fields: (t) => ({ taskId: t.exposeString('taskId', { description: "TIM's TaskId for the push." }) }),
});

const PushAudienceInput = builder.inputType('PushAudienceInput', {
  fields: (t) => ({
    tagsAll: t.stringList({ description: 'Users holding every one of these tags.' }),
    tagsAny: t.stringList({ description: 'Users holding at least one of these tags.' }),
    attributesAll: t.field({ type: [UserAttributeInput], description: 'Users with every one of these values.' }),
    attributesAny: t.field({ type: [UserAttributeInput], description: 'Users with at least one of these values.' }),
  }),
});

const CustomElementInput = builder.inputType('CustomElementInput', {
  fields: (t) => ({
    data: t.string({ required: true }),
    description: t.string(),
    extension: t.string(),
  }),
});

const MessageElementInput = builder.inputType('MessageElementInput', {
  description: 'Exactly one field.',
  isOneOf: true,
  fields: (t) => ({
    text: t.string(),
    custom: t.field({ type: CustomElementInput }),
  }),
});

const OfflinePushInput = builder.inputType('OfflinePushInput', {
  fields: (t) => ({
    title: t.string(),
    description: t.string(),
    extension: t.string(),
  }),
});

const PushMessageInput = builder.inputType('PushMessageInput', {
  fields: (t) => ({
    audience: t.field({
      type: PushAudienceInput,
      description: 'Omit for every user. Tags and attributes cannot be combined.',
    }),
    elements: t.field({
      type: [MessageElementInput],
      required: true,
      description: 'One or more elements, sent in this order.',
    }),
    fromAccount: t.id({ description: 'The sender users see; the admin account when omitted.' }),
    offlineLifetimeSeconds: t.int({
      description:
        'Seconds the message waits for users who are offline, 0 to 604800; 0 (the default) reaches online users only.',
    }),
    offlinePush: t.field({ type: OfflinePushInput }),
    idempotencyKey: t.string({
      description:
        'The same key again within 7 days is the same push: it is delivered once and answers the same taskId.',
    }),
  }),
});

builder.mutationField('pushMessage', (t) =>
  t.field({
    type: PushTask,
    description: 'Pushes a message to every user, or to those whose tags or attributes match.',
    args: { input: t.arg({ type: PushMessageInput, required: true }) },
    resolve: async (_root, { input }, ctx) => {
      try {
        const order = planPush({ ...input, fromAccount: input.fromAccount?.toString() } as PushInput);
        const { taskId, repeated } = await ctx.services.push.push(
          { ...order, idempotencyKey: input.idempotencyKey },
          ctx.deadline,
        );
        ctx.services.log.info(
          { taskId, audience: order.kind, elements: order.body.MsgBody.length, repeated },
          'push sent',
        );
        return { taskId };
      } catch (err) {
        if (err instanceof PushInputProblem) throw badInput(err.message, { field: err.field });
        throw toGraphQLError(err);
      }
    },
  }),
);
