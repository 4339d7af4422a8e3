// Runs the batch-layer handler (lambda/ingest-features-batch) on chunk objects in moto's S3, with the
// rejected lines going to moto's SQS. Feature Store runtime is mocked with aws-sdk-client-mock (moto
// has no Feature Store runtime); the esbuild bundle's run uses a local HTTP stand-in for it.
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type * as FeatureStoreSdk from '@aws-sdk/client-sagemaker-featurestore-runtime';
import type { BatchIngestionResult } from '../../lambda/shared/features';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { awsError, customersGroup, loadWithFeatureStoreMock, putRecordWire, startFeatureStoreStandIn, WIRE_OK, type FeatureStoreMock, type FeatureStoreStandIn } from '../support/feature-fixtures';

type BatchHandler = (event: unknown) => Promise<BatchIngestionResult>;

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('ingest-features-batch');
const NAMESPACE = 'MlPlatform/Features';
const QUEUE = 'rejected-records';
const BUCKET = 'feature-backfill';

const CUSTOMERS = customersGroup('note');

const setEnv = useHandlerEnv(
  [...POWERTOOLS_METRICS_ENV_KEYS, 'FEATURE_GROUPS', 'REJECTED_RECORDS_QUEUE_URL', 'AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME'],
  { FEATURE_GROUPS: JSON.stringify([CUSTOMERS]), POWERTOOLS_METRICS_NAMESPACE: NAMESPACE, POWERTOOLS_SERVICE_NAME: 'feature-batch-test' },
);

const wire = (id: string, orders: string, note?: string) =>
  putRecordWire('customers', { customer_id: id, event_time: '2024-05-01T00:00:00Z', orders_30d: orders, ...(note === undefined ? {} : { note }) });

async function rejects(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the handler to throw');
}

