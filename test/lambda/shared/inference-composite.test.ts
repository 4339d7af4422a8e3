// Composite models on the request path (handlePrediction): ensembles, cascades and chains over other
// models' routes, with the cache, the breakers and the fallbacks those routes have, and a backend whose
// endpoints can be told to fail or to hang.
import fc from 'fast-check';
import { BreakerRegistry, CircuitBreaker, circuitBreakerMiddleware } from '../../../lambda/shared/circuit-breaker';
import { assignRoute } from '../../../lambda/shared/experiments';
import { composeBackend, handlePrediction, resolveEntryFrom, resolveRouteFrom, UpstreamError, type InferenceBackend, type ModelInvocation, type PredictionDeps, type RoutingTable } from '../../../lambda/shared/inference';
import { ByteLru, TieredPredictionCache } from '../../../lambda/shared/prediction-cache';

const endpointRoute = (name: string, extra: Record<string, unknown> = {}) => ({ endpointName: `${name}-endpoint`, variants: { only: { modelVersion: `${name}-1` } }, ...extra });

const table = (composites: RoutingTable = {}): RoutingTable => ({
  lite: endpointRoute('lite'),
  full: endpointRoute('full'),
  ab: { endpointName: 'ab-endpoint', variants: { champion: { modelVersion: '7', weight: 1 }, challenger: { modelVersion: '8', weight: 1 } } },
  cached: endpointRoute('cached', { cache: { ttlSeconds: 60 } }),
  guarded: endpointRoute('guarded', { breaker: { windowSeconds: 60, failureRateThreshold: 0.5, minimumCalls: 2, coolDownSeconds: 30, probes: 1 }, fallback: { static: { score: 0.5 } } }),
  meta: endpointRoute('meta'),
  ...composites,
});

type Behaviour = (invocation: ModelInvocation) => { body: string; contentType?: string } | Error | 'hang';

/** Endpoints by name, each answering as told (by default `{ "score": <n> }` for endpoint n's own number). */
function endpoints(behaviours: Record<string, Behaviour>) {
  const calls: ModelInvocation[] = [];
  const backend: InferenceBackend = (invocation) => {
    calls.push(invocation);
    const name = invocation.endpointName.replace(/-endpoint$/, '');
    const behaviour = behaviours[name] ?? (() => ({ body: JSON.stringify({ score: 0.5 }) }));
    const answer = behaviour(invocation);
    if (answer === 'hang') {
      return new Promise((_, reject) => invocation.signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))));
    }
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve({ body: answer.body, contentType: answer.contentType ?? 'application/json', invokedVariant: invocation.targetVariant ?? 'only' });
  };
  return { backend, calls, callsTo: (name: string) => calls.filter((call) => call.endpointName === `${name}-endpoint`) };
}

const score = (value: number): Behaviour => () => ({ body: JSON.stringify({ score: value }) });
const failing = (): Behaviour => () => new UpstreamError(503, 'ModelNotReady', 'the model is not ready');

function setup(routes: RoutingTable, behaviours: Record<string, Behaviour>, extra: Partial<PredictionDeps> = {}) {
  const models = endpoints(behaviours);
  let id = 0;
  const breakers = new BreakerRegistry((name, policy) => new CircuitBreaker({ name, policy }));
  const deps: PredictionDeps = {
    routes,
    backend: composeBackend(models.backend, circuitBreakerMiddleware((name, policy) => breakers.get(name, policy))),
    ids: () => `p-${++id}`,
    assign: assignRoute,
    cache: new TieredPredictionCache({ memory: new ByteLru(1 << 20), ttlMs: 60_000 }),
    ...extra,
  };
  const ask = async (modelName: string, body: unknown) => {
    const outcome = await handlePrediction({ modelName, body: JSON.stringify(body) }, deps);
    return { outcome, status: outcome.response.statusCode, body: JSON.parse(outcome.response.body) as Record<string, any> };
  };
  return { ...models, ask };
}

