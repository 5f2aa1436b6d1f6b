/**
 * The control surface under /__emulator/, for tools in other processes (benchmarks, black-box
 * checks). It only uses TimEmulator's public API; its calls are neither recorded nor rate-limited.
 *
 *   GET    /__emulator/calls?since=INDEX   recorded calls from INDEX on (default 0)
 *   POST   /__emulator/reset               clears recorded calls and pending faults
 *   POST   /__emulator/faults              {fault, count?, skip?}: injects a fault
 *   DELETE /__emulator/faults              clears pending faults
 *   POST   /__emulator/latency             {ms, command?}: sets the latency added to every answer (or to that command's)
 *   GET    /__emulator/store?account=ID    {To_Account, Tags, exists}; without account, the whole store
 *   GET    /__emulator/attributes?account=ID  {To_Account, Attrs}; without account, the names and every user's
 *   GET    /__emulator/pushes              im_push tasks with their recipients, oldest first
 *   POST   /__emulator/push-settings       {dailyQuota?, enabled?}: the day's push quota, whether push is enabled
 */
import type { ServerResponse } from 'node:http';
import type { TimEmulator } from './emulator.js';
import { faultProblem } from './faults.js';
import type { Fault } from './types.js';

export const CONTROL_PREFIX = '/__emulator/';

export interface ControlRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  /** null when the body was too large. */
  raw: Buffer | null;
}

export function handleControl(emulator: TimEmulator, req: ControlRequest, res: ServerResponse): void {
  const route = `${req.method} ${req.path.slice(CONTROL_PREFIX.length)}`;
  try {
    const result = runControl(emulator, route, req);
    if (result === NOT_FOUND) reply(res, 404, { error: `no control route ${route}` });
    else reply(res, 200, result);
  } catch (err) {
    reply(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
}

const NOT_FOUND = Symbol('not found');

function runControl(emulator: TimEmulator, route: string, req: ControlRequest): unknown {
  switch (route) {
    case 'GET calls': {
      const since = req.query.since === undefined ? 0 : Number(req.query.since);
      if (!Number.isInteger(since) || since < 0)
        throw new Error(`since must be a whole number, got ${req.query.since}`);
      return emulator.calls.slice(since);
    }
    case 'GET pushes':
      return emulator.pushes.tasks;
    case 'POST push-settings': {
      const { dailyQuota, enabled } = jsonBody(req) as { dailyQuota?: unknown; enabled?: unknown };
      if (dailyQuota !== undefined && !(Number.isInteger(dailyQuota) && (dailyQuota as number) >= 0))
        throw new Error('dailyQuota must be a whole number >= 0');
      if (enabled !== undefined && typeof enabled !== 'boolean') throw new Error('enabled must be a boolean');
      if (dailyQuota !== undefined) emulator.pushes.dailyQuota = dailyQuota as number;
      if (enabled !== undefined) emulator.pushes.enabled = enabled;
      return { ok: true, dailyQuota: emulator.pushes.dailyQuota, enabled: emulator.pushes.enabled };
    }
    case 'POST reset':
      emulator.pushes.reset();
      emulator.resetCalls();
      emulator.clearFaults();
      return { ok: true };
    case 'POST faults': {
      const { fault, count, skip } = jsonBody(req) as { fault?: unknown; count?: number; skip?: number };
      const problem = faultProblem(fault);
      if (problem) throw new Error(`body must be {fault, count?, skip?}: ${problem}`);
      emulator.injectFault(fault as Fault, { count, skip });
      return { ok: true };
    }
    case 'DELETE faults':
      emulator.clearFaults();
      return { ok: true };
    case 'POST latency': {
      const { ms, command } = jsonBody(req) as { ms?: unknown; command?: unknown };
      if (typeof ms !== 'number' || !(ms >= 0))
        throw new Error(`body must be {ms} with ms >= 0, got ${JSON.stringify(ms)}`);
      if (command !== undefined && typeof command !== 'string') throw new Error('command must be a string');
      if (command === undefined) emulator.latencyMs = ms;
      else emulator.latencyByCommand.set(command, ms);
      return command === undefined ? { ok: true, latencyMs: ms } : { ok: true, latencyMs: ms, command };
    }
    case 'GET store': {
      const account = req.query.account;
      const { store } = emulator;
      if (account !== undefined)
        return { To_Account: account, Tags: store.getTags(account), exists: store.has(account) };
      const userTags = [...store.snapshot()].map(([To_Account, Tags]) => ({ To_Account, Tags }));
      return { accounts: userTags.length, distinctTags: store.distinctTags(), UserTags: userTags };
    }
    case 'GET attributes': {
      const account = req.query.account;
      const { attributes } = emulator;
      if (account !== undefined) return { To_Account: account, Attrs: attributes.get(account) };
      return {
        AttrNames: attributes.attrNames(),
        UserAttrs: attributes.accounts().map((a) => ({ To_Account: a, Attrs: attributes.get(a) })),
      };
    }
    default:
      return NOT_FOUND;
  }
}

function jsonBody(req: ControlRequest): object {
  try {
    const body: unknown = JSON.parse(req.raw?.toString('utf8') || 'null');
    if (typeof body === 'object' && body !== null) return body;
  } catch {
    // answered below
  }
  throw new Error('body must be a JSON object');
}

function reply(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
