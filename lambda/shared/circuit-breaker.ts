// The prediction circuit breaker (seed pattern 19), pure parts: the per-instance failure window, the
// state machine and the rules of the shared state. Nothing here talks to AWS.
//
// closed --(failure rate over the rolling window > threshold, with at least minimumCalls)--> open
// open --(cool-down elapsed)--> half-open: at most `probes` calls go through, across every instance
// half-open --(a probe succeeds)--> closed;  half-open --(a probe fails)--> open again (a new cool-down)
//
// What counts as a failure: 5xx, throttling (429) and timeouts of the endpoint; a 4xx the caller caused
// does not. Each function instance counts its own calls; the transitions are shared (a store with
// conditional writes: DynamoDB in the handler), so every instance stops calling an endpoint that one of
// them found failing. A closed breaker reads the shared state at most once per `refreshMs`.
import { classifySageMakerError, RequestError, UpstreamError, type InferenceMiddleware, type ModelInvocation } from './inference';

export interface BreakerPolicy {
  /** Length of the rolling window the failure rate is measured over, in ms. */
  readonly windowMs: number;
  /** Failure rate (0-1) above which the breaker opens. */
  readonly failureRateThreshold: number;
  /** Calls the window must hold before the rate counts. */
  readonly minimumCalls: number;
  /** How long an open breaker refuses calls before probing, in ms. */
  readonly coolDownMs: number;
  /** Calls let through while half-open, across all instances. */
  readonly probes: number;
  /** How often an instance reads the shared state while it believes the breaker closed, in ms. */
  readonly refreshMs: number;
}

export const DEFAULT_BREAKER_POLICY: BreakerPolicy = {
  windowMs: 60_000,
  failureRateThreshold: 0.5,
  minimumCalls: 20,
  coolDownMs: 30_000,
  probes: 3,
  refreshMs: 1_000,
};

/** The problems of a policy, one per field (empty when it is usable). */
export function breakerPolicyProblems(policy: BreakerPolicy, path = ''): string[] {
  const problems: string[] = [];
  const check = (name: keyof BreakerPolicy, ok: boolean, rule: string) => {
    if (!ok) problems.push(`${path}${name}: ${rule}; got ${policy[name]}`);
  };
  check('windowMs', Number.isInteger(policy.windowMs) && policy.windowMs >= 1_000 && policy.windowMs <= 3_600_000, 'must be whole milliseconds from 1 s to 1 hour');
  check('failureRateThreshold', policy.failureRateThreshold > 0 && policy.failureRateThreshold < 1, 'must be above 0 and below 1');
  check('minimumCalls', Number.isInteger(policy.minimumCalls) && policy.minimumCalls >= 1 && policy.minimumCalls <= 10_000, 'must be a whole number from 1 to 10000');
  check('coolDownMs', Number.isInteger(policy.coolDownMs) && policy.coolDownMs >= 1_000 && policy.coolDownMs <= 3_600_000, 'must be whole milliseconds from 1 s to 1 hour');
  check('probes', Number.isInteger(policy.probes) && policy.probes >= 1 && policy.probes <= 100, 'must be a whole number from 1 to 100');
  check('refreshMs', Number.isInteger(policy.refreshMs) && policy.refreshMs >= 0 && policy.refreshMs <= 60_000, 'must be whole milliseconds from 0 to 1 minute');
  return problems;
}

/** Whether an endpoint failure counts against the breaker: 5xx, throttling and timeouts do; a caller's 4xx does not. */
export function countsAsFailure(status: number): boolean {
  return status >= 500 || status === 429;
}

const BUCKETS = 10;

/**
 * Calls and failures over the last `windowMs`, in ten buckets: old buckets fall out as time passes, so the
 * rate is over a rolling window, not one that resets.
 */
export class FailureWindow {
  private readonly bucketMs: number;
  private readonly buckets: Array<{ start: number; calls: number; failures: number }> = [];

