// The circuit breaker's pure parts and its coordination through a shared store, with a clock the test
// moves: the rolling window, the transitions, probes across instances, and the middleware's answers.
import fc from 'fast-check';
import {
  admit,
  breakerPolicyProblems,
  BreakerRegistry,
  CircuitBreaker,
  circuitBreakerMiddleware,
  countsAsFailure,
  DEFAULT_BREAKER_POLICY,
  FailureWindow,
  routeBreakerPolicy,
  trips,
  type BreakerPolicy,
  type BreakerStore,
  type SharedBreakerState,
} from '../../../lambda/shared/circuit-breaker';
import { composeBackend, errorResponse, UpstreamError, type InferenceBackend, type ModelInvocation } from '../../../lambda/shared/inference';

const POLICY: BreakerPolicy = { windowMs: 10_000, failureRateThreshold: 0.5, minimumCalls: 4, coolDownMs: 5_000, probes: 2, refreshMs: 1_000 };

/** A store with DynamoDB's conditional-write semantics, in memory; can be told to fail. */
class MemoryStore implements BreakerStore {
  readonly items = new Map<string, SharedBreakerState>();
  reads = 0;
  writes = 0;
  failure: Error | undefined;
  async read(name: string): Promise<SharedBreakerState | undefined> {
    this.reads += 1;
    if (this.failure) throw this.failure;
    return this.items.get(name);
  }
  async write(name: string, next: SharedBreakerState, expectedVersion: number): Promise<boolean> {
    this.writes += 1;
    if (this.failure) throw this.failure;
    if ((this.items.get(name)?.version ?? 0) !== expectedVersion) return false;
    this.items.set(name, next);
    return true;
  }
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

describe('policy and failure rules', () => {
  test('the default policy is valid and every bad field is named', () => {
    expect(breakerPolicyProblems(DEFAULT_BREAKER_POLICY)).toEqual([]);
    expect(breakerPolicyProblems({ windowMs: 10, failureRateThreshold: 1, minimumCalls: 0, coolDownMs: 1.5, probes: 0, refreshMs: -1 }, 'breaker.')).toEqual([
      'breaker.windowMs: must be whole milliseconds from 1 s to 1 hour; got 10',
      'breaker.failureRateThreshold: must be above 0 and below 1; got 1',
      'breaker.minimumCalls: must be a whole number from 1 to 10000; got 0',
      'breaker.coolDownMs: must be whole milliseconds from 1 s to 1 hour; got 1.5',
      'breaker.probes: must be a whole number from 1 to 100; got 0',
      'breaker.refreshMs: must be whole milliseconds from 0 to 1 minute; got -1',
    ]);
  });

  test('5xx, throttling and timeouts count; a caller\'s 4xx does not', () => {
    expect([502, 503, 504, 429, 500].every(countsAsFailure)).toBe(true);
    expect([400, 404, 413].some(countsAsFailure)).toBe(false);
  });

  test('the window rolls: failures older than the window no longer count', () => {
    const window = new FailureWindow(10_000);
    for (let i = 0; i < 4; i += 1) window.record(0, true);
    expect(window.totals(9_000)).toEqual({ calls: 4, failures: 4 });
    expect(window.totals(11_000)).toEqual({ calls: 0, failures: 0 });
    expect(trips({ calls: 4, failures: 3 }, POLICY)).toBe(true);
    expect(trips({ calls: 3, failures: 3 }, POLICY)).toBe(false);
    expect(trips({ calls: 4, failures: 2 }, POLICY)).toBe(false);
  });
});

describe('CircuitBreaker', () => {
  test('opens after the threshold, rejects until the cool-down, probes, and closes on a successful probe', async () => {
    const time = clock();
    const transitions: string[] = [];
    const breaker = new CircuitBreaker({ name: 'e', policy: POLICY, store: new MemoryStore(), now: time.now, onTransition: (from, to) => transitions.push(`${from}->${to}`) });
    for (let i = 0; i < 4; i += 1) await breaker.record(await breaker.admission(), i === 0 ? 'success' : 'failure');
    expect(breaker.state.status).toBe('open');
    expect(await breaker.admission()).toEqual({ kind: 'reject', retryAfterMs: 5_000 });
    time.advance(4_999);
    expect((await breaker.admission()).kind).toBe('reject');
    time.advance(1);
    const probe = await breaker.admission();
    expect(probe.kind).toBe('probe');
    await breaker.record(probe, 'success');
    expect(breaker.state.status).toBe('closed');
    expect(transitions).toEqual(['closed->open', 'open->half-open', 'half-open->closed']);
  });

  test('a failed probe opens it again for a new cool-down', async () => {
    const time = clock();
    const breaker = new CircuitBreaker({ name: 'e', policy: POLICY, store: new MemoryStore(), now: time.now });
    for (let i = 0; i < 4; i += 1) await breaker.record(await breaker.admission(), 'failure');
    time.advance(5_000);
    await breaker.record(await breaker.admission(), 'failure');
    expect(breaker.state.status).toBe('open');
    time.advance(4_000);
    expect((await breaker.admission()).kind).toBe('reject');
  });

  test('a closed breaker reads the shared state at most once per refreshMs, and never writes', async () => {
    const time = clock();
    const store = new MemoryStore();
    const breaker = new CircuitBreaker({ name: 'e', policy: POLICY, store, now: time.now });
    for (let i = 0; i < 50; i += 1) {
      await breaker.record(await breaker.admission(), 'success');
      time.advance(10);
    }
    expect(store.reads).toBe(1);
    expect(store.writes).toBe(0);
  });

  test('two instances agree: one trips it, the other stops calling within refreshMs, and only `probes` probes go out in all', async () => {
    const time = clock();
    const store = new MemoryStore();
    const a = new CircuitBreaker({ name: 'e', policy: POLICY, store, now: time.now });
    const b = new CircuitBreaker({ name: 'e', policy: POLICY, store, now: time.now });
    expect((await b.admission()).kind).toBe('call');
    for (let i = 0; i < 4; i += 1) await a.record(await a.admission(), 'failure');
    time.advance(POLICY.refreshMs);
    expect((await b.admission()).kind).toBe('reject');
    time.advance(POLICY.coolDownMs);
    const admissions = await Promise.all([a.admission(), b.admission(), a.admission(), b.admission()]);
    expect(admissions.filter((admission) => admission.kind === 'probe')).toHaveLength(POLICY.probes);
  });

  test('a store that goes away leaves each instance on its own view, reported', async () => {
    const time = clock();
    const store = new MemoryStore();
    const errors: string[] = [];
    const breaker = new CircuitBreaker({ name: 'e', policy: POLICY, store, now: time.now, onStoreError: (error) => errors.push((error as Error).message) });
    store.failure = new Error('ResourceNotFoundException');
    expect((await breaker.admission()).kind).toBe('call');
    for (let i = 0; i < 4; i += 1) await breaker.record(await breaker.admission(), 'failure');
    expect(breaker.state.status).toBe('open');
    expect((await breaker.admission()).kind).toBe('reject');
    expect(errors.length).toBeGreaterThan(0);
  });

  test('property: while open, no call is admitted before the cool-down is over', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ wait: fc.integer({ min: 0, max: 3_000 }), failed: fc.boolean() }), { minLength: 1, maxLength: 80 }), async (steps) => {
        const time = clock();
        const breaker = new CircuitBreaker({ name: 'e', policy: POLICY, store: new MemoryStore(), now: time.now });
        for (const step of steps) {
          time.advance(step.wait);
          const before = breaker.state;
          const admission = await breaker.admission();
          if (before.status === 'open' && time.now() < before.openedAt + POLICY.coolDownMs) expect(admission.kind).toBe('reject');
          await breaker.record(admission, step.failed ? 'failure' : 'success');
        }
      }),
    );
  });

  test('property: admit never lets an open breaker call and always lets a closed one', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 100_000 }), (openedAt, now) => {
        const admission = admit({ status: 'open', version: 1, openedAt }, now, POLICY);
        expect(admission.kind).toBe(now < openedAt + POLICY.coolDownMs ? 'reject' : 'probe');
        expect(admit({ status: 'closed', version: 0 }, now, POLICY).kind).toBe('call');
      }),
    );
  });
});

