import { createPredictionLogTable } from '../support/prediction-log-table';
// Runs the analyze-experiment handler (source via swc, and once the esbuild bundle) against moto's
// DynamoDB holding a prediction log with the byModel GSI.
import { BatchWriteItemCommand, DynamoDBClient, type AttributeValue } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import { predictionLogItem, predictionLogRecord } from '../../lambda/shared/experiments';
import { handlerModulePaths, loadFreshHandler, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { expectAllFinite } from '../support/assertions';

type Handler = (event: unknown, context?: Context) => Promise<Record<string, unknown>>;

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('analyze-experiment');
const TABLE = 'prediction-log';

const setEnv = useHandlerEnv(
  ['AWS_ENDPOINT_URL_DYNAMODB', 'PREDICTION_LOG_TABLE', 'PREDICTION_LOG_INDEX', 'ANALYSIS_QUERY_PAGE_SIZE', 'POWERTOOLS_SERVICE_NAME', 'POWERTOOLS_LOG_LEVEL'],
  {
    PREDICTION_LOG_TABLE: TABLE,
    POWERTOOLS_SERVICE_NAME: 'analysis-test',
    // The handler's one INFO line per run is asserted nowhere; keep the test output clean.
    POWERTOOLS_LOG_LEVEL: 'WARN',
  },
);


interface Seed {
  readonly model: string;
  readonly variant: string;
  readonly servedAt: Date;
  readonly outcome?: { readonly type: 'binary' | 'continuous'; readonly value: number };
}

let sequence = 0;

function toItem(seed: Seed): Record<string, AttributeValue> {
  sequence += 1;
  const record = predictionLogRecord({
    result: { predictionId: `p-${sequence}`, model: seed.model, variant: seed.variant, modelVersion: `${seed.variant}-1` },
    servedAt: seed.servedAt,
    ttlDays: 90,
  });
  const item: Record<string, AttributeValue> = { ...predictionLogItem(record) };
  if (seed.outcome !== undefined) {
    item.outcomeType = { S: seed.outcome.type };
    item.outcomeValue = { N: String(seed.outcome.value) };
    item.outcomeAt = { S: new Date(seed.servedAt.getTime() + 60_000).toISOString() };
  }
  return item;
}

async function seed(client: DynamoDBClient, seeds: readonly Seed[]): Promise<void> {
  const items = seeds.map(toItem);
  for (let start = 0; start < items.length; start += 25) {
    const requests = items.slice(start, start + 25).map((Item) => ({ PutRequest: { Item } }));
    const result = await client.send(new BatchWriteItemCommand({ RequestItems: { [TABLE]: requests } }));
    expect(Object.keys(result.UnprocessedItems ?? {})).toHaveLength(0);
  }
}

const WINDOW_START = '2024-05-01T00:00:00.000Z';
const WINDOW_END = '2024-05-08T00:00:00.000Z';
const windowStartMs = Date.parse(WINDOW_START);
const windowEndMs = Date.parse(WINDOW_END);

/** `count` predictions of a variant spread over the window: the first `successes` with outcome 1, the next `failures` with 0. */
function binaryArm(model: string, variant: string, successes: number, failures: number, withoutOutcome = 0): Seed[] {
  const total = successes + failures + withoutOutcome;
  return Array.from({ length: total }, (_, index) => ({
    model,
    variant,
    servedAt: new Date(windowStartMs + Math.floor(((index + 0.5) / total) * (windowEndMs - windowStartMs))),
    ...(index < successes
      ? { outcome: { type: 'binary' as const, value: 1 } }
      : index < successes + failures
        ? { outcome: { type: 'binary' as const, value: 0 } }
        : {}),
  }));
}

function binaryInput(model: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model,
    variantA: 'blue',
    variantB: 'green',
    outcomeType: 'binary',
    windowStart: WINDOW_START,
    windowEnd: WINDOW_END,
    minimumDetectableEffect: 0.1,
    baselineRate: 0.2,
    ...overrides,
  };
}

