// Precomputed predictions on the request path (handlePrediction): a request that names an entity of a
// model whose route has `precomputed` gets the batch layer's answer when it is fresh, and the model's
// otherwise; an older answer is the fallback when the endpoint fails.
import fc from 'fast-check';
import { assignRoute } from '../../../lambda/shared/experiments';
import { handlePrediction, UpstreamError, type InferenceBackend, type ModelInvocation, type PredictionDeps, type PrecomputedSource, type RoutingTable } from '../../../lambda/shared/inference';
import { precomputedKey, type PrecomputedPrediction } from '../../../lambda/shared/precomputed';

const NOW = Date.UTC(2026, 11, 4, 12, 0, 0);
const HOUR = 3_600_000;

const routes: RoutingTable = {
  churn: { endpointName: 'churn-endpoint', variants: { only: { modelVersion: 'rt-9' } }, precomputed: { maxAgeSeconds: 86_400 }, fallback: { static: { score: 0.08 } } },
  ab: { endpointName: 'ab-endpoint', variants: { a: { modelVersion: '1', weight: 1 }, b: { modelVersion: '2', weight: 1 } }, sticky: { salt: 's' }, precomputed: { maxAgeSeconds: 86_400 } },
  plain: { endpointName: 'plain-endpoint', variants: { only: { modelVersion: 'p-1' } } },
};

const stored = (computedAt: number, score = 0.91): PrecomputedPrediction => ({ body: JSON.stringify({ score }), contentType: 'application/json', modelVersion: '7', computedAt });

function setup(items: Record<string, PrecomputedPrediction>, options: { endpoint?: 'ok' | 'fail'; store?: 'ok' | 'throws' } = {}) {
  const calls: ModelInvocation[] = [];
  const lookups: string[] = [];
  const enriched: unknown[] = [];
  const backend: InferenceBackend = async (invocation) => {
    calls.push(invocation);
    if (options.endpoint === 'fail') throw new UpstreamError(503, 'ModelNotReady', 'the model is not ready');
    return { body: JSON.stringify({ score: 0.4 }), contentType: 'application/json', invokedVariant: invocation.targetVariant ?? 'only' };
  };
  const precomputed: PrecomputedSource = {
    get: async (key) => {
      lookups.push(key);
      if (options.store === 'throws') throw new Error('ResourceNotFoundException');
      return items[key];
    },
  };
  let id = 0;
  const deps: PredictionDeps = {
    routes,
    backend,
    ids: () => `p-${++id}`,
    assign: assignRoute,
    precomputed,
    clock: () => NOW,
    enrich: async (request) => {
      enriched.push(request.entity);
      return { ...request, payload: { ...(request.payload as object), features: { tenure: 3 } } };
    },
  };
  const ask = async (model: string, body: unknown, cacheControl?: string) => {
    const outcome = await handlePrediction({ modelName: model, body: JSON.stringify(body), ...(cacheControl === undefined ? {} : { cacheControl }) }, deps);
    return { outcome, status: outcome.response.statusCode, body: JSON.parse(outcome.response.body) as Record<string, any> };
  };
  return { ask, calls, lookups, enriched };
}

const entity = { featureGroup: 'customers', recordId: 'c-1' };
const KEY = precomputedKey('churn', 'customers', 'c-1');

