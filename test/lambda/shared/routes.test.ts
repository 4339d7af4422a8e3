import fc from 'fast-check';
import { ConfigError, UpstreamError, type ModelRoute } from '../../../lambda/shared/inference';
import { MODEL_NAME_PATTERN } from '../../../lib/serving/private/variant-rules';
import { parseTtlSeconds, ROUTE_MODEL_NAME_PATTERN, RouteCache, type RouteCacheOptions, type RouteStore } from '../../../lambda/shared/routes';

const route = (version: string): ModelRoute => ({ endpointName: 'churn-endpoint', variants: { blue: { modelVersion: version } } });

/** An in-memory store: values by model, a switch to make it fail, and a count of reads. */
class FakeStore implements RouteStore {
  readonly values = new Map<string, string>();
  readonly reads: string[] = [];
  failure: Error | undefined;
  /** When set, reads wait for this promise (to hold several requests in flight). */
  gate: Promise<void> | undefined;

  set(model: string, value: ModelRoute | string): void {
    this.values.set(model, typeof value === 'string' ? value : JSON.stringify(value));
  }

  describe(model: string): string {
    return `store entry ${model}`;
  }

  async read(model: string): Promise<string | undefined> {
    this.reads.push(model);
    if (this.gate) await this.gate;
    if (this.failure) throw this.failure;
    return this.values.get(model);
  }
}

function cacheOver(store: FakeStore, options: Partial<RouteCacheOptions> = {}): { cache: RouteCache; clock: { now: number } } {
  const clock = { now: 1_000_000 };
  const cache = new RouteCache(store, { ttlMs: 60_000, negativeTtlMs: 10_000, jitter: 0, now: () => clock.now, ...options });
  return { cache, clock };
}

