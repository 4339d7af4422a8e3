import { createPredictionLogTable } from '../support/prediction-log-table';
// Runs the record-outcome handler (source via swc, and once the esbuild bundle) against moto's
// DynamoDB, against a local server that answers with DynamoDB's throttling error, and against a
// closed port.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { predictionLogItem, predictionLogRecord } from '../../lambda/shared/experiments';
import { apiGatewayEvent, emfDocuments, handlerModulePaths, invokeApi, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv, type ApiHandler } from '../support/handler-harness';
import { freePort, sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { putRouteParameters, type RouteParameterEnv } from '../support/routes';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('record-outcome');
const NAMESPACE = 'CdkMlPatterns/OutcomeTest';
const TABLE = 'prediction-log';

const ROUTES = {
  churn: { endpointName: 'churn-endpoint', variants: { blue: { modelVersion: 'churn-v1' }, green: { modelVersion: 'churn-v2' } } },
  fraud: { endpointName: 'fraud-endpoint', variants: { AllTraffic: { modelVersion: 'fraud-7' } } },
};

const setHandlerEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_DYNAMODB', 'AWS_ENDPOINT_URL_SSM', 'ROUTES_PARAMETER_PREFIX', 'PREDICTION_LOG_TABLE'], {
  PREDICTION_LOG_TABLE: TABLE,
  POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
  POWERTOOLS_SERVICE_NAME: 'outcome-test',
});

/** The SSM the handler reads routes from (moto, never reset); every describe reads ROUTES from it. */
let routeStore: MotoServer;
let routeEnv: RouteParameterEnv;
beforeAll(async () => {
  routeStore = await startMoto();
  routeEnv = await putRouteParameters(routeStore.endpoint, '/outcome-test/', ROUTES);
}, 30_000);
afterAll(async () => routeStore?.stop());
const setEnv = (overrides: Parameters<typeof setHandlerEnv>[0] = {}): void => setHandlerEnv({ ...routeEnv, ...overrides });

function outcomeEvent(model: string | undefined, body: unknown, options: { raw?: boolean } = {}): APIGatewayProxyEvent {
  return apiGatewayEvent(
    { httpMethod: 'POST', resource: '/models/{model}/outcomes', pathParameters: model === undefined ? null : { model } },
    body,
    options,
  );
}


