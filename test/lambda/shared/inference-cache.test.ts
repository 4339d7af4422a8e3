// The prediction cache on the request path (handlePrediction with a TieredPredictionCache): what is
// served from it, what reaches the model, and what the response says.
import fc from 'fast-check';
import { handlePrediction, UpstreamError, type InferenceBackend, type ModelInvocation, type PredictionDeps, type PredictionInput, type RoutingTable } from '../../../lambda/shared/inference';
import { assignRoute } from '../../../lambda/shared/experiments';
import { ByteLru, TieredPredictionCache } from '../../../lambda/shared/prediction-cache';

const routes = (versions: { champion: string; challenger: string } = { champion: '7.0.0', challenger: '7.1.0' }): RoutingTable => ({
  churn: { endpointName: 'churn-endpoint', variants: { only: { modelVersion: '3.0.0' } }, cache: { ttlSeconds: 60 } },
  fraud: {
    endpointName: 'fraud-endpoint',
    variants: { champion: { modelVersion: versions.champion, weight: 9 }, challenger: { modelVersion: versions.challenger, weight: 1 } },
    sticky: { salt: 'spring' },
    cache: { ttlSeconds: 60 },
  },
  plain: { endpointName: 'plain-endpoint', variants: { only: { modelVersion: '1' } } },
});

/** A model that answers with a score derived from the payload, counting its calls; can be told to fail. */
function model() {
  const calls: ModelInvocation[] = [];
  let failure: Error | undefined;
  const backend: InferenceBackend = async (invocation) => {
    calls.push(invocation);
    if (failure) throw failure;
    return { body: JSON.stringify({ score: String(invocation.body).length, call: calls.length }), contentType: 'application/json', invokedVariant: invocation.targetVariant ?? 'only' };
  };
  return { backend, calls, fail: (error: Error | undefined) => (failure = error) };
}

function setup(table: RoutingTable = routes()) {
  const endpoint = model();
  let clock = 0;
  let id = 0;
  const cache = new TieredPredictionCache({ memory: new ByteLru(1 << 20), ttlMs: 60_000, now: () => clock });
  const deps: PredictionDeps = { routes: table, backend: endpoint.backend, ids: () => `p-${++id}`, assign: assignRoute, cache };
  const ask = async (modelName: string, body: unknown, extra: Partial<PredictionInput> = {}) => {
    const outcome = await handlePrediction({ modelName, body: JSON.stringify(body), ...extra }, deps);
    return { outcome, body: JSON.parse(outcome.response.body) as Record<string, unknown> };
  };
  return { endpoint, deps, ask, advance: (ms: number) => (clock += ms) };
}