describe('circuitBreakerMiddleware', () => {
  const breaker = { windowSeconds: 10, failureRateThreshold: 0.5, minimumCalls: 4, coolDownSeconds: 5, probes: 2 };
  const invocation: ModelInvocation = { endpointName: 'churn-endpoint', body: '[1]', contentType: 'application/json', accept: 'application/json', inferenceId: 'p', breaker };

  test('a model without breaker settings passes straight through', async () => {
    let made = 0;
    const backend = composeBackend(async () => ({ body: 'ok' }), circuitBreakerMiddleware((name, policy) => {
      made += 1;
      return new CircuitBreaker({ name, policy });
    }));
    const { breaker: _omitted, ...unguarded } = invocation;
    await expect(backend(unguarded)).resolves.toEqual({ body: 'ok' });
    expect(made).toBe(0);
  });

  test('the registry keeps one breaker per name, and a new one when the route\'s settings change', () => {
    const registry = new BreakerRegistry((name, policy) => new CircuitBreaker({ name, policy }));
    const policy = routeBreakerPolicy(breaker);
    expect(policy).toEqual({ windowMs: 10_000, failureRateThreshold: 0.5, minimumCalls: 4, coolDownMs: 5_000, probes: 2, refreshMs: 1_000 });
    const first = registry.get('e', policy);
    expect(registry.get('e', { ...policy })).toBe(first);
    expect(registry.get('e', { ...policy, probes: 3 })).not.toBe(first);
  });

  test('a failing endpoint opens the breaker; then 503 CircuitOpen with Retry-After, without calling it; a probe after the cool-down closes it', async () => {
    const time = clock();
    const breakers = new Map<string, CircuitBreaker>();
    let calls = 0;
    let healthy = false;
    const endpoint: InferenceBackend = async () => {
      calls += 1;
      if (!healthy) throw new UpstreamError(503, 'ServiceUnavailable', 'the endpoint is unavailable');
      return { body: '{}', contentType: 'application/json' };
    };
    const backend = composeBackend(endpoint, circuitBreakerMiddleware((name, policy) => breakers.get(name) ?? breakers.set(name, new CircuitBreaker({ name, policy, store: new MemoryStore(), now: time.now })).get(name)!));
    for (let i = 0; i < 4; i += 1) await expect(backend(invocation)).rejects.toMatchObject({ code: 'ServiceUnavailable' });
    const rejected = await backend(invocation).catch((error: unknown) => error);
    expect(rejected).toMatchObject({ status: 503, code: 'CircuitOpen', retryAfterSeconds: 5 });
    expect(errorResponse(rejected).headers).toMatchObject({ 'retry-after': '5' });
    expect(calls).toBe(4);
    healthy = true;
    time.advance(5_000);
    await expect(backend(invocation)).resolves.toMatchObject({ body: '{}' });
    await expect(backend(invocation)).resolves.toMatchObject({ body: '{}' });
    expect(calls).toBe(6);
    expect(breakers.get('churn-endpoint')?.state.status).toBe('closed');
  });

  test('a target variant has its own breaker, and a container\'s 4xx never opens one', async () => {
    const time = clock();
    const breakers = new Map<string, CircuitBreaker>();
    const cause = { name: 'ModelError', OriginalStatusCode: 400 };
    const endpoint: InferenceBackend = async () => {
      throw new UpstreamError(502, 'ModelError', 'the model refused the payload (status 400)', { cause });
    };
    const backend = composeBackend(endpoint, circuitBreakerMiddleware((name, policy) => breakers.get(name) ?? breakers.set(name, new CircuitBreaker({ name, policy, now: time.now })).get(name)!));
    for (let i = 0; i < 10; i += 1) await expect(backend({ ...invocation, targetVariant: 'challenger' })).rejects.toMatchObject({ code: 'ModelError' });
    expect([...breakers.keys()]).toEqual(['churn-endpoint/challenger']);
    expect(breakers.get('churn-endpoint/challenger')?.state.status).toBe('closed');
  });
});

test('a successful probe closes the breaker even after another instance claimed the other probe', async () => {
  const time = clock();
  const store = new MemoryStore();
  const policy = { ...POLICY, refreshMs: 0 };
  const a = new CircuitBreaker({ name: 'e', policy, store, now: time.now });
  const b = new CircuitBreaker({ name: 'e', policy, store, now: time.now });
  for (let i = 0; i < 4; i += 1) await a.record(await a.admission(), 'failure');
  time.advance(policy.coolDownMs);
  const probeA = await a.admission();
  const probeB = await b.admission();
  expect([probeA.kind, probeB.kind]).toEqual(['probe', 'probe']);
  await a.record(probeA, 'success');
  expect(a.state.status).toBe('closed');
  // b's probe comes back after the breaker closed: it changes nothing.
  await b.record(probeB, 'failure');
  expect((await b.admission()).kind).toBe('call');
});