describe('record-outcome handler against moto DynamoDB', () => {
  let moto: MotoServer;
  let dynamodb: DynamoDBClient;
  let handler: ApiHandler;

  const logPrediction = async (predictionId: string, model: string, variant: string): Promise<void> => {
    const record = predictionLogRecord({
      result: { predictionId, model, variant, modelVersion: `${model}-${variant}` },
      servedAt: new Date(),
      ttlDays: 90,
      callerId: 'caller-1',
      assignment: 'sticky',
    });
    await dynamodb.send(new PutItemCommand({ TableName: TABLE, Item: predictionLogItem(record) }));
  };
  const stored = async (predictionId: string) =>
    (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { predictionId: { S: predictionId } }, ConsistentRead: true }))).Item;

  beforeAll(async () => {
    // DynamoDB's atomic conditional writes, which the concurrent-outcome test relies on, need the extended moto.
    moto = await startMoto({ extended: true });
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);
  });

  afterAll(async () => {
    dynamodb?.destroy();
    await moto?.stop();
  });

  beforeEach(async () => {
    await moto.reset();
    await createPredictionLogTable(dynamodb, TABLE);
  });

  it('records a binary outcome once: 201 with the prediction and its variant, stored with a timestamp, counted as OutcomesRecorded', async () => {
    await logPrediction('p-1', 'churn', 'green');

    const { response, body, lines } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: true } }));

    expect(response.statusCode).toBe(201);
    expect(body).toEqual({ predictionId: 'p-1', model: 'churn', variant: 'green', outcome: { type: 'binary', value: 1 } });
    const item = await stored('p-1');
    expect(item).toMatchObject({
      outcomeType: { S: 'binary' },
      outcomeValue: { N: '1' },
      outcomeAt: { S: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/) },
      // The prediction's own attributes are untouched.
      variant: { S: 'green' },
      assignment: { S: 'sticky' },
    });
    expect(emfDocuments(lines)).toEqual([
      expect.objectContaining({
        _aws: expect.objectContaining({
          CloudWatchMetrics: [expect.objectContaining({ Namespace: NAMESPACE, Metrics: [{ Name: 'OutcomesRecorded', Unit: 'Count' }] })],
        }),
        Model: 'churn',
        OutcomesRecorded: 1,
      }),
    ]);
    expect(logEntries(lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'outcome recorded', predictionId: 'p-1', repeat: false }));
  });

  it('records a continuous outcome', async () => {
    await logPrediction('p-2', 'fraud', 'AllTraffic');

    const { response, body } = await invokeApi(handler, outcomeEvent('fraud', { predictionId: 'p-2', outcome: { type: 'continuous', value: 42.5 } }));

    expect(response.statusCode).toBe(201);
    expect(body).toEqual({ predictionId: 'p-2', model: 'fraud', variant: 'AllTraffic', outcome: { type: 'continuous', value: 42.5 } });
    expect(await stored('p-2')).toMatchObject({ outcomeType: { S: 'continuous' }, outcomeValue: { N: '42.5' } });
  });

  it('answers an identical repeat with 200 and the same body, without rewriting the outcome or counting it again', async () => {
    await logPrediction('p-3', 'churn', 'blue');
    const first = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-3', outcome: { type: 'binary', value: 1 } }));
    const recordedAt = (await stored('p-3'))?.outcomeAt?.S;

    // true is the same binary outcome as 1.
    const repeat = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-3', outcome: { type: 'binary', value: true } }));

    expect(first.response.statusCode).toBe(201);
    expect(repeat.response.statusCode).toBe(200);
    expect(repeat.body).toEqual(first.body);
    expect((await stored('p-3'))?.outcomeAt?.S).toBe(recordedAt);
    expect(emfDocuments(repeat.lines)).toHaveLength(0);
    expect(logEntries(repeat.lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'outcome already recorded', repeat: true }));
  });

  it('answers 409 when a different outcome is already recorded, and keeps the first one', async () => {
    await logPrediction('p-4', 'churn', 'blue');
    await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-4', outcome: { type: 'binary', value: 0 } }));

    const changed = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-4', outcome: { type: 'binary', value: 1 } }));
    const otherType = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-4', outcome: { type: 'continuous', value: 0 } }));

    for (const { response, body } of [changed, otherType]) {
      expect(response.statusCode).toBe(409);
      expect(body).toEqual({
        error: 'Conflict',
        message: expect.stringMatching(/^outcome: prediction 'p-4' already has outcome \{"type":"binary","value":0\} recorded at \S+; a recorded outcome cannot be changed$/),
      });
    }
    expect(await stored('p-4')).toMatchObject({ outcomeType: { S: 'binary' }, outcomeValue: { N: '0' } });
  });

  it('lets exactly one of two concurrent, different outcomes win', async () => {
    await logPrediction('p-5', 'churn', 'green');

    const results = await quietly(() =>
      Promise.all([
        handler(outcomeEvent('churn', { predictionId: 'p-5', outcome: { type: 'binary', value: 1 } })),
        handler(outcomeEvent('churn', { predictionId: 'p-5', outcome: { type: 'binary', value: 0 } })),
      ]),
    );

    expect(results.map((result) => result.statusCode).sort()).toEqual([201, 409]);
  });

  it('answers 404 naming predictionId for an unknown prediction', async () => {
    const { response, body } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'nope', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(404);
    expect(body).toEqual({ error: 'NotFound', message: "predictionId: no prediction 'nope' for model 'churn'" });
    expect(await stored('nope')).toBeUndefined();
  });

  it('answers 404 for a prediction of another model, and leaves it untouched', async () => {
    await logPrediction('p-6', 'fraud', 'AllTraffic');

    const { response, body } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-6', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(404);
    expect(body).toEqual({ error: 'NotFound', message: "predictionId: no prediction 'p-6' for model 'churn'" });
    expect(await stored('p-6')).not.toHaveProperty('outcomeType');
  });

  it('answers 404 naming the unknown model', async () => {
    const { response, body } = await invokeApi(handler, outcomeEvent('upsell', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(404);
    expect(body).toEqual({ error: 'NotFound', message: 'model: unknown model "upsell"' });
  });

  it.each([
    ['outcome.value', { predictionId: 'p-1', outcome: { type: 'binary', value: 2 } }, /^outcome\.value: must be 0, 1, true or false$/],
    ['outcome.type', { predictionId: 'p-1', outcome: { type: 'score', value: 2 } }, /^outcome\.type: /],
    ['predictionId', { predictionId: 'has space', outcome: { type: 'binary', value: 1 } }, /^predictionId: /],
    ['outcome', { predictionId: 'p-1' }, /^outcome: /],
  ])('answers 400 naming %s for a bad body, logging a warning', async (field, body, message) => {
    const result = await invokeApi(handler, outcomeEvent('churn', body));

    expect(result.response.statusCode).toBe(400);
    expect(result.body).toEqual({ error: 'BadRequest', message: expect.stringMatching(message) });
    expect(logEntries(result.lines, 'WARN')).toContainEqual(expect.objectContaining({ message: 'request rejected', status: 400, field }));
  });

  it('answers 400 naming body for malformed JSON or no body, and model without the path parameter', async () => {
    const malformed = await invokeApi(handler, outcomeEvent('churn', '{"predictionId":', { raw: true }));
    expect(malformed.response.statusCode).toBe(400);
    expect(malformed.body).toEqual({ error: 'BadRequest', message: 'body: must be valid JSON' });

    const empty = await invokeApi(handler, outcomeEvent('churn', undefined));
    expect(empty.response.statusCode).toBe(400);
    expect(empty.body.message).toMatch(/^body: is required/);

    const noModel = await invokeApi(handler, outcomeEvent(undefined, { predictionId: 'p', outcome: { type: 'binary', value: 1 } }));
    expect(noModel.response.statusCode).toBe(400);
    expect(noModel.body.message).toMatch(/^model: /);
  });

  it('answers a logged 500 (not a crash) when the table does not exist', async () => {
    await moto.reset(); // no table at all

    const { response, body, lines } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ error: 'InternalError', message: 'the outcome could not be recorded because of an internal error' });
    expect(logEntries(lines, 'ERROR')).toContainEqual(
      expect.objectContaining({ message: 'unexpected error while recording an outcome', error: expect.objectContaining({ name: 'ResourceNotFoundException' }) }),
    );
    expect(emfDocuments(lines)).toContainEqual(expect.objectContaining({ Model: 'churn', OutcomeErrors: 1 }));
  });

  it('answers a generic 500 for a malformed event instead of throwing', async () => {
    const { response } = await invokeApi(handler, null as unknown as APIGatewayProxyEvent);
    expect(response.statusCode).toBe(500);
  });

  it('records an outcome through the esbuild bundle too', async () => {
    const bundled = loadFreshHandler<ApiHandler>(HANDLER_BUNDLE);
    await logPrediction('p-7', 'churn', 'blue');

    const first = await invokeApi(bundled, outcomeEvent('churn', { predictionId: 'p-7', outcome: { type: 'binary', value: false } }));
    const repeat = await invokeApi(bundled, outcomeEvent('churn', { predictionId: 'p-7', outcome: { type: 'binary', value: 0 } }));
    const conflict = await invokeApi(bundled, outcomeEvent('churn', { predictionId: 'p-7', outcome: { type: 'binary', value: 1 } }));
    const unknown = await invokeApi(bundled, outcomeEvent('churn', { predictionId: 'p-8', outcome: { type: 'binary', value: 1 } }));

    expect([first, repeat, conflict, unknown].map((result) => result.response.statusCode)).toEqual([201, 200, 409, 404]);
    expect(first.body).toEqual({ predictionId: 'p-7', model: 'churn', variant: 'blue', outcome: { type: 'binary', value: 0 } });
    expect(emfDocuments(first.lines)).toHaveLength(1);
  });
});