describe('ensembles', () => {
  const blend = (extra: Record<string, unknown> = {}): RoutingTable => table({ blend: { composite: { kind: 'ensemble', members: [{ model: 'lite' }, { model: 'full' }, { model: 'meta' }], combiner: 'mean', output: { pointer: '/score' }, ...extra } } as never });

  test('calls every member once and answers with the combined score and each member\'s result', async () => {
    const { ask, calls } = setup(blend(), { lite: score(0.2), full: score(0.4), meta: score(0.9) });
    const { status, body, outcome } = await ask('blend', { payload: { x: 1 }, inferenceId: 'req-1' });
    expect(status).toBe(200);
    expect(body).toMatchObject({ predictionId: 'req-1', model: 'blend', variant: 'ensemble', composite: 'ensemble', combiner: 'mean', modelVersion: 'lite/only@lite-1 full/only@full-1 meta/only@meta-1' });
    expect(body.prediction).toBeCloseTo(0.5, 12);
    expect(body.members).toEqual([
      { model: 'lite', status: 'answered', variant: 'only', modelVersion: 'lite-1', output: 0.2 },
      { model: 'full', status: 'answered', variant: 'only', modelVersion: 'full-1', output: 0.4 },
      { model: 'meta', status: 'answered', variant: 'only', modelVersion: 'meta-1', output: 0.9 },
    ]);
    expect(body).not.toHaveProperty('degraded');
    expect(outcome).toMatchObject({ kind: 'success', assignment: 'composite' });
    expect(calls).toHaveLength(3);
    // Each member call carries its own inference id, derived from the request's.
    expect(calls.map((call) => call.inferenceId).sort()).toEqual(['req-1.0', 'req-1.1', 'req-1.2']);
  });

  test('members run concurrently: the slowest member bounds the latency, not the sum', async () => {
    const routes = blend();
    let inFlight = 0;
    let peak = 0;
    const delayed: InferenceBackend = async () => {
      inFlight += 1;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 60));
      inFlight -= 1;
      return { body: '{"score":1}', contentType: 'application/json', invokedVariant: 'only' };
    };
    const started = performance.now();
    const outcome = await handlePrediction({ modelName: 'blend', body: JSON.stringify({ payload: 1 }) }, { routes, backend: delayed, ids: () => 'p' });
    const elapsed = performance.now() - started;
    expect(outcome.kind).toBe('success');
    expect(peak).toBe(3);
    expect(elapsed).toBeLessThan(170); // three 60 ms calls one after another would take 180 ms at least
  });

  test('a member that fails or times out is listed with its error; the quorum still answers, marked degraded', async () => {
    const { ask } = setup(blend({ timeoutMs: 50 }), { lite: score(0.2), full: failing(), meta: () => 'hang' });
    const degraded = await ask('blend', { payload: 1 });
    expect(degraded.status).toBe(502);
    expect(degraded.body).toMatchObject({ error: 'EnsembleQuorumNotMet' });
    expect(degraded.body.message).toContain('ensemble blend: 1 of 3 members answered, 2 needed');
    expect(degraded.body.message).toContain('members[1] (full): ModelNotReady: the model is not ready');
    expect(degraded.body.message).toContain('members[2] (meta): Timeout: meta did not answer within 50 ms');

    const quorum1 = setup(blend({ timeoutMs: 50, quorum: 1 }), { lite: score(0.2), full: failing(), meta: () => 'hang' });
    const answered = await quorum1.ask('blend', { payload: 1 });
    expect(answered.status).toBe(200);
    expect(answered.body).toMatchObject({ prediction: 0.2, degraded: true, modelVersion: 'lite/only@lite-1' });
    expect(answered.body.members[1]).toEqual({ model: 'full', status: 'failed', error: { status: 503, code: 'ModelNotReady', message: 'the model is not ready' } });
    expect(answered.body.members[2]).toMatchObject({ model: 'meta', status: 'failed', error: { status: 504, code: 'Timeout' } });
    // The hung call was aborted, not left running.
    const hung = quorum1.callsTo('meta')[0] as ModelInvocation;
    expect(hung.signal?.aborted).toBe(true);
  });

  test('a missed quorum answers with the members\' shared status (all throttled: 429)', async () => {
    const throttled: Behaviour = () => new UpstreamError(429, 'Throttled', 'slow down');
    const { ask } = setup(blend(), { lite: throttled, full: throttled, meta: throttled });
    const { status, body } = await ask('blend', { payload: 1, inferenceId: 'q' });
    expect(status).toBe(429);
    expect(body).toMatchObject({ error: 'EnsembleQuorumNotMet', predictionId: 'q' });
  });

  test('an unreadable output fails that member only', async () => {
    const { ask } = setup(blend(), { lite: score(0.2), full: () => ({ body: '{"label":"x"}' }), meta: () => ({ body: '{"score":"high"}' }) });
    const { status, body } = await ask('blend', { payload: 1 });
    expect(status).toBe(502);
    expect(body.message).toContain('members[1] (full): OutputUnreadable: output: the answer has nothing at "/score"');
    expect(body.message).toContain('members[2] (meta): OutputUnreadable: output: expected a number, got "high"');
  });

  test('members go through their routes\' cache: a repeated request reaches the cached member once', async () => {
    const routes = table({ blend: { composite: { kind: 'ensemble', members: [{ model: 'cached' }, { model: 'lite' }], combiner: 'mean', output: { pointer: '/score' } } } as never });
    const { ask, callsTo } = setup(routes, { cached: score(0.1), lite: score(0.3) });
    const first = await ask('blend', { payload: { a: 1 } });
    const second = await ask('blend', { payload: { a: 1 } });
    expect(first.body.members[0]).toMatchObject({ model: 'cached', cache: 'miss' });
    expect(second.body.members[0]).toMatchObject({ model: 'cached', cache: 'hit', output: 0.1 });
    expect(callsTo('cached')).toHaveLength(1);
    expect(callsTo('lite')).toHaveLength(2);
  });

  test('members go through their routes\' breakers: an open breaker is not called, and a static fallback is listed but not combined', async () => {
    const routes = table({ blend: { composite: { kind: 'ensemble', members: [{ model: 'guarded' }, { model: 'lite' }], combiner: 'mean', output: { pointer: '/score' }, quorum: 1 } } as never });
    const { ask, callsTo } = setup(routes, { guarded: failing(), lite: score(0.3) });
    for (let round = 0; round < 4; round += 1) {
      const { status, body } = await ask('blend', { payload: round });
      expect(status).toBe(200);
      expect(body).toMatchObject({ prediction: 0.3, degraded: true });
      expect(body.members[0]).toMatchObject({ model: 'guarded', status: 'degraded', fallback: 'static' });
    }
    // Two failures opened the breaker (minimumCalls 2); the next rounds did not call the endpoint.
    expect(callsTo('guarded')).toHaveLength(2);
  });

  test('variants of one endpoint and containers of a Direct-mode endpoint are members of their own', async () => {
    const routes = table({
      arms: { composite: { kind: 'ensemble', members: [{ model: 'ab', variant: 'champion' }, { model: 'ab', variant: 'challenger', weight: 3 }], combiner: 'weighted-vote', output: { pointer: '/label' } } },
      containers: { composite: { kind: 'ensemble', members: [{ model: 'full', container: 'xgb' }, { model: 'full', container: 'linear' }], combiner: 'median' } },
    } as never);
    const { ask, calls } = setup(routes, {
      ab: (invocation) => ({ body: JSON.stringify({ label: invocation.targetVariant === 'champion' ? 'stay' : 'churn' }) }),
      full: (invocation) => ({ body: invocation.targetContainerHostname === 'xgb' ? '1' : '3' }),
    });
    const arms = await ask('arms', { payload: 1 });
    expect(arms.body).toMatchObject({ prediction: 'churn', agreement: 0.75 });
    expect(arms.body.members.map((member: { variant: string }) => member.variant)).toEqual(['champion', 'challenger']);
    const containers = await ask('containers', { payload: 1 });
    expect(containers.body).toMatchObject({ prediction: 2 });
    expect(containers.body.members).toEqual([expect.objectContaining({ container: 'xgb', output: 1 }), expect.objectContaining({ container: 'linear', output: 3 })]);
    expect(calls.filter((call) => call.endpointName === 'full-endpoint').map((call) => call.targetContainerHostname).sort()).toEqual(['linear', 'xgb']);
  });

  test('stacking sends the members\' outputs, in member order, to the meta-model', async () => {
    const routes = table({ stacked: { composite: { kind: 'ensemble', members: [{ model: 'lite' }, { model: 'full' }], combiner: 'stacking', output: { pointer: '/score' }, metaModel: { model: 'meta', contentType: 'text/csv' } } } as never });
    const { ask, callsTo } = setup(routes, { lite: score(0.2), full: score(0.4), meta: (invocation) => ({ body: `${invocation.body}=>0.33`, contentType: 'text/csv' }) });
    const { body } = await ask('stacked', { payload: 1 });
    expect(callsTo('meta')[0]).toMatchObject({ body: '0.2,0.4', contentType: 'text/csv' });
    expect(body).toMatchObject({ prediction: '0.2,0.4=>0.33', contentType: 'text/csv', combiner: 'stacking', modelVersion: 'lite/only@lite-1 full/only@full-1 > meta/only@meta-1' });
  });

  test('a member the API does not serve fails as a member, naming it', async () => {
    const routes = table({ broken: { composite: { kind: 'ensemble', members: [{ model: 'lite' }, { model: 'gone' }, { model: 'ab', variant: 'blue' }], combiner: 'mean', output: { pointer: '/score' }, quorum: 1 } } as never });
    const { body } = await setup(routes, {}).ask('broken', { payload: 1 });
    expect(body.members[1]).toMatchObject({ status: 'failed', error: { status: 502, code: 'CompositeMemberUnavailable', message: 'gone: model: unknown model "gone"; known models: ab, broken, cached, full, guarded, lite, meta' } });
    expect(body.members[2].error.message).toContain('ab/blue: targetVariant: unknown variant "blue"');
  });

  test('a composite refuses a targetVariant; resolving it as a model with an endpoint is a 400 naming it', async () => {
    const { ask } = setup(blend(), {});
    const { status, body } = await ask('blend', { payload: 1, targetVariant: 'only' });
    expect(status).toBe(400);
    expect(body.message).toBe('targetVariant: "blend" is a composite (ensemble); its members name their variants');
    await expect(resolveRouteFrom(blend(), 'blend')).rejects.toMatchObject({ status: 400, field: 'model', message: 'model: "blend" is a composite (ensemble) of other models, not a model with an endpoint' });
    await expect(resolveEntryFrom(blend(), 'blend')).resolves.toMatchObject({ composite: { kind: 'ensemble' } });
  });
});

