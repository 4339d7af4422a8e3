// The invoke handler with the prediction cache on (source via swc, and the esbuild bundle): routes in
// moto's SSM, the shared tier and the prediction log in moto's DynamoDB, and a local SageMaker runtime
// stand-in that counts what reaches the endpoint.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { apiGatewayEvent, emfDocuments, handlerModulePaths, invokeApi, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv, type ApiHandler } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { createPredictionLogTable } from '../support/prediction-log-table';
import { putRouteParameters, type RouteParameterEnv } from '../support/routes';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('invoke');
const CACHE_TABLE = 'prediction-cache';
const LOG_TABLE = 'prediction-log';
const ROUTES = {
  churn: { endpointName: 'scorer', variants: { only: { modelVersion: 'churn-3' } }, cache: { ttlSeconds: 300 } },
  fraud: { endpointName: 'scorer', variants: { only: { modelVersion: 'fraud-1' } } },
};

const setEnv = useHandlerEnv(
  [...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME', 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SSM', 'ROUTES_PARAMETER_PREFIX', 'PREDICTION_CACHE_TABLE', 'PREDICTION_LOG_TABLE'],
  { POWERTOOLS_METRICS_NAMESPACE: 'CdkMlPatterns/CacheTest', POWERTOOLS_SERVICE_NAME: 'cache-test' },
);

/** SageMaker runtime: answers every endpoint with a score, counting the calls. */
async function startScorer(): Promise<{ server: Server; url: string; calls: string[] }> {
  const calls: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      calls.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-invoked-production-variant': 'only' });
      res.end(JSON.stringify({ score: 0.25, call: calls.length }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls };
}

const predict = (model: string, body: unknown, headers: Record<string, string> = {}): APIGatewayProxyEvent => {
  const event = apiGatewayEvent({ httpMethod: 'POST', resource: '/models/{model}/predict', pathParameters: { model } }, body);
  return { ...event, headers: { ...event.headers, ...headers } };
};

const metricsOf = (lines: Parameters<typeof emfDocuments>[0]) =>
  emfDocuments(lines).flatMap((document) => Object.entries(document).filter(([key]) => key.startsWith('PredictionCache')).map(([key, value]) => `${key}=${JSON.stringify(value)}`));

describe.each([
  ['source', HANDLER_SOURCE],
  ['bundle', HANDLER_BUNDLE],
])('invoke handler (%s) with the prediction cache', (_kind, path) => {
  let moto: MotoServer;
  let dynamodb: DynamoDBClient;
  let scorer: Awaited<ReturnType<typeof startScorer>>;
  let routeEnv: RouteParameterEnv;
  /** A fresh function instance: its own memory tier. */
  const instance = (): ApiHandler => loadFreshHandler<ApiHandler>(path);

  beforeAll(async () => {
    [moto, scorer] = await Promise.all([startMoto(), startScorer()]);
    routeEnv = await putRouteParameters(moto.endpoint, '/cache-test/', ROUTES);
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    setEnv({ ...routeEnv, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: scorer.url, AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, PREDICTION_CACHE_TABLE: CACHE_TABLE, PREDICTION_LOG_TABLE: LOG_TABLE });
  }, 30_000);
  afterAll(async () => {
    dynamodb?.destroy();
    scorer?.server.closeAllConnections();
    await new Promise<void>((resolve) => (scorer === undefined ? resolve() : scorer.server.close(() => resolve())));
    await moto?.stop();
  });
  beforeEach(async () => {
    scorer.calls.length = 0;
    await dynamodb.send(new DeleteTableCommand({ TableName: CACHE_TABLE })).catch(() => undefined);
    await dynamodb.send(
      new CreateTableCommand({ TableName: CACHE_TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }),
    );
    await dynamodb.send(new DeleteTableCommand({ TableName: LOG_TABLE })).catch(() => undefined);
    await createPredictionLogTable(dynamodb, LOG_TABLE);
  });

  test('a repeated request reaches the endpoint once: a memory hit here, a shared hit in another instance, each logged as a hit', async () => {
    const first = instance();
    const miss = await invokeApi(first, predict('churn', { payload: { tenure: 3, plan: 'pro' } }));
    expect(miss.response.statusCode).toBe(200);
    expect(miss.body).toMatchObject({ cache: 'miss', modelVersion: 'churn-3', prediction: { score: 0.25, call: 1 } });
    expect(metricsOf(miss.lines)).toEqual(['PredictionCacheMisses=1']);

    const hit = await invokeApi(first, predict('churn', { payload: { plan: 'pro', tenure: 3 } }));
    expect(hit.body).toMatchObject({ cache: 'hit', variant: 'only', modelVersion: 'churn-3', prediction: { score: 0.25, call: 1 } });
    expect(metricsOf(hit.lines)).toEqual(['PredictionCacheHits=1']);

    const other = await invokeApi(instance(), predict('churn', { payload: { tenure: 3, plan: 'pro' } }));
    expect(other.body).toMatchObject({ cache: 'hit', prediction: { call: 1 } });
    expect(scorer.calls).toHaveLength(1);

    const logged = await dynamodb.send(new GetItemCommand({ TableName: LOG_TABLE, Key: { predictionId: { S: other.body.predictionId as string } }, ConsistentRead: true }));
    expect(logged.Item).toMatchObject({ model: { S: 'churn' }, modelVersion: { S: 'churn-3' }, cache: { S: 'hit' } });
  });

  test('Cache-Control: no-cache bypasses the cache; a model without cache in its route is never cached', async () => {
    const handler = instance();
    await invokeApi(handler, predict('churn', { payload: [1] }));
    const bypass = await invokeApi(handler, predict('churn', { payload: [1] }, { 'Cache-Control': 'no-cache' }));
    expect(bypass.body.cache).toBe('bypass');
    expect(metricsOf(bypass.lines)).toEqual(['PredictionCacheBypasses=1']);
    await invokeApi(handler, predict('fraud', { payload: [1] }));
    const uncached = await invokeApi(handler, predict('fraud', { payload: [1] }));
    expect(uncached.body).not.toHaveProperty('cache');
    expect(scorer.calls).toHaveLength(4);
  });

  test('the cache table going away degrades to misses: every request answered by the endpoint, the failures counted', async () => {
    await dynamodb.send(new DeleteTableCommand({ TableName: CACHE_TABLE }));
    const handler = instance();
    for (const tenure of [1, 2]) {
      const { response, body, lines } = await invokeApi(handler, predict('churn', { payload: { tenure } }));
      expect(response.statusCode).toBe(200);
      expect(body.cache).toBe('miss');
      // The read and the write of the shared tier both failed.
      expect(metricsOf(lines)).toEqual(['PredictionCacheMisses=1', 'PredictionCacheErrors=2']);
    }
    expect(scorer.calls).toHaveLength(2);
    // The memory tier still serves what this instance has seen.
    expect((await invokeApi(handler, predict('churn', { payload: { tenure: 1 } }))).body.cache).toBe('hit');
  });
});
