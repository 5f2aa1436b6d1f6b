/** The embedded TIM emulator: a local, faithful stand-in for TIM's user-tag REST API. */
export { TimEmulator } from './emulator.js';
export { maxCallsInWindow, mostInWindow } from './rate.js';
export { TagStore } from './store.js';
export { AttributeStore, type AttributeSeed } from './attributes.js';
export type { FaultPlan } from './faults.js';
export type { EmulatorOptions, Fault, RecordedCall } from './types.js';
