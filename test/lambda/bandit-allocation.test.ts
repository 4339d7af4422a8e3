// The online allocation function (lambda/bandit-allocation), its source and its esbuild bundle, against moto's
// DynamoDB: the prediction log (the construct's table and byModel index) with the bandit's state and decision
// items in it. Between the function and moto, a proxy that drops connections (a DynamoDB that goes away) in
// front of one that sees every request before passing it on (a writer that changes the state item between
// the function's read and its conditional write).
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { MAX_PREVIOUS_OUTCOMES, type BanditAllocationHandler, type DecideEvent, type DecideResult, type DecisionRecord } from '../../lambda/bandit-allocation';
import { WEIGHT_UNITS } from '../../lambda/shared/bandit';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv, type LogLine } from '../support/handler-harness';
import { contextRunningOutAfter, startDroppingProxy, type DroppingProxy } from '../support/dropping-proxy';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { binaryPredictions, continuousPredictions, createPredictionLogTable, seedPredictions, type LoggedPrediction } from '../support/prediction-log-table';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('bandit-allocation');

const TABLE = 'prediction-log';
const NAMESPACE = 'MlPlatform/OnlineAllocation';
const SERVICE = 'bandit-allocation-test';
const PAGE_SIZE = 25;

const setEnv = useHandlerEnv(
  [
    ...POWERTOOLS_METRICS_ENV_KEYS,
    'POWERTOOLS_LOG_LEVEL',
    'AWS_ENDPOINT_URL_DYNAMODB',
    'PREDICTION_LOG_TABLE',
    'PREDICTION_LOG_INDEX',
    'BANDIT_QUERY_PAGE_SIZE',
  ],
  {
    POWERTOOLS_SERVICE_NAME: SERVICE,
    POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
    PREDICTION_LOG_TABLE: TABLE,
    BANDIT_QUERY_PAGE_SIZE: String(PAGE_SIZE),
  },
);

const HOUR = 3_600_000;
const NOW = '2024-05-08T12:00:00.000Z';
const NOW_MS = Date.parse(NOW);
const iso = (ms: number) => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------------------
// The prediction log
// ---------------------------------------------------------------------------------------------------

const binary = binaryPredictions;
const continuous = continuousPredictions;

let moto: MotoServer;
let interposer: InterposingProxy;
let dynamodbProxy: DroppingProxy;
/** Straight to moto: the tests' own reads and writes pass neither proxy. */
let dynamodb: DynamoDBClient;

const seed = (predictions: readonly LoggedPrediction[]): Promise<void> => seedPredictions(dynamodb, TABLE, predictions);

async function resetWorld(): Promise<void> {
  dynamodbProxy.allow = Number.POSITIVE_INFINITY;
  interposer.beforeForward = undefined;
  await moto.reset();
  await createPredictionLogTable(dynamodb, TABLE);
}

async function getItem(key: string): Promise<Record<string, AttributeValue> | undefined> {
  return (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { predictionId: { S: key } }, ConsistentRead: true }))).Item;
}

/** Every item of the model on the byModel index. */
async function byModel(model: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let ExclusiveStartKey: Record<string, AttributeValue> | undefined;
  do {
    const page = await dynamodb.send(
      new QueryCommand({ TableName: TABLE, IndexName: 'byModel', KeyConditionExpression: '#model = :model', ExpressionAttributeNames: { '#model': 'model' }, ExpressionAttributeValues: { ':model': { S: model } }, ExclusiveStartKey }),
    );
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey !== undefined);
  return items;
}

interface StateJson {
  step: number;
  outcomeType: string;
  cursor: string;
  lastDecisionAt: string;
  arms: Array<{ variant: string; weight: number; successes?: number; failures?: number; count?: number; sum?: number; sumOfSquares?: number }>;
  [field: string]: unknown;
}

const stateKey = (model: string) => `bandit#${model}`;
const decisionKeyOf = (model: string, now: string) => `bandit#${model}#${now}`;

/** The state item: its attributes, the JSON of `state` and `stateVersion` as a number. */
async function stateItem(model: string): Promise<{ item: Record<string, AttributeValue>; state: StateJson; stateVersion: number }> {
  const item = await getItem(stateKey(model));
  if (item === undefined) throw new Error(`no state item ${stateKey(model)}`);
  return { item, state: JSON.parse(item.state!.S!) as StateJson, stateVersion: Number(item.stateVersion!.N) };
}

const state = async (model: string) => (await stateItem(model)).state;

async function decisionRecord(key: string): Promise<DecisionRecord> {
  const item = await getItem(key);
  if (item === undefined) throw new Error(`no decision item ${key}`);
  return JSON.parse(item.record!.S!) as DecisionRecord;
}

/** Writes the state item as another call of the function would. */
async function putStateItem(model: string, stateJson: unknown, stateVersion: number): Promise<void> {
  await dynamodb.send(
    new PutItemCommand({
      TableName: TABLE,
      Item: { predictionId: { S: stateKey(model) }, state: { S: JSON.stringify(stateJson) }, stateVersion: { N: String(stateVersion) }, updatedAt: { S: new Date().toISOString() } },
    }),
  );
}

// ---------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------

