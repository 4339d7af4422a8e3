import { createPredictionLogTable } from '../support/prediction-log-table';
// Runs the invoke handler (source via swc, and once the esbuild bundle) against moto's SageMaker
// runtime, against a local server that answers with SageMaker's real error wire format, and
// against a closed port.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { assignVariant, hashCallerId } from '../../lambda/shared/experiments';
import { apiGatewayEvent, emfDocuments, handlerModulePaths, invokeApi, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv, type ApiHandler, type JsonBodyOptions } from '../support/handler-harness';
import { freePort, queueSageMakerResults, sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { putRouteParameters, startFakeSsm, type FakeSsm, type RouteParameterEnv } from '../support/routes';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('invoke');
const NAMESPACE = 'CdkMlPatterns/InvokeTest';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const ROUTES = {
  churn: {
    endpointName: 'churn-endpoint',
    variants: { blue: { modelVersion: 'churn-v1' }, green: { modelVersion: 'churn-v2' } },
  },
  fraud: { endpointName: 'fraud-endpoint', variants: { AllTraffic: { modelVersion: 'fraud-7' } } },
};

/** Sets the handler's environment (restored after the file). The SDK reads some of it lazily, so it stays set while a describe runs. */
const setEnv = useHandlerEnv(
  [
    ...POWERTOOLS_METRICS_ENV_KEYS,
    'AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME',
    'AWS_ENDPOINT_URL_DYNAMODB',
    'AWS_ENDPOINT_URL_SSM',
    'ROUTES_PARAMETER_PREFIX',
    'ROUTE_CACHE_TTL_SECONDS',
    'SAGEMAKER_TIMEOUT_MS',
    'PREDICTION_LOG_TABLE',
    'PREDICTION_LOG_TTL_DAYS',
    'PREDICTION_LOG_TIMEOUT_MS',
    'FEATURE_GROUPS',
    'AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME',
  ],
  { POWERTOOLS_METRICS_NAMESPACE: NAMESPACE, POWERTOOLS_SERVICE_NAME: 'inference-test' },
);

/** The SSM the handlers read routes from (moto), one prefix per describe; never reset. */
let routeStore: MotoServer;
beforeAll(async () => {
  routeStore = await startMoto();
}, 30_000);
afterAll(async () => routeStore?.stop());
const routes = (prefix: string, table: Readonly<Record<string, unknown>>): Promise<RouteParameterEnv> => putRouteParameters(routeStore.endpoint, prefix, table);

function predictEvent(model: string | undefined, body: unknown, options: JsonBodyOptions = {}): APIGatewayProxyEvent {
  return apiGatewayEvent(
    { httpMethod: 'POST', resource: '/models/{model}/predict', pathParameters: model === undefined ? null : { model } },
    body,
    options,
  );
}

describe('invoke handler against moto SageMaker runtime', () => {
  let moto: MotoServer;
  let handler: ApiHandler;

  beforeAll(async () => {
    moto = await startMoto();
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: moto.endpoint, ...(await routes('/invoke-test/moto/', ROUTES)) });
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  afterAll(async () => {
    await moto?.stop();
  });

  beforeEach(async () => {
    await moto.reset();
  });

  it('serves a JSON prediction with the variant and model version of the invoked production variant', async () => {
    await queueSageMakerResults(moto, [{ Body: '{"churnProbability":0.87}', ContentType: 'application/json', InvokedProductionVariant: 'green' }]);

    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: { tenureMonths: 3, plan: 'basic' } }));

    expect(response.statusCode).toBe(200);
    expect(body).toEqual({
      predictionId: expect.stringMatching(UUID),
      model: 'churn',
      variant: 'green',
      modelVersion: 'churn-v2',
      prediction: { churnProbability: 0.87 },
      contentType: 'application/json',
    });
  });

  it('prints an EMF document with Predictions and ModelLatency for the model, and a log line with the prediction id', async () => {
    await queueSageMakerResults(moto, [{ Body: '[0.1]', ContentType: 'application/json', InvokedProductionVariant: 'AllTraffic' }]);

    const { body, lines } = await invokeApi(handler, predictEvent('fraud', { payload: [[1, 2, 3]] }));

    const [emf, ...others] = emfDocuments(lines);
    expect(others).toHaveLength(0);
    expect(emf).toMatchObject({
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: NAMESPACE,
            Dimensions: [expect.arrayContaining(['Model'])],
            Metrics: expect.arrayContaining([
              { Name: 'Predictions', Unit: 'Count' },
              { Name: 'ModelLatency', Unit: 'Milliseconds' },
            ]),
          },
        ],
      },
      Model: 'fraud',
      Predictions: 1,
      ModelLatency: expect.any(Number),
    });
    expect(logEntries(lines, 'INFO')).toContainEqual(
      expect.objectContaining({
        message: 'prediction served',
        predictionId: body.predictionId,
        model: 'fraud',
        variant: 'AllTraffic',
        modelVersion: 'fraud-7',
        latencyMs: expect.any(Number),
      }),
    );
  });

  it('serves a CSV prediction as text', async () => {
    await queueSageMakerResults(moto, [{ Body: '0.12\n0.88', ContentType: 'text/csv', InvokedProductionVariant: 'blue' }]);

    const { response, body } = await invokeApi(
      handler,
      predictEvent('churn', { payload: '3,basic\n48,premium', contentType: 'text/csv', accept: 'text/csv' }),
    );

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ prediction: '0.12\n0.88', contentType: 'text/csv', variant: 'blue', modelVersion: 'churn-v1' });
  });

  it('honours a target variant and echoes the caller inference id as prediction id', async () => {
    await queueSageMakerResults(moto, [{ Body: '{"ok":true}', ContentType: 'application/json', InvokedProductionVariant: 'blue' }]);

    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: 1, targetVariant: 'blue', inferenceId: 'order-42' }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ predictionId: 'order-42', variant: 'blue', modelVersion: 'churn-v1', prediction: { ok: true } });
  });

  it("reports modelVersion 'unknown' when the endpoint answers from a variant missing in its route", async () => {
    // With nothing queued moto answers with its static defaults.
    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: 1 }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ variant: 'invoked_production_variant', modelVersion: 'unknown', prediction: 'body', contentType: 'content_type' });
  });

  it('accepts a base64-encoded body', async () => {
    await queueSageMakerResults(moto, [{ Body: '{"y":1}', ContentType: 'application/json', InvokedProductionVariant: 'AllTraffic' }]);

    const { response, body } = await invokeApi(handler, predictEvent('fraud', { payload: { x: 'é' } }, { base64: true }));

    expect(response.statusCode).toBe(200);
    expect(body.prediction).toEqual({ y: 1 });
  });

  it('answers 400 naming body for malformed JSON, logging a warning and emitting no metrics', async () => {
    const { response, body, lines } = await invokeApi(handler, predictEvent('churn', '{"payload": [1,', { raw: true }));

    expect(response.statusCode).toBe(400);
    expect(body).toEqual({ error: 'BadRequest', message: 'body: must be valid JSON' });
    expect(logEntries(lines, 'WARN')).toContainEqual(expect.objectContaining({ message: 'request rejected', status: 400, field: 'body' }));
    expect(emfDocuments(lines)).toHaveLength(0);
  });

  it('answers 400 naming payload when the payload is missing', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('churn', { contentType: 'application/json' }));

    expect(response.statusCode).toBe(400);
    expect(body).toEqual({ error: 'BadRequest', message: 'payload: is required' });
  });

  it('answers 400 naming body when there is no body at all', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('churn', undefined));

    expect(response.statusCode).toBe(400);
    expect(body.message).toMatch(/^body: is required/);
  });

  it('answers 404 naming the unknown model (a fleet\'s models are not listed)', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('upsell', { payload: 1 }));

    expect(response.statusCode).toBe(404);
    expect(body).toEqual({ error: 'NotFound', message: 'model: unknown model "upsell"' });
  });

  it('answers 400 naming the unknown target variant and listing the variants', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: 1, targetVariant: 'canary' }));

    expect(response.statusCode).toBe(400);
    expect(body).toEqual({
      error: 'BadRequest',
      message: 'targetVariant: unknown variant "canary" for model "churn"; variants: blue, green',
    });
  });

  it('answers 400 naming targetVariant when it is not a valid variant name', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: 1, targetVariant: 'not_valid' }));

    expect(response.statusCode).toBe(400);
    expect(body.message).toMatch(/^targetVariant: Invalid variant name/);
  });

  it('answers 413 for a body over 5 MB', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: 'x'.repeat(5 * 1024 * 1024) }));

    expect(response.statusCode).toBe(413);
    expect(body).toMatchObject({ error: 'PayloadTooLarge', message: expect.stringMatching(/^body: exceeds the 5 MB limit/) });
  });

  it('answers 400 naming model when the path parameter is missing', async () => {
    const { response, body } = await invokeApi(handler, predictEvent(undefined, { payload: 1 }));

    expect(response.statusCode).toBe(400);
    expect(body.message).toMatch(/^model: /);
  });

  it('answers a generic 500 instead of throwing when the event is malformed, and logs the error', async () => {
    const { response, body, lines } = await invokeApi(handler, null as unknown as APIGatewayProxyEvent);

    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ error: 'InternalError', message: expect.any(String) });
    expect(response.body).not.toMatch(/TypeError|at /);
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'unexpected error while serving a prediction' }));
  });

  it('serves a prediction through the esbuild bundle too', async () => {
    const bundled = loadFreshHandler<ApiHandler>(HANDLER_BUNDLE);
    await queueSageMakerResults(moto, [{ Body: '{"score":0.5}', ContentType: 'application/json', InvokedProductionVariant: 'blue' }]);

    const { response, body, lines } = await invokeApi(bundled, predictEvent('churn', { payload: { a: 1 } }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ model: 'churn', variant: 'blue', modelVersion: 'churn-v1', prediction: { score: 0.5 } });
    expect(emfDocuments(lines)).toHaveLength(1);
  });
});

interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A local stand-in for SageMaker runtime that answers each endpoint name with a canned response. */
async function startFakeSageMaker(): Promise<{ server: Server; endpoint: string; requests: RecordedRequest[] }> {
  const requests: RecordedRequest[] = [];
  const json = { 'content-type': 'application/json', 'x-amzn-requestid': 'fake-request-id' };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const endpoint = /^\/endpoints\/([^/]+)\/invocations$/.exec(req.url ?? '')?.[1];
      switch (endpoint) {
        case 'echo':
          res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-invoked-production-variant': 'green' });
          res.end(JSON.stringify({ echoed: true }));
          return;
        case 'route-echo': {
          // Like SageMaker: the target variant answers when one is named, otherwise the weighted pick (here always blue).
          const target = req.headers['x-amzn-sagemaker-target-variant'];
          const variant = typeof target === 'string' ? target : 'blue';
          res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-invoked-production-variant': variant });
          res.end(JSON.stringify({ servedBy: variant }));
          return;
        }
        case 'model-error':
          // What SageMaker sends when the container answers 5xx to /invocations.
          res.writeHead(424, { ...json, 'x-amzn-errortype': 'ModelError:http://internal.amazon.com/coral/com.amazon.sagemaker/' });
          res.end(
            JSON.stringify({
              ErrorCode: 'INTERNAL_FAILURE_FROM_MODEL',
              LogStreamArn: 'arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/model-error',
              Message: 'Received server error (500) from primary with message "boom". See logs.',
              OriginalMessage: 'ZeroDivisionError: division by zero',
              OriginalStatusCode: 500,
            }),
          );
          return;
        case 'validation':
          // Coral-style: error type with namespace suffix and a lower-case "message".
          res.writeHead(400, { ...json, 'x-amzn-errortype': 'ValidationError:http://internal.amazon.com/coral/com.amazon.coral.validate/' });
          res.end(JSON.stringify({ message: 'Endpoint validation of account 123456789012 not found.' }));
          return;
        case 'unavailable':
          res.writeHead(503, { ...json, 'x-amzn-errortype': 'ServiceUnavailable' });
          res.end(JSON.stringify({ Message: 'Service is temporarily unavailable' }));
          return;
        case 'throttled':
          res.writeHead(400, { ...json, 'x-amzn-errortype': 'ThrottlingException' });
          res.end(JSON.stringify({ message: 'Rate exceeded' }));
          return;
        case 'not-ready':
          res.writeHead(429, { ...json, 'x-amzn-errortype': 'ModelNotReadyException' });
          res.end(JSON.stringify({ Message: 'Model is still loading' }));
          return;
        case 'internal':
          res.writeHead(500, { ...json, 'x-amzn-errortype': 'InternalFailure' });
          res.end(JSON.stringify({ Message: 'An internal error occurred' }));
          return;
        case 'slow':
          setTimeout(() => {
            if (!res.destroyed) {
              res.writeHead(200, { 'content-type': 'application/json' });
              res.end('{}');
            }
          }, 5_000).unref();
          return;
        default:
          res.writeHead(404, json);
          res.end('{}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, endpoint: `http://127.0.0.1:${port}`, requests };
}

describe('invoke handler against SageMaker runtime failures', () => {
  const failureRoutes = Object.fromEntries(
    ['echo', 'model-error', 'validation', 'unavailable', 'throttled', 'not-ready', 'internal', 'slow'].map((name) => [
      name,
      { endpointName: name, variants: { blue: { modelVersion: `${name}-1` }, green: { modelVersion: `${name}-2` } } },
    ]),
  );
  let fake: Awaited<ReturnType<typeof startFakeSageMaker>>;
  let handler: ApiHandler;

  beforeAll(async () => {
    fake = await startFakeSageMaker();
    setEnv({
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: fake.endpoint,
      ...(await routes('/invoke-test/failures/', failureRoutes)),
      SAGEMAKER_TIMEOUT_MS: '400',
    });
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  afterAll(async () => {
    fake.server.closeAllConnections();
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
  });

  it('sends the payload, content type, accept, target variant and inference id on the wire', async () => {
    fake.requests.length = 0;
    const { response, body } = await invokeApi(
      handler,
      predictEvent('echo', { payload: '1,2', contentType: 'text/csv', accept: 'application/json', targetVariant: 'green', inferenceId: 'wire-1' }),
    );

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ predictionId: 'wire-1', variant: 'green', modelVersion: 'echo-2', prediction: { echoed: true } });
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      method: 'POST',
      url: '/endpoints/echo/invocations',
      body: '1,2',
      headers: expect.objectContaining({
        'content-type': 'text/csv',
        accept: 'application/json',
        'x-amzn-sagemaker-target-variant': 'green',
        'x-amzn-sagemaker-inference-id': 'wire-1',
        authorization: expect.stringContaining('/us-east-1/sagemaker/aws4_request'),
      }),
    });
  });

  it.each([
    ['model-error', 502, 'ModelError', /^the model container returned an error \(status 500\): ZeroDivisionError: division by zero$/],
    ['validation', 502, 'EndpointRejectedRequest', /^endpoint rejected the request: Endpoint validation of account 123456789012 not found\.$/],
    ['unavailable', 503, 'ServiceUnavailable', /^SageMaker is temporarily unavailable; retry later: Service is temporarily unavailable$/],
    ['throttled', 429, 'Throttled', /^the model endpoint is throttling requests/],
    ['not-ready', 503, 'ModelNotReady', /^the model is not ready to serve requests; retry later: Model is still loading$/],
    ['internal', 502, 'InternalFailure', /^SageMaker failed to process the request$/],
    ['slow', 504, 'Timeout', /^the model endpoint did not answer in time$/],
  ])('maps the %s endpoint failure to %i %s with a clear message', async (model, status, code, message) => {
    const { response, body, lines } = await invokeApi(handler, predictEvent(model, { payload: { x: 1 } }));

    expect(response.statusCode).toBe(status);
    expect(body).toEqual({ error: code, message: expect.stringMatching(message), predictionId: expect.stringMatching(UUID) });
    expect(response.body).not.toMatch(/\n\s+at |node_modules/);
    expect(logEntries(lines, 'ERROR')).toContainEqual(
      expect.objectContaining({ message: 'model invocation failed', model, status, code, predictionId: body.predictionId }),
    );
    expect(emfDocuments(lines)).toContainEqual(expect.objectContaining({ Model: model, PredictionErrors: 1, ModelLatency: expect.any(Number) }));
  });
});