/** Answers every DynamoDB call with the given status and JSON error type, the way DynamoDB does. */
async function startFakeDynamoDb(status: number, type: string): Promise<{ server: Server; endpoint: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'fake' });
      res.end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: 'fake failure' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('record-outcome handler when DynamoDB fails', () => {
  const servers: Server[] = [];

  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it.each([
    [400, 'ProvisionedThroughputExceededException', 429, 'Throttled'],
    [400, 'ThrottlingException', 429, 'Throttled'],
    [500, 'InternalServerError', 503, 'ServiceUnavailable'],
  ])('maps HTTP %i %s to %i %s', async (status, type, expectedStatus, code) => {
    const fake = await startFakeDynamoDb(status, type);
    servers.push(fake.server);
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: fake.endpoint });
    const handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body, lines } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(expectedStatus);
    expect(body).toEqual({ error: code, message: expect.stringMatching(/^the prediction log is /) });
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'prediction log unavailable', status: expectedStatus }));
  });

  it('answers 503 when DynamoDB cannot be reached', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: `http://127.0.0.1:${await freePort()}` });
    const handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(503);
    expect(body).toEqual({ error: 'ServiceUnavailable', message: 'the prediction log is temporarily unavailable; retry later' });
  });
});

describe('record-outcome handler configuration', () => {
  it('answers 500 naming PREDICTION_LOG_TABLE when it is not set', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9' });
    delete process.env.PREDICTION_LOG_TABLE;
    const handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(500);
    expect(body).toEqual({ error: 'ConfigurationError', message: 'PREDICTION_LOG_TABLE: is not set' });
  });

  it('answers 500 naming ROUTES_PARAMETER_PREFIX when it is invalid', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', ROUTES_PARAMETER_PREFIX: 'no-slashes' });
    const handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(500);
    expect(body.message).toMatch(/^ROUTES_PARAMETER_PREFIX: must start and end with '\/'/);
  });

  it('answers 503 RoutingUnavailable, writing nothing, when the routes cannot be read', async () => {
    setEnv({ AWS_ENDPOINT_URL_DYNAMODB: 'http://127.0.0.1:9', AWS_ENDPOINT_URL_SSM: `http://127.0.0.1:${await freePort()}` });
    const handler = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

    const { response, body, lines } = await invokeApi(handler, outcomeEvent('churn', { predictionId: 'p-1', outcome: { type: 'binary', value: 1 } }));

    expect(response.statusCode).toBe(503);
    expect(body).toEqual({ error: 'RoutingUnavailable', message: 'model: the route of "churn" could not be read; retry' });
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'model route unavailable', model: 'churn', status: 503 }));
  });
});