/** DescribeEndpoint's ProductionVariants, as Step Functions passes them on. */
function productionVariants(weights: Record<string, number>): DecideEvent['variants'] {
  return Object.entries(weights).map(([VariantName, CurrentWeight]) => ({
    VariantName,
    CurrentWeight,
    DesiredWeight: CurrentWeight,
    CurrentInstanceCount: 1,
    DesiredInstanceCount: 1,
    DeployedImages: [{ SpecifiedImage: `123456789012.dkr.ecr.us-east-1.amazonaws.com/${VariantName}:1`, ResolutionTime: '2024-05-01T00:00:00Z' }],
  }));
}

function decideEvent(overrides: Partial<DecideEvent> = {}): DecideEvent {
  return {
    action: 'decide',
    model: 'churn',
    endpointName: 'churn-endpoint',
    variants: productionVariants({ blue: 1, green: 1 }),
    outcomeType: 'binary',
    settings: {},
    outcomeDelaySeconds: 3600,
    firstWindowHours: 24,
    now: NOW,
    ...overrides,
  };
}

const weightsOf = (result: DecideResult) => Object.fromEntries(result.desiredWeights.map((weight) => [weight.VariantName, weight.DesiredWeight]));
const units = (result: DecideResult) => result.desiredWeights.map((weight) => Math.round(weight.DesiredWeight * WEIGHT_UNITS));

function expectValidWeights(result: DecideResult, minShare = 0.05): void {
  expect(units(result).reduce((sum, value) => sum + value, 0)).toBe(WEIGHT_UNITS);
  for (const weight of result.desiredWeights) {
    expect(weight.DesiredWeight).toBeGreaterThanOrEqual(minShare);
    expect(Number.isInteger(weight.DesiredWeight * WEIGHT_UNITS) || Math.abs(weight.DesiredWeight * WEIGHT_UNITS - Math.round(weight.DesiredWeight * WEIGHT_UNITS)) < 1e-6).toBe(true);
  }
}

async function rejects(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the handler to throw');
}

const metricDocuments = (lines: readonly LogLine[], metric: string) => emfDocuments(lines).filter((document) => metric in document);

// ---------------------------------------------------------------------------------------------------
// A writer that gets in between: sees every DynamoDB request before passing it on
// ---------------------------------------------------------------------------------------------------

interface DynamoDbRequest {
  /** The operation: PutItem, GetItem, Query... */
  readonly operation: string;
  readonly body: Record<string, unknown>;
}

interface InterposingProxy {
  readonly endpoint: string;
  /** Runs before the request is passed on; 'drop' drops the connection instead. */
  beforeForward?: (request: DynamoDbRequest) => Promise<'drop' | void>;
  close(): Promise<void>;
}