describe('precomputed predictions', () => {
  test('a fresh answer serves the entity without enrichment or a model call', async () => {
    const { ask, calls, enriched, lookups } = setup({ [KEY]: stored(NOW - HOUR) });
    const { status, body, outcome } = await ask('churn', { payload: {}, entity });
    expect(status).toBe(200);
    expect(body).toEqual({ predictionId: 'p-1', model: 'churn', variant: 'batch', modelVersion: '7', prediction: { score: 0.91 }, contentType: 'application/json', source: 'precomputed' });
    expect(outcome).toMatchObject({ kind: 'success', assignment: 'precomputed', precomputed: 'hit' });
    expect(lookups).toEqual([KEY]);
    expect(calls).toHaveLength(0);
    expect(enriched).toHaveLength(0);
  });

  test('an answer older than maxAgeSeconds, or none, is a miss: enriched and asked in real time', async () => {
    const { ask, calls, enriched } = setup({ [KEY]: stored(NOW - 25 * HOUR) });
    const stale = await ask('churn', { payload: {}, entity });
    expect(stale.body).toMatchObject({ variant: 'only', modelVersion: 'rt-9', prediction: { score: 0.4 }, source: 'realtime' });
    expect(stale.outcome).toMatchObject({ precomputed: 'stale' });
    const none = await ask('churn', { payload: {}, entity: { featureGroup: 'customers', recordId: 'c-2' } });
    expect(none.body).toMatchObject({ source: 'realtime' });
    expect(none.outcome).toMatchObject({ precomputed: 'miss' });
    expect(calls).toHaveLength(2);
    expect(JSON.parse(String(calls[0].body))).toEqual({ features: { tenure: 3 } });
    expect(enriched).toHaveLength(2);
  });

  test('when the endpoint fails, a stale answer is the fallback, before the static one; with none the static answers', async () => {
    const { ask } = setup({ [KEY]: stored(NOW - 48 * HOUR, 0.77) }, { endpoint: 'fail' });
    const stale = await ask('churn', { payload: {}, entity, inferenceId: 'order-1' });
    expect(stale.status).toBe(200);
    expect(stale.body).toEqual({ predictionId: 'order-1', model: 'churn', variant: 'batch', modelVersion: '7', prediction: { score: 0.77 }, contentType: 'application/json', source: 'realtime', degraded: true, fallback: 'precomputed' });
    const none = await ask('churn', { payload: {}, entity: { featureGroup: 'customers', recordId: 'c-404' } });
    expect(none.body).toMatchObject({ prediction: { score: 0.08 }, degraded: true, fallback: 'static', source: 'realtime' });
  });

  test('a target variant, a sticky caller, cache: false and Cache-Control: no-cache skip the lookup', async () => {
    const abKey = precomputedKey('ab', 'customers', 'c-1');
    const { ask, lookups, calls } = setup({ [KEY]: stored(NOW), [abKey]: stored(NOW) });
    expect((await ask('churn', { payload: {}, entity, targetVariant: 'only' })).body.source).toBe('realtime');
    expect((await ask('churn', { payload: {}, entity, cache: false })).body.source).toBe('realtime');
    expect((await ask('churn', { payload: {}, entity }, 'no-cache')).body.source).toBe('realtime');
    expect((await ask('ab', { payload: {}, entity, callerId: 'u-1' })).body.source).toBe('realtime');
    expect(lookups).toEqual([]);
    expect(calls).toHaveLength(4);
    // Without a caller id the experiment does not pin anyone: the precomputed answer serves.
    expect((await ask('ab', { payload: {}, entity })).body.source).toBe('precomputed');
  });

  test('a store that throws is a failed read: the model answers, the outcome says error', async () => {
    const { ask, calls } = setup({}, { store: 'throws' });
    const { status, body, outcome } = await ask('churn', { payload: {}, entity });
    expect(status).toBe(200);
    expect(body.source).toBe('realtime');
    expect(outcome).toMatchObject({ precomputed: 'error' });
    expect(calls).toHaveLength(1);
  });

  test('a route without precomputed never looks up and never says source; requests without an entity say realtime', async () => {
    const { ask, lookups } = setup({});
    const plain = await ask('plain', { payload: {}, entity });
    expect(plain.body.source).toBeUndefined();
    expect(plain.outcome).not.toHaveProperty('precomputed');
    const noEntity = await ask('churn', { payload: { a: 1 } });
    expect(noEntity.body.source).toBe('realtime');
    expect(lookups).toEqual([]);
  });

  test('property: the endpoint is called exactly when the stored answer is missing or older than the route allows', async () => {
    await fc.assert(
      fc.asyncProperty(fc.option(fc.integer({ min: -30 * 3_600, max: 3 * 86_400 }), { nil: undefined }), async (ageSeconds) => {
        const { ask, calls } = setup(ageSeconds === undefined ? {} : { [KEY]: stored(NOW - ageSeconds * 1000) });
        const { body } = await ask('churn', { payload: {}, entity });
        // Fresh: computed at most a day ago, and at most a minute in the future (clock skew).
        const fresh = ageSeconds !== undefined && ageSeconds <= 86_400 && ageSeconds >= -60;
        expect(calls.length).toBe(fresh ? 0 : 1);
        expect(body.source).toBe(fresh ? 'precomputed' : 'realtime');
      }),
      { numRuns: 200 },
    );
  });
});

test('an answer in another content type than the request accepts is no answer to it', async () => {
  const csv: PrecomputedPrediction = { body: '0.91', contentType: 'text/csv', modelVersion: '7', computedAt: NOW };
  const { ask, calls } = setup({ [KEY]: csv });
  const json = await ask('churn', { payload: {}, entity });
  expect(json.body.source).toBe('realtime');
  expect(json.outcome).toMatchObject({ precomputed: 'miss' });
  const asCsv = await ask('churn', { payload: {}, entity, accept: 'text/csv' });
  expect(asCsv.body).toMatchObject({ prediction: '0.91', contentType: 'text/csv', source: 'precomputed' });
  expect(calls).toHaveLength(1);
});
