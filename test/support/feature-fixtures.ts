// Test fixtures of the Feature Store pattern, shared by the feature tests under test/lambda
// (get-features, ingest-features, ingest-features-batch and shared/features):
//
//   const CUSTOMERS = customersGroup('spend_30d', 'segment');   // customer_id, event_time, orders_30d, spend_30d, segment
//   const { handler, featureStore, sdk } = loadWithFeatureStoreMock<ApiHandler>(source);
//   featureStore.on(sdk.PutRecordCommand).rejects(awsError('ThrottlingException', 400, 'Rate exceeded'));
//   expect(input).toEqual(putRecordWire('customers', { customer_id: 'c-1', event_time: '2024-05-01T00:00:00Z' }));
//   const fake = await startFeatureStoreStandIn(() => WIRE_OK);   // for the esbuild bundles
//
// The test feature groups ('customers', 'accounts'), Feature Store's wire form of a record, AWS-style
// errors, loading a handler with its Feature Store runtime client mocked (moto has no Feature Store
// runtime) and a local HTTP stand-in for Feature Store live here; the records, events and expected
// values stay in the test files.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type * as FeatureStoreSdk from '@aws-sdk/client-sagemaker-featurestore-runtime';
import { mockClient, type AwsStub } from 'aws-sdk-client-mock';
import type { FeatureGroupDefinition, FeatureSpec, FeatureType } from '../../lib/features/feature-definition';

// ---------------------------------------------------------------------------------------------------
// Feature groups
// ---------------------------------------------------------------------------------------------------

/** Every feature a test's 'customers' group may have: name -> [type, description]. */
const CUSTOMER_FEATURES = {
  customer_id: ['string', 'Customer id'],
  event_time: ['string', 'When the values were true'],
  orders_30d: ['integral', 'Orders in the last 30 days'],
  lifetime_orders: ['integral', 'All orders ever'],
  spend_30d: ['fractional', 'Spend in the last 30 days'],
  segment: ['string', 'Marketing segment'],
  note: ['string', 'Free text'],
} as const satisfies Record<string, readonly [FeatureType, string]>;

/** Every feature a test's 'accounts' group may have: name -> [type, description]. */
const ACCOUNT_FEATURES = {
  account_id: ['integral', 'Account number'],
  ts: ['fractional', 'Epoch seconds'],
  balance: ['fractional', 'Balance'],
} as const satisfies Record<string, readonly [FeatureType, string]>;

export type CustomerFeature = Exclude<keyof typeof CUSTOMER_FEATURES, 'customer_id' | 'event_time' | 'orders_30d'>;
export type AccountFeature = Exclude<keyof typeof ACCOUNT_FEATURES, 'account_id' | 'ts'>;

function specs<T extends Record<string, readonly [FeatureType, string]>>(catalogue: T, names: ReadonlyArray<keyof T & string>): FeatureSpec[] {
  return names.map((name) => {
    const [type, description] = catalogue[name] as readonly [FeatureType, string];
    return { name, type, description };
  });
}

/**
 * The 'customers' group (owner growth): the record identifier `customer_id` (string), the event time
 * `event_time` (string) and `orders_30d` (integral), then `more`, in the order given.
 */
export function customersGroup(...more: CustomerFeature[]): FeatureGroupDefinition {
  return {
    name: 'customers',
    description: 'Customer activity features',
    owner: 'growth',
    recordIdentifier: 'customer_id',
    eventTime: 'event_time',
    features: specs(CUSTOMER_FEATURES, ['customer_id', 'event_time', 'orders_30d', ...more]),
  };
}

/** The 'accounts' group (owner risk): the record identifier `account_id` (integral), the event time `ts` (fractional), then `more`. */
export function accountsGroup(...more: AccountFeature[]): FeatureGroupDefinition {
  return {
    name: 'accounts',
    description: 'Account features',
    owner: 'risk',
    recordIdentifier: 'account_id',
    eventTime: 'ts',
    features: specs(ACCOUNT_FEATURES, ['account_id', 'ts', ...more]),
  };
}

// ---------------------------------------------------------------------------------------------------
// Wire form and errors
// ---------------------------------------------------------------------------------------------------