  constructor(windowMs: number) {
    this.bucketMs = Math.max(1, Math.ceil(windowMs / BUCKETS));
  }

  record(now: number, failed: boolean): void {
    const start = now - (now % this.bucketMs);
    const last = this.buckets[this.buckets.length - 1];
    if (last !== undefined && last.start === start) {
      last.calls += 1;
      if (failed) last.failures += 1;
    } else {
      this.buckets.push({ start, calls: 1, failures: failed ? 1 : 0 });
    }
    this.prune(now);
  }

  /** Calls and failures whose bucket is still inside the window at `now`. */
  totals(now: number): { calls: number; failures: number } {
    this.prune(now);
    return this.buckets.reduce((sum, bucket) => ({ calls: sum.calls + bucket.calls, failures: sum.failures + bucket.failures }), { calls: 0, failures: 0 });
  }

  reset(): void {
    this.buckets.length = 0;
  }

  private prune(now: number): void {
    const oldest = now - this.bucketMs * BUCKETS;
    while (this.buckets.length > 0 && this.buckets[0].start + this.bucketMs <= oldest) this.buckets.shift();
  }
}

/** Whether the window's failure rate trips the breaker. */
export function trips(totals: { calls: number; failures: number }, policy: BreakerPolicy): boolean {
  return totals.calls >= policy.minimumCalls && totals.failures / totals.calls > policy.failureRateThreshold;
}

/** The shared state of one breaker (one item per endpoint, or endpoint and variant). */
export type SharedBreakerState =
  | { readonly status: 'closed'; readonly version: number }
  | { readonly status: 'open'; readonly version: number; readonly openedAt: number }
  | { readonly status: 'half-open'; readonly version: number; readonly probesLeft: number };

export const INITIAL_STATE: SharedBreakerState = { status: 'closed', version: 0 };

/** What a caller may do now, given the shared state. */
export type Admission = { readonly kind: 'call' } | { readonly kind: 'probe' } | { readonly kind: 'reject'; readonly retryAfterMs: number };

/**
 * The admission for one call: closed calls; open rejects until the cool-down is over and then probes
 * (the caller must claim the probe with {@link startProbing} or {@link claimProbe}); half-open probes
 * while probes are left and rejects otherwise.
 */
export function admit(state: SharedBreakerState, now: number, policy: BreakerPolicy): Admission {
  switch (state.status) {
    case 'closed':
      return { kind: 'call' };
    case 'open': {
      const left = state.openedAt + policy.coolDownMs - now;
      return left > 0 ? { kind: 'reject', retryAfterMs: left } : { kind: 'probe' };
    }
    case 'half-open':
      return state.probesLeft > 0 ? { kind: 'probe' } : { kind: 'reject', retryAfterMs: Math.min(policy.coolDownMs, 1_000) };
  }
}

/** The state after this instance's window tripped (closed -> open). */
export function open(state: SharedBreakerState, now: number): SharedBreakerState {
  return { status: 'open', version: state.version + 1, openedAt: now };
}

/** open (cool-down over) -> half-open with one probe claimed; half-open -> one probe fewer. */
export function claimProbe(state: SharedBreakerState, policy: BreakerPolicy): SharedBreakerState | undefined {
  if (state.status === 'open') return { status: 'half-open', version: state.version + 1, probesLeft: policy.probes - 1 };
  if (state.status === 'half-open' && state.probesLeft > 0) return { status: 'half-open', version: state.version + 1, probesLeft: state.probesLeft - 1 };
  return undefined;
}

/** A probe's outcome: success closes the breaker, failure opens it again for a new cool-down. */
export function probeResult(state: SharedBreakerState, succeeded: boolean, now: number): SharedBreakerState {
  return succeeded ? { status: 'closed', version: state.version + 1 } : { status: 'open', version: state.version + 1, openedAt: now };
}

