// The invoke handler with circuit breakers and fallbacks (source via swc, and the esbuild bundle): routes in
// moto's SSM, the breakers' shared state in moto's DynamoDB (atomic conditional writes), and a local
// SageMaker runtime stand-in that can be told to fail and to recover.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { apiGatewayEvent, emfDocuments, handlerModulePaths, invokeApi, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv, type ApiHandler } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { putRouteParameters } from '../support/routes';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('invoke');
const TABLE = 'inference-state';
const BREAKER = { windowSeconds: 60, failureRateThreshold: 0.5, minimumCalls: 4, coolDownSeconds: 1, probes: 1 };
const ROUTES = {
  churn: {
    endpointName: 'flaky',
    variants: { champion: { modelVersion: 'churn-7' }, simple: { modelVersion: 'churn-logreg' } },
    breaker: BREAKER,
    fallback: { variant: 'simple', static: { score: 0.1, reason: 'default' } },
  },
  fraud: { endpointName: 'flaky', variants: { only: { modelVersion: 'fraud-1' } }, breaker: BREAKER },
};

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME', 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SSM', 'ROUTES_PARAMETER_PREFIX', 'BREAKER_STATE_TABLE'], {
  POWERTOOLS_METRICS_NAMESPACE: 'CdkMlPatterns/BreakerTest',
  POWERTOOLS_SERVICE_NAME: 'breaker-test',
});

/** SageMaker runtime whose variants can fail (503) or answer; counts the calls per variant. */
async function startEndpoint(): Promise<{ server: Server; url: string; calls: string[]; failing: Set<string> }> {
  const calls: string[] = [];
  const failing = new Set<string>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const target = req.headers['x-amzn-sagemaker-target-variant'];
      const variant = typeof target === 'string' ? target : 'only';
      calls.push(variant);
      if (failing.has(variant)) {
        res.writeHead(503, { 'content-type': 'application/json', 'x-amzn-errortype': 'ServiceUnavailable' }).end(JSON.stringify({ message: 'the endpoint is unavailable' }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-invoked-production-variant': variant }).end(JSON.stringify({ score: 0.7, variant }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, calls, failing };
}

const predict = (model: string, body: unknown): APIGatewayProxyEvent => apiGatewayEvent({ httpMethod: 'POST', resource: '/models/{model}/predict', pathParameters: { model } }, body);
const metrics = (lines: Parameters<typeof emfDocuments>[0]) =>
  emfDocuments(lines).flatMap((document) => Object.entries(document).filter(([key]) => /^(CircuitBreakerOpened|CircuitOpenRejections|FallbacksServed)/.test(key)).map(([key, value]) => `${key}=${JSON.stringify(value)}`));

describe.each([
  ['source', HANDLER_SOURCE],
  ['bundle', HANDLER_BUNDLE],
])('invoke handler (%s) with circuit breakers', (_kind, path) => {
  let moto: MotoServer;
  let endpoint: Awaited<ReturnType<typeof startEndpoint>>;
  let prefix = 0;

  beforeAll(async () => {
    [moto, endpoint] = await Promise.all([startMoto({ extended: true }), startEndpoint()]);
  }, 30_000);
  afterAll(async () => {
    endpoint?.server.closeAllConnections();
    await new Promise<void>((resolve) => (endpoint === undefined ? resolve() : endpoint.server.close(() => resolve())));
    await moto?.stop();
  });
  beforeEach(async () => {
    endpoint.calls.length = 0;
    endpoint.failing.clear();
    await moto.reset();
    const dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    await dynamodb.send(new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }));
    dynamodb.destroy();
    prefix += 1;
    const routeEnv = await putRouteParameters(moto.endpoint, `/breaker-test/${prefix}/`, ROUTES);
    setEnv({ ...routeEnv, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: endpoint.url, AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint, BREAKER_STATE_TABLE: TABLE, AWS_MAX_ATTEMPTS: '1' });
  });

  test('a failing endpoint opens the breaker for every instance: 503 CircuitOpen with Retry-After and no call; a probe after the cool-down closes it', async () => {
    const [a, b] = [loadFreshHandler<ApiHandler>(path), loadFreshHandler<ApiHandler>(path)];
    endpoint.failing.add('only');
    for (let i = 0; i < 4; i += 1) expect((await invokeApi(a, predict('fraud', { payload: [i] }))).response.statusCode).toBe(503);
    expect(endpoint.calls).toHaveLength(4);
    const open = await invokeApi(b, predict('fraud', { payload: [9] }));
    expect(open.response.statusCode).toBe(503);
    expect(open.response.headers).toMatchObject({ 'retry-after': '1' });
    expect(open.body).toMatchObject({ error: 'CircuitOpen' });
    expect(metrics(open.lines)).toEqual(['CircuitOpenRejections=1']);
    expect(endpoint.calls).toHaveLength(4);

    endpoint.failing.clear();
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await invokeApi(b, predict('fraud', { payload: [1] }))).response.statusCode).toBe(200);
    expect((await invokeApi(a, predict('fraud', { payload: [2] }))).response.statusCode).toBe(200);
    expect(endpoint.calls).toHaveLength(6);
  }, 20_000);

  test('with fallbacks: the simpler variant answers, marked degraded; when it fails too, the static answer does', async () => {
    const handler = loadFreshHandler<ApiHandler>(path);
    endpoint.failing.add('champion');
    const first = await invokeApi(handler, predict('churn', { payload: [1], targetVariant: 'champion' }));
    expect(first.response.statusCode).toBe(200);
    expect(first.body).toMatchObject({ degraded: true, fallback: 'variant', variant: 'simple', modelVersion: 'churn-logreg', prediction: { score: 0.7, variant: 'simple' } });
    expect(metrics(first.lines)).toEqual(['FallbacksServedVariant=1']);
    endpoint.failing.add('simple');
    const last = await invokeApi(handler, predict('churn', { payload: [1], targetVariant: 'champion' }));
    expect(last.body).toMatchObject({ degraded: true, fallback: 'static', prediction: { score: 0.1, reason: 'default' } });
    expect(endpoint.calls).toEqual(['champion', 'simple', 'champion', 'simple']);
  });
});