/** One feature value as Feature Store sends and takes it. */
export interface WireValue {
  readonly FeatureName: string;
  readonly ValueAsString: string;
}

/** Feature Store's wire form of a record: one `{ FeatureName, ValueAsString }` per entry of `values`, in order. */
export function wireRecord(values: Readonly<Record<string, string>>): WireValue[] {
  return Object.entries(values).map(([FeatureName, ValueAsString]) => ({ FeatureName, ValueAsString }));
}

/** The PutRecord input the handlers send for `values` (no TargetStores: both stores). */
export function putRecordWire(featureGroup: string, values: Readonly<Record<string, string>>): { FeatureGroupName: string; Record: WireValue[] } {
  return { FeatureGroupName: featureGroup, Record: wireRecord(values) };
}

/** An error shaped like the AWS SDK's service exceptions: name, $fault and $metadata.httpStatusCode. */
export function awsError(name: string, status: number, message: string): Error {
  return Object.assign(new Error(message), { name, $fault: status >= 500 ? 'server' : 'client', $metadata: { httpStatusCode: status } });
}

// ---------------------------------------------------------------------------------------------------
// The source handler with Feature Store mocked
// ---------------------------------------------------------------------------------------------------

export type FeatureStoreMock = AwsStub<FeatureStoreSdk.ServiceInputTypes, FeatureStoreSdk.ServiceOutputTypes, FeatureStoreSdk.SageMakerFeatureStoreRuntimeClientResolvedConfig>;

/**
 * Loads the handler module at `path` in its own module registry (jest.isolateModules) with that
 * registry's Feature Store runtime client mocked. Use `sdk`'s command classes with `featureStore`:
 * they are the ones the handler's client sends. Call it after `setEnv`.
 */
export function loadWithFeatureStoreMock<H>(path: string): { handler: H; featureStore: FeatureStoreMock; sdk: typeof FeatureStoreSdk } {
  let loaded: { handler: H; featureStore: FeatureStoreMock; sdk: typeof FeatureStoreSdk } | undefined;
  jest.isolateModules(() => {
    const sdk = require('@aws-sdk/client-sagemaker-featurestore-runtime') as typeof FeatureStoreSdk;
    const featureStore = mockClient(sdk.SageMakerFeatureStoreRuntimeClient);
    const { handler } = require(path) as { handler: H };
    loaded = { handler, featureStore, sdk };
  });
  if (loaded === undefined) throw new Error('could not load the handler');
  return loaded;
}

// ---------------------------------------------------------------------------------------------------
// Feature Store stand-in over HTTP (for the esbuild bundles, which carry their own SDK)
// ---------------------------------------------------------------------------------------------------

/** One request the stand-in received. */
export interface WireRequest {
  readonly method: string;
  readonly url: string;
  readonly body: string;
}

/** How the stand-in answers: a status, Feature Store's error type (x-amzn-errortype) for errors, and a JSON body. */
export interface WireAnswer {
  readonly status: number;
  readonly errorType?: string;
  readonly body: string;
}

/** 200 with an empty JSON object. */
export const WIRE_OK: WireAnswer = { status: 200, body: '{}' };

/** Feature Store throttling: 400 ThrottlingException 'Rate exceeded'. */
export const WIRE_THROTTLED: WireAnswer = { status: 400, errorType: 'ThrottlingException', body: JSON.stringify({ message: 'Rate exceeded' }) };

export interface FeatureStoreStandIn {
  /** `http://127.0.0.1:<port>`, for AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME. */
  readonly endpoint: string;
  /** Every request received, in order (clear it with `requests.length = 0`). */
  readonly requests: WireRequest[];
  close(): Promise<void>;
}

/** Starts a local HTTP server that records every request and answers it with `answer(request)`. */
export async function startFeatureStoreStandIn(answer: (request: WireRequest) => WireAnswer): Promise<FeatureStoreStandIn> {
  const requests: WireRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const request: WireRequest = { method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') };
      requests.push(request);
      const { status, errorType, body } = answer(request);
      res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-requestid': 'fake', ...(errorType === undefined ? {} : { 'x-amzn-errortype': errorType }) });
      res.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