/** Where the breakers' shared state lives (DynamoDB in the handler, with conditional writes). */
export interface BreakerStore {
  read(name: string): Promise<SharedBreakerState | undefined>;
  /** Writes `next` only if the stored version is still `expectedVersion` (0: no item); false when another instance got there first. */
  write(name: string, next: SharedBreakerState, expectedVersion: number): Promise<boolean>;
}

export interface CircuitBreakerOptions {
  readonly name: string;
  readonly policy: BreakerPolicy;
  /** The shared state; absent: this instance's own view only. */
  readonly store?: BreakerStore;
  /** Milliseconds since the epoch. @default Date.now */
  readonly now?: () => number;
  /** Told when the shared store fails; the breaker goes on with its own view. */
  readonly onStoreError?: (error: unknown) => void;
  /** Told about every transition this instance made (`made`) or saw in the shared state. */
  readonly onTransition?: (from: SharedBreakerState['status'], to: SharedBreakerState['status'], made: boolean) => void;
}

/**
 * One breaker as one function instance sees it: its own failure window and its view of the shared state,
 * read again at most every `refreshMs` while closed (so a closed breaker costs no I/O per call), and
 * whenever the view is open or half-open and a decision depends on it.
 */
export class CircuitBreaker {
  private view: SharedBreakerState = INITIAL_STATE;
  private readAt = Number.NEGATIVE_INFINITY;
  private readonly window: FailureWindow;
  private readonly now: () => number;

  constructor(private readonly options: CircuitBreakerOptions) {
    this.window = new FailureWindow(options.policy.windowMs);
    this.now = options.now ?? Date.now;
  }

  /** The state this instance last saw. */
  get state(): SharedBreakerState {
    return this.view;
  }

  /** Whether this call may go to the endpoint: a normal call, a probe (which must be recorded), or a rejection. */
  async admission(): Promise<Admission> {
    const { policy } = this.options;
    if (this.view.status !== 'closed' || this.now() - this.readAt >= policy.refreshMs) await this.refresh();
    // A probe must be claimed in the shared state; when another caller claimed first, decide again on
    // what it wrote (a few times at most: each lost race means the state moved on).
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const admission = admit(this.view, this.now(), policy);
      if (admission.kind !== 'probe') return admission;
      const next = claimProbe(this.view, policy);
      if (next === undefined) break;
      if (await this.transition(next)) return admission;
    }
    return { kind: 'reject', retryAfterMs: Math.min(policy.coolDownMs, 1_000) };
  }

  /** Records the outcome of an admitted call: `ignored` for failures that are the caller's (4xx). */
  async record(admission: Admission, outcome: 'success' | 'failure' | 'ignored'): Promise<void> {
    if (admission.kind === 'reject') return;
    const now = this.now();
    if (admission.kind === 'probe') {
      if (outcome === 'ignored') return;
      // Other instances may have claimed probes since (each claim moves the version): settle on the state
      // as it is now, as long as it is still half-open. Once another probe reopened or closed it, that stands.
      for (let attempt = 0; attempt < 3 && this.view.status === 'half-open'; attempt += 1) {
        if (await this.transition(probeResult(this.view, outcome === 'success', now))) {
          this.window.reset();
          return;
        }
      }
      return;
    }
    if (outcome === 'ignored') return;
    this.window.record(now, outcome === 'failure');
    if (this.view.status === 'closed' && trips(this.window.totals(now), this.options.policy)) {
      await this.transition(open(this.view, now));
      this.window.reset();
    }
  }

  private async refresh(): Promise<void> {
    if (this.options.store === undefined) return;
    try {
      const stored = (await this.options.store.read(this.options.name)) ?? INITIAL_STATE;
      if (stored.status !== this.view.status) this.options.onTransition?.(this.view.status, stored.status, false);
      this.view = stored;
      this.readAt = this.now();
    } catch (error) {
      // Keep deciding on the last view; try the store again on the next call.
      this.options.onStoreError?.(error);
    }
  }

  /** Moves to `next` if the shared state is still the one this instance saw; true when it did. */
  private async transition(next: SharedBreakerState): Promise<boolean> {
    const from = this.view.status;
    if (this.options.store !== undefined) {
      let written: boolean;
      try {
        written = await this.options.store.write(this.options.name, next, this.view.version);
      } catch (error) {
        this.options.onStoreError?.(error);
        written = true; // the store is down: this instance goes on alone with its own view
      }
      if (!written) {
        await this.refresh();
        return false;
      }
    }
    this.view = next;
    this.readAt = this.now();
    if (from !== next.status) this.options.onTransition?.(from, next.status, true);
    return true;
  }
}