describe('analyze-experiment handler against moto DynamoDB', () => {
  let moto: MotoServer;
  let dynamodb: DynamoDBClient;
  let handler: Handler;

  beforeAll(async () => {
    moto = await startMoto();
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    handler = loadFreshHandler<Handler>(HANDLER_SOURCE);
    await createPredictionLogTable(dynamodb, TABLE);
    await seed(dynamodb, [
      // churn: 20% vs 40% with 300 outcomes per arm (the horizon for 20% -> 30% is 294 per arm), plus noise.
      ...binaryArm('churn', 'blue', 60, 240, 20),
      ...binaryArm('churn', 'green', 120, 180, 10),
      ...binaryArm('churn', 'shadow', 30, 0),
      // Outside the window: just before the start, exactly at the (exclusive) end, and later.
      { model: 'churn', variant: 'blue', servedAt: new Date(windowStartMs - 1), outcome: { type: 'binary', value: 1 } },
      { model: 'churn', variant: 'green', servedAt: new Date(windowEndMs), outcome: { type: 'binary', value: 1 } },
      { model: 'churn', variant: 'green', servedAt: new Date(windowEndMs + 86_400_000), outcome: { type: 'binary', value: 1 } },
      // fraud: identical arms, 20% each.
      ...binaryArm('fraud', 'blue', 60, 240),
      ...binaryArm('fraud', 'green', 60, 240),
      // window edges: one prediction exactly at the start (included) and one 1 ms before the end (included).
      { model: 'edges', variant: 'blue', servedAt: new Date(windowStartMs), outcome: { type: 'binary', value: 1 } },
      { model: 'edges', variant: 'green', servedAt: new Date(windowEndMs - 1), outcome: { type: 'binary', value: 0 } },
      { model: 'edges', variant: 'green', servedAt: new Date(windowEndMs), outcome: { type: 'binary', value: 1 } },
      // latency (continuous, lower is better): the challenger is ~20 ms faster.
      ...Array.from({ length: 40 }, (_, index): Seed => ({
        model: 'latency',
        variant: 'blue',
        servedAt: new Date(windowStartMs + index * 60_000),
        outcome: { type: 'continuous', value: 120 + (index % 8) * 2.5 },
      })),
      ...Array.from({ length: 40 }, (_, index): Seed => ({
        model: 'latency',
        variant: 'green',
        servedAt: new Date(windowStartMs + index * 60_000 + 1),
        outcome: { type: 'continuous', value: 100 + (index % 8) * 2.5 },
      })),
    ]);
  });

  afterAll(async () => {
    dynamodb?.destroy();
    await moto?.stop();
  });

  it('declares the challenger the winner for clearly different arms, counting only the window and the two arms', async () => {
    const result = await handler(binaryInput('churn'));

    expect(result).toMatchObject({
      model: 'churn',
      variantA: 'blue',
      variantB: 'green',
      outcomeType: 'binary',
      window: { start: WINDOW_START, end: WINDOW_END },
      alpha: 0.05,
      power: 0.8,
      analyzedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      arms: [
        { variant: 'blue', predictions: 320, outcomes: 300, successes: 60, mean: 0.2, ignoredOutcomes: 0 },
        { variant: 'green', predictions: 310, outcomes: 300, successes: 120, mean: 0.4, ignoredOutcomes: 0 },
      ],
      test: { kind: 'two-proportion-z-test', pA: 0.2, pB: 0.4, significant: true },
      requiredSampleSizePerArm: 294,
      sampleSizeBasis: 'baselineRate',
      decision: 'b-wins',
      itemsRead: 630,
      pages: 1,
    });
    expect(result.reason).toMatch(/variant 'green' is significantly better/);
    expectAllFinite(result);
  });

  it('finds no difference for identical arms', async () => {
    const result = await handler(binaryInput('fraud'));

    expect(result).toMatchObject({
      decision: 'no-difference',
      test: { difference: 0, pValue: 1, significant: false },
      arms: [{ outcomes: 300, successes: 60 }, { outcomes: 300, successes: 60 }],
    });
    expectAllFinite(result);
  });

  it('pages through the GSI when the query is limited, with the same result', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, ANALYSIS_QUERY_PAGE_SIZE: '50' });
    const paged = loadFreshHandler<Handler>(HANDLER_SOURCE);

    const single = await handler(binaryInput('churn'));
    const many = await paged(binaryInput('churn'));

    // 660 churn items in the window (630 of the two arms + 30 shadow, which the filter drops) read 50 at a time.
    expect(many.pages).toBeGreaterThanOrEqual(13);
    expect({ ...many, pages: undefined, analyzedAt: undefined }).toEqual({ ...single, pages: undefined, analyzedAt: undefined });
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
  });

  it('covers [windowStart, windowEnd): the start is included, the end excluded', async () => {
    const result = await handler(binaryInput('edges'));

    expect(result).toMatchObject({
      arms: [
        { variant: 'blue', predictions: 1, outcomes: 1, successes: 1 },
        { variant: 'green', predictions: 1, outcomes: 1, successes: 0 },
      ],
      itemsRead: 2,
    });
  });

  it('keeps running with a reason when the window holds too few outcomes', async () => {
    const narrow = await handler(binaryInput('churn', { windowEnd: '2024-05-01T00:10:00Z' }));
    expect(narrow).toMatchObject({ decision: 'keep-running', test: null, arms: [{ outcomes: 0 }, { outcomes: 0 }] });
    expect(narrow.reason).toMatch(/at least 2 per arm are needed for a test$/);

    const empty = await handler(binaryInput('no-such-model'));
    expect(empty).toMatchObject({ decision: 'keep-running', itemsRead: 0, pages: 1 });
    expectAllFinite(empty);
  });

  it('keeps running before the horizon even though a shorter window is already significant', async () => {
    // About half of the window: ~150 outcomes per arm, fewer than the 294 required.
    const result = await handler(binaryInput('churn', { windowEnd: '2024-05-04T12:00:00Z' }));
    expect(result.decision).toBe('keep-running');
    expect(result.reason).toMatch(/^fixed horizon not reached/);
  });

  it('runs a Welch test on continuous outcomes and honours higherIsBetter', async () => {
    const result = await handler({
      model: 'latency',
      variantA: 'blue',
      variantB: 'green',
      outcomeType: 'continuous',
      windowStart: WINDOW_START,
      windowEnd: WINDOW_END,
      minimumDetectableEffect: 10,
      standardDeviation: 10,
      higherIsBetter: false,
    });

    // Lower is better and B (green) is 20 ms faster: B wins.
    expect(result).toMatchObject({
      arms: [
        { variant: 'blue', outcomes: 40, mean: expect.closeTo(128.75, 9) },
        { variant: 'green', outcomes: 40, mean: expect.closeTo(108.75, 9) },
      ],
      test: { kind: 'welch-t-test', difference: expect.closeTo(-20, 9), significant: true },
      requiredSampleSizePerArm: 16,
      decision: 'b-wins',
    });
    expect(result.arms).not.toHaveProperty('0.successes');
    expectAllFinite(result);
  });

  it('ignores outcomes of the other type', async () => {
    const result = await handler(binaryInput('latency', { minimumDetectableEffect: 0.1 }));
    expect(result).toMatchObject({ arms: [{ predictions: 40, outcomes: 0, ignoredOutcomes: 40 }, { outcomes: 0, ignoredOutcomes: 40 }], decision: 'keep-running' });
  });

  it.each([
    ['windowEnd', { windowEnd: '2024-04-01T00:00:00Z' }, /^windowEnd: must be after windowStart$/],
    ['windowStart', { windowStart: 'yesterday' }, /^windowStart: must be an ISO-8601 date-time/],
    ['outcomeType', { outcomeType: 'ordinal' }, /^outcomeType: /],
    ['minimumDetectableEffect', { minimumDetectableEffect: undefined }, /^minimumDetectableEffect: /],
    ['variantB', { variantB: 'blue' }, /^variantB: must differ from variantA$/],
  ])('rejects bad input with an AnalysisInputError naming %s', async (field, overrides, message) => {
    const input = binaryInput('churn', overrides);
    for (const key of Object.keys(input)) {
      if (input[key] === undefined) {
        delete input[key];
      }
    }
    await expect(handler(input)).rejects.toMatchObject({ name: 'AnalysisInputError', field, message: expect.stringMatching(message) });
  });

  it('rejects a non-object input naming input', async () => {
    await expect(handler('analyse please')).rejects.toMatchObject({ name: 'AnalysisInputError', message: expect.stringMatching(/^input: /) });
  });

  it('lets DynamoDB errors propagate with their SDK name for the state machine to retry or catch', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, PREDICTION_LOG_TABLE: 'no-such-table' });
    const misconfigured = loadFreshHandler<Handler>(HANDLER_SOURCE);
    await expect(misconfigured(binaryInput('churn'))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });

    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, PREDICTION_LOG_TABLE: '' });
    await expect(loadFreshHandler<Handler>(HANDLER_SOURCE)(binaryInput('churn'))).rejects.toThrow(/^PREDICTION_LOG_TABLE: is not set$/);

    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, ANALYSIS_QUERY_PAGE_SIZE: 'lots' });
    await expect(loadFreshHandler<Handler>(HANDLER_SOURCE)(binaryInput('churn'))).rejects.toThrow(/^ANALYSIS_QUERY_PAGE_SIZE: /);
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
  });

  it('stops with a clear error instead of running into the function timeout', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, ANALYSIS_QUERY_PAGE_SIZE: '50' });
    const paged = loadFreshHandler<Handler>(HANDLER_SOURCE);
    const context = { getRemainingTimeInMillis: () => 1_000 } as unknown as Context;

    await expect(paged(binaryInput('churn'), context)).rejects.toMatchObject({
      name: 'AnalysisWindowTooLargeError',
      message: expect.stringMatching(/too many predictions to analyse in one invocation \(\d+ read in 1 pages\)/),
    });
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
  });

  it('gives the same analysis through the esbuild bundle', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, ANALYSIS_QUERY_PAGE_SIZE: '100' });
    const bundled = loadFreshHandler<Handler>(HANDLER_BUNDLE);

    const fromBundle = await bundled(binaryInput('churn'));
    const fromSource = await handler(binaryInput('churn'));

    expect(fromBundle.pages).toBeGreaterThan(1);
    expect({ ...fromBundle, pages: undefined, analyzedAt: undefined }).toEqual({ ...fromSource, pages: undefined, analyzedAt: undefined });
    await expect(bundled(binaryInput('churn', { windowEnd: WINDOW_START }))).rejects.toMatchObject({ name: 'AnalysisInputError' });
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
  });
});