async function startInterposingProxy(target: string): Promise<InterposingProxy> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = String(req.headers['x-amz-target'] ?? '').replace(/^DynamoDB_\d+\./, '');
      let parsed: Record<string, unknown> = {};
      try {
        parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
      } catch {
        // Not a DynamoDB request (moto's own API): passed on as it is.
      }
      const hook = proxy.beforeForward?.({ operation, body: parsed }) ?? Promise.resolve();
      hook.then(
        (verdict) => {
          if (verdict === 'drop') {
            req.socket.destroy();
            return;
          }
          const forward = httpRequest({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
            res.writeHead(answer.statusCode ?? 500, answer.headers);
            answer.pipe(res);
          });
          forward.on('error', () => res.destroy());
          forward.end(body);
        },
        () => res.destroy(),
      );
    });
  });
  const proxy: InterposingProxy & { endpoint: string } = { endpoint: '', close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

/** The partition key a PutItem writes. */
const putKey = (request: DynamoDbRequest): string | undefined =>
  request.operation === 'PutItem' ? ((request.body.Item as Record<string, AttributeValue> | undefined)?.predictionId?.S ?? undefined) : undefined;

/** Runs `action` before the first PutItem of `key` reaches moto (once), and passes that PutItem on or drops it. */
function onceBeforePut(key: string, action: () => Promise<'drop' | void>): { readonly fired: () => boolean } {
  let fired = false;
  interposer.beforeForward = async (request) => {
    if (fired || putKey(request) !== key) return undefined;
    fired = true;
    return action();
  };
  return { fired: () => fired };
}

beforeAll(async () => {
  moto = await startMoto();
  interposer = await startInterposingProxy(moto.endpoint);
  dynamodbProxy = await startDroppingProxy(interposer.endpoint);
  dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
}, 30_000);

afterAll(async () => {
  dynamodb?.destroy();
  await dynamodbProxy?.close();
  await interposer?.close();
  await moto?.stop();
});

const proxiedEnv = () => ({ AWS_ENDPOINT_URL_DYNAMODB: dynamodbProxy.endpoint });

// ---------------------------------------------------------------------------------------------------
// The decisions, source and bundle
// ---------------------------------------------------------------------------------------------------

describe.each([
  ['source', HANDLER_SOURCE],
  ['bundle', HANDLER_BUNDLE],
])('bandit-allocation (%s) against moto', (_label, path) => {
  let handler: BanditAllocationHandler;

  beforeAll(() => {
    setEnv(proxiedEnv());
    handler = loadFreshHandler<BanditAllocationHandler>(path);
  });

  beforeEach(() => resetWorld());

  it('moves traffic toward the clear winner by at most maxStep, then reads only the new outcomes, and a retried call counts nothing twice', async () => {
    const windowStart = NOW_MS - 24 * HOUR;
    const windowEnd = NOW_MS - HOUR;
    await seed([
      // Read by the first decision: blue converts 5 of 41, green 24 of 40.
      ...binary('churn', 'blue', windowStart, windowEnd - 1, { ones: 4, zeros: 36, none: 5 }),
      { model: 'churn', variant: 'blue', servedAt: windowEnd, outcome: { type: 'binary', value: 1 } },
      ...binary('churn', 'green', windowStart, windowEnd, { ones: 24, zeros: 16, none: 5 }),
      // Not counted: a variant that is not an arm, another model, the window's (exclusive) start and before it.
      ...binary('churn', 'shadow', windowStart, windowEnd, { ones: 10 }),
      ...binary('fraud', 'blue', windowStart, windowEnd, { zeros: 30 }),
      { model: 'churn', variant: 'blue', servedAt: windowStart, outcome: { type: 'binary', value: 1 } },
      { model: 'churn', variant: 'blue', servedAt: windowStart - 6 * HOUR, outcome: { type: 'binary', value: 1 } },
      // Inside the outcome delay at the first decision: read by the second.
      ...binary('churn', 'green', windowEnd + 1, NOW_MS, { ones: 10 }),
      ...binary('churn', 'blue', windowEnd + 1, NOW_MS, { zeros: 10 }),
    ]);

    const first = await captureOutput(() => handler(decideEvent()));
    const decisionKey = decisionKeyOf('churn', NOW);
    expect(first.result).toEqual({
      model: 'churn',
      endpointName: 'churn-endpoint',
      change: true,
      reason: null,
      desiredWeights: [
        { VariantName: 'blue', DesiredWeight: 0.4 },
        { VariantName: 'green', DesiredWeight: 0.6 },
      ],
      previousWeights: [
        { VariantName: 'blue', DesiredWeight: 0.5 },
        { VariantName: 'green', DesiredWeight: 0.5 },
      ],
      observations: { blue: 41, green: 40 },
      outcomesRead: 81,
      complete: true,
      decisionKey,
    });
    expectValidWeights(first.result);
    expect(JSON.stringify(first.result).length).toBeLessThan(4096);

    const { item: storedItem, state: stored, stateVersion } = await stateItem('churn');
    // The item's own attributes only: no model or servedAt (it stays out of byModel), no expiresAt (it is kept).
    expect(Object.keys(storedItem).sort()).toEqual(['predictionId', 'state', 'stateVersion', 'updatedAt']);
    expect(stateVersion).toBe(1);
    expect(storedItem.updatedAt).toEqual({ S: NOW });
    expect(stored).toMatchObject({
      documentVersion: 1,
      model: 'churn',
      endpointName: 'churn-endpoint',
      outcomeType: 'binary',
      step: 1,
      cursor: iso(windowEnd),
      lastDecisionAt: NOW,
      prior: { alpha: 1, beta: 1 },
      settings: { strategy: 'thompson', guardRails: { minShare: 0.05, maxStep: 0.1, minObservations: 30 } },
      arms: [
        { variant: 'blue', weight: 0.4, successes: 5, failures: 36 },
        { variant: 'green', weight: 0.6, successes: 24, failures: 16 },
      ],
    });
    const record = await decisionRecord(decisionKey);
    expect(record).toMatchObject({
      version: 1,
      status: 'decided',
      model: 'churn',
      decidedAt: NOW,
      window: { after: iso(windowStart), through: iso(windowEnd), readThrough: iso(windowEnd), complete: true },
      outcomesRead: { blue: { successes: 5, failures: 36 }, green: { successes: 24, failures: 16 } },
      ignored: { withoutOutcome: 10, otherOutcomes: 0, otherVariants: 10 },
      armsAdded: [],
      armsRemoved: [],
      change: true,
      reason: null,
      allocation: { step: 1, outcome: 'allocated', changed: true, strategy: 'thompson', boundBy: ['maxStep'], thompson: { seed: record.seed, draws: 10_000 } },
      result: first.result,
    });
    // 101 items of the model in the window (46 blue, 45 green, 10 shadow), read 25 at a time.
    expect(record.window.items).toBe(101);
    expect(record.window.pages).toBe(5);
    expect(record.allocation.arms.map((arm) => arm.limitedBy)).toEqual(['maxStep', 'maxStep']);
    const recordItem = (await getItem(decisionKey))!;
    expect(Object.keys(recordItem).sort()).toEqual(['predictionId', 'record', 'recordedAt']);
    expect(Date.parse(recordItem.recordedAt!.S!)).not.toBeNaN();
    expect(recordItem.record!.S!.length).toBeLessThan(16 * 1024);
    // The byModel index holds the model's predictions and nothing of the bandit's.
    const indexed = await byModel('churn');
    expect(indexed).toHaveLength(123);
    expect(indexed.filter((item) => item.predictionId!.S!.startsWith('bandit#'))).toEqual([]);

    const counts = metricDocuments(first.lines, 'OutcomesRead');
    expect(counts).toEqual([expect.objectContaining({ OutcomesRead: 81, UpdatesTriggered: 1, service: SERVICE })]);
    expect(counts[0]).not.toHaveProperty('UpdatesRefused');
    expect((counts[0]!._aws as { CloudWatchMetrics: unknown[] }).CloudWatchMetrics).toEqual([expect.objectContaining({ Namespace: NAMESPACE, Dimensions: [['service']] })]);
    const armWeights = metricDocuments(first.lines, 'ArmWeight');
    expect(armWeights.map((document) => [document.variant, document.ArmWeight, document.service])).toEqual([
      ['blue', 0.4, SERVICE],
      ['green', 0.6, SERVICE],
    ]);
    for (const document of armWeights) {
      expect((document._aws as { CloudWatchMetrics: unknown[] }).CloudWatchMetrics).toEqual([
        { Namespace: NAMESPACE, Dimensions: [['service', 'variant']], Metrics: [expect.objectContaining({ Name: 'ArmWeight' })] },
      ]);
    }

    // Six hours later, the weights applied: the predictions of the first call's delay and the new ones.
    const later = NOW_MS + 6 * HOUR;
    await seed([
      ...binary('churn', 'green', NOW_MS + 1, later - HOUR, { ones: 20, zeros: 10 }),
      ...binary('churn', 'blue', NOW_MS + 1, later - HOUR, { ones: 5, zeros: 25 }),
      // Inside the second call's delay.
      { model: 'churn', variant: 'blue', servedAt: later - HOUR + 1, outcome: { type: 'binary', value: 1 } },
    ]);
    const secondEvent = decideEvent({ now: iso(later), variants: productionVariants({ blue: 0.4, green: 0.6 }) });
    const second = await captureOutput(() => handler(secondEvent));
    expect(second.result).toMatchObject({
      change: true,
      desiredWeights: [
        { VariantName: 'blue', DesiredWeight: 0.3 },
        { VariantName: 'green', DesiredWeight: 0.7 },
      ],
      previousWeights: [
        { VariantName: 'blue', DesiredWeight: 0.4 },
        { VariantName: 'green', DesiredWeight: 0.6 },
      ],
      observations: { blue: 81, green: 80 },
      outcomesRead: 80,
      decisionKey: decisionKeyOf('churn', iso(later)),
    });
    expectValidWeights(second.result);
    const afterSecond = await stateItem('churn');
    expect(afterSecond.stateVersion).toBe(2);
    expect(afterSecond.state).toMatchObject({
      step: 2,
      cursor: iso(later - HOUR),
      lastDecisionAt: iso(later),
      arms: [
        { variant: 'blue', successes: 10, failures: 71 },
        { variant: 'green', successes: 54, failures: 26 },
      ],
    });
    expect((await decisionRecord(second.result.decisionKey)).window).toMatchObject({ after: iso(windowEnd), through: iso(later - HOUR) });
    // The first decision's record is still there, as it was.
    expect(await decisionRecord(decisionKey)).toEqual(record);

    // Step Functions retries the second call: the same answer, nothing counted again, no metrics.
    const retried = await captureOutput(() => handler(secondEvent));
    expect(retried.result).toEqual(second.result);
    // The state item is not written again.
    expect(await stateItem('churn')).toEqual(afterSecond);
    expect(emfDocuments(retried.lines)).toHaveLength(0);
  });

  it('leaves the weights alone while an arm has fewer than minObservations outcomes, and says so', async () => {
    await seed([...binary('churn', 'blue', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 2, zeros: 10 }), ...binary('churn', 'green', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 9, zeros: 3 })]);
    const { result, lines } = await captureOutput(() => handler(decideEvent({ variants: productionVariants({ blue: 95, green: 5 }) })));
    expect(result).toMatchObject({
      change: false,
      reason: 'min-observations',
      desiredWeights: [
        { VariantName: 'blue', DesiredWeight: 0.95 },
        { VariantName: 'green', DesiredWeight: 0.05 },
      ],
      previousWeights: [
        { VariantName: 'blue', DesiredWeight: 0.95 },
        { VariantName: 'green', DesiredWeight: 0.05 },
      ],
      observations: { blue: 12, green: 12 },
      outcomesRead: 24,
    });
    expect(metricDocuments(lines, 'OutcomesRead')).toEqual([expect.objectContaining({ OutcomesRead: 24, UpdatesRefused: 1 })]);
    expect(metricDocuments(lines, 'UpdatesTriggered')).toHaveLength(0);
    expect(metricDocuments(lines, 'ArmWeight').map((document) => [document.variant, document.ArmWeight])).toEqual([
      ['blue', 0.95],
      ['green', 0.05],
    ]);
    const record = await decisionRecord(result.decisionKey);
    expect(record.allocation).toMatchObject({ outcome: 'insufficient-data', changed: false, reason: expect.stringMatching(/at least 30 outcomes; blue has 12, green has 12$/) });
    // The outcomes are kept for the next decision.
    expect((await state('churn')).arms).toMatchObject([
      { variant: 'blue', successes: 2, failures: 10 },
      { variant: 'green', successes: 9, failures: 3 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Outcome types, strategies, reconciliation and reproducibility
// ---------------------------------------------------------------------------------------------------

describe('bandit-allocation (source): continuous outcomes, endpoints that change, seeds', () => {
  let handler: BanditAllocationHandler;
  const call: BanditAllocationHandler = (event, context) => quietly(() => handler(event, context));

  beforeAll(() => {
    setEnv(proxiedEnv());
    handler = loadFreshHandler<BanditAllocationHandler>(HANDLER_SOURCE);
  });

  beforeEach(() => resetWorld());

  it('prefers the lower latency with higherIsBetter false and keeps the exact sums of continuous outcomes', async () => {
    const blue = Array.from({ length: 40 }, (_, index) => 120 + (index % 8) * 3);
    const green = Array.from({ length: 40 }, (_, index) => 100 + (index % 8) * 3);
    await seed([...continuous('latency', 'blue', NOW_MS - 10 * HOUR, NOW_MS - 2 * HOUR, blue), ...continuous('latency', 'green', NOW_MS - 10 * HOUR, NOW_MS - 2 * HOUR, green)]);
    const event = decideEvent({
      model: 'latency',
      endpointName: 'latency-endpoint',
      outcomeType: 'continuous',
      settings: { strategy: 'ucb', higherIsBetter: false, guardRails: { minObservations: 20, maxStep: 0.25 } },
      variants: productionVariants({ blue: 3, green: 1 }),
    });
    const result = await call(event);
    expect(result).toMatchObject({ change: true, observations: { blue: 40, green: 40 }, outcomesRead: 80 });
    expect(weightsOf(result)).toEqual({ blue: 0.5, green: 0.5 });
    expectValidWeights(result);
    const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
    expect((await state('latency')).arms).toEqual([
      { variant: 'blue', weight: 0.5, count: 40, sum: sum(blue), sumOfSquares: sum(blue.map((value) => value * value)) },
      { variant: 'green', weight: 0.5, count: 40, sum: sum(green), sumOfSquares: sum(green.map((value) => value * value)) },
    ]);
    const record = await decisionRecord(result.decisionKey);
    expect(record.allocation).toMatchObject({ strategy: 'ucb', higherIsBetter: false, outcomeType: 'continuous', prior: { mean: 0, kappa: 0, alpha: -0.5, beta: 0 } });
    expect(record.outcomesRead).toEqual({ blue: { count: 40, sum: sum(blue), sumOfSquares: sum(blue.map((value) => value * value)) }, green: expect.objectContaining({ count: 40 }) });

    // The same model's outcomes of the other type are not counted.
    await seed(binary('latency', 'green', NOW_MS - HOUR, NOW_MS + HOUR, { ones: 5 }));
    const next = await call({ ...event, now: iso(NOW_MS + 2 * HOUR), variants: productionVariants({ blue: 1, green: 1 }) });
    expect(next.outcomesRead).toBe(0);
    expect((await decisionRecord(next.decisionKey)).ignored).toEqual({ withoutOutcome: 0, otherOutcomes: 5, otherVariants: 0 });
  });

  it('adds a variant new on the endpoint with the prior and drops one it no longer has, naming both in the record', async () => {
    await seed([...binary('churn', 'blue', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 10, zeros: 30 }), ...binary('churn', 'green', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 20, zeros: 20 })]);
    await call(decideEvent());
    const later = iso(NOW_MS + HOUR);
    const result = await call(decideEvent({ now: later, variants: productionVariants({ blue: 0.4, red: 0.6 }) }));
    expect(result).toMatchObject({
      change: false,
      reason: 'min-observations',
      desiredWeights: [
        { VariantName: 'blue', DesiredWeight: 0.4 },
        { VariantName: 'red', DesiredWeight: 0.6 },
      ],
      observations: { blue: 40, red: 0 },
    });
    const record = await decisionRecord(result.decisionKey);
    expect(record.armsAdded).toEqual(['red']);
    expect(record.armsRemoved).toEqual([{ variant: 'green', observations: 40 }]);
    expect((await state('churn')).arms).toEqual([
      { variant: 'blue', weight: 0.4, successes: 10, failures: 30 },
      { variant: 'red', weight: 0.6, successes: 0, failures: 0 },
    ]);
  });

  it('reproduces a decision from its seed: the same inputs give the same weights, another seed other weights', async () => {
    // Close arms and no step limit: the weights are the Monte Carlo estimates of P(best).
    const predictions = [...binary('close', 'blue', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 30, zeros: 70 }), ...binary('close', 'green', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 33, zeros: 67 })];
    const event = decideEvent({ model: 'close', settings: { guardRails: { maxStep: 1, minShare: 0.01 } } });
    const run = async (overrides: Partial<DecideEvent>) => {
      await resetWorld();
      await seed(predictions);
      const result = await call({ ...event, ...overrides });
      return { weights: result.desiredWeights, seed: (await decisionRecord(result.decisionKey)).seed };
    };
    const derived = await run({});
    expect(await run({})).toEqual(derived);
    const seeded = await run({ seed: 42 });
    expect(seeded.seed).toBe(42);
    expect(await run({ seed: 42 })).toEqual(seeded);
    expect((await run({ seed: 43 })).weights).not.toEqual(seeded.weights);
    expect(seeded.weights[1]!.DesiredWeight).toBeGreaterThan(0.5);
  });
});

// ---------------------------------------------------------------------------------------------------
// Failures, races, deadlines and bad input (the bundle, as deployed)
// ---------------------------------------------------------------------------------------------------

describe('bandit-allocation (bundle): deadlines, races, services that go away, record and bad input', () => {
  let handler: BanditAllocationHandler;
  const call: BanditAllocationHandler = (event, context) => quietly(() => handler(event, context));

  beforeAll(() => {
    setEnv(proxiedEnv());
    handler = loadFreshHandler<BanditAllocationHandler>(HANDLER_BUNDLE);
  });

  beforeEach(() => resetWorld());

  it('stops reading before the deadline with complete false, and the next call reads on without counting anything twice', async () => {
    // Groups of three predictions served in the same millisecond, so that pages end inside a group.
    const groups = Array.from({ length: 30 }, (_, group) => NOW_MS - 20 * HOUR + group * 60_000);
    await seed(
      groups.flatMap((servedAt, group) => [
        { model: 'churn', variant: 'blue', servedAt, outcome: { type: 'binary' as const, value: group % 5 === 0 ? 1 : 0 } },
        { model: 'churn', variant: 'green', servedAt, outcome: { type: 'binary' as const, value: group % 2 } },
        { model: 'churn', variant: 'green', servedAt, outcome: { type: 'binary' as const, value: 1 } },
      ]),
    );
    const first = await call(decideEvent(), contextRunningOutAfter(1));
    expect(first).toMatchObject({ complete: false, change: false, reason: 'min-observations' });
    const record = await decisionRecord(first.decisionKey);
    expect(record.window).toMatchObject({ complete: false, pages: 2, items: 2 * PAGE_SIZE });
    // Page two ended inside the group served at groups[16]: that millisecond is read again next time.
    expect(record.window.readThrough).toBe(iso(groups[16]! - 1));
    expect(first.outcomesRead).toBe(16 * 3);
    expect((await state('churn')).cursor).toBe(iso(groups[16]! - 1));

    const next = await call(decideEvent({ now: iso(NOW_MS + 60_000) }), contextRunningOutAfter(10));
    expect(next).toMatchObject({ complete: true, outcomesRead: 14 * 3, observations: { blue: 30, green: 60 } });
    expect((await state('churn')).arms).toMatchObject([
      { variant: 'blue', successes: 6, failures: 24 },
      { variant: 'green', successes: 45, failures: 15 },
    ]);
  });

  it('throws BanditStateConflictError when the state item changes between the read and the conditional write, and the retry counts once', async () => {
    const twoArms = () => [...binary('churn', 'blue', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 10, zeros: 30 }), ...binary('churn', 'green', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 25, zeros: 15 })];
    await seed(twoArms());

    // Another call creates the state item first: attribute_not_exists(predictionId) fails.
    const creating = onceBeforePut(stateKey('churn'), () => putStateItem('churn', {}, 1));
    const created = await rejects(call(decideEvent()));
    expect(creating.fired()).toBe(true);
    expect(created).toMatchObject({ name: 'BanditStateConflictError', message: expect.stringContaining(`item bandit#churn of table ${TABLE} changed since it was read (ConditionalCheckFailedException)`) });
    // The other writer's item stands; as a state it is not valid, and the retry says so rather than overwriting it.
    expect(await stateItem('churn')).toMatchObject({ state: {}, stateVersion: 1 });
    const invalid = await rejects(call(decideEvent()));
    expect(invalid).toMatchObject({ name: 'BanditInputError', message: expect.stringMatching(/^model: item bandit#churn of table prediction-log is not a valid bandit state: /) });

    await resetWorld();
    await seed(twoArms());
    await call(decideEvent());
    await seed(binary('churn', 'green', NOW_MS, NOW_MS + HOUR, { ones: 7 }));
    const before = await stateItem('churn');
    expect(before.stateVersion).toBe(1);
    // Another call updates the state item first (the same JSON, a newer stateVersion): stateVersion = :read fails.
    const updating = onceBeforePut(stateKey('churn'), () => putStateItem('churn', before.state, before.stateVersion + 1));
    const event = decideEvent({ now: iso(NOW_MS + 3 * HOUR) });
    const updated = await rejects(call(event));
    expect(updating.fired()).toBe(true);
    expect(updated).toMatchObject({ name: 'BanditStateConflictError', message: expect.stringContaining('(ConditionalCheckFailedException): another call wrote it first; retry') });
    expect(await stateItem('churn')).toMatchObject({ state: before.state, stateVersion: 2 });

    const retried = await call(event);
    expect(retried.outcomesRead).toBe(7);
    const after = await stateItem('churn');
    expect(after.stateVersion).toBe(3);
    expect(after.state).toMatchObject({ lastDecisionAt: event.now, lastDecision: { key: retried.decisionKey } });
    expect(after.state.arms).toMatchObject([
      { variant: 'blue', successes: 10, failures: 30 },
      { variant: 'green', successes: 32, failures: 15 },
    ]);

    // record: the decision item changes between its read and its write (record = :read fails).
    const current = (await getItem(retried.decisionKey))!;
    const recording = onceBeforePut(retried.decisionKey, async () => {
      await dynamodb.send(new PutItemCommand({ TableName: TABLE, Item: { ...current, record: { S: JSON.stringify({ ...JSON.parse(current.record!.S!), outcome: { status: 'skipped', at: NOW, detail: null } }) } } }));
    });
    const raced = await rejects(call({ action: 'record', model: 'churn', decisionKey: retried.decisionKey, status: 'deployed' }));
    expect(recording.fired()).toBe(true);
    expect(raced).toMatchObject({ name: 'BanditStateConflictError', message: expect.stringContaining(`item ${retried.decisionKey} of table ${TABLE} changed since it was read`) });
    await call({ action: 'record', model: 'churn', decisionKey: retried.decisionKey, status: 'deployed' });
    expect(await decisionRecord(retried.decisionKey)).toMatchObject({ outcome: { status: 'deployed' }, previousOutcomes: [{ status: 'skipped', at: NOW, detail: null }] });
  });

  it('throws when DynamoDB goes away, so that the workflow retries, and the retry succeeds and counts once', async () => {
    await seed([...binary('churn', 'blue', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 10, zeros: 30 }), ...binary('churn', 'green', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 25, zeros: 15 })]);
    // DynamoDB answers the state's read, then goes away while the outcomes are read.
    dynamodbProxy.allow = 1;
    const queryAway = await rejects(call(decideEvent()));
    expect(queryAway.name).not.toMatch(/BanditInputError|BanditStateConflictError|ConfigError/);
    expect(await getItem(stateKey('churn'))).toBeUndefined();
    expect(await getItem(decisionKeyOf('churn', NOW))).toBeUndefined();
    dynamodbProxy.allow = Number.POSITIVE_INFINITY;

    // DynamoDB takes the decision item, then goes away before the state item is written.
    const dropping = onceBeforePut(stateKey('churn'), async () => 'drop');
    const putAway = await rejects(call(decideEvent()));
    expect(dropping.fired()).toBe(true);
    expect(putAway.name).not.toMatch(/BanditInputError|BanditStateConflictError|ConfigError/);
    expect(await getItem(stateKey('churn'))).toBeUndefined();
    expect(await decisionRecord(decisionKeyOf('churn', NOW))).toMatchObject({ status: 'decided', decidedAt: NOW });

    const retried = await call(decideEvent());
    expect(retried).toMatchObject({ complete: true, outcomesRead: 80, observations: { blue: 40, green: 40 } });
    expect(await stateItem('churn')).toMatchObject({ stateVersion: 1, state: { lastDecision: { key: decisionKeyOf('churn', NOW) } } });
    expect((await state('churn')).arms).toMatchObject([
      { variant: 'blue', successes: 10, failures: 30 },
      { variant: 'green', successes: 25, failures: 15 },
    ]);
    expect(await decisionRecord(retried.decisionKey)).toMatchObject({ result: retried });
  });

  it('records what became of a decision once, with its metric', async () => {
    await seed([...binary('churn', 'blue', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 10, zeros: 30 }), ...binary('churn', 'green', NOW_MS - 20 * HOUR, NOW_MS - 2 * HOUR, { ones: 25, zeros: 15 })]);
    const decided = await call(decideEvent());
    const before = await decisionRecord(decided.decisionKey);

    const deployed = await captureOutput(() => handler({ action: 'record', model: 'churn', decisionKey: decided.decisionKey, status: 'deployed', detail: 'UpdateEndpointWeightsAndCapacities: InService' }));
    expect(deployed.result).toEqual({ model: 'churn', decisionKey: decided.decisionKey, status: 'deployed' });
    expect(metricDocuments(deployed.lines, 'UpdatesDeployed')).toEqual([expect.objectContaining({ UpdatesDeployed: 1, service: SERVICE })]);
    const recorded = await decisionRecord(decided.decisionKey);
    expect(recorded).toEqual({ ...before, outcome: { status: 'deployed', at: expect.any(String), detail: 'UpdateEndpointWeightsAndCapacities: InService' } });
    const recordedItem = (await getItem(decided.decisionKey))!;
    expect(Object.keys(recordedItem).sort()).toEqual(['predictionId', 'record', 'recordedAt']);
    expect(recordedItem.recordedAt).toEqual({ S: recorded.outcome!.at });

    const again = await captureOutput(() => handler({ action: 'record', model: 'churn', decisionKey: decided.decisionKey, status: 'deployed' }));
    expect(again.result).toEqual(deployed.result);
    expect(emfDocuments(again.lines)).toHaveLength(0);
    expect(await decisionRecord(decided.decisionKey)).toEqual(recorded);

    const rolledBack = await captureOutput(() => handler({ action: 'record', model: 'churn', decisionKey: decided.decisionKey, status: 'rolled-back' }));
    expect(metricDocuments(rolledBack.lines, 'UpdatesRolledBack')).toEqual([expect.objectContaining({ UpdatesRolledBack: 1 })]);
    expect(await decisionRecord(decided.decisionKey)).toMatchObject({ outcome: { status: 'rolled-back', detail: null }, previousOutcomes: [recorded.outcome] });

    const missing = await rejects(call({ action: 'record', model: 'churn', decisionKey: 'bandit#churn#2020-01-01T00:00:00.000Z', status: 'skipped' }));
    expect(missing).toMatchObject({ name: 'BanditInputError', message: `decisionKey: item bandit#churn#2020-01-01T00:00:00.000Z of table ${TABLE} does not exist` });
    const elsewhere = await rejects(call({ action: 'record', model: 'fraud', decisionKey: decided.decisionKey, status: 'skipped' }));
    expect(elsewhere).toMatchObject({
      name: 'BanditInputError',
      message: `decisionKey: must be a decision of model 'fraud': bandit#fraud#<time>, as decide returned it; got '${decided.decisionKey}'`,
    });
    for (const decisionKey of [stateKey('churn'), 'bandit#churn#yesterday', `${decided.decisionKey}#x`, `analysis#churn`]) {
      expect(await rejects(call({ action: 'record', model: 'churn', decisionKey, status: 'skipped' }))).toMatchObject({ name: 'BanditInputError', message: expect.stringMatching(/^decisionKey: must be a decision of model 'churn': bandit#churn#<time>/) });
    }

    // Called again and again with alternating statuses, the item keeps the last MAX_PREVIOUS_OUTCOMES earlier outcomes.
    for (let index = 0; index < MAX_PREVIOUS_OUTCOMES + 5; index += 1) {
      await call({ action: 'record', model: 'churn', decisionKey: decided.decisionKey, status: index % 2 === 0 ? 'deployed' : 'rolled-back', detail: `call ${index}` });
    }
    const many = await decisionRecord(decided.decisionKey);
    expect(many.outcome).toMatchObject({ status: 'deployed', detail: `call ${MAX_PREVIOUS_OUTCOMES + 4}` });
    expect(many.previousOutcomes).toHaveLength(MAX_PREVIOUS_OUTCOMES);
    expect(many.previousOutcomes!.at(-1)).toMatchObject({ detail: `call ${MAX_PREVIOUS_OUTCOMES + 3}` });
  });

  it('names every problem of a bad event by its path', async () => {
    const bad = async (event: unknown) => {
      const error = await rejects(call(event as DecideEvent));
      expect(error.name).toBe('BanditInputError');
      return error.message.split('; ');
    };
    expect(await bad(null)).toEqual(['(root): must be an object with action: one of decide, record']);
    expect(await bad({ action: 'train' })).toEqual(['action: must be one of decide, record, not "train"']);
    expect(
      await bad({
        action: 'decide',
        model: 'Churn!',
        variants: [{ VariantName: 'blue', CurrentWeight: -1 }, { VariantName: 'green_2', CurrentWeight: 1 }, { VariantName: 'blue', CurrentWeight: 1 }],
        outcomeType: 'binary',
        settings: { strategy: 'greedy', draws: 10, guardRails: { minShare: 0.4, maxStep: 0 }, colour: 'red' },
        prior: { alpha: 0, mean: 1 },
        outcomeDelaySeconds: -5,
        firstWindowHours: 1.5,
        now: 'yesterday',
        seed: -1,
        extra: true,
      }),
    ).toEqual([
      'model: must be a model name: 2-32 lowercase letters, digits or hyphens',
      'endpointName: is required',
      'variants[0].CurrentWeight: must be a number ≥ 0',
      'outcomeDelaySeconds: must be a whole number from 0 to 2592000',
      'firstWindowHours: must be a whole number from 1 to 8784',
      'now: must be an ISO-8601 date-time with a time zone, e.g. 2024-05-01T00:00:00Z',
      'seed: must be a whole number from 0 to 9007199254740991',
      'extra: unknown field',
      "settings.strategy: must be one of 'thompson', 'ucb'",
      'settings.draws: must be at least 100',
      'settings.guardRails.maxStep: must be above 0',
      'settings.colour: unknown field',
      'prior.alpha: must be above 0',
      'prior.beta: must be a finite number',
      'prior.mean: unknown field',
      'variants[1].VariantName: must be a SageMaker variant name: 1-63 letters, digits or hyphens',
      'variants[2].VariantName: repeats variants[0].VariantName: each variant once',
      'settings.guardRails.minShare: must be at most 1/3 with 3 arms (the floors cannot add up to more than all the traffic)',
    ]);
    expect(await bad(decideEvent({ variants: productionVariants({ blue: 1 }) }))).toEqual(['variants: must list at least 2 variants: a bandit needs two arms']);
    const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, index) => [`v${index}`, 1]));
    expect(await bad(decideEvent({ variants: productionVariants(eleven) }))).toEqual(["variants: must list at most 10 variants (SageMaker's limit per endpoint)"]);
    expect(await bad(decideEvent({ outcomeType: 'continuous', settings: { guardRails: { minObservations: 1 } }, prior: { alpha: 1, beta: 1 } }))).toEqual([
      'prior.mean: must be a finite number',
      'prior.kappa: must be a finite number',
      'settings.guardRails.minObservations: must be at least 2 for continuous outcomes (a variance needs two)',
    ]);
    expect(await bad({ action: 'record', model: 'churn', status: 'done', detail: 'x'.repeat(1001) })).toEqual([
      'decisionKey: is required',
      "status: must be one of 'deployed', 'rolled-back', 'skipped'",
      'detail: must be at most 1000 characters',
    ]);

    // A state of the other outcome type.
    await seed(binary('churn', 'blue', NOW_MS - 2 * HOUR, NOW_MS - 2 * HOUR, { ones: 1 }));
    await call(decideEvent());
    expect(await bad(decideEvent({ outcomeType: 'continuous', now: iso(NOW_MS + HOUR) }))).toEqual([
      `outcomeType: is 'continuous', but item bandit#churn of table ${TABLE} holds binary outcomes: a bandit's outcome type cannot change (delete the item to start again)`,
    ]);
  });

  it('refuses to run without its configuration', async () => {
    setEnv({ ...proxiedEnv(), PREDICTION_LOG_TABLE: ' ', BANDIT_QUERY_PAGE_SIZE: 'many' });
    try {
      const misconfigured = loadFreshHandler<BanditAllocationHandler>(HANDLER_BUNDLE);
      const error = await rejects(quietly(() => misconfigured(decideEvent())));
      expect(error).toMatchObject({
        name: 'ConfigError',
        message: `PREDICTION_LOG_TABLE: is not set; BANDIT_QUERY_PAGE_SIZE: must be a whole number greater than 0; got "many"`,
      });
    } finally {
      setEnv(proxiedEnv());
    }
  });
});
