import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  aggregateOutcomes,
  AnalysisInputError,
  analyzeExperiment,
  assignmentPoint,
  assignRoute,
  assignVariant,
  classifyDynamoDbError,
  DEFAULT_PREDICTION_LOG_TTL_DAYS,
  explainOutcomeConflict,
  hashCallerId,
  isConditionalCheckFailed,
  MAX_OUTCOME_BODY_BYTES,
  OutcomeAggregator,
  outcomeUpdate,
  parseAnalysisInput,
  parseOutcomeRequest,
  parsePredictionLogTtlDays,
  predictionLogItem,
  predictionLogPut,
  predictionLogRecord,
  predictionWindowQuery,
  readStoredPrediction,
  servedAtRange,
  type ExperimentAggregates,
  type OutcomeRequest,
  type ReadableItem,
  type VariantWeight,
} from '../../../lambda/shared/experiments';
import {
  ConfigError,
  handlePrediction,
  loadRoutingTable,
  parseRequest,
  RequestError,
  resolveRoute,
  UpstreamError,
  type InferenceBackend,
  type ModelInvocation,
  type PredictRequest,
} from '../../../lambda/shared/inference';
import { catchError, expectAllFinite } from '../../support/assertions';



// ---------------------------------------------------------------------------------------------
// Sticky assignment
// ---------------------------------------------------------------------------------------------

describe('hashCallerId', () => {
  it('is the hex SHA-256 of the caller id', () => {
    expect(hashCallerId('alice')).toBe('2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90');
    expect(hashCallerId('é')).toBe(createHash('sha256').update('é', 'utf8').digest('hex'));
  });
});

describe('assignmentPoint', () => {
  it('is the first 52 bits of SHA-256(salt:callerId) divided by 2^52', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (callerId, salt) => {
        const digest = createHash('sha256').update(`${salt}:${callerId}`, 'utf8').digest('hex');
        const expected = Number(BigInt(`0x${digest.slice(0, 13)}`)) / 2 ** 52;
        const point = assignmentPoint(callerId, salt);
        expect(point).toBe(expected);
        expect(point).toBeGreaterThanOrEqual(0);
        expect(point).toBeLessThan(1);
      }),
    );
  });
});

const weightVector = fc
  .array(fc.record({ name: fc.stringMatching(/^[a-z]{1,8}$/), weight: fc.double({ min: 0.01, max: 100, noNaN: true }) }), { minLength: 1, maxLength: 6 })
  .map((entries) => entries.map((entry, index) => ({ ...entry, name: `${entry.name}${index}` })));

describe('assignVariant', () => {
  it('is deterministic for the same caller id and salt, and always returns one of the variants', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 256 }), fc.string({ maxLength: 64 }), weightVector, (callerId, salt, weights) => {
        const first = assignVariant(callerId, weights, salt);
        expect(assignVariant(callerId, weights, salt)).toBe(first);
        expect(assignVariant(callerId, weights.map((entry) => ({ ...entry })), salt)).toBe(first);
        expect(weights.map((entry) => entry.name)).toContain(first);
      }),
    );
  });

  it('only depends on the normalised weights', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), weightVector, fc.integer({ min: 1, max: 1000 }), (callerId, salt, weights, scale) => {
        const scaled = weights.map((entry) => ({ ...entry, weight: entry.weight * scale }));
        // Scaling by an integer can move a point that sits within rounding distance of a boundary; those are astronomically rare.
        expect(assignVariant(callerId, scaled, salt)).toBe(assignVariant(callerId, weights, salt));
      }),
    );
  });

  it('re-shuffles callers when the salt changes', () => {
    const weights = [
      { name: 'a', weight: 1 },
      { name: 'b', weight: 1 },
    ];
    const callers = Array.from({ length: 4_000 }, (_, index) => `caller-${index}`);
    const moved = callers.filter((id) => assignVariant(id, weights, 'experiment-1') !== assignVariant(id, weights, 'experiment-2')).length;
    // Independent 50/50 assignments disagree for half of the callers: 2000 ± 5 sd (sd = sqrt(4000 * 0.25) ≈ 31.6).
    expect(Math.abs(moved - 2_000)).toBeLessThan(5 * Math.sqrt(4_000 * 0.25));
  });

  // Tolerance: each arm's count is Binomial(n, p) for an ideal hash, so we allow 5 standard deviations,
  // sqrt(n p (1 - p)), per arm. The chance that a correct implementation fails one arm is ~5.7e-7.
  it('splits 20 000 random caller ids by the weights within 5 binomial standard deviations', () => {
    const weights: VariantWeight[] = [
      { name: 'control', weight: 70 },
      { name: 'challenger', weight: 20 },
      { name: 'canary', weight: 10 },
    ];
    const n = 20_000;
    // Fixed seed: the ids are random-looking but the test is reproducible.
    const ids = fc.sample(fc.string({ minLength: 1, maxLength: 40 }), { numRuns: n, seed: 20240501 });
    const counts = new Map<string, number>();
    for (const id of ids) {
      const variant = assignVariant(id, weights, 'salt-1');
      counts.set(variant, (counts.get(variant) ?? 0) + 1);
    }
    for (const { name, weight } of weights) {
      const p = weight / 100;
      const tolerance = 5 * Math.sqrt(n * p * (1 - p));
      expect(Math.abs((counts.get(name) ?? 0) - n * p)).toBeLessThan(tolerance);
    }
  });

  it('follows arbitrary weights within 5 binomial standard deviations (property)', () => {
    const n = 4_000;
    const ids = Array.from({ length: n }, (_, index) => `user-${index}@example.com`);
    fc.assert(
      fc.property(weightVector, fc.string({ minLength: 1, maxLength: 12 }), (weights, salt) => {
        const total = weights.reduce((sum, entry) => sum + entry.weight, 0);
        const counts = new Map<string, number>();
        for (const id of ids) {
          const variant = assignVariant(id, weights, salt);
          counts.set(variant, (counts.get(variant) ?? 0) + 1);
        }
        for (const { name, weight } of weights) {
          const p = weight / total;
          expect(Math.abs((counts.get(name) ?? 0) - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)) + 1e-9);
        }
      }),
      { numRuns: 25, seed: 7 },
    );
  });

  it('never picks a variant whose weight is 0', () => {
    const weights = [
      { name: 'off', weight: 0 },
      { name: 'on', weight: 2 },
      { name: 'also-off', weight: 0 },
    ];
    for (let index = 0; index < 2_000; index += 1) {
      expect(assignVariant(`c${index}`, weights, 's')).toBe('on');
    }
  });

  it.each<[string, VariantWeight[], RegExp]>([
    ['empty', [], /^weights: must list at least one variant$/],
    ['all zero', [{ name: 'a', weight: 0 }], /^weights: must sum to a positive finite number; got 0$/],
    ['negative', [{ name: 'a', weight: -1 }, { name: 'b', weight: 2 }], /^weights\[0\]\.weight: must be a finite number >= 0; got -1$/],
    ['NaN', [{ name: 'a', weight: Number.NaN }], /^weights\[0\]\.weight: /],
    ['infinite', [{ name: 'a', weight: Infinity }], /^weights\[0\]\.weight: /],
    ['overflowing sum', [{ name: 'a', weight: Number.MAX_VALUE }, { name: 'b', weight: Number.MAX_VALUE }], /^weights: must sum to a positive finite number; got Infinity$/],
    ['unnamed', [{ name: '', weight: 1 }], /^weights\[0\]\.name: /],
  ])('rejects %s weights with an error naming weights', (_label, weights, message) => {
    expect(() => assignVariant('caller', weights, 'salt')).toThrow(message);
  });
});