/** The breaker's name for an invocation: per endpoint, and per variant when one is targeted. */
export function breakerName(invocation: Pick<ModelInvocation, 'endpointName' | 'targetVariant'>): string {
  return invocation.targetVariant === undefined ? invocation.endpointName : `${invocation.endpointName}/${invocation.targetVariant}`;
}

/**
 * Puts a breaker in front of every endpoint call. An open breaker answers 503 `CircuitOpen` at once, with
 * `Retry-After`, without calling the endpoint; what reaches the endpoint is recorded (5xx, throttling and
 * timeouts as failures, the caller's 4xx not at all).
 */
export function circuitBreakerMiddleware(breakerFor: (name: string, policy: BreakerPolicy) => CircuitBreaker): InferenceMiddleware {
  return (next) => async (invocation) => {
    // Only the models whose route has `breaker` are guarded.
    if (invocation.breaker === undefined) return next(invocation);
    const name = breakerName(invocation);
    const breaker = breakerFor(name, routeBreakerPolicy(invocation.breaker));
    const admission = await breaker.admission();
    if (admission.kind === 'reject') {
      const seconds = Math.max(1, Math.ceil(admission.retryAfterMs / 1000));
      throw new UpstreamError(503, 'CircuitOpen', `endpoint ${name} is failing and is not called for now; retry after ${seconds} s`, { retryAfterSeconds: seconds });
    }
    try {
      const result = await next(invocation);
      await breaker.record(admission, 'success');
      return result;
    } catch (error) {
      if (error instanceof RequestError) {
        await breaker.record(admission, 'ignored');
        throw error;
      }
      const upstream = classifySageMakerError(error);
      await breaker.record(admission, countsAsFailure(upstream.status) && !callerCaused(upstream) ? 'failure' : 'ignored');
      throw upstream;
    }
  };
}

/** A model error whose container answered 4xx: the caller's payload, not a failing endpoint. */
function callerCaused(error: UpstreamError): boolean {
  const original = (error.cause as { OriginalStatusCode?: unknown } | undefined)?.OriginalStatusCode;
  return error.code === 'ModelError' && typeof original === 'number' && original >= 400 && original < 500;
}

/** The policy of a route's `breaker` (seconds in the route, milliseconds here). */
export function routeBreakerPolicy(breaker: NonNullable<ModelInvocation['breaker']>, refreshMs = DEFAULT_BREAKER_POLICY.refreshMs): BreakerPolicy {
  return {
    windowMs: breaker.windowSeconds * 1000,
    failureRateThreshold: breaker.failureRateThreshold,
    minimumCalls: breaker.minimumCalls,
    coolDownMs: breaker.coolDownSeconds * 1000,
    probes: breaker.probes,
    refreshMs,
  };
}

/**
 * The breakers of one function instance, one per name; a route whose settings changed gets a new one
 * (its shared state stays: the next transition reads it).
 */
export class BreakerRegistry {
  private readonly breakers = new Map<string, { key: string; breaker: CircuitBreaker }>();

  constructor(private readonly make: (name: string, policy: BreakerPolicy) => CircuitBreaker) {}

  get(name: string, policy: BreakerPolicy): CircuitBreaker {
    const key = JSON.stringify(policy);
    const found = this.breakers.get(name);
    if (found !== undefined && found.key === key) return found.breaker;
    const breaker = this.make(name, policy);
    this.breakers.set(name, { key, breaker });
    return breaker;
  }
}
