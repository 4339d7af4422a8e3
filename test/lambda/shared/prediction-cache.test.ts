// The prediction cache's pure parts: the canonical payload and key, the byte-bounded LRU, and what may be
// cached. The LRU is checked against a plain model of itself (a list in use order) with fast-check.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { ByteLru, cacheableAnswer, canonicalJson, entryBytes, MAX_CACHED_BODY_BYTES, optsOut, predictionCacheKey, TieredPredictionCache, type CachedPrediction, type CacheKeyInput, type SharedCacheStore } from '../../../lambda/shared/prediction-cache';

const BASE: CacheKeyInput = { model: 'churn', versions: { champion: '7.0.0', challenger: '7.1.0' }, contentType: 'application/json', accept: 'application/json', payload: { a: 1, b: [1, 2] } };

/** Shuffles the keys of every object, deterministically from the seed. */
function shuffleKeys(value: unknown, seed: number): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item, index) => shuffleKeys(item, seed + index));
  const entries = Object.entries(value as Record<string, unknown>);
  const shuffled = entries.map((entry, index) => ({ entry, order: ((index + 1) * (seed + 7919)) % 104729 })).sort((x, y) => x.order - y.order);
  return Object.fromEntries(shuffled.map(({ entry: [key, item] }, index) => [key, shuffleKeys(item, seed + index)]));
}

describe('canonicalJson and predictionCacheKey', () => {
  test('key order does not matter, array order does', () => {
    expect(canonicalJson({ b: 2, a: 1 })).toBe('{"a":1,"b":2}');
    expect(canonicalJson({ a: { d: [3, { z: 1, y: 2 }], c: null } })).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]}}');
    expect(predictionCacheKey({ ...BASE, payload: { a: 1, b: 2 } })).toBe(predictionCacheKey({ ...BASE, payload: { b: 2, a: 1 } }));
    expect(predictionCacheKey({ ...BASE, payload: [1, 2] })).not.toBe(predictionCacheKey({ ...BASE, payload: [2, 1] }));
  });

  test('property: canonicalJson parses back to the same value and ignores key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.nat(), (value, seed) => {
        const canonical = canonicalJson(value);
        expect(JSON.parse(canonical)).toEqual(JSON.parse(JSON.stringify(value)));
        expect(canonicalJson(shuffleKeys(value, seed))).toBe(canonical);
      }),
    );
  });

  test('a new model version, another variant, family, content type or accept type is another key', () => {
    const key = predictionCacheKey(BASE);
    expect(key).toMatch(/^[0-9a-f]{64}$/);
    const others = [
      { ...BASE, versions: { ...BASE.versions, challenger: '7.2.0' } },
      { ...BASE, variant: 'champion' },
      { ...BASE, variant: 'challenger' },
      { ...BASE, model: 'fraud' },
      { ...BASE, contentType: 'text/csv', payload: 'a,1' },
      { ...BASE, accept: 'text/csv' },
    ].map(predictionCacheKey);
    expect(new Set([key, ...others]).size).toBe(others.length + 1);
    // The order the versions are listed in is not part of the key; the letter case of a media type is not either.
    expect(predictionCacheKey({ ...BASE, versions: { challenger: '7.1.0', champion: '7.0.0' }, accept: 'Application/JSON' })).toBe(key);
  });

  test('CSV counts by its exact text, and never collides with the JSON string of the same text', () => {
    const csv = { ...BASE, contentType: 'text/csv', csv: true };
    expect(predictionCacheKey({ ...csv, payload: '1,2,3' })).not.toBe(predictionCacheKey({ ...csv, payload: '1, 2, 3' }));
    expect(predictionCacheKey({ ...csv, payload: '1,2,3' })).not.toBe(predictionCacheKey({ ...csv, csv: false, payload: '1,2,3' }));
  });

  test('the key is the SHA-256 of the documented parts (an independent computation)', () => {
    const head = JSON.stringify([1, 'churn', [['challenger', '7.1.0'], ['champion', '7.0.0']], null, 'application/json', 'application/json']);
    const expected = createHash('sha256').update(`${head}\njson:{"a":1,"b":[1,2]}`).digest('hex');
    expect(predictionCacheKey(BASE)).toBe(expected);
  });
});