describe('assignRoute and sticky routes', () => {
  const table = loadRoutingTable(
    JSON.stringify({
      ranker: {
        endpointName: 'ranker',
        variants: { champion: { modelVersion: '1', weight: 9 }, challenger: { modelVersion: '2', weight: 1 } },
        sticky: { salt: 'ranker-2024-05' },
      },
      plain: { endpointName: 'plain', variants: { blue: { modelVersion: '1' }, green: { modelVersion: '2' } } },
    }),
  );
  const request = (overrides: Partial<PredictRequest> = {}): PredictRequest => ({
    payload: 1,
    contentType: 'application/json',
    accept: 'application/json',
    ...overrides,
  });

  it('pins a caller of a sticky route with assignVariant over the route weights', () => {
    const route = resolveRoute(table, 'ranker');
    expect(route.sticky).toEqual({ salt: 'ranker-2024-05' });
    for (const callerId of ['u-1', 'u-2', 'u-3', 'u-4']) {
      expect(assignRoute(request({ callerId }), route)).toEqual({
        assignment: 'sticky',
        targetVariant: assignVariant(callerId, [{ name: 'champion', weight: 9 }, { name: 'challenger', weight: 1 }], 'ranker-2024-05'),
      });
    }
  });

  it("lets the caller's targetVariant win, and leaves the split to SageMaker without a caller id or sticky routing", () => {
    expect(assignRoute(request({ callerId: 'u-1', targetVariant: 'challenger' }), resolveRoute(table, 'ranker', 'challenger'))).toEqual({
      assignment: 'targeted',
      targetVariant: 'challenger',
    });
    expect(assignRoute(request(), resolveRoute(table, 'ranker'))).toEqual({ assignment: 'weighted' });
    expect(assignRoute(request({ callerId: 'u-1' }), resolveRoute(table, 'plain'))).toEqual({ assignment: 'weighted' });
  });

  it('rejects a sticky route without weights on every variant, naming the variant', () => {
    const error = catchError(() =>
      loadRoutingTable(JSON.stringify({ m: { endpointName: 'e', variants: { a: { modelVersion: '1', weight: 1 }, b: { modelVersion: '2' } }, sticky: { salt: 's' } } })),
    );
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe('MODEL_ROUTES: m.variants.b.weight: is required on every variant when sticky routing is on');
  });

  it('accepts a weight of 0 on a sticky variant, which sticky callers are then never assigned to, but not all weights 0', () => {
    const table = loadRoutingTable(
      JSON.stringify({ m: { endpointName: 'e', variants: { a: { modelVersion: '1', weight: 1 }, b: { modelVersion: '2', weight: 0 } }, sticky: { salt: 's' } } }),
    );
    for (const callerId of ['u-1', 'u-2', 'u-3', 'u-4', 'u-5']) {
      expect(assignRoute(request({ callerId }), resolveRoute(table, 'm'))).toMatchObject({ assignment: 'sticky', targetVariant: 'a' });
    }
    expect(assignRoute(request({ callerId: 'u-1', targetVariant: 'b' }), resolveRoute(table, 'm', 'b'))).toMatchObject({ targetVariant: 'b' });
    expect(() =>
      loadRoutingTable(JSON.stringify({ m: { endpointName: 'e', variants: { a: { modelVersion: '1', weight: 0 }, b: { modelVersion: '2', weight: 0 } }, sticky: { salt: 's' } } })),
    ).toThrow(/^MODEL_ROUTES: m\.variants: sticky routing needs a variant with a weight above 0$/);
  });

  it.each([
    [{ modelVersion: '1', weight: -2 }, /^MODEL_ROUTES: m\.variants\.a\.weight: must be at least 0$/],
    [{ modelVersion: '1', weight: '3' }, /^MODEL_ROUTES: m\.variants\.a\.weight: must be a number$/],
  ])('rejects a bad weight naming it (%j)', (variant, message) => {
    expect(() => loadRoutingTable(JSON.stringify({ m: { endpointName: 'e', variants: { a: variant } } }))).toThrow(message);
  });

  it('rejects an empty salt naming it', () => {
    expect(() =>
      loadRoutingTable(JSON.stringify({ m: { endpointName: 'e', variants: { a: { modelVersion: '1', weight: 1 } }, sticky: { salt: '' } } })),
    ).toThrow(/^MODEL_ROUTES: m\.sticky\.salt: must be a non-empty string$/);
  });
});