describe('cascades', () => {
  const cascade = (): RoutingTable =>
    table({ tiered: { composite: { kind: 'cascade', stages: [{ model: 'lite', confidence: { pointer: '/confidence' }, threshold: 0.9 }, { model: 'full' }] } } as never });

  test('a confident first stage answers alone; an unsure one escalates; the answer lists the stages that ran', async () => {
    let confidence = 0.95;
    const { ask, callsTo } = setup(cascade(), { lite: () => ({ body: JSON.stringify({ label: 'stay', confidence }) }), full: () => ({ body: '{"label":"churn"}' }) });
    const sure = await ask('tiered', { payload: 1 });
    expect(sure.body).toMatchObject({ model: 'tiered', variant: 'cascade', composite: 'cascade', prediction: { label: 'stay' }, modelVersion: 'lite/only@lite-1', stages: [{ model: 'lite', status: 'answered', confidence: 0.95 }] });
    expect(callsTo('full')).toHaveLength(0);
    confidence = 0.6;
    const unsure = await ask('tiered', { payload: 2 });
    expect(unsure.body).toMatchObject({ prediction: { label: 'churn' }, modelVersion: 'full/only@full-1', stages: [{ model: 'lite', status: 'escalated', confidence: 0.6 }, { model: 'full', status: 'answered' }] });
    expect(unsure.body).not.toHaveProperty('degraded');
  });

  test('property: stage 2 is called exactly when stage 1 is not confident', async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true }), async (confidence, threshold) => {
        const routes = table({ tiered: { composite: { kind: 'cascade', stages: [{ model: 'lite', confidence: { pointer: '/c' }, threshold }, { model: 'full' }] } } as never });
        const { ask, callsTo } = setup(routes, { lite: () => ({ body: JSON.stringify({ c: confidence }) }) });
        await ask('tiered', { payload: 1 });
        expect(callsTo('lite')).toHaveLength(1);
        expect(callsTo('full')).toHaveLength(confidence >= threshold ? 0 : 1);
      }),
      { numRuns: 60 },
    );
  });

  test('a failed first stage escalates; a failed last stage leaves the best earlier answer, marked degraded; both failing is the last one\'s error', async () => {
    const first = setup(cascade(), { lite: failing(), full: () => ({ body: '{"label":"churn"}' }) });
    expect((await first.ask('tiered', { payload: 1 })).body).toMatchObject({ prediction: { label: 'churn' }, stages: [{ model: 'lite', status: 'failed', error: { code: 'ModelNotReady' } }, { status: 'answered' }] });

    const last = setup(cascade(), { lite: () => ({ body: '{"label":"stay","confidence":0.7}' }), full: failing() });
    expect((await last.ask('tiered', { payload: 1 })).body).toMatchObject({ prediction: { label: 'stay', confidence: 0.7 }, degraded: true, stages: [{ status: 'escalated' }, { status: 'failed' }] });

    const both = setup(cascade(), { lite: failing(), full: () => new UpstreamError(504, 'Timeout', 'too slow') });
    const failed = await both.ask('tiered', { payload: 1, inferenceId: 'c-1' });
    expect(failed.status).toBe(504);
    expect(failed.body).toEqual({ error: 'Timeout', message: 'cascade tiered: stages[1] (full): too slow', predictionId: 'c-1' });
  });
});

