// Runs the online lookup handler (lambda/get-features). Feature Store runtime is mocked with
// aws-sdk-client-mock (moto has no Feature Store runtime), asserting the exact GetRecord and
// BatchGetRecord requests; the esbuild bundle's run uses a local HTTP stand-in for Feature Store.
import type * as FeatureStoreSdk from '@aws-sdk/client-sagemaker-featurestore-runtime';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { apiGatewayEvent, emfDocuments, handlerModulePaths, invokeApi, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv, type ApiHandler } from '../support/handler-harness';
import { accountsGroup, awsError, customersGroup, loadWithFeatureStoreMock, startFeatureStoreStandIn, WIRE_OK, WIRE_THROTTLED, wireRecord, type FeatureStoreMock, type FeatureStoreStandIn } from '../support/feature-fixtures';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('get-features');
const NAMESPACE = 'MlPlatform/Features';

const CUSTOMERS = customersGroup('lifetime_orders', 'spend_30d', 'segment');
const ACCOUNTS = accountsGroup();

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'FEATURE_GROUPS', 'AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME'], {
  FEATURE_GROUPS: JSON.stringify([CUSTOMERS, ACCOUNTS]),
  POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
  POWERTOOLS_SERVICE_NAME: 'feature-serving-test',
});

function getEvent(featureGroup: string, recordId: string, features?: string): APIGatewayProxyEvent {
  const event = apiGatewayEvent({ httpMethod: 'GET', resource: '/features/{featureGroup}/{recordId}', pathParameters: { featureGroup, recordId } }, undefined);
  return features === undefined ? event : { ...event, queryStringParameters: { features } };
}

function batchEvent(featureGroup: string, body: unknown, options: { raw?: boolean } = {}): APIGatewayProxyEvent {
  return apiGatewayEvent({ httpMethod: 'POST', resource: '/features/{featureGroup}/batch', pathParameters: { featureGroup } }, body, options);
}

const storedCustomer = (id: string) =>
  wireRecord({ customer_id: id, event_time: '2024-05-01T10:00:00Z', orders_30d: '3', lifetime_orders: '9223372036854775807', spend_30d: '12.5', segment: '007' });
const typedCustomer = (id: string) => ({
  customer_id: id,
  event_time: '2024-05-01T10:00:00Z',
  orders_30d: 3,
  lifetime_orders: '9223372036854775807',
  spend_30d: 12.5,
  segment: '007',
});