describe('invoke handler when the endpoint is unreachable', () => {
  let handler: ApiHandler;

  beforeAll(async () => {
    const closedPort = await freePort();
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: `http://127.0.0.1:${closedPort}`, ...(await routes('/invoke-test/moto/', ROUTES)) });
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  it('answers 503 for a refused connection instead of crashing', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('churn', { payload: 1 }));

    expect(response.statusCode).toBe(503);
    expect(body).toMatchObject({ error: 'EndpointUnreachable', message: 'could not reach the model endpoint (ECONNREFUSED)' });
  });
});

describe('invoke handler with a bad route', () => {
  let handler: ApiHandler;

  beforeAll(async () => {
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: 'http://127.0.0.1:9', ...(await routes('/invoke-test/bad/', { churn: '{"variants":{}}', fraud: '{' })) });
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  it('answers 500 naming the parameter and the fields, and logs the configuration error, on every request', async () => {
    const first = await invokeApi(handler, predictEvent('churn', { payload: 1 }));

    expect(first.response.statusCode).toBe(500);
    expect(first.body).toEqual({
      error: 'ConfigurationError',
      message: expect.stringMatching(/^route of "churn" \(SSM parameter \/invoke-test\/bad\/churn\): endpointName: .*; variants: must define at least one variant$/),
    });
    expect(logEntries(first.lines, 'ERROR')).toContainEqual(
      expect.objectContaining({ message: 'model route unavailable', model: 'churn', status: 500, reason: first.body.message }),
    );
    expect(emfDocuments(first.lines)).toContainEqual(expect.objectContaining({ Model: 'unresolved', PredictionErrors: 1 }));

    const second = await invokeApi(handler, predictEvent('churn', { payload: 1 }));
    expect(second.response.statusCode).toBe(500);
    expect(second.body.message).toBe(first.body.message);
  });

  it('answers 500 when a route is not JSON', async () => {
    const { response, body } = await invokeApi(handler, predictEvent('fraud', { payload: 1 }));

    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ error: 'ConfigurationError', message: 'route of "fraud" (SSM parameter /invoke-test/bad/fraud): is not valid JSON' });
  });

  it('answers 404 for a model without a route, and for a name no family can have', async () => {
    for (const model of ['nosuch', 'Not_A_Family', 'x'.repeat(40)]) {
      const { response, body } = await invokeApi(handler, predictEvent(model, { payload: 1 }));
      expect(response.statusCode).toBe(404);
      expect(body).toMatchObject({ message: `model: unknown model ${JSON.stringify(model)}` });
    }
  });

  it.each([
    [undefined, 'ROUTES_PARAMETER_PREFIX: is not set'],
    ['routes', 'ROUTES_PARAMETER_PREFIX: must start and end with \'/\' and hold only letters, digits and _ . - /; got "routes"'],
  ])('answers 500 naming ROUTES_PARAMETER_PREFIX when it is %p', async (prefix, message) => {
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: 'http://127.0.0.1:9', ...(prefix === undefined ? {} : { ROUTES_PARAMETER_PREFIX: prefix }) });
    const misconfigured = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body, lines } = await invokeApi(misconfigured, predictEvent('churn', { payload: 1 }));

    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ error: 'ConfigurationError', message });
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'invalid function configuration', error: message }));
  });

  it('answers 500 naming ROUTE_CACHE_TTL_SECONDS when it is not a number of seconds', async () => {
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: 'http://127.0.0.1:9', ROUTES_PARAMETER_PREFIX: '/p/', ROUTE_CACHE_TTL_SECONDS: '1m' });
    const misconfigured = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body } = await invokeApi(misconfigured, predictEvent('churn', { payload: 1 }));

    expect(response.statusCode).toBe(500);
    expect(body.message).toBe('ROUTE_CACHE_TTL_SECONDS: must be a whole number of seconds from 0 to 86400; got "1m"');
  });
});