describe('RouteCache', () => {
  test('reads a route once per TTL and again when it expires, picking up a changed route', async () => {
    const store = new FakeStore();
    store.set('churn', route('v1'));
    const { cache, clock } = cacheOver(store);

    expect(await cache.route('churn')).toEqual(route('v1'));
    store.set('churn', route('v2'));
    clock.now += 59_999;
    expect(await cache.route('churn')).toEqual(route('v1'));
    expect(store.reads).toEqual(['churn']);

    clock.now += 1;
    expect(await cache.route('churn')).toEqual(route('v2'));
    expect(store.reads).toEqual(['churn', 'churn']);
  });

  test('concurrent requests for an expired route share one read', async () => {
    const store = new FakeStore();
    store.set('churn', route('v1'));
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    const { cache } = cacheOver(store);

    const pending = Array.from({ length: 20 }, () => cache.route('churn'));
    open();

    expect(await Promise.all(pending)).toEqual(Array.from({ length: 20 }, () => route('v1')));
    expect(store.reads).toEqual(['churn']);
  });

  test('remembers an unknown model for the negative TTL only, so a new family is served soon after its deploy', async () => {
    const store = new FakeStore();
    const { cache, clock } = cacheOver(store);

    expect(await cache.route('upsell')).toBeUndefined();
    store.set('upsell', route('u1'));
    clock.now += 9_999;
    expect(await cache.route('upsell')).toBeUndefined();
    expect(store.reads).toHaveLength(1);

    clock.now += 1;
    expect(await cache.route('upsell')).toEqual(route('u1'));
  });

  test.each(['', 'Churn', 'a', '-churn', 'churn-', 'churn_v2', 'x'.repeat(33), '../etc', 'churn/x'])(
    'answers unknown for %p, which no family can be called, without reading the store',
    async (name) => {
      const store = new FakeStore();
      const { cache } = cacheOver(store);

      expect(await cache.route(name)).toBeUndefined();
      expect(store.reads).toEqual([]);
    },
  );

  test.each([
    ['{', 'route of "churn" (store entry churn): is not valid JSON'],
    ['[]', 'route of "churn" (store entry churn): (root): Invalid input: expected object, received array'],
    ['{"endpointName":"e","variants":{}}', 'route of "churn" (store entry churn): variants: must define at least one variant'],
    ['{"endpointName":"bad_name","variants":{"v":{"modelVersion":"1"}}}', 'route of "churn" (store entry churn): endpointName: Invalid endpoint name'],
  ])('turns the unusable route %p into a configuration error naming where it lives and the field', async (raw, message) => {
    const store = new FakeStore();
    store.set('churn', raw);
    const { cache } = cacheOver(store);

    const error = await cache.route('churn').catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    expect((error as ConfigError).status).toBe(500);
  });

  test('retries an unusable route after the negative TTL and serves it once it is fixed', async () => {
    const store = new FakeStore();
    store.set('churn', '{');
    const { cache, clock } = cacheOver(store);

    await expect(cache.route('churn')).rejects.toThrow(ConfigError);
    await expect(cache.route('churn')).rejects.toThrow(ConfigError);
    expect(store.reads).toHaveLength(1);

    store.set('churn', route('v3'));
    clock.now += 10_000;
    expect(await cache.route('churn')).toEqual(route('v3'));
  });

  test('answers 503 RoutingUnavailable when the store fails and nothing was read before, and remembers nothing', async () => {
    const store = new FakeStore();
    store.set('churn', route('v1'));
    store.failure = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
    const { cache } = cacheOver(store);

    const error = await cache.route('churn').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ status: 503, code: 'RoutingUnavailable', message: 'model: the route of "churn" could not be read; retry' });
    expect((error as Error).cause).toBe(store.failure);

    store.failure = undefined;
    expect(await cache.route('churn')).toEqual(route('v1'));
    expect(store.reads).toHaveLength(2);
  });

  test('serves the last good route while the store fails, tells onStale, and retries once per staleRetryMs', async () => {
    const store = new FakeStore();
    store.set('churn', route('v1'));
    const stale: Array<[string, unknown]> = [];
    const { cache, clock } = cacheOver(store, { staleRetryMs: 5_000, onStale: (model, error) => stale.push([model, error]) });
    await cache.route('churn');

    const outage = new Error('connect ECONNREFUSED');
    store.failure = outage;
    clock.now += 60_000;
    expect(await cache.route('churn')).toEqual(route('v1'));
    expect(stale).toEqual([['churn', outage]]);

    // Within the retry interval the store is left alone.
    clock.now += 4_999;
    for (let i = 0; i < 10; i++) expect(await cache.route('churn')).toEqual(route('v1'));
    expect(store.reads).toHaveLength(2);

    // Then it is tried again, and a recovered store's route is served from that read on.
    store.failure = undefined;
    store.set('churn', route('v2'));
    clock.now += 1;
    expect(await cache.route('churn')).toEqual(route('v2'));
    expect(store.reads).toHaveLength(3);
  });

  test('keeps at most maxEntries models, dropping the least recently read', async () => {
    const store = new FakeStore();
    for (const model of ['aa', 'bb', 'cc']) store.set(model, route(model));
    const { cache } = cacheOver(store, { maxEntries: 2 });

    await cache.route('aa');
    await cache.route('bb');
    await cache.route('cc');
    await cache.route('bb');
    expect(store.reads).toEqual(['aa', 'bb', 'cc']);
    await cache.route('aa');
    expect(store.reads).toEqual(['aa', 'bb', 'cc', 'aa']);
  });

  test('shortens each expiry by up to the jitter fraction of the TTL, never lengthens it', async () => {
    await fc.assert(
      // Jitter up to 0.9: an expiry within a few ulps of `now` would test float rounding, not the cache.
      fc.asyncProperty(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.double({ min: 0, max: 0.9, noNaN: true }), async (random, jitter) => {
        const store = new FakeStore();
        store.set('churn', route('v1'));
        const { cache, clock } = cacheOver(store, { jitter, random: () => random });
        const start = clock.now;
        await cache.route('churn');
        const expiresAfter = 60_000 * (1 - jitter * random);
        clock.now = start + Math.ceil(expiresAfter) - 1;
        // No whole millisecond before the expiry, as the cache computes it (start + TTL share, rounded to
        // the double nearest: 1 - 0.9 * 0.99999... of a minute after a clock near 1.7e12 lands on a whole ms).
        if (clock.now >= start + expiresAfter) return;
        await cache.route('churn');
        expect(store.reads).toHaveLength(1);
        clock.now = start + Math.ceil(expiresAfter);
        await cache.route('churn');
        expect(store.reads).toHaveLength(2);
      }),
    );
  });

  test('with a healthy store, never serves a route older than the TTL (property)', async () => {
    const step = fc.record({ advanceMs: fc.integer({ min: 0, max: 3_000 }), write: fc.option(fc.integer({ min: 1, max: 1_000 }), { nil: undefined }) });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 60 }), fc.integer({ min: 0, max: 5_000 }), async (steps, ttlMs) => {
        const store = new FakeStore();
        store.set('churn', route('0'));
        const { cache, clock } = cacheOver(store, { ttlMs, jitter: 0.5, random: Math.random });
        // Versions the store held and when each was replaced.
        const history: Array<{ version: string; from: number; until: number }> = [{ version: '0', from: clock.now, until: Infinity }];
        for (const { advanceMs, write } of steps) {
          clock.now += advanceMs;
          if (write !== undefined) {
            history[history.length - 1] = { ...history[history.length - 1], until: clock.now };
            history.push({ version: String(write), from: clock.now, until: Infinity });
            store.set('churn', route(String(write)));
          }
          const served = ((await cache.route('churn')) as ModelRoute).variants.blue!.modelVersion;
          // The store held the served version at some moment in the last TTL.
          expect(history.some((entry) => entry.version === served && entry.until >= clock.now - ttlMs && entry.from <= clock.now)).toBe(true);
        }
      }),
    );
  });

  test('rejects a negative or non-finite TTL at construction', () => {
    const store = new FakeStore();
    expect(() => new RouteCache(store, { ttlMs: -1, negativeTtlMs: 0 })).toThrow('RouteCache: ttlMs: must be a number >= 0; got -1');
    expect(() => new RouteCache(store, { ttlMs: 0, negativeTtlMs: Number.NaN })).toThrow('RouteCache: negativeTtlMs: must be a number >= 0; got NaN');
  });

  test('accepts exactly the names the constructs accept for a model (property)', () => {
    // The handler bundle cannot import lib/, so the pattern is written twice; this keeps them one.
    fc.assert(
      fc.property(fc.oneof(fc.stringMatching(MODEL_NAME_PATTERN), fc.string({ maxLength: 40 }), fc.stringMatching(/^[a-z0-9_-]{0,34}$/)), (name) => {
        expect(ROUTE_MODEL_NAME_PATTERN.test(name)).toBe(MODEL_NAME_PATTERN.test(name));
      }),
    );
  });
});

describe('parseTtlSeconds', () => {
  test.each([
    [undefined, 60],
    ['', 60],
    [' ', 60],
    ['0', 0],
    ['300', 300],
    ['86400', 86_400],
  ])('reads %p as %p seconds', (raw, seconds) => {
    expect(parseTtlSeconds(raw, 'ROUTE_CACHE_TTL_SECONDS', 60)).toBe(seconds);
  });

  test.each(['-1', '1.5', '1m', '86401', 'NaN', 'Infinity'])('rejects %p naming the variable', (raw) => {
    expect(() => parseTtlSeconds(raw, 'ROUTE_CACHE_TTL_SECONDS', 60)).toThrow(
      new ConfigError(`ROUTE_CACHE_TTL_SECONDS: must be a whole number of seconds from 0 to 86400; got ${JSON.stringify(raw)}`),
    );
  });
});