describe('ByteLru', () => {
  test('evicts the least recently used until a new entry fits, and a read refreshes an entry', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 40, Infinity);
    lru.set('b', 'B', 40, Infinity);
    expect(lru.get('a', 0)).toBe('A');
    lru.set('c', 'C', 40, Infinity);
    expect(lru.keys()).toEqual(['a', 'c']);
    expect(lru.bytes).toBe(80);
  });

  test('never returns an expired entry, and an entry over the whole budget is not kept', () => {
    const lru = new ByteLru<string>(100);
    lru.set('a', 'A', 10, 1_000);
    expect(lru.get('a', 999)).toBe('A');
    expect(lru.get('a', 1_000)).toBeUndefined();
    expect(lru.bytes).toBe(0);
    expect(lru.set('big', 'B', 101, Infinity)).toBe(false);
    expect(lru.size).toBe(0);
    expect(() => new ByteLru(-1)).toThrow(/maxBytes/);
  });

  type Op = { kind: 'set'; key: string; bytes: number; ttl: number } | { kind: 'get'; key: string } | { kind: 'tick'; ms: number };
  const opArb: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e'), bytes: fc.integer({ min: 0, max: 60 }), ttl: fc.integer({ min: 1, max: 50 }) }),
    fc.record({ kind: fc.constant('get' as const), key: fc.constantFrom('a', 'b', 'c', 'd', 'e') }),
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 20 }) }),
  );

  test('property: behaves as a list in use order, bounded by bytes, that forgets what expired', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 150 }), fc.array(opArb, { maxLength: 60 }), (max, ops) => {
        const lru = new ByteLru<number>(max);
        let model: Array<{ key: string; value: number; bytes: number; expiresAt: number }> = [];
        let now = 0;
        ops.forEach((op, index) => {
          if (op.kind === 'tick') {
            now += op.ms;
          } else if (op.kind === 'get') {
            const found = model.find((entry) => entry.key === op.key);
            model = model.filter((entry) => entry.key !== op.key);
            const live = found !== undefined && found.expiresAt > now;
            if (live) model.push(found);
            expect(lru.get(op.key, now)).toBe(live ? found.value : undefined);
          } else {
            model = model.filter((entry) => entry.key !== op.key);
            if (op.bytes <= max) {
              while (model.reduce((sum, entry) => sum + entry.bytes, 0) + op.bytes > max) model.shift();
              model.push({ key: op.key, value: index, bytes: op.bytes, expiresAt: now + op.ttl });
            }
            expect(lru.set(op.key, index, op.bytes, now + op.ttl)).toBe(op.bytes <= max);
          }
          expect(lru.keys()).toEqual(model.map((entry) => entry.key));
          expect(lru.bytes).toBe(model.reduce((sum, entry) => sum + entry.bytes, 0));
          expect(lru.bytes).toBeLessThanOrEqual(max);
        });
      }),
    );
  });
});

describe('what may be cached', () => {
  test('a request opts out with cache: false or Cache-Control no-cache / no-store', () => {
    expect(optsOut({})).toBe(false);
    expect(optsOut({ cache: true, cacheControl: 'max-age=60' })).toBe(false);
    expect(optsOut({ cache: false })).toBe(true);
    expect(optsOut({ cacheControl: 'No-Cache' })).toBe(true);
    expect(optsOut({ cacheControl: 'private, no-store' })).toBe(true);
  });

  test('an answer too large for one DynamoDB item is not cached', () => {
    expect(cacheableAnswer({ body: 'x'.repeat(MAX_CACHED_BODY_BYTES) })).toBe(true);
    expect(cacheableAnswer({ body: 'x'.repeat(MAX_CACHED_BODY_BYTES + 1) })).toBe(false);
    // Bytes, not characters: a multi-byte answer counts by its UTF-8 size.
    expect(cacheableAnswer({ body: 'é'.repeat(MAX_CACHED_BODY_BYTES / 2 + 1) })).toBe(false);
  });

  test('an entry\'s size grows with what it holds', () => {
    const entry = { body: '{"score":0.9}', contentType: 'application/json', variant: 'champion', modelVersion: '7.0.0', cachedAt: 0, expiresAt: 1 };
    expect(entryBytes('k', { ...entry, body: entry.body.repeat(10) })).toBeGreaterThan(entryBytes('k', entry));
  });
});