describe('invoke handler when the route store throttles, fails, slows down, goes away and recovers', () => {
  let ssm: FakeSsm;
  let sagemaker: Awaited<ReturnType<typeof startFakeSageMaker>>;
  let handler: ApiHandler;
  const route = JSON.stringify({ endpointName: 'echo', variants: { green: { modelVersion: 'echo-1' } } });

  beforeAll(async () => {
    [ssm, sagemaker] = await Promise.all([startFakeSsm({ '/fleet/echo': route }), startFakeSageMaker()]);
    // TTL 0: every request reads its route, so each one meets the store as it is now.
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: sagemaker.endpoint, AWS_ENDPOINT_URL_SSM: ssm.endpoint, ROUTES_PARAMETER_PREFIX: '/fleet/', ROUTE_CACHE_TTL_SECONDS: '0' });
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  afterAll(async () => {
    sagemaker.server.closeAllConnections();
    await new Promise<void>((resolve) => sagemaker.server.close(() => resolve()));
    await ssm.close().catch(() => undefined);
  });

  it('answers 503 RoutingUnavailable while no route was ever read, and never calls the endpoint', async () => {
    ssm.mode = 'throttle';
    sagemaker.requests.length = 0;

    const { response, body, lines } = await invokeApi(handler, predictEvent('echo', { payload: 1 }));

    expect(response.statusCode).toBe(503);
    expect(body).toEqual({ error: 'RoutingUnavailable', message: 'model: the route of "echo" could not be read; retry' });
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'model route unavailable', model: 'echo', status: 503 }));
    expect(sagemaker.requests).toHaveLength(0);
  });

  it('recovers on the next request once the store answers, reading the parameter over the wire', async () => {
    ssm.mode = 'ok';
    ssm.requests.length = 0;

    const { response, body } = await invokeApi(handler, predictEvent('echo', { payload: 1 }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ model: 'echo', variant: 'green', modelVersion: 'echo-1' });
    expect(ssm.requests).toEqual(['/fleet/echo']);
  });

  it.each(['error', 'slow', 'throttle'] as const)('keeps serving the last route read while the store is %s, and warns', async (mode) => {
    ssm.mode = mode;

    const { response, body, lines } = await invokeApi(handler, predictEvent('echo', { payload: 1 }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ model: 'echo', modelVersion: 'echo-1' });
    expect(logEntries(lines, 'WARN')).toContainEqual(expect.objectContaining({ message: 'route refresh failed; serving the last route read', model: 'echo' }));
  }, 10_000);

  it('keeps serving when the store goes away; a new execution environment answers 503 until it is back', async () => {
    await ssm.close();

    const served = await invokeApi(handler, predictEvent('echo', { payload: 1 }));
    expect(served.response.statusCode).toBe(200);

    const fresh = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
    const unavailable = await invokeApi(fresh, predictEvent('echo', { payload: 1 }));
    expect(unavailable.response.statusCode).toBe(503);
    expect(unavailable.body.error).toBe('RoutingUnavailable');
  });
});