describe('handlePrediction with assignRoute', () => {
  const routes = loadRoutingTable(
    JSON.stringify({
      ranker: {
        endpointName: 'ranker',
        variants: { champion: { modelVersion: '1', weight: 1 }, challenger: { modelVersion: '2', weight: 1 } },
        sticky: { salt: 's-1' },
      },
    }),
  );
  const weights = [
    { name: 'champion', weight: 1 },
    { name: 'challenger', weight: 1 },
  ];

  function recordingBackend(): { backend: InferenceBackend; calls: ModelInvocation[] } {
    const calls: ModelInvocation[] = [];
    return {
      calls,
      backend: async (invocation) => {
        calls.push(invocation);
        return { body: '{"y":1}', contentType: 'application/json', ...(invocation.targetVariant === undefined ? {} : { invokedVariant: invocation.targetVariant }) };
      },
    };
  }

  it('sends the sticky variant as target and reports the assignment and caller id on the outcome (not in the response)', async () => {
    const { backend, calls } = recordingBackend();
    const outcome = await handlePrediction(
      { modelName: 'ranker', body: JSON.stringify({ payload: 1, callerId: 'u-42' }) },
      { routes, backend, ids: () => 'p-1', assign: assignRoute },
    );
    const expected = assignVariant('u-42', weights, 's-1');
    expect(calls).toEqual([expect.objectContaining({ targetVariant: expected })]);
    expect(outcome).toMatchObject({ kind: 'success', assignment: 'sticky', callerId: 'u-42', result: { variant: expected } });
    expect(JSON.parse(outcome.response.body)).not.toHaveProperty('callerId');
    expect(JSON.parse(outcome.response.body)).not.toHaveProperty('assignment');
  });

  it("defaults to 'targeted' / 'weighted' without an assigner, ignoring stickiness", async () => {
    const { backend, calls } = recordingBackend();
    const weighted = await handlePrediction({ modelName: 'ranker', body: JSON.stringify({ payload: 1, callerId: 'u-42' }) }, { routes, backend, ids: () => 'p' });
    const targeted = await handlePrediction({ modelName: 'ranker', body: JSON.stringify({ payload: 1, targetVariant: 'challenger' }) }, { routes, backend, ids: () => 'p' });
    expect(weighted).toMatchObject({ kind: 'success', assignment: 'weighted' });
    expect(targeted).toMatchObject({ kind: 'success', assignment: 'targeted' });
    expect(targeted).not.toHaveProperty('callerId');
    expect(calls.map((call) => call.targetVariant)).toEqual([undefined, 'challenger']);
  });

  it('treats an assigner that picks a variant outside the route as a bug', async () => {
    const { backend, calls } = recordingBackend();
    await expect(
      handlePrediction({ modelName: 'ranker', body: '{"payload":1}' }, { routes, backend, ids: () => 'p', assign: () => ({ assignment: 'sticky', targetVariant: 'ghost' }) }),
    ).rejects.toThrow(/variant assigner chose "ghost"/);
    expect(calls).toHaveLength(0);
  });

  it('validates callerId as 1-256 characters', () => {
    expect(parseRequest(JSON.stringify({ payload: 1, callerId: 'x'.repeat(256) })).callerId).toHaveLength(256);
    for (const callerId of ['', 'x'.repeat(257), 7]) {
      expect(() => parseRequest(JSON.stringify({ payload: 1, callerId }))).toThrow(expect.objectContaining({ status: 400, field: 'callerId' }));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Prediction log record
// ---------------------------------------------------------------------------------------------

describe('prediction log record', () => {
  const result = { predictionId: 'p-1', model: 'churn', variant: 'green', modelVersion: 'churn-v2' };
  const servedAt = new Date('2024-05-01T12:34:56.789Z');

  it('holds the served prediction, an ISO servedAt, the TTL in epoch seconds and only the hash of the caller id', () => {
    const record = predictionLogRecord({ result, servedAt, ttlDays: 90, callerId: 'alice', assignment: 'sticky' });
    expect(record).toEqual({
      ...result,
      servedAt: '2024-05-01T12:34:56.789Z',
      expiresAt: Math.floor(servedAt.getTime() / 1000) + 90 * 86_400,
      callerHash: hashCallerId('alice'),
      assignment: 'sticky',
    });
    expect(JSON.stringify(record)).not.toContain('alice');
  });

  it('omits callerHash and assignment when absent, and marshals to a DynamoDB item with a conditional put', () => {
    const record = predictionLogRecord({ result, servedAt, ttlDays: 7 });
    expect(record).not.toHaveProperty('callerHash');
    expect(record).not.toHaveProperty('assignment');
    expect(predictionLogItem(record)).toEqual({
      predictionId: { S: 'p-1' },
      model: { S: 'churn' },
      variant: { S: 'green' },
      modelVersion: { S: 'churn-v2' },
      servedAt: { S: '2024-05-01T12:34:56.789Z' },
      expiresAt: { N: String(Math.floor(servedAt.getTime() / 1000) + 7 * 86_400) },
    });
    expect(predictionLogPut('log', predictionLogRecord({ result, servedAt, ttlDays: 1, callerId: 'x', assignment: 'weighted' }))).toMatchObject({
      TableName: 'log',
      ConditionExpression: 'attribute_not_exists(predictionId)',
      Item: { callerHash: { S: hashCallerId('x') }, assignment: { S: 'weighted' } },
    });
  });

  it('reads PREDICTION_LOG_TTL_DAYS with a default of 90 and rejects unusable values naming the variable', () => {
    expect(parsePredictionLogTtlDays(undefined)).toBe(DEFAULT_PREDICTION_LOG_TTL_DAYS);
    expect(parsePredictionLogTtlDays(' ')).toBe(90);
    expect(parsePredictionLogTtlDays('30')).toBe(30);
    for (const raw of ['0', '-1', '1.5', 'ninety', '40000']) {
      const error = catchError(() => parsePredictionLogTtlDays(raw));
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/^PREDICTION_LOG_TTL_DAYS: must be a whole number of days/);
    }
  });

  it('rejects an invalid date or TTL', () => {
    expect(() => predictionLogRecord({ result, servedAt: new Date('nope'), ttlDays: 1 })).toThrow(/^servedAt: /);
    expect(() => predictionLogRecord({ result, servedAt, ttlDays: 0 })).toThrow(/^ttlDays: /);
  });
});

// ---------------------------------------------------------------------------------------------
// Outcome API
// ---------------------------------------------------------------------------------------------

describe('parseOutcomeRequest', () => {
  const parse = (body: unknown) => parseOutcomeRequest(JSON.stringify(body));

  it('accepts binary outcomes as 0/1 or booleans and normalises them to 0/1', () => {
    expect(parse({ predictionId: 'p-1', outcome: { type: 'binary', value: true } })).toEqual({ predictionId: 'p-1', outcome: { type: 'binary', value: 1 } });
    expect(parse({ predictionId: 'p-1', outcome: { type: 'binary', value: false } }).outcome).toEqual({ type: 'binary', value: 0 });
    expect(parse({ predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }).outcome).toEqual({ type: 'binary', value: 1 });
    expect(parse({ predictionId: 'p-1', outcome: { type: 'binary', value: 0 } }).outcome).toEqual({ type: 'binary', value: 0 });
  });

  it('accepts continuous outcomes and base64 bodies', () => {
    expect(parse({ predictionId: 'a.B-c_9', outcome: { type: 'continuous', value: -12.5 } })).toEqual({
      predictionId: 'a.B-c_9',
      outcome: { type: 'continuous', value: -12.5 },
    });
    const body = Buffer.from(JSON.stringify({ predictionId: 'p', outcome: { type: 'continuous', value: 3 } })).toString('base64');
    expect(parseOutcomeRequest(body, true).outcome.value).toBe(3);
  });

  it.each<[string, string | null, string, RegExp]>([
    ['no body', null, 'body', /^body: is required/],
    ['invalid JSON', '{"predictionId":', 'body', /^body: must be valid JSON$/],
    ['a missing prediction id', '{"outcome":{"type":"binary","value":1}}', 'predictionId', /^predictionId: /],
    ['a prediction id with bad characters', '{"predictionId":"a b","outcome":{"type":"binary","value":1}}', 'predictionId', /^predictionId: Invalid prediction id/],
    ['a prediction id over 64 characters', JSON.stringify({ predictionId: 'x'.repeat(65), outcome: { type: 'binary', value: 1 } }), 'predictionId', /^predictionId: /],
    ['a missing outcome', '{"predictionId":"p"}', 'outcome', /^outcome: /],
    ['an unknown outcome type', '{"predictionId":"p","outcome":{"type":"ordinal","value":1}}', 'outcome.type', /^outcome\.type: must be one of 'binary', 'continuous'$/],
    ['a binary value of 2', '{"predictionId":"p","outcome":{"type":"binary","value":2}}', 'outcome.value', /^outcome\.value: must be 0, 1, true or false$/],
    ['a binary value as string', '{"predictionId":"p","outcome":{"type":"binary","value":"1"}}', 'outcome.value', /^outcome\.value: /],
    ['a non-numeric continuous value', '{"predictionId":"p","outcome":{"type":"continuous","value":"3"}}', 'outcome.value', /^outcome\.value: must be a finite number$/],
    ['an infinite continuous value', '{"predictionId":"p","outcome":{"type":"continuous","value":1e999}}', 'outcome.value', /^outcome\.value: must be a finite number$/],
    ['an unknown top-level field', '{"predictionId":"p","outcome":{"type":"binary","value":1},"extra":1}', 'extra', /^extra: unknown field$/],
    ['an unknown outcome field', '{"predictionId":"p","outcome":{"type":"binary","value":1,"weight":2}}', 'outcome.weight', /^outcome\.weight: unknown field$/],
  ])('rejects %s with a 400 naming the field', (_label, body, field, message) => {
    const error = catchError(() => parseOutcomeRequest(body));
    expect(error).toBeInstanceOf(RequestError);
    expect(error).toMatchObject({ status: 400, field });
    expect((error as Error).message).toMatch(message);
  });

  it('refuses bodies above the outcome size limit with a 413', () => {
    const error = catchError(() => parseOutcomeRequest(JSON.stringify({ predictionId: 'p', padding: 'x'.repeat(MAX_OUTCOME_BODY_BYTES) })));
    expect(error).toMatchObject({ status: 413, field: 'body' });
  });

  it('never throws anything but a RequestError naming a field (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.json(), fc.string()), (body) => {
        try {
          parseOutcomeRequest(body);
        } catch (error) {
          expect(error).toBeInstanceOf(RequestError);
          const requestError = error as RequestError;
          expect(requestError.field).toBeDefined();
          expect(requestError.message.startsWith(`${requestError.field}: `) || requestError.message.includes(`${requestError.field}: `)).toBe(true);
        }
      }),
    );
  });
});