describe('get-features handler, Feature Store mocked', () => {
  let handler: ApiHandler;
  let featureStore: FeatureStoreMock;
  let sdk: typeof FeatureStoreSdk;

  beforeAll(() => {
    setEnv({});
    ({ handler, featureStore, sdk } = loadWithFeatureStoreMock<ApiHandler>(HANDLER_SOURCE));
  });

  afterAll(() => {
    featureStore?.restore();
  });

  beforeEach(() => {
    featureStore.reset();
  });

  const inputs = (command: unknown) => featureStore.commandCalls(command as typeof sdk.GetRecordCommand).map((call) => call.args[0].input);

  describe('GET /features/{featureGroup}/{recordId}', () => {
    it('returns the typed features of the entity with one GetRecord', async () => {
      featureStore.on(sdk.GetRecordCommand).resolves({ Record: storedCustomer('c-1') });

      const { response, body, lines } = await invokeApi(handler, getEvent('customers', 'c-1'));

      expect(response.statusCode).toBe(200);
      expect(body).toEqual({ featureGroup: 'customers', recordId: 'c-1', features: typedCustomer('c-1') });
      expect(inputs(sdk.GetRecordCommand)).toEqual([{ FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-1' }]);
      expect(emfDocuments(lines)).toEqual([
        expect.objectContaining({
          _aws: expect.objectContaining({ CloudWatchMetrics: [expect.objectContaining({ Namespace: NAMESPACE })] }),
          FeatureGroup: 'customers',
          FeatureLookups: 1,
          LookupLatency: expect.any(Number),
        }),
      ]);
    });

    it('asks only for the features named in ?features=', async () => {
      featureStore.on(sdk.GetRecordCommand).resolves({ Record: [{ FeatureName: 'spend_30d', ValueAsString: '1' }] });

      const { response, body } = await invokeApi(handler, getEvent('customers', 'c-1', 'spend_30d,segment'));

      expect(response.statusCode).toBe(200);
      expect(body).toEqual({ featureGroup: 'customers', recordId: 'c-1', features: { spend_30d: 1 } });
      expect(inputs(sdk.GetRecordCommand)).toEqual([{ FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-1', FeatureNames: ['spend_30d', 'segment'] }]);
    });

    it('answers 404 naming the id and group when the entity has no features', async () => {
      featureStore.on(sdk.GetRecordCommand).resolves({});

      const { response, body, lines } = await invokeApi(handler, getEvent('customers', 'c-9'));

      expect(response.statusCode).toBe(404);
      expect(body).toEqual({ error: 'NotFound', message: "recordId: no features for 'c-9' in customers" });
      expect(emfDocuments(lines)).toEqual([expect.objectContaining({ FeatureLookups: 1, FeatureLookupMisses: 1 })]);
    });

    it('answers 404 listing the feature groups for an unknown group, without calling Feature Store', async () => {
      const { response, body } = await invokeApi(handler, getEvent('orders', 'o-1'));

      expect(response.statusCode).toBe(404);
      expect(body).toEqual({ error: 'NotFound', message: "featureGroup: unknown feature group 'orders'; feature groups: accounts, customers" });
      expect(featureStore.calls()).toHaveLength(0);
    });

    it.each([
      ['an unknown feature', getEvent('customers', 'c-1', 'segment,colour'), "features: unknown feature 'colour' in customers; features: customer_id, event_time, lifetime_orders, orders_30d, segment, spend_30d"],
      ['a non-numeric integral id', getEvent('accounts', 'abc'), "recordId: must be a whole number ('account_id' of accounts is integral); got 'abc'"],
      ['an empty id', getEvent('customers', ''), 'recordId: must be a non-empty string'],
    ])('answers 400 naming the field for %s', async (_, event, message) => {
      const { response, body } = await invokeApi(handler, event);

      expect(response.statusCode).toBe(400);
      expect(body).toEqual({ error: 'BadRequest', message });
      expect(featureStore.calls()).toHaveLength(0);
    });

    it.each([
      ['ThrottlingException', awsError('ThrottlingException', 400, 'Rate exceeded'), 429, 'Throttled'],
      ['ServiceUnavailable', awsError('ServiceUnavailable', 503, 'down'), 503, 'ServiceUnavailable'],
      ['TimeoutError', awsError('TimeoutError', 0, 'Request timed out'), 504, 'Timeout'],
      ['ResourceNotFound', awsError('ResourceNotFound', 404, 'no such group'), 502, 'FeatureGroupUnavailable'],
      ['AccessForbidden', awsError('AccessForbidden', 403, 'denied'), 502, 'FeatureStoreAccessDenied'],
    ])('maps %s to %i', async (_, error, status, code) => {
      featureStore.on(sdk.GetRecordCommand).rejects(error);

      const { response, body, lines } = await invokeApi(handler, getEvent('customers', 'c-1'));

      expect(response.statusCode).toBe(status);
      expect(body).toMatchObject({ error: code });
      expect(JSON.stringify(body)).not.toContain('Rate exceeded');
      expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'feature lookup failed', status, code }));
      expect(emfDocuments(lines)).toEqual([expect.objectContaining({ FeatureLookupErrors: 1 })]);
    });

    it('answers 405 for another method', async () => {
      const event = { ...getEvent('customers', 'c-1'), httpMethod: 'DELETE' };

      const { response, body } = await invokeApi(handler, event);

      expect(response.statusCode).toBe(405);
      expect(body).toEqual({ error: 'MethodNotAllowed', message: 'method: DELETE is not allowed here; use GET' });
    });
  });

  describe('POST /features/{featureGroup}/batch', () => {
    it('returns the found entities in order and lists the missing ones, with one BatchGetRecord', async () => {
      featureStore.on(sdk.BatchGetRecordCommand).resolves({
        Records: [
          { FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-3', Record: [{ FeatureName: 'segment', ValueAsString: 'gold' }] },
          { FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-1', Record: [{ FeatureName: 'segment', ValueAsString: 'blue' }] },
        ],
        Errors: [],
        UnprocessedIdentifiers: [],
      });

      const { response, body, lines } = await invokeApi(handler, batchEvent('customers', { ids: ['c-1', 'c-2', 'c-3', 'c-1'], features: ['segment'] }));

      expect(response.statusCode).toBe(200);
      expect(body).toEqual({
        featureGroup: 'customers',
        records: [
          { recordId: 'c-1', features: { segment: 'blue' } },
          { recordId: 'c-3', features: { segment: 'gold' } },
        ],
        missing: ['c-2'],
      });
      expect(inputs(sdk.BatchGetRecordCommand)).toEqual([
        { Identifiers: [{ FeatureGroupName: 'customers', RecordIdentifiersValueAsString: ['c-1', 'c-2', 'c-3'], FeatureNames: ['segment'] }] },
      ]);
      expect(emfDocuments(lines)).toEqual([expect.objectContaining({ FeatureGroup: 'customers', FeatureLookups: 3, FeatureLookupMisses: 1 })]);
    });

    it.each([
      ['no ids', { ids: [] }, 'ids: must hold at least one id'],
      ['101 ids', { ids: Array.from({ length: 101 }, (_, i) => `c-${i}`) }, 'ids: must hold at most 100 ids'],
      ['an unknown feature', { ids: ['c-1'], features: ['segment', 'colour'] }, "features: unknown feature 'colour' in customers; features: customer_id, event_time, lifetime_orders, orders_30d, segment, spend_30d"],
      ['an unknown field', { ids: ['c-1'], limit: 3 }, 'limit: unknown field'],
      ['an empty object', {}, 'ids: is required (an array of record ids)'],
    ])('answers 400 naming the field for %s', async (_, request, message) => {
      const { response, body } = await invokeApi(handler, batchEvent('customers', request));

      expect(response.statusCode).toBe(400);
      expect(body).toEqual({ error: 'BadRequest', message });
      expect(featureStore.calls()).toHaveLength(0);
    });

    it('answers 400 for a missing or malformed body', async () => {
      expect((await invokeApi(handler, batchEvent('customers', undefined))).body).toEqual({ error: 'BadRequest', message: 'body: is required (a JSON object with "ids")' });
      expect((await invokeApi(handler, batchEvent('customers', '{"ids":', { raw: true }))).body).toEqual({ error: 'BadRequest', message: 'body: must be valid JSON' });
      expect((await invokeApi(handler, batchEvent('accounts', { ids: ['1', 'x'] }))).body).toEqual({
        error: 'BadRequest',
        message: "ids[1]: must be a whole number ('account_id' of accounts is integral); got 'x'",
      });
    });

    it('answers 429 when Feature Store throttles an identifier, 503 when it keeps some unprocessed', async () => {
      featureStore.on(sdk.BatchGetRecordCommand).resolves({
        Records: [],
        Errors: [{ FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-1', ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }],
      });
      expect((await invokeApi(handler, batchEvent('customers', { ids: ['c-1'] }))).response.statusCode).toBe(429);

      featureStore.reset();
      featureStore.on(sdk.BatchGetRecordCommand).resolves({ Records: [], UnprocessedIdentifiers: [{ FeatureGroupName: 'customers', RecordIdentifiersValueAsString: ['c-1'] }] });
      const { response, body } = await invokeApi(handler, batchEvent('customers', { ids: ['c-1'] }));
      expect(response.statusCode).toBe(503);
      expect(body).toEqual({ error: 'ServiceUnavailable', message: 'Feature Store left 1 of the ids unprocessed; retry later' });
      expect(featureStore.commandCalls(sdk.BatchGetRecordCommand)).toHaveLength(3);
    });
  });

  describe('configuration', () => {
    it('answers 500 naming the variable when FEATURE_GROUPS is unusable', async () => {
      setEnv({ FEATURE_GROUPS: '[]' });
      const broken = loadFreshHandler<ApiHandler>(HANDLER_SOURCE);

      const { response, body, lines } = await invokeApi(broken, getEvent('customers', 'c-1'));

      expect(response.statusCode).toBe(500);
      expect(body).toEqual({ error: 'ConfigurationError', message: 'FEATURE_GROUPS: (root): must define at least one feature group' });
      expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'invalid function configuration' }));
    });
  });
});

describe('get-features bundle (esbuild), Feature Store stand-in over HTTP', () => {
  let fake: FeatureStoreStandIn;

  beforeAll(async () => {
    fake = await startFeatureStoreStandIn(({ method, url }) => {
      if (method === 'GET' && url.includes('RecordIdentifierValueAsString=c-1')) return { status: 200, body: JSON.stringify({ Record: storedCustomer('c-1') }) };
      if (method === 'GET') return WIRE_OK;
      if (url === '/BatchGetRecord') return WIRE_THROTTLED;
      return { status: 404, body: '{}' };
    });
  });

  afterAll(async () => {
    await fake?.close();
  });

  it('serves GetRecord over the wire, 404s a missing entity and maps wire throttling to 429', async () => {
    setEnv({ AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME: fake.endpoint });
    const bundled = loadFreshHandler<ApiHandler>(HANDLER_BUNDLE);

    const found = await invokeApi(bundled, getEvent('customers', 'c-1'));
    const missing = await invokeApi(bundled, getEvent('customers', 'c-2'));
    const throttled = await invokeApi(bundled, batchEvent('customers', { ids: ['c-1'] }));

    expect(found.response.statusCode).toBe(200);
    expect(found.body).toEqual({ featureGroup: 'customers', recordId: 'c-1', features: typedCustomer('c-1') });
    expect(fake.requests[0]).toMatchObject({ method: 'GET', url: '/FeatureGroup/customers?RecordIdentifierValueAsString=c-1' });
    expect(missing.response.statusCode).toBe(404);
    expect(throttled.response.statusCode).toBe(429);
  });
});