describe('moto harness', () => {
  it('says clearly that moto_server is missing when it is not on PATH', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(startMoto()).rejects.toThrow(/moto_server was not found on PATH/);
    } finally {
      process.env.PATH = path;
    }
  });
});

describe('invoke handler with sticky routing and a prediction log', () => {
  const TABLE = 'prediction-log';
  const SALT = 'ranker-2024-05';
  const WEIGHTS = [
    { name: 'blue', weight: 1 },
    { name: 'green', weight: 1 },
  ];
  const stickyRoutes = {
    ranker: {
      endpointName: 'route-echo',
      variants: { blue: { modelVersion: 'ranker-1', weight: 1 }, green: { modelVersion: 'ranker-2', weight: 1 } },
      sticky: { salt: SALT },
    },
    plain: { endpointName: 'route-echo', variants: { blue: { modelVersion: 'plain-1' }, green: { modelVersion: 'plain-2' } } },
  };
  let fake: Awaited<ReturnType<typeof startFakeSageMaker>>;
  let moto: MotoServer;
  let dynamodb: DynamoDBClient;
  let handler: ApiHandler;
  let stickyRouteEnv: RouteParameterEnv;

  const env = (overrides: Parameters<typeof setEnv>[0] = {}): void =>
    setEnv({
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: fake.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint,
      ...stickyRouteEnv,
      PREDICTION_LOG_TABLE: TABLE,
      ...overrides,
    });
  const logged = async (predictionId: string) =>
    (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { predictionId: { S: predictionId } }, ConsistentRead: true }))).Item;

  beforeAll(async () => {
    [fake, moto] = await Promise.all([startFakeSageMaker(), startMoto()]);
    stickyRouteEnv = await routes('/invoke-test/sticky/', stickyRoutes);
    env();
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    await createPredictionLogTable(dynamodb, TABLE);
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  afterAll(async () => {
    dynamodb?.destroy();
    fake?.server.closeAllConnections();
    await new Promise<void>((resolve) => (fake === undefined ? resolve() : fake.server.close(() => resolve())));
    await moto?.stop();
  });

  beforeEach(() => {
    fake.requests.length = 0;
  });

  it('sends the sticky-assigned TargetVariant on the wire, the same one for every request of a caller', async () => {
    const callers = Array.from({ length: 16 }, (_, index) => `user-${index}@example.com`);
    const expected = callers.map((callerId) => assignVariant(callerId, WEIGHTS, SALT));
    // With 16 callers on a 50/50 split both arms are all but certain to appear (P(one arm only) = 2^-15).
    expect(new Set(expected)).toEqual(new Set(['blue', 'green']));

    for (const [index, callerId] of callers.entries()) {
      for (let repeat = 0; repeat < 2; repeat += 1) {
        const { response, body } = await invokeApi(handler, predictEvent('ranker', { payload: { q: index }, callerId }));
        expect(response.statusCode).toBe(200);
        expect(body).toMatchObject({ model: 'ranker', variant: expected[index], prediction: { servedBy: expected[index] } });
      }
    }
    expect(fake.requests.map((request) => request.headers['x-amzn-sagemaker-target-variant'])).toEqual(expected.flatMap((variant) => [variant, variant]));
  });

  it('writes the prediction log record: served variant, version, ISO time, 90-day TTL, the caller hash (never the id) and how it was assigned', async () => {
    const before = Math.floor(Date.now() / 1000);
    const { body, lines } = await invokeApi(handler, predictEvent('ranker', { payload: 1, callerId: 'alice@example.com' }));
    const after = Math.ceil(Date.now() / 1000);
    const variant = assignVariant('alice@example.com', WEIGHTS, SALT);

    const item = await logged(body.predictionId as string);
    expect(item).toEqual({
      predictionId: { S: body.predictionId },
      model: { S: 'ranker' },
      variant: { S: variant },
      modelVersion: { S: variant === 'blue' ? 'ranker-1' : 'ranker-2' },
      servedAt: { S: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/) },
      expiresAt: { N: expect.any(String) },
      callerHash: { S: hashCallerId('alice@example.com') },
      assignment: { S: 'sticky' },
    });
    const expiresAt = Number(item?.expiresAt?.N);
    expect(expiresAt).toBeGreaterThanOrEqual(before + 90 * 86_400);
    expect(expiresAt).toBeLessThanOrEqual(after + 90 * 86_400);
    expect(JSON.stringify(item)).not.toContain('alice');
    expect(JSON.stringify(lines)).not.toContain('alice');
    expect(logEntries(lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'prediction served', assignment: 'sticky' }));
  });

  it("logs 'targeted' when the caller names the variant and 'weighted' when SageMaker picks it", async () => {
    const targeted = await invokeApi(handler, predictEvent('ranker', { payload: 1, callerId: 'bob', targetVariant: 'green', inferenceId: 'targeted-1' }));
    const weighted = await invokeApi(handler, predictEvent('ranker', { payload: 1, inferenceId: 'weighted-1' }));
    const notSticky = await invokeApi(handler, predictEvent('plain', { payload: 1, callerId: 'carol', inferenceId: 'plain-1' }));

    expect([targeted, weighted, notSticky].map((result) => result.response.statusCode)).toEqual([200, 200, 200]);
    expect(fake.requests.map((request) => request.headers['x-amzn-sagemaker-target-variant'])).toEqual(['green', undefined, undefined]);
    expect(await logged('targeted-1')).toMatchObject({ variant: { S: 'green' }, assignment: { S: 'targeted' }, callerHash: { S: hashCallerId('bob') } });
    expect(await logged('weighted-1')).toMatchObject({ variant: { S: 'blue' }, modelVersion: { S: 'ranker-1' }, assignment: { S: 'weighted' } });
    expect(await logged('weighted-1')).not.toHaveProperty('callerHash');
    expect(await logged('plain-1')).toMatchObject({ model: { S: 'plain' }, assignment: { S: 'weighted' }, callerHash: { S: hashCallerId('carol') } });
  });

  it('keeps the first record when a caller reuses an inference id, so a recorded outcome is never wiped', async () => {
    await invokeApi(handler, predictEvent('ranker', { payload: 1, targetVariant: 'blue', inferenceId: 'reused-1' }));
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: TABLE,
        Key: { predictionId: { S: 'reused-1' } },
        UpdateExpression: 'SET outcomeType = :t, outcomeValue = :v',
        ExpressionAttributeValues: { ':t': { S: 'binary' }, ':v': { N: '1' } },
      }),
    );

    const { response, lines } = await invokeApi(handler, predictEvent('ranker', { payload: 2, targetVariant: 'green', inferenceId: 'reused-1' }));

    expect(response.statusCode).toBe(200);
    expect(await logged('reused-1')).toMatchObject({ variant: { S: 'blue' }, outcomeType: { S: 'binary' } });
    expect(logEntries(lines, 'WARN')).toContainEqual(expect.objectContaining({ message: 'prediction id already logged; kept the first record' }));
    expect(emfDocuments(lines)).not.toContainEqual(expect.objectContaining({ PredictionLogWriteErrors: expect.anything() }));
  });

  it('honours PREDICTION_LOG_TTL_DAYS', async () => {
    env({ PREDICTION_LOG_TTL_DAYS: '7' });
    const shortLived = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { body } = await invokeApi(shortLived, predictEvent('ranker', { payload: 1 }));

    const item = await logged(body.predictionId as string);
    expect(Number(item?.expiresAt?.N) - Date.parse(item?.servedAt?.S as string) / 1000).toBeGreaterThan(7 * 86_400 - 2);
    expect(Number(item?.expiresAt?.N) - Date.parse(item?.servedAt?.S as string) / 1000).toBeLessThanOrEqual(7 * 86_400);
    env();
  });

  it('still answers 200 with the prediction when the log write fails, logging the whole record and counting PredictionLogWriteErrors', async () => {
    env({ PREDICTION_LOG_TABLE: 'no-such-table' });
    const failing = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body, lines } = await invokeApi(failing, predictEvent('ranker', { payload: 1, callerId: 'dave', inferenceId: 'lost-1' }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ predictionId: 'lost-1', model: 'ranker', prediction: { servedBy: assignVariant('dave', WEIGHTS, SALT) } });
    expect(logEntries(lines, 'ERROR')).toContainEqual(
      expect.objectContaining({
        message: 'prediction log write failed',
        table: 'no-such-table',
        record: {
          predictionId: 'lost-1',
          model: 'ranker',
          variant: body.variant,
          modelVersion: body.modelVersion,
          servedAt: expect.any(String),
          expiresAt: expect.any(Number),
          callerHash: hashCallerId('dave'),
          assignment: 'sticky',
        },
        error: expect.objectContaining({ name: 'ResourceNotFoundException' }),
      }),
    );
    expect(emfDocuments(lines)).toEqual([
      expect.objectContaining({
        _aws: expect.objectContaining({
          CloudWatchMetrics: [expect.objectContaining({ Metrics: expect.arrayContaining([{ Name: 'PredictionLogWriteErrors', Unit: 'Count' }]) })],
        }),
        Model: 'ranker',
        Predictions: 1,
        PredictionLogWriteErrors: 1,
      }),
    ]);
    env();
  });

  it('still answers 200 when DynamoDB cannot be reached at all', async () => {
    env({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await freePort()}` });
    const unreachable = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, lines } = await invokeApi(unreachable, predictEvent('ranker', { payload: 1 }));

    expect(response.statusCode).toBe(200);
    expect(emfDocuments(lines)).toContainEqual(expect.objectContaining({ PredictionLogWriteErrors: 1 }));
    env();
  });

  it('answers 400 naming callerId when it is too long or not a string', async () => {
    for (const callerId of ['x'.repeat(257), '', 42]) {
      const { response, body } = await invokeApi(handler, predictEvent('ranker', { payload: 1, callerId }));
      expect(response.statusCode).toBe(400);
      expect(body.message).toMatch(/^callerId: Invalid caller id/);
    }
    expect(fake.requests).toHaveLength(0);
  });

  it('answers 500 naming the weight when a sticky route lacks weights', async () => {
    env(await routes('/invoke-test/sticky-unweighted/', { ranker: { ...stickyRoutes.ranker, variants: { blue: { modelVersion: '1' } } } }));
    const misconfigured = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body } = await invokeApi(misconfigured, predictEvent('ranker', { payload: 1, callerId: 'erin' }));

    expect(response.statusCode).toBe(500);
    expect(body.message).toBe(
      'route of "ranker" (SSM parameter /invoke-test/sticky-unweighted/ranker): variants.blue.weight: is required on every variant when sticky routing is on',
    );
    env();
  });

  it('routes stickily and logs the prediction through the esbuild bundle too', async () => {
    const bundled = loadFreshHandler<ApiHandler>(HANDLER_BUNDLE);
    const variant = assignVariant('frank', WEIGHTS, SALT);

    const { response, body } = await invokeApi(bundled, predictEvent('ranker', { payload: 1, callerId: 'frank', inferenceId: 'bundle-1' }));

    expect(response.statusCode).toBe(200);
    expect(body).toMatchObject({ predictionId: 'bundle-1', variant });
    expect(fake.requests.map((request) => request.headers['x-amzn-sagemaker-target-variant'])).toEqual([variant]);
    expect(await logged('bundle-1')).toMatchObject({ variant: { S: variant }, callerHash: { S: hashCallerId('frank') }, assignment: { S: 'sticky' } });
  });

  it('writes nothing and needs no table when PREDICTION_LOG_TABLE is not set', async () => {
    env({ PREDICTION_LOG_TABLE: '' });
    const withoutLog = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, lines } = await invokeApi(withoutLog, predictEvent('ranker', { payload: 1, inferenceId: 'unlogged-1' }));

    expect(response.statusCode).toBe(200);
    expect(await logged('unlogged-1')).toBeUndefined();
    expect(logEntries(lines, 'ERROR')).toHaveLength(0);
    env();
  });
});

describe('invoke handler enriching a request with online features', () => {
  const group = {
    name: 'customer-features',
    description: 'Customer signals.',
    owner: 'analytics',
    recordIdentifier: 'customer_id',
    eventTime: 'event_time',
    features: [
      { name: 'customer_id', type: 'string', description: 'id' },
      { name: 'event_time', type: 'string', description: 'time' },
      { name: 'tenure_months', type: 'integral', description: 'tenure' },
      { name: 'monthly_charges', type: 'fractional', description: 'bill' },
    ],
  };
  let sagemaker: Awaited<ReturnType<typeof startFakeSageMaker>>;
  let featureStore: Server;
  const lookups: string[] = [];
  let handler: ApiHandler;

  beforeAll(async () => {
    sagemaker = await startFakeSageMaker();
    // Feature Store's GetRecord wire format: GET /FeatureGroup/<name>?RecordIdentifierValueAsString=<id>.
    featureStore = createServer((req, res) => {
      lookups.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': 'fake' });
      if ((req.url ?? '').includes('RecordIdentifierValueAsString=c-1')) {
        res.end(
          JSON.stringify({
            Record: [
              { FeatureName: 'customer_id', ValueAsString: 'c-1' },
              { FeatureName: 'event_time', ValueAsString: '2026-11-20T10:00:00Z' },
              { FeatureName: 'tenure_months', ValueAsString: '14' },
              { FeatureName: 'monthly_charges', ValueAsString: '70.5' },
            ],
          }),
        );
      } else {
        res.end('{}');
      }
    });
    await new Promise<void>((resolve) => featureStore.listen(0, '127.0.0.1', resolve));
    setEnv({
      AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: sagemaker.endpoint,
      AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME: `http://127.0.0.1:${(featureStore.address() as AddressInfo).port}`,
      ...(await routes('/invoke-test/features/', { echo: { endpointName: 'echo', variants: { green: { modelVersion: 'echo-1' } } } })),
      FEATURE_GROUPS: JSON.stringify([group]),
    });
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  afterAll(async () => {
    for (const server of [sagemaker.server, featureStore]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("adds the entity's typed features to the payload the model receives", async () => {
    sagemaker.requests.length = 0;
    const { response } = await invokeApi(handler, predictEvent('echo', { payload: { amount: 3 }, entity: { featureGroup: 'customer-features', recordId: 'c-1' } }));
    expect(response.statusCode).toBe(200);
    expect(JSON.parse(sagemaker.requests[0].body)).toEqual({
      amount: 3,
      features: { customer_id: 'c-1', event_time: '2026-11-20T10:00:00Z', tenure_months: 14, monthly_charges: 70.5 },
    });
  });

  it('answers 404 naming the record id when the entity has no features, without calling the model', async () => {
    sagemaker.requests.length = 0;
    const { response, body } = await invokeApi(handler, predictEvent('echo', { payload: {}, entity: { featureGroup: 'customer-features', recordId: 'c-9' } }));
    expect(response.statusCode).toBe(404);
    expect(body).toEqual({ error: 'NotFound', message: "entity.recordId: no features for 'c-9' in customer-features" });
    expect(sagemaker.requests).toHaveLength(0);
  });

  it('answers 404 naming an unknown feature group, and 400 for enrichment of a CSV payload', async () => {
    const unknown = await invokeApi(handler, predictEvent('echo', { payload: {}, entity: { featureGroup: 'orders', recordId: 'c-1' } }));
    expect(unknown.response.statusCode).toBe(404);
    expect(unknown.body.message).toMatch(/^entity\.featureGroup: unknown feature group 'orders'; feature groups: customer-features/);
    const csv = await invokeApi(handler, predictEvent('echo', { payload: '1,2', contentType: 'text/csv', entity: { featureGroup: 'customer-features', recordId: 'c-1' } }));
    expect(csv.response.statusCode).toBe(400);
    expect(csv.body.message).toContain('entity: enrichment adds `features` to the payload, so the payload must be a JSON object');
  });
});