describe('chains', () => {
  const chain = (input?: unknown): RoutingTable =>
    table({ recommend: { composite: { kind: 'chain', stages: [{ model: 'lite' }, { model: 'full', ...(input === undefined ? {} : { input }) }] } } as never });

  test('the first stage\'s answer, reshaped by the mapping, is the second stage\'s payload', async () => {
    const { ask, callsTo } = setup(chain({ user: '/request/user', candidates: '/previous/items' }), {
      lite: () => ({ body: '{"items":["a","b","c"]}' }),
      full: (invocation) => ({ body: JSON.stringify({ ranked: [...(JSON.parse(String(invocation.body)) as { candidates: string[] }).candidates].reverse() }) }),
    });
    const { body } = await ask('recommend', { payload: { user: 'u-1' } });
    expect(JSON.parse(String(callsTo('full')[0]?.body))).toEqual({ user: 'u-1', candidates: ['a', 'b', 'c'] });
    expect(body).toMatchObject({ variant: 'chain', composite: 'chain', prediction: { ranked: ['c', 'b', 'a'] }, modelVersion: 'lite/only@lite-1 full/only@full-1', stages: [{ model: 'lite', status: 'answered' }, { model: 'full', status: 'answered' }] });
  });

  test('a mapping that reads nothing, or a failing stage, fails the chain naming the stage', async () => {
    const unmapped = await setup(chain({ items: '/previous/candidates' }), { lite: () => ({ body: '{"items":[]}' }) }).ask('recommend', { payload: {} });
    expect(unmapped.status).toBe(502);
    expect(unmapped.body).toMatchObject({ error: 'ChainInputUnavailable', message: 'chain recommend: stages[1].input.items: nothing at "/previous/candidates" (pointers read /request, /previous and /stages/<n>)' });
    const failed = await setup(chain(), { full: failing() }).ask('recommend', { payload: {} });
    expect(failed.status).toBe(503);
    expect(failed.body.message).toBe('chain recommend: stages[1] (full): the model is not ready');
  });
});