describe('outcome update and conflicts', () => {
  const request: OutcomeRequest = { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } };
  const stored = (extra: ReadableItem = {}): ReadableItem => ({
    predictionId: { S: 'p-1' },
    model: { S: 'churn' },
    variant: { S: 'green' },
    modelVersion: { S: 'v2' },
    servedAt: { S: '2024-05-01T00:00:00.000Z' },
    ...extra,
  });

  it('builds a conditional UpdateItem that returns the new item, and the old one when the condition fails', () => {
    expect(outcomeUpdate('log', 'churn', request, new Date('2024-05-02T00:00:00Z'))).toEqual({
      TableName: 'log',
      Key: { predictionId: { S: 'p-1' } },
      UpdateExpression: 'SET #outcomeType = :outcomeType, #outcomeValue = :outcomeValue, #outcomeAt = :outcomeAt',
      ConditionExpression: 'attribute_exists(#predictionId) AND #model = :model AND attribute_not_exists(#outcomeType)',
      ExpressionAttributeNames: {
        '#predictionId': 'predictionId',
        '#model': 'model',
        '#outcomeType': 'outcomeType',
        '#outcomeValue': 'outcomeValue',
        '#outcomeAt': 'outcomeAt',
      },
      ExpressionAttributeValues: {
        ':model': { S: 'churn' },
        ':outcomeType': { S: 'binary' },
        ':outcomeValue': { N: '1' },
        ':outcomeAt': { S: '2024-05-02T00:00:00.000Z' },
      },
      ReturnValues: 'ALL_NEW',
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
  });

  it('answers 404 naming predictionId when there is no item, or the item belongs to another model', () => {
    for (const item of [undefined, stored({ model: { S: 'fraud' } })]) {
      const error = catchError(() => explainOutcomeConflict(item, 'churn', request));
      expect(error).toMatchObject({ status: 404, code: 'NotFound', field: 'predictionId', message: "predictionId: no prediction 'p-1' for model 'churn'" });
    }
  });

  it('treats the same outcome as an idempotent repeat', () => {
    const item = stored({ outcomeType: { S: 'binary' }, outcomeValue: { N: '1' }, outcomeAt: { S: '2024-05-02T00:00:00.000Z' } });
    expect(explainOutcomeConflict(item, 'churn', request)).toMatchObject({ predictionId: 'p-1', variant: 'green', outcome: { type: 'binary', value: 1 } });
  });

  it('answers 409 when a different outcome is recorded (other value or other type)', () => {
    for (const extra of [
      { outcomeType: { S: 'binary' }, outcomeValue: { N: '0' } },
      { outcomeType: { S: 'continuous' }, outcomeValue: { N: '1' } },
      { outcomeType: { S: 'binary' }, outcomeValue: { N: 'garbage' } },
    ]) {
      const error = catchError(() => explainOutcomeConflict(stored({ ...extra, outcomeAt: { S: '2024-05-02T00:00:00.000Z' } }), 'churn', request));
      expect(error).toMatchObject({ status: 409, code: 'Conflict', field: 'outcome' });
      expect((error as Error).message).toMatch(/^outcome: prediction 'p-1' already has .* a recorded outcome cannot be changed$/);
    }
  });

  it('reads stored predictions defensively', () => {
    expect(readStoredPrediction({ model: { S: 'x' } })).toBeUndefined();
    expect(readStoredPrediction(stored({ outcomeType: { S: 'binary' }, outcomeValue: { N: '0.5' } }))).not.toHaveProperty('outcome');
  });
});

describe('classifyDynamoDbError', () => {
  const named = (name: string, extra: object = {}) => Object.assign(new Error('x'), { name, ...extra });

  it.each(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'])('maps %s to 429', (name) => {
    expect(classifyDynamoDbError(named(name))).toMatchObject({ status: 429, code: 'Throttled' });
  });

  it('maps service, timeout and network failures to 503', () => {
    for (const error of [
      named('InternalServerError'),
      named('ServiceUnavailable'),
      named('TimeoutError'),
      named('Whatever', { $metadata: { httpStatusCode: 500 } }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
      new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9'),
    ]) {
      const classified = classifyDynamoDbError(error);
      expect(classified).toBeInstanceOf(UpstreamError);
      expect(classified).toMatchObject({ status: 503, code: 'ServiceUnavailable' });
    }
  });

  it('leaves configuration errors to the caller (a logged 500)', () => {
    for (const error of [named('AccessDeniedException'), named('ResourceNotFoundException'), named('ValidationException'), null, 'boom']) {
      expect(classifyDynamoDbError(error)).toBeUndefined();
    }
  });

  it('recognises a failed condition', () => {
    expect(isConditionalCheckFailed(named('ConditionalCheckFailedException'))).toBe(true);
    expect(isConditionalCheckFailed(named('ValidationException'))).toBe(false);
    expect(isConditionalCheckFailed(undefined)).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Aggregation and analysis
// ---------------------------------------------------------------------------------------------

function item(variant: string, outcome?: { type: string; value: number | string }): ReadableItem {
  return {
    variant: { S: variant },
    ...(outcome === undefined ? {} : { outcomeType: { S: outcome.type }, outcomeValue: { N: String(outcome.value) } }),
  };
}

/** count items of a variant, the first `successes` with outcome 1, the next `failures` with 0, the rest without outcome. */
function binaryItems(variant: string, successes: number, failures: number, withoutOutcome = 0): ReadableItem[] {
  return [
    ...Array.from({ length: successes }, () => item(variant, { type: 'binary', value: 1 })),
    ...Array.from({ length: failures }, () => item(variant, { type: 'binary', value: 0 })),
    ...Array.from({ length: withoutOutcome }, () => item(variant)),
  ];
}

const binary = { variantA: 'blue', variantB: 'green', outcomeType: 'binary' as const };

describe('aggregateOutcomes', () => {
  it('counts predictions, outcomes and successes per arm, and ignores other variants and other outcome types', () => {
    const aggregates = aggregateOutcomes(
      [
        ...binaryItems('blue', 3, 1, 2),
        ...binaryItems('green', 1, 3),
        item('green', { type: 'continuous', value: 4 }),
        item('green', { type: 'binary', value: 'NaN' }),
        item('shadow', { type: 'binary', value: 1 }),
        {},
      ],
      binary,
    );
    // Sample variance of {1,1,1,0} and {1,0,0,0}: 0.75 * 0.25 * 4 / 3 = 0.25.
    expect(aggregates).toEqual({
      outcomeType: 'binary',
      arms: [
        { variant: 'blue', predictions: 6, outcomes: 4, successes: 3, mean: 0.75, variance: expect.closeTo(0.25, 12), ignoredOutcomes: 0 },
        { variant: 'green', predictions: 6, outcomes: 4, successes: 1, mean: 0.25, variance: expect.closeTo(0.25, 12), ignoredOutcomes: 2 },
      ],
      otherVariantItems: 2,
    });
  });

  it('reports the mean and sample variance of continuous outcomes, and zeros for an arm without outcomes', () => {
    const aggregates = aggregateOutcomes(
      [2, 4, 4, 4, 5, 5, 7, 9].map((value) => item('a', { type: 'continuous', value })).concat([item('b')]),
      { variantA: 'a', variantB: 'b', outcomeType: 'continuous' },
    );
    expect(aggregates.arms[0]).toEqual({ variant: 'a', predictions: 8, outcomes: 8, mean: 5, variance: 32 / 7, ignoredOutcomes: 0 });
    expect(aggregates.arms[1]).toEqual({ variant: 'b', predictions: 1, outcomes: 0, mean: 0, variance: 0, ignoredOutcomes: 0 });
  });

  it('gives the same result page by page as all at once', () => {
    const items = [...binaryItems('blue', 10, 5, 3), ...binaryItems('green', 4, 9, 1)];
    const aggregator = new OutcomeAggregator(binary);
    for (let start = 0; start < items.length; start += 7) {
      aggregator.addAll(items.slice(start, start + 7));
    }
    expect(aggregator.result()).toEqual(aggregateOutcomes(items, binary));
  });

  it('rejects identical arms', () => {
    expect(() => aggregateOutcomes([], { ...binary, variantB: 'blue' })).toThrow(/^variantB: must differ from variantA$/);
  });
});

describe('analyzeExperiment', () => {
  const options = { outcomeType: 'binary' as const, alpha: 0.05, power: 0.8, minimumDetectableEffect: 0.05, baselineRate: 0.1 };

  it('keeps running with a reason while an arm has fewer than 2 outcomes', () => {
    const analysis = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 1, 0, 5), ...binaryItems('green', 40, 60)], binary), options);
    expect(analysis).toMatchObject({ decision: 'keep-running', test: null, requiredSampleSizePerArm: 686, sampleSizeBasis: 'baselineRate' });
    expect(analysis.reason).toBe("variant 'blue' has 1 outcome; at least 2 per arm are needed for a test");
    expect(analyzeExperiment(aggregateOutcomes([], binary), options).reason).toBe(
      "variant 'blue' has 0 outcomes and variant 'green' has 0 outcomes; at least 2 per arm are needed for a test",
    );
  });

  it('declares B the winner for clearly different arms past the horizon', () => {
    // 10% vs 20% with 1000 outcomes per arm; the horizon for 10% -> 15% is 686 per arm.
    const analysis = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 100, 900), ...binaryItems('green', 200, 800)], binary), options);
    expect(analysis.decision).toBe('b-wins');
    expect(analysis.requiredSampleSizePerArm).toBe(686);
    expect(analysis.test).toMatchObject({ kind: 'two-proportion-z-test', pA: 0.1, pB: 0.2, significant: true });
    expect(analysis.test!.pValue).toBeLessThan(1e-9);
    expect(analysis.reason).toMatch(/^horizon of 686 outcomes per arm reached and variant 'green' is significantly better/);
    expectAllFinite(analysis);
  });

  it('declares A the winner when lower is better', () => {
    const analysis = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 100, 900), ...binaryItems('green', 200, 800)], binary), {
      ...options,
      higherIsBetter: false,
    });
    expect(analysis.decision).toBe('a-wins');
  });

  it('finds no difference for identical arms past the horizon', () => {
    const analysis = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 100, 900), ...binaryItems('green', 100, 900)], binary), options);
    expect(analysis).toMatchObject({ decision: 'no-difference', test: { difference: 0, pValue: 1, significant: false } });
  });

  it('keeps running before the horizon even when the difference is already significant', () => {
    const analysis = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 20, 180), ...binaryItems('green', 60, 140)], binary), options);
    expect(analysis.test!.significant).toBe(true);
    expect(analysis.decision).toBe('keep-running');
    expect(analysis.reason).toMatch(/^fixed horizon not reached: 200 and 200 outcomes of 686 required per arm/);
  });

  it("uses arm A's observed rate when no baselineRate is given, and keeps running when it is 0", () => {
    const observed = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 100, 900), ...binaryItems('green', 200, 800)], binary), {
      ...options,
      baselineRate: undefined,
    });
    expect(observed).toMatchObject({ sampleSizeBasis: 'observedBaselineRate', requiredSampleSizePerArm: 686, decision: 'b-wins' });

    const zero = analyzeExperiment(aggregateOutcomes([...binaryItems('blue', 0, 50), ...binaryItems('green', 5, 45)], binary), { ...options, baselineRate: undefined });
    expect(zero).toMatchObject({ decision: 'keep-running', requiredSampleSizePerArm: null, sampleSizeBasis: null });
    expect(zero.test).not.toBeNull();
    expect(zero.reason).toMatch(/pass baselineRate$/);
  });

  it('runs a Welch test on continuous outcomes with the observed pooled standard deviation', () => {
    const continuous = { variantA: 'a', variantB: 'b', outcomeType: 'continuous' as const };
    const values = (variant: string, centre: number) =>
      Array.from({ length: 200 }, (_, index) => item(variant, { type: 'continuous', value: centre + ((index % 10) - 4.5) }));
    const analysis = analyzeExperiment(aggregateOutcomes([...values('a', 100), ...values('b', 103)], continuous), {
      outcomeType: 'continuous',
      minimumDetectableEffect: 1,
    });
    expect(analysis.sampleSizeBasis).toBe('observedStandardDeviation');
    expect(analysis.test).toMatchObject({ kind: 'welch-t-test', difference: 3, significant: true });
    expect(analysis.decision).toBe('b-wins');
    expectAllFinite(analysis);
  });

  it('reports t as null (never Infinity) when both arms are constant but different', () => {
    const continuous = { variantA: 'a', variantB: 'b', outcomeType: 'continuous' as const };
    const constant = (variant: string, value: number) => Array.from({ length: 50 }, () => item(variant, { type: 'continuous', value }));
    const analysis = analyzeExperiment(aggregateOutcomes([...constant('a', 1), ...constant('b', 2)], continuous), {
      outcomeType: 'continuous',
      minimumDetectableEffect: 1,
      standardDeviation: 1,
    });
    expect(analysis.requiredSampleSizePerArm).toBe(16);
    expect(analysis.test).toMatchObject({ kind: 'welch-t-test', t: null, pValue: 0 });
    expect(analysis.decision).toBe('b-wins');
    expectAllFinite(analysis);
    expect(JSON.parse(JSON.stringify(analysis))).toEqual(analysis);

    const flat = analyzeExperiment(aggregateOutcomes([...constant('a', 1), ...constant('b', 1)], continuous), { outcomeType: 'continuous', minimumDetectableEffect: 0.5 });
    expect(flat).toMatchObject({ decision: 'keep-running', requiredSampleSizePerArm: null });
    expect(flat.reason).toMatch(/pass standardDeviation$/);
  });

  it('keeps running with a reason when the horizon is beyond reach instead of throwing', () => {
    // Found by the property below: a spread of ~34 000 against an effect of 0.001 needs ~1e16 outcomes per arm.
    const aggregates = aggregateOutcomes(
      [item('a', { type: 'continuous', value: 0 }), item('a', { type: 'continuous', value: 47907.78 }), item('b', { type: 'continuous', value: 0 }), item('b', { type: 'continuous', value: 0 })],
      { variantA: 'a', variantB: 'b', outcomeType: 'continuous' },
    );
    const analysis = analyzeExperiment(aggregates, { outcomeType: 'continuous', minimumDetectableEffect: 0.001 });
    expect(analysis).toMatchObject({ decision: 'keep-running', requiredSampleSizePerArm: null, sampleSizeBasis: null });
    expect(analysis.reason).toMatch(/^the required sample size per arm \(.+\) cannot be reached; minimumDetectableEffect is far too small for the noise$/);
    expectAllFinite(analysis);
  });

  it('never throws and only produces finite numbers, whatever the data (property)', () => {
    const arbitraryItem = fc.record({
      variant: fc.constantFrom('a', 'b', 'c'),
      outcome: fc.option(
        fc.oneof(
          fc.record({ type: fc.constant('binary'), value: fc.constantFrom(0, 1) }),
          fc.record({ type: fc.constant('continuous'), value: fc.double({ min: -1e6, max: 1e6, noNaN: true }) }),
        ),
        { nil: undefined },
      ),
    });
    fc.assert(
      fc.property(
        fc.array(arbitraryItem, { maxLength: 80 }),
        fc.constantFrom('binary' as const, 'continuous' as const),
        fc.double({ min: 0.001, max: 0.5, noNaN: true }),
        fc.boolean(),
        (items, outcomeType, effect, fixed) => {
          const aggregates: ExperimentAggregates = aggregateOutcomes(
            items.map((entry) => item(entry.variant, entry.outcome)),
            { variantA: 'a', variantB: 'b', outcomeType },
          );
          const analysis = analyzeExperiment(aggregates, {
            outcomeType,
            minimumDetectableEffect: effect,
            ...(fixed ? (outcomeType === 'binary' ? { baselineRate: 0.3 } : { standardDeviation: 2 }) : {}),
          });
          expect(['keep-running', 'a-wins', 'b-wins', 'no-difference']).toContain(analysis.decision);
          expect(analysis.reason.length).toBeGreaterThan(0);
          expectAllFinite(analysis);
        },
      ),
    );
  });
});