describe('ingest-features-batch handler', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqs: SQSClient;
  let queueUrl: string;

  const put = async (key: string, body: string): Promise<void> => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  };
  const drainQueue = async (): Promise<Array<Record<string, unknown>>> => {
    const bodies: Array<Record<string, unknown>> = [];
    for (;;) {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
      if ((received.Messages ?? []).length === 0) return bodies;
      bodies.push(...(received.Messages ?? []).map((message) => JSON.parse(message.Body ?? '{}') as Record<string, unknown>));
    }
  };

  beforeAll(async () => {
    moto = await startMoto();
    setEnv({});
    s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    sqs = new SQSClient(sdkTestConfig(moto.endpoint));
  });

  afterAll(async () => {
    s3?.destroy();
    sqs?.destroy();
    await moto?.stop();
  });

  beforeEach(async () => {
    await moto.reset();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: QUEUE }))).QueueUrl as string;
  });

  const env = () => ({
    AWS_ENDPOINT_URL_SQS: moto.endpoint,
    AWS_ENDPOINT_URL_S3: moto.endpoint,
    REJECTED_RECORDS_QUEUE_URL: `${moto.endpoint}/123456789012/${QUEUE}`,
  });

  describe('source (swc), Feature Store mocked', () => {
    let handler: BatchHandler;
    let featureStore: FeatureStoreMock;
    let sdk: typeof FeatureStoreSdk;

    beforeAll(() => {
      setEnv(env());
      ({ handler, featureStore, sdk } = loadWithFeatureStoreMock<BatchHandler>(HANDLER_SOURCE));
    });

    afterAll(() => {
      featureStore?.restore();
    });

    beforeEach(() => {
      featureStore.reset();
      featureStore.on(sdk.PutRecordCommand).resolves({ $metadata: { httpStatusCode: 200 } });
    });

    it('ingests a CSV chunk (quotes, embedded commas and line breaks) and sends bad lines to the queue with their line numbers', async () => {
      const csv = [
        'customer_id,event_time,orders_30d,note',
        'c-1,2024-05-01T00:00:00Z,3,"likes ""red"", blue"',
        'c-2,2024-05-01T00:00:00Z,0,"two',
        'lines"',
        'c-3,2024-05-01T00:00:00Z,many,',
        'c-4,2024-05-01T00:00:00Z,1',
        'c-5,2024-05-01T00:00:00Z,7,',
        '',
      ].join('\r\n');
      await put('customers/2024-05-01/part-0000.csv', csv);

      const { result, lines } = await captureOutput(() => handler({ featureGroup: 'customers', bucket: BUCKET, key: 'customers/2024-05-01/part-0000.csv', format: 'csv' }));

      expect(result).toEqual({ featureGroup: 'customers', bucket: BUCKET, key: 'customers/2024-05-01/part-0000.csv', ingested: 3, rejected: 2, failed: 0 });
      expect(featureStore.commandCalls(sdk.PutRecordCommand).map((call) => call.args[0].input)).toEqual([
        wire('c-1', '3', 'likes "red", blue'),
        wire('c-2', '0', 'two\r\nlines'),
        wire('c-5', '7'),
      ]);
      const rejected = await drainQueue();
      const source = (line: number) => ({ kind: 's3', bucket: BUCKET, key: 'customers/2024-05-01/part-0000.csv', line });
      expect(rejected.sort((a, b) => (a.source as { line: number }).line - (b.source as { line: number }).line)).toEqual([
        {
          reason: 'record.orders_30d: must be a whole number (64-bit); got "many"',
          issues: [{ field: 'record.orders_30d', feature: 'orders_30d', message: 'must be a whole number (64-bit); got "many"' }],
          featureGroup: 'customers',
          source: source(5),
          payload: 'c-3,2024-05-01T00:00:00Z,many,',
        },
        {
          reason: 'line: line 6 has 3 fields; the header has 4',
          issues: [{ field: 'line', message: 'line 6 has 3 fields; the header has 4' }],
          featureGroup: 'customers',
          source: source(6),
          payload: 'c-4,2024-05-01T00:00:00Z,1',
        },
      ]);
      expect(emfDocuments(lines)).toEqual([
        expect.objectContaining({
          _aws: expect.objectContaining({ CloudWatchMetrics: [expect.objectContaining({ Namespace: NAMESPACE, Dimensions: [['service', 'FeatureGroup']] })] }),
          FeatureGroup: 'customers',
          RecordsIngested: 3,
          RecordsRejected: 2,
        }),
      ]);
      expect(logEntries(lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'chunk ingested', ingested: 3, rejected: 2, format: 'csv' }));
    });

    it('ingests a JSON Lines chunk and batches many rejections into SendMessageBatch calls (all of them arrive)', async () => {
      const good = Array.from({ length: 5 }, (_, i) => JSON.stringify({ customer_id: `c-${i}`, event_time: '2024-05-01T00:00:00Z', orders_30d: i }));
      const bad = Array.from({ length: 23 }, (_, i) => JSON.stringify({ customer_id: `bad-${i}`, event_time: 'soon' }));
      await put('chunks/part-1.jsonl', [...good, ...bad, 'not json'].join('\n'));

      const { result } = await captureOutput(() => handler({ featureGroup: 'customers', bucket: BUCKET, key: 'chunks/part-1.jsonl', format: 'jsonl' }));

      expect(result).toMatchObject({ ingested: 5, rejected: 24, failed: 0 });
      expect(featureStore.commandCalls(sdk.PutRecordCommand).map((call) => call.args[0].input)).toEqual(good.map((_, i) => wire(`c-${i}`, String(i))));
      const rejected = await drainQueue();
      expect(rejected).toHaveLength(24);
      expect(rejected.map((body) => (body.source as { line: number }).line).sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i + 6));
      expect(rejected.find((body) => (body.source as { line: number }).line === 29)).toMatchObject({ reason: 'line: line 29 is not valid JSON', payload: 'not json' });
    });

    it('keeps at most 10 PutRecord calls in flight', async () => {
      let active = 0;
      let peak = 0;
      featureStore.on(sdk.PutRecordCommand).callsFake(async () => {
        active += 1;
        peak = Math.max(peak, active);
        await new Promise((resolve) => setTimeout(resolve, 2));
        active -= 1;
        return {};
      });
      const rows = Array.from({ length: 60 }, (_, i) => `c-${i},2024-05-01T00:00:00Z,${i},`);
      await put('chunks/wide.csv', ['customer_id,event_time,orders_30d,note', ...rows].join('\n'));

      const { result } = await captureOutput(() => handler({ featureGroup: 'customers', bucket: BUCKET, key: 'chunks/wide.csv', format: 'csv' }));

      expect(result.ingested).toBe(60);
      expect(peak).toBe(10);
    });

    it("sends records Feature Store refuses (ValidationError) to the queue with Feature Store's message", async () => {
      featureStore.on(sdk.PutRecordCommand, wire('c-2', '2')).rejects(awsError('ValidationError', 400, 'EventTime is too old'));
      await put('chunks/v.csv', 'customer_id,event_time,orders_30d\nc-1,2024-05-01T00:00:00Z,1\nc-2,2024-05-01T00:00:00Z,2\n');

      const { result } = await captureOutput(() => handler({ featureGroup: 'customers', bucket: BUCKET, key: 'chunks/v.csv', format: 'csv' }));

      expect(result).toMatchObject({ ingested: 1, rejected: 1, failed: 0 });
      expect(await drainQueue()).toEqual([
        expect.objectContaining({ reason: 'featureStore: Feature Store refused the record: EventTime is too old', source: { kind: 's3', bucket: BUCKET, key: 'chunks/v.csv', line: 3 }, payload: 'c-2,2024-05-01T00:00:00Z,2' }),
      ]);
    });

    it('throws FeatureStoreRetriableError when a PutRecord is still throttled, sending no rejections (the chunk is retried whole)', async () => {
      featureStore.on(sdk.PutRecordCommand, wire('c-2', '2')).rejects(awsError('ThrottlingException', 400, 'Rate exceeded'));
      await put('chunks/t.csv', 'customer_id,event_time,orders_30d\nc-1,2024-05-01T00:00:00Z,1\nc-2,2024-05-01T00:00:00Z,2\nbad,,\n');

      const { result: error, lines } = await captureOutput(() => rejects(handler({ featureGroup: 'customers', bucket: BUCKET, key: 'chunks/t.csv', format: 'csv' })));

      expect(error.name).toBe('FeatureStoreRetriableError');
      expect(error.message).toMatch(/^PutRecord to customers failed \(ThrottlingException\): Rate exceeded; 1 ingested, 1 not written$/);
      expect(await drainQueue()).toEqual([]);
      expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'chunk failed; retry it', ingested: 1, failed: 1 }));
    });

    it('throws FeatureStoreError (not retriable) when the feature group does not exist', async () => {
      featureStore.on(sdk.PutRecordCommand).rejects(awsError('ResourceNotFound', 404, 'Resource customers not found'));
      await put('chunks/n.jsonl', JSON.stringify({ customer_id: 'c-1', event_time: '2024-05-01T00:00:00Z' }));

      const { result: error } = await captureOutput(() => rejects(handler({ featureGroup: 'customers', bucket: BUCKET, key: 'chunks/n.jsonl', format: 'jsonl' })));

      expect(error).toMatchObject({ name: 'FeatureStoreError', message: expect.stringMatching(/^PutRecord to customers failed \(ResourceNotFound\)/) });
    });

    it('throws RejectedQueueError when the rejected-records queue is gone', async () => {
      await moto.reset();
      await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
      await put('chunks/q.jsonl', '{"customer_id":"c-1"}');

      const { result: error } = await captureOutput(() => rejects(handler({ featureGroup: 'customers', bucket: BUCKET, key: 'chunks/q.jsonl', format: 'jsonl' })));

      expect(error).toMatchObject({ name: 'RejectedQueueError', message: expect.stringMatching(/^could not send 1 rejected records to the queue/) });
    });

    it.each([
      [{ bucket: BUCKET, key: 'k', format: 'csv' }, 'featureGroup', 'featureGroup: is required (a string)'],
      [{ featureGroup: 'customers', bucket: BUCKET, format: 'csv' }, 'key', 'key: is required (a string)'],
      [{ featureGroup: 'orders', bucket: BUCKET, key: 'k', format: 'csv' }, 'featureGroup', "featureGroup: unknown feature group 'orders'; this function serves: customers"],
      [{ featureGroup: 'customers', bucket: BUCKET, key: 'k', format: 'xlsx' }, 'format', 'format: must be one of csv, jsonl'],
      [{ featureGroup: 'customers', bucket: BUCKET, key: 'missing.csv', format: 'csv' }, 'key', `key: no object 'missing.csv' in bucket '${BUCKET}'`],
    ])('throws IngestionInputError naming the field for %j', async (input, field, message) => {
      const { result: error } = await captureOutput(() => rejects(handler(input)));

      expect(error).toMatchObject({ name: 'IngestionInputError', field, message });
      expect(featureStore.commandCalls(sdk.PutRecordCommand)).toHaveLength(0);
    });
  });

  describe('bundle (esbuild), Feature Store stand-in over HTTP', () => {
    let fake: FeatureStoreStandIn;
    /** The bodies of the PutRecord calls to the customers group. */
    const puts = (): string[] => fake.requests.filter((request) => request.method === 'PUT' && request.url === '/FeatureGroup/customers').map((request) => request.body);

    beforeAll(async () => {
      fake = await startFeatureStoreStandIn(() => WIRE_OK);
    });

    afterAll(async () => {
      await fake?.close();
    });

    it('ingests a CSV chunk from moto S3 and rejects its bad line to moto SQS', async () => {
      setEnv({ ...env(), AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME: fake.endpoint });
      const bundled = loadFreshHandler<BatchHandler>(HANDLER_BUNDLE);
      await put('bundle/part.csv', 'customer_id,event_time,orders_30d\nc-1,2024-05-01T00:00:00Z,1\nc-2,,2\n');

      const { result } = await captureOutput(() => bundled({ featureGroup: 'customers', bucket: BUCKET, key: 'bundle/part.csv', format: 'csv' }));

      expect(result).toEqual({ featureGroup: 'customers', bucket: BUCKET, key: 'bundle/part.csv', ingested: 1, rejected: 1, failed: 0 });
      expect(puts().map((body) => JSON.parse(body) as unknown)).toEqual([{ Record: wire('c-1', '1').Record }]);
      expect((await drainQueue()).map((body) => body.reason)).toEqual(['record.event_time: is the event time and is required']);
    });
  });
});
