// The batch layer's answers served in real time, as both bundles ship: load-precomputed loads a batch
// transform's joined output from moto's S3 into moto's DynamoDB, and the invoke bundle serves a request
// that names a loaded entity from it, without calling Feature Store or the endpoint (local stand-ins that
// count their calls). An entity without an answer, and a table that has gone away, are asked in real time.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import type { LoadResult } from '../../lambda/load-precomputed';
import { apiGatewayEvent, emfDocuments, handlerModulePaths, invokeApi, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv, type ApiHandler } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { putRouteParameters } from '../support/routes';

const { bundle: INVOKE_BUNDLE } = handlerModulePaths('invoke');
const { bundle: LOADER_BUNDLE } = handlerModulePaths('load-precomputed');
const BUCKET = 'batch-results';
const TABLE = 'inference-state';
const GROUP = {
  name: 'customers',
  description: 'Customer signals.',
  owner: 'analytics',
  recordIdentifier: 'customer_id',
  eventTime: 'event_time',
  features: [
    { name: 'customer_id', type: 'string', description: 'id' },
    { name: 'event_time', type: 'string', description: 'time' },
    { name: 'tenure_months', type: 'integral', description: 'tenure' },
  ],
};

const setEnv = useHandlerEnv(
  [
    ...POWERTOOLS_METRICS_ENV_KEYS,
    'AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME',
    'AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME',
    'AWS_ENDPOINT_URL_DYNAMODB',
    'AWS_ENDPOINT_URL_SSM',
    'AWS_ENDPOINT_URL_S3',
    'ROUTES_PARAMETER_PREFIX',
    'PRECOMPUTED_TABLE',
    'FEATURE_GROUPS',
  ],
  { POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Inference', POWERTOOLS_SERVICE_NAME: 'precomputed-serving-test' },
);

/** A stand-in answering every call with `answer`, counting the calls. */
async function standIn(answer: (url: string) => unknown, headers: Record<string, string> = {}): Promise<{ server: Server; url: string; calls: string[] }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'stand-in', ...headers });
      res.end(JSON.stringify(answer(req.url ?? '')));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

const predict = (body: unknown): APIGatewayProxyEvent => apiGatewayEvent({ httpMethod: 'POST', resource: '/models/{model}/predict', pathParameters: { model: 'churn' } }, body);
const precomputedMetrics = (lines: Parameters<typeof emfDocuments>[0]) =>
  emfDocuments(lines).flatMap((document) => Object.entries(document).filter(([key]) => key.startsWith('Precomputed')).map(([key, value]) => `${key}=${JSON.stringify(value)}`));

describe('precomputed predictions, batch to real time (the shipped bundles)', () => {
  let moto: MotoServer;
  let dynamodb: DynamoDBClient;
  let s3: S3Client;
  let scorer: Awaited<ReturnType<typeof standIn>>;
  let featureStore: Awaited<ReturnType<typeof standIn>>;

  beforeAll(async () => {
    [moto, scorer, featureStore] = await Promise.all([
      startMoto(),
      standIn(() => ({ score: 0.4 }), { 'x-amzn-invoked-production-variant': 'champion' }),
      standIn(() => ({ Record: [{ FeatureName: 'customer_id', ValueAsString: 'c-2' }, { FeatureName: 'event_time', ValueAsString: '2026-12-01T00:00:00Z' }, { FeatureName: 'tenure_months', ValueAsString: '5' }] })),
    ]);
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // The transform's joined output (JoinSource Input, JSON Lines): the input record with SageMakerOutput.
    const lines = [
      { customer_id: 'c-1', tenure_months: 14, SageMakerOutput: { score: 0.91 } },
      { customer_id: 'c-3', tenure_months: 2, SageMakerOutput: { score: 0.12 } },
    ];
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'churn/run-1/customers.jsonl.out', Body: lines.map((line) => JSON.stringify(line)).join('\n') }));
    const routes = await putRouteParameters(moto.endpoint, '/precomputed-test/', {
      churn: { endpointName: 'churn-endpoint', variants: { champion: { modelVersion: '8' } }, precomputed: { maxAgeSeconds: 86_400 } },
    });
    setEnv({
      ...routes,
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: scorer.url,
      AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME: featureStore.url,
      AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint,
      AWS_ENDPOINT_URL_S3: moto.endpoint,
      PRECOMPUTED_TABLE: TABLE,
      FEATURE_GROUPS: JSON.stringify([GROUP]),
    });
  }, 30_000);

  afterAll(async () => {
    dynamodb?.destroy();
    s3?.destroy();
    for (const stand of [scorer, featureStore]) {
      if (stand === undefined) continue;
      stand.server.closeAllConnections();
      await new Promise<void>((resolve) => stand.server.close(() => resolve()));
    }
    await moto?.stop();
  });

  test('a loaded entity is answered from the table; others, and an outage, by the model', async () => {
    await dynamodb.send(new DeleteTableCommand({ TableName: TABLE })).catch(() => undefined);
    await dynamodb.send(new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }));
    const load = loadFreshHandler<(event: unknown) => Promise<LoadResult>>(LOADER_BUNDLE);
    const loaded = await load({ tableName: TABLE, model: 'churn', modelVersion: '7', featureGroup: 'customers', outputPrefix: `s3://${BUCKET}/churn/run-1/`, recordIdField: 'customer_id', ttlSeconds: 3 * 86_400, computedAt: new Date(Date.now() - 3_600_000).toISOString() });
    expect(loaded).toMatchObject({ loaded: 2, invalid: 0, done: true });

    const handler = loadFreshHandler<ApiHandler>(INVOKE_BUNDLE);
    const hit = await invokeApi(handler, predict({ payload: {}, entity: { featureGroup: 'customers', recordId: 'c-1' } }));
    expect(hit.response.statusCode).toBe(200);
    expect(hit.body).toMatchObject({ model: 'churn', variant: 'batch', modelVersion: '7', prediction: { score: 0.91 }, source: 'precomputed' });
    expect(precomputedMetrics(hit.lines)).toEqual(['PrecomputedHits=1']);
    expect(scorer.calls).toHaveLength(0);
    expect(featureStore.calls).toHaveLength(0);

    const miss = await invokeApi(handler, predict({ payload: {}, entity: { featureGroup: 'customers', recordId: 'c-2' } }));
    expect(miss.body).toMatchObject({ variant: 'champion', modelVersion: '8', prediction: { score: 0.4 }, source: 'realtime' });
    expect(precomputedMetrics(miss.lines)).toEqual(['PrecomputedMisses=1']);
    expect(scorer.calls).toHaveLength(1);
    expect(featureStore.calls).toHaveLength(1);

    // The table goes away: the read fails, is counted, and the model answers.
    await dynamodb.send(new DeleteTableCommand({ TableName: TABLE }));
    const outage = await invokeApi(handler, predict({ payload: {}, entity: { featureGroup: 'customers', recordId: 'c-1' } }));
    expect(outage.response.statusCode).toBe(200);
    expect(outage.body).toMatchObject({ variant: 'champion', source: 'realtime' });
    expect(precomputedMetrics(outage.lines)).toEqual(['PrecomputedMisses=1', 'PrecomputedErrors=1']);
    expect(scorer.calls).toHaveLength(2);
  });
});