describe('TieredPredictionCache', () => {
  const answer = { body: '{"score":0.9}', contentType: 'application/json', variant: 'champion', modelVersion: '7.0.0' };

  /** A shared store in memory that can be told to fail or to hang. */
  class FakeStore implements SharedCacheStore {
    readonly items = new Map<string, CachedPrediction>();
    readonly calls: string[] = [];
    failure: Error | undefined;
    hang = false;
    async get(key: string): Promise<CachedPrediction | undefined> {
      this.calls.push(`get ${key}`);
      if (this.hang) return new Promise(() => undefined);
      if (this.failure) throw this.failure;
      return this.items.get(key);
    }
    async put(key: string, entry: CachedPrediction): Promise<void> {
      this.calls.push(`put ${key}`);
      if (this.failure) throw this.failure;
      this.items.set(key, entry);
    }
  }

  const setup = (ttlMs = 60_000) => {
    let clock = 1_000;
    const store = new FakeStore();
    const errors: string[] = [];
    const cache = new TieredPredictionCache({
      memory: new ByteLru(1024 * 1024),
      shared: store,
      ttlMs,
      sharedTimeoutMs: 20,
      now: () => clock,
      onSharedError: (operation, error) => errors.push(`${operation}: ${(error as Error).message}`),
    });
    return { cache, store, errors, advance: (ms: number) => (clock += ms) };
  };

  test('a stored answer is a memory hit in this instance and a shared hit in another, which then keeps it too', async () => {
    const { cache, store } = setup();
    expect(await cache.lookup('k')).toBeUndefined();
    await cache.store('k', answer);
    expect(await cache.lookup('k')).toMatchObject({ tier: 'memory', entry: { ...answer, cachedAt: 1_000, expiresAt: 61_000 } });
    const other = new TieredPredictionCache({ memory: new ByteLru(1024 * 1024), shared: store, ttlMs: 60_000, now: () => 1_000 });
    expect(await other.lookup('k')).toMatchObject({ tier: 'shared' });
    store.failure = new Error('gone');
    expect(await other.lookup('k')).toMatchObject({ tier: 'memory' });
  });

  test('an expired answer is served by neither tier', async () => {
    const { cache, store, advance } = setup(1_000);
    await cache.store('k', answer);
    advance(1_000);
    expect(await cache.lookup('k')).toBeUndefined();
    expect(store.items.has('k')).toBe(true);
  });

  test('a shared store that fails or hangs is a miss, reported, never an error', async () => {
    const { cache, store, errors } = setup();
    store.failure = new Error('ResourceNotFoundException: table gone');
    expect(await cache.lookup('k')).toBeUndefined();
    expect(await cache.store('k', answer)).toMatchObject(answer);
    store.failure = undefined;
    store.hang = true;
    expect(await cache.lookup('other')).toBeUndefined();
    expect(errors).toEqual(['get: ResourceNotFoundException: table gone', 'put: ResourceNotFoundException: table gone', 'get: the shared cache did not answer within 20 ms']);
  });

  test('an answer too large for the shared tier is not stored at all', async () => {
    const { cache, store } = setup();
    expect(await cache.store('k', { ...answer, body: 'x'.repeat(MAX_CACHED_BODY_BYTES + 1) })).toBeUndefined();
    expect(store.calls).toEqual([]);
    expect(await cache.lookup('k')).toBeUndefined();
  });
});
