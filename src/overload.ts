/**
 * Load shedding. A process that takes every request it is sent answers all of them late once it
 * falls behind: work queues on the event loop, each answer waits for all the work ahead of it,
 * and deadlines pass while the answers are still being computed. Refusing new work at once, with
 * 503 OVERLOADED and Retry-After, keeps the work already taken answerable in time and tells
 * clients when to come back.
 *
 * Two signals, both read when a request arrives, before its body is read:
 * - event-loop lag, sampled by a timer that measures how late it fires. Past `lagMs` heavy
 *   requests (a body over HEAVY_BODY_BYTES, or one of unknown length) are refused, past twice it
 *   all of them, so light requests are still answered while the heavy ones are shed. A high
 *   sample holds for HOLD_MS: the lag is measured only between stalls, and the next stall may
 *   already be under way;
 * - requests in flight: at `maxInFlight` every new one is refused, and heavy ones may hold only
 *   half of it.
 * Health, readiness and metrics are never shed: they are how an operator sees the overload.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { writeErrorResponse } from './plugins/error-codes.js';
import { requestIdFrom } from './plugins/request-id.js';

/** A body over this is "heavy": about 500 ids of 32 bytes. */
export const HEAVY_BODY_BYTES = 16 * 1024;
const SAMPLE_MS = 50;
const HOLD_MS = 1000;
const RETRY_AFTER_S = 1;
const EXEMPT = new Set(['/healthz', '/readyz', '/metrics']);

export interface OverloadOptions {
  /** Event-loop lag at which heavy requests are shed, all of them at twice it; 0: no lag shedding. */
  lagMs: number;
  maxInFlight: number;
}

export class LoadShedder {
  private inFlight = 0;
  private heavyInFlight = 0;
  private lagMs = 0;
  private lagSeenAt = 0;
  private shedSince = 0;
  private shedCount = 0;
  private readonly sampler: NodeJS.Timeout | null;

  /** `onShed` hears, at most once a second, why requests are being refused and how many were. */
  constructor(
    private readonly opts: OverloadOptions,
    private readonly onShed: (why: string, refused: number) => void = () => {},
  ) {
    let expected = performance.now() + SAMPLE_MS;
    this.sampler =
      opts.lagMs > 0
        ? setInterval(() => {
            const now = performance.now();
            const lag = Math.max(0, now - expected);
            expected = now + SAMPLE_MS;
            if (lag >= this.lagMs || now - this.lagSeenAt > HOLD_MS) {
              this.lagMs = lag;
              this.lagSeenAt = now;
            }
          }, SAMPLE_MS)
        : null;
    this.sampler?.unref();
  }

  /** Why new requests are being refused right now (for /readyz), or null. */
  problem(): string | null {
    const lag = this.currentLagMs();
    if (this.opts.lagMs > 0 && lag >= this.opts.lagMs)
      return `overloaded: the event loop lags ${Math.round(lag)} ms (OVERLOAD_EVENT_LOOP_LAG_MS=${this.opts.lagMs}); heavy requests are refused`;
    if (this.inFlight >= this.opts.maxInFlight)
      return `overloaded: ${this.inFlight} requests in flight (OVERLOAD_MAX_IN_FLIGHT=${this.opts.maxInFlight})`;
    return null;
  }

  /**
   * Takes the request, counting it until its response closes, or refuses it with 503 and says so.
   * Call it before anything reads the body.
   */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    if (EXEMPT.has(pathOf(req.url ?? ''))) return true;
    const heavy = isHeavy(req);
    const why = this.refusal(heavy);
    if (why) {
      refuse(req, res, why);
      this.tell(why);
      return false;
    }
    this.inFlight++;
    if (heavy) this.heavyInFlight++;
    res.on('close', heavy ? this.heavyClosed : this.closed);
    return true;
  }

  /** A taken response closed (one handler each, made once: not a closure per request). */
  private readonly closed = () => void this.inFlight--;
  private readonly heavyClosed = () => {
    this.inFlight--;
    this.heavyInFlight--;
  };

  private tell(why: string): void {
    this.shedCount++;
    const now = performance.now();
    if (now - this.shedSince < HOLD_MS) return;
    this.onShed(why, this.shedCount);
    this.shedSince = now;
    this.shedCount = 0;
  }

  close(): void {
    if (this.sampler) clearInterval(this.sampler);
  }

  private refusal(heavy: boolean): string | null {
    const { lagMs, maxInFlight } = this.opts;
    if (this.inFlight >= maxInFlight) return 'too many requests are in flight';
    if (heavy && this.heavyInFlight >= Math.floor(maxInFlight / 2)) return 'too many large requests are in flight';
    const lag = this.currentLagMs();
    if (lagMs > 0 && lag >= 2 * lagMs) return 'the gateway is falling behind';
    if (lagMs > 0 && heavy && lag >= lagMs) return 'the gateway is falling behind; large requests are refused';
    return null;
  }

  /** The highest lag sampled in the last HOLD_MS. */
  private currentLagMs(): number {
    const sinceSample = performance.now() - this.lagSeenAt;
    return sinceSample > HOLD_MS ? 0 : this.lagMs;
  }
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

function isHeavy(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding']) return true;
  const length = Number(req.headers['content-length'] ?? 0);
  return !(length <= HEAVY_BODY_BYTES) || (req.url ?? '').length > HEAVY_BODY_BYTES;
}

function refuse(req: IncomingMessage, res: ServerResponse, why: string): void {
  const body = JSON.stringify({
    errors: [
      {
        message: `Overloaded: ${why}; retry after ${RETRY_AFTER_S} s`,
        extensions: { code: 'OVERLOADED' },
      },
    ],
  });
  // The body is not read: closing the connection keeps what the client still sends from arriving.
  writeErrorResponse(res, 503, body, {
    'retry-after': String(RETRY_AFTER_S),
    'x-request-id': requestIdFrom(req.headers['x-request-id']),
    connection: 'close',
  });
}