describe('parseAnalysisInput', () => {
  const valid = {
    model: 'churn',
    variantA: 'blue',
    variantB: 'green',
    outcomeType: 'binary',
    windowStart: '2024-05-01T00:00:00Z',
    windowEnd: '2024-05-08T00:00:00+02:00',
    minimumDetectableEffect: 0.02,
  };

  it('applies the defaults', () => {
    expect(parseAnalysisInput(valid)).toEqual({ ...valid, alpha: 0.05, power: 0.8, higherIsBetter: true });
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['a missing model', { model: undefined }, 'model', /^model: /],
    ['a bad variant name', { variantA: 'not_valid' }, 'variantA', /^variantA: Invalid variant name/],
    ['identical arms', { variantB: 'blue' }, 'variantB', /^variantB: must differ from variantA$/],
    ['an unknown outcome type', { outcomeType: 'ordinal' }, 'outcomeType', /^outcomeType: must be one of 'binary', 'continuous'$/],
    ['a date without time zone', { windowStart: '2024-05-01' }, 'windowStart', /^windowStart: must be an ISO-8601 date-time/],
    ['a non-string window', { windowEnd: 5 }, 'windowEnd', /^windowEnd: must be an ISO-8601 date-time string$/],
    ['an empty window', { windowEnd: '2024-05-01T00:00:00Z' }, 'windowEnd', /^windowEnd: must be after windowStart$/],
    ['alpha of 1', { alpha: 1 }, 'alpha', /^alpha: must be a number strictly between 0 and 1/],
    ['power of 0', { power: 0 }, 'power', /^power: must be a number strictly between 0 and 1/],
    ['a missing effect', { minimumDetectableEffect: undefined }, 'minimumDetectableEffect', /^minimumDetectableEffect: /],
    ['a negative effect', { minimumDetectableEffect: -0.1 }, 'minimumDetectableEffect', /^minimumDetectableEffect: must be a finite number greater than 0$/],
    ['a binary effect of 1', { minimumDetectableEffect: 1 }, 'minimumDetectableEffect', /^minimumDetectableEffect: must be below 1/],
    ['an impossible effect for the baseline', { baselineRate: 0.5, minimumDetectableEffect: 0.6 }, 'minimumDetectableEffect', /^minimumDetectableEffect: /],
    ['standardDeviation with binary outcomes', { standardDeviation: 1 }, 'standardDeviation', /^standardDeviation: only applies when outcomeType is 'continuous'/],
    ['baselineRate with continuous outcomes', { outcomeType: 'continuous', baselineRate: 0.1 }, 'baselineRate', /^baselineRate: only applies when outcomeType is 'binary'/],
    ['an unknown field', { windowsStart: 'x' }, 'windowsStart', /^windowsStart: unknown field$/],
  ])('rejects %s with an AnalysisInputError naming the field', (_label, overrides, field, message) => {
    const input = { ...valid, ...overrides };
    for (const key of Object.keys(input)) {
      if ((input as Record<string, unknown>)[key] === undefined) {
        delete (input as Record<string, unknown>)[key];
      }
    }
    const error = catchError(() => parseAnalysisInput(input));
    expect(error).toBeInstanceOf(AnalysisInputError);
    expect(error).toMatchObject({ name: 'AnalysisInputError', field });
    expect((error as Error).message).toMatch(message);
  });

  it('names input when the input is not an object', () => {
    expect(() => parseAnalysisInput(null)).toThrow(/^input: /);
  });
});

