/** Injected faults, waiting for the calls they will answer. */
import type { Fault } from './types.js';

interface PendingFault {
  fault: Fault;
  /** Matching calls still to let through before this fault starts answering. */
  skip: number;
  /** Matching calls this fault will still answer. */
  count: number;
}

export interface FaultPlan {
  /** Calls to answer with the fault; default 1 (Infinity: until cleared). */
  count?: number;
  /** Matching calls to let through first; default 0. */
  skip?: number;
}

export class FaultQueue {
  private pending: PendingFault[] = [];

  add(fault: Fault, plan: FaultPlan = {}): void {
    const problem = faultProblem(fault) ?? planProblem(plan);
    if (problem) throw new TypeError(`injectFault: ${problem} (got ${JSON.stringify({ fault, ...plan })})`);
    this.pending.push({ fault: { ...fault }, skip: plan.skip ?? 0, count: plan.count ?? 1 });
  }

  clear(): void {
    this.pending = [];
  }

  /**
   * The fault this call of `command` gets, if any. Every pending fault sees every matching call
   * (so each one's skip counts down independently); the oldest one that is done skipping answers.
   */
  take(command: string): Fault | undefined {
    if (this.pending.length === 0) return undefined;
    let chosen: PendingFault | undefined;
    for (const p of this.pending) {
      if (p.fault.command !== undefined && p.fault.command !== command) continue;
      if (p.skip > 0) p.skip--;
      else if (!chosen) chosen = p;
    }
    if (!chosen) return undefined;
    if (--chosen.count <= 0) this.pending = this.pending.filter((p) => p !== chosen);
    return chosen.fault;
  }
}

/** What is wrong with a fault given from outside (the API or the control surface), or null. */
export function faultProblem(fault: unknown): string | null {
  if (typeof fault !== 'object' || fault === null || Array.isArray(fault)) return 'fault must be an object';
  const f = fault as Record<string, unknown>;
  if (f.errorCode !== undefined && !Number.isInteger(f.errorCode)) return 'errorCode must be an integer';
  if (f.errorInfo !== undefined && typeof f.errorInfo !== 'string') return 'errorInfo must be a string';
  const status = f.httpStatus;
  if (status !== undefined && !(Number.isInteger(status) && (status as number) >= 100 && (status as number) <= 599)) {
    return 'httpStatus must be an HTTP status from 100 to 599';
  }
  if (f.garbage !== undefined && typeof f.garbage !== 'boolean') return 'garbage must be a boolean';
  if (f.hangMs !== undefined && !(typeof f.hangMs === 'number' && f.hangMs >= 0)) return 'hangMs must be a number >= 0';
  if (f.command !== undefined && typeof f.command !== 'string') return 'command must be a string';
  return null;
}

function planProblem(plan: FaultPlan): string | null {
  const { count, skip } = plan;
  if (count !== undefined && !(count === Infinity || (Number.isInteger(count) && count >= 1))) {
    return 'count must be a whole number >= 1 (or Infinity)';
  }
  if (skip !== undefined && !(Number.isInteger(skip) && skip >= 0)) return 'skip must be a whole number >= 0';
  return null;
}