describe('handlePrediction with the prediction cache', () => {
  test('a repeated request reaches the model once; the hit says so and carries the variant and version that answered', async () => {
    const { endpoint, ask } = setup();
    const first = await ask('churn', { payload: { a: 1, b: 2 } });
    expect(first.body).toMatchObject({ model: 'churn', variant: 'only', modelVersion: '3.0.0', cache: 'miss', prediction: { score: 13, call: 1 } });
    const second = await ask('churn', { payload: { b: 2, a: 1 } });
    expect(second.body).toMatchObject({ variant: 'only', modelVersion: '3.0.0', cache: 'hit', prediction: { score: 13, call: 1 } });
    expect(second.body.predictionId).not.toBe(first.body.predictionId);
    expect(second.outcome).toMatchObject({ kind: 'success', cache: { status: 'hit', tier: 'memory' } });
    expect(endpoint.calls).toHaveLength(1);
  });

  test('an answer is served for the route\'s ttlSeconds, then asked for again', async () => {
    const { endpoint, ask, advance } = setup({ ...routes(), churn: { ...routes().churn, cache: { ttlSeconds: 5 } } });
    await ask('churn', { payload: [1] });
    advance(4_999);
    expect((await ask('churn', { payload: [1] })).body.cache).toBe('hit');
    advance(1);
    expect((await ask('churn', { payload: [1] })).body.cache).toBe('miss');
    expect(endpoint.calls).toHaveLength(2);
  });

  test('cache: false and Cache-Control: no-cache bypass it, in both directions', async () => {
    const { endpoint, ask } = setup();
    expect((await ask('churn', { payload: [1], cache: false })).body.cache).toBe('bypass');
    expect((await ask('churn', { payload: [1] }, { cacheControl: 'no-cache' })).body.cache).toBe('bypass');
    expect((await ask('churn', { payload: [1] })).body.cache).toBe('miss');
    expect(endpoint.calls).toHaveLength(3);
    expect((await ask('churn', { payload: [1], cache: 'no' })).outcome).toMatchObject({ kind: 'rejected', error: { field: 'cache' } });
  });

  test('errors are never cached', async () => {
    const { endpoint, ask } = setup();
    endpoint.fail(new UpstreamError(503, 'ModelNotReadyException', 'the endpoint is not ready'));
    expect((await ask('churn', { payload: [1] })).outcome.kind).toBe('failed');
    endpoint.fail(undefined);
    expect((await ask('churn', { payload: [1] })).body.cache).toBe('miss');
    expect(endpoint.calls).toHaveLength(2);
  });

  test('with A/B routing, each variant has its own entries, so caching never changes who sees which variant', async () => {
    const { endpoint, ask } = setup();
    const champion = await ask('fraud', { payload: [1], targetVariant: 'champion' });
    const challenger = await ask('fraud', { payload: [1], targetVariant: 'challenger' });
    expect([champion.body.cache, challenger.body.cache]).toEqual(['miss', 'miss']);
    expect((await ask('fraud', { payload: [1], targetVariant: 'challenger' })).body).toMatchObject({ cache: 'hit', variant: 'challenger', modelVersion: '7.1.0' });
    // A sticky caller is assigned first, then served from its variant's entries.
    const sticky = await ask('fraud', { payload: [1], callerId: 'user-42' });
    expect(sticky.body.cache).toBe('hit');
    // Without a caller id SageMaker picks the variant: no cache.
    expect((await ask('fraud', { payload: [1] })).body.cache).toBe('bypass');
    expect(endpoint.calls).toHaveLength(3);
  });

  test('a new model version never serves the answer of the one before', async () => {
    const before = setup(routes());
    await before.ask('fraud', { payload: [1], targetVariant: 'challenger' });
    const after = { ...before.deps, routes: routes({ champion: '7.0.0', challenger: '7.2.0' }) };
    const outcome = await handlePrediction({ modelName: 'fraud', body: JSON.stringify({ payload: [1], targetVariant: 'challenger' }) }, after);
    expect(JSON.parse(outcome.response.body)).toMatchObject({ cache: 'miss', modelVersion: '7.2.0' });
    expect(before.endpoint.calls).toHaveLength(2);
  });

  test('a model without cache in its route is answered as before, with no cache field', async () => {
    const { endpoint, ask } = setup();
    await ask('plain', { payload: [1] });
    const again = await ask('plain', { payload: [1] });
    expect(again.body).not.toHaveProperty('cache');
    expect(again.outcome).not.toHaveProperty('cache');
    expect(endpoint.calls).toHaveLength(2);
  });

  test('CSV answers and payloads are cached by their exact text', async () => {
    const { endpoint, deps } = setup();
    const csvBackend: InferenceBackend = async (invocation) => {
      endpoint.calls.push(invocation);
      return { body: '0.42\n', contentType: 'text/csv' };
    };
    const csv = { ...deps, backend: csvBackend };
    const ask = async (payload: string) => JSON.parse((await handlePrediction({ modelName: 'churn', body: JSON.stringify({ payload, contentType: 'text/csv', accept: 'text/csv' }) }, csv)).response.body);
    expect(await ask('1,2')).toMatchObject({ cache: 'miss', prediction: '0.42\n' });
    expect(await ask('1,2')).toMatchObject({ cache: 'hit', prediction: '0.42\n', contentType: 'text/csv' });
    expect(await ask('1, 2')).toMatchObject({ cache: 'miss' });
  });

  test('property: any set of requests reaches the model exactly once per distinct canonical request', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ a: fc.integer({ min: 0, max: 3 }), b: fc.constantFrom('x', 'y') }), { minLength: 1, maxLength: 20 }), fc.boolean(), async (payloads, reverse) => {
        const { endpoint, ask } = setup();
        for (const payload of payloads) {
          const body = reverse ? { payload: { b: payload.b, a: payload.a } } : { payload };
          await ask('churn', body);
        }
        expect(endpoint.calls).toHaveLength(new Set(payloads.map((payload) => `${payload.a}/${payload.b}`)).size);
      }),
    );
  });
});