describe('analysis window query', () => {
  it('covers [windowStart, windowEnd) on millisecond servedAt strings, normalising time zones', () => {
    expect(servedAtRange({ windowStart: '2024-05-01T02:00:00+02:00', windowEnd: '2024-05-02T00:00:00Z' })).toEqual({
      from: '2024-05-01T00:00:00.000Z',
      to: '2024-05-01T23:59:59.999Z',
    });
  });

  it('queries the byModel index for the two arms only, paging with the previous LastEvaluatedKey', () => {
    const input = { model: 'churn', variantA: 'blue', variantB: 'green', windowStart: '2024-05-01T00:00:00Z', windowEnd: '2024-05-02T00:00:00Z' };
    const key = { predictionId: { S: 'p' }, model: { S: 'churn' }, servedAt: { S: '2024-05-01T01:00:00.000Z' } };
    expect(predictionWindowQuery('log', input, { limit: 10, exclusiveStartKey: key })).toEqual({
      TableName: 'log',
      IndexName: 'byModel',
      KeyConditionExpression: '#model = :model AND #servedAt BETWEEN :from AND :to',
      FilterExpression: '#variant IN (:variantA, :variantB)',
      ProjectionExpression: '#variant, #outcomeType, #outcomeValue',
      ExpressionAttributeNames: { '#model': 'model', '#servedAt': 'servedAt', '#variant': 'variant', '#outcomeType': 'outcomeType', '#outcomeValue': 'outcomeValue' },
      ExpressionAttributeValues: {
        ':model': { S: 'churn' },
        ':from': { S: '2024-05-01T00:00:00.000Z' },
        ':to': { S: '2024-05-01T23:59:59.999Z' },
        ':variantA': { S: 'blue' },
        ':variantB': { S: 'green' },
      },
      Limit: 10,
      ExclusiveStartKey: key,
    });
  });
});
