// Runs the speed-layer handler (lambda/ingest-features) on Kinesis events. Feature Store runtime is
// mocked with aws-sdk-client-mock (moto has no Feature Store runtime); the rejected-records queue is
// moto's SQS. The esbuild bundle carries its own SDK, so its run uses a local HTTP stand-in for
// Feature Store that answers with the service's wire format.
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { CreateStreamCommand, DescribeStreamCommand, GetRecordsCommand, GetShardIteratorCommand, KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { CreateQueueCommand, DeleteQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type * as FeatureStoreSdk from '@aws-sdk/client-sagemaker-featurestore-runtime';
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { accountsGroup, awsError, customersGroup, loadWithFeatureStoreMock, putRecordWire, startFeatureStoreStandIn, WIRE_OK, WIRE_THROTTLED, type FeatureStoreMock, type FeatureStoreStandIn } from '../support/feature-fixtures';

type KinesisHandler = (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse>;

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('ingest-features');
const NAMESPACE = 'MlPlatform/Features';
const QUEUE = 'rejected-records';

const CUSTOMERS = customersGroup('spend_30d');
const ACCOUNTS = accountsGroup();

const setEnv = useHandlerEnv(
  [...POWERTOOLS_METRICS_ENV_KEYS, 'FEATURE_GROUPS', 'REJECTED_RECORDS_QUEUE_URL', 'AWS_ENDPOINT_URL_SQS', 'AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME'],
  { FEATURE_GROUPS: JSON.stringify([CUSTOMERS, ACCOUNTS]), POWERTOOLS_METRICS_NAMESPACE: NAMESPACE, POWERTOOLS_SERVICE_NAME: 'feature-ingestion-test' },
);

function kinesisEvent(payloads: ReadonlyArray<string | object>): KinesisStreamEvent {
  return {
    Records: payloads.map((payload, index) => {
      const sequenceNumber = `4954511524349098501828006771497314458218006259324420${String(index).padStart(4, '0')}`;
      return {
        kinesis: {
          kinesisSchemaVersion: '1.0',
          partitionKey: `pk-${index}`,
          sequenceNumber,
          data: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8').toString('base64'),
          approximateArrivalTimestamp: 1714557600.123,
        },
        eventSource: 'aws:kinesis',
        eventVersion: '1.0',
        eventID: `shardId-000000000002:${sequenceNumber}`,
        eventName: 'aws:kinesis:record',
        invokeIdentityArn: 'arn:aws:iam::123456789012:role/ingest',
        awsRegion: 'us-east-1',
        eventSourceARN: 'arn:aws:kinesis:us-east-1:123456789012:stream/features-customers',
      };
    }),
  };
}
const seq = (event: KinesisStreamEvent, index: number): string => event.Records[index]!.kinesis.sequenceNumber;

const customer = (id: string, orders: number) => ({ featureGroup: 'customers', record: { customer_id: id, event_time: '2024-05-01T10:00:00Z', orders_30d: orders, spend_30d: 12.5 } });
const customerWire = (id: string, orders: number) =>
  putRecordWire('customers', { customer_id: id, event_time: '2024-05-01T10:00:00Z', orders_30d: String(orders), spend_30d: '12.5' });

describe('ingest-features handler', () => {
  let moto: MotoServer;
  let sqs: SQSClient;
  let queueUrl: string;

  const drainQueue = async (): Promise<Array<{ body: Record<string, unknown>; attributes: Record<string, unknown> }>> => {
    const messages: Array<{ body: Record<string, unknown>; attributes: Record<string, unknown> }> = [];
    for (;;) {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }));
      if ((received.Messages ?? []).length === 0) return messages;
      for (const message of received.Messages ?? []) {
        messages.push({ body: JSON.parse(message.Body ?? '{}') as Record<string, unknown>, attributes: (message.MessageAttributes ?? {}) as Record<string, unknown> });
      }
    }
  };

  beforeAll(async () => {
    moto = await startMoto();
    setEnv({}); // no SDK warnings or machine credentials before the first client exists
    sqs = new SQSClient(sdkTestConfig(moto.endpoint));
    queueUrl = `${moto.endpoint}/123456789012/${QUEUE}`;
  });

  afterAll(async () => {
    sqs?.destroy();
    await moto?.stop();
  });

  beforeEach(async () => {
    await moto.reset();
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: QUEUE }))).QueueUrl as string;
  });

  describe('source (swc), Feature Store mocked', () => {
    let handler: KinesisHandler;
    let featureStore: FeatureStoreMock;
    let sdk: typeof FeatureStoreSdk;

    beforeAll(() => {
      setEnv({ AWS_ENDPOINT_URL_SQS: moto.endpoint, REJECTED_RECORDS_QUEUE_URL: `${moto.endpoint}/123456789012/${QUEUE}` });
      ({ handler, featureStore, sdk } = loadWithFeatureStoreMock<KinesisHandler>(HANDLER_SOURCE));
    });

    afterAll(() => {
      featureStore?.restore();
    });

    beforeEach(() => {
      featureStore.reset();
      featureStore.on(sdk.PutRecordCommand).resolves({ $metadata: { httpStatusCode: 200 } });
    });

    it('writes each valid record with one PutRecord (both stores), reports no failures and counts RecordsIngested per group', async () => {
      const event = kinesisEvent([customer('c-1', 3), customer('c-2', 0), { featureGroup: 'accounts', record: { account_id: 42, ts: 1714557600.5 } }]);

      const { result, lines } = await captureOutput(() => handler(event));

      expect(result).toEqual({ batchItemFailures: [] });
      const inputs = featureStore.commandCalls(sdk.PutRecordCommand).map((call) => call.args[0].input);
      expect(inputs).toHaveLength(3);
      expect(inputs).toEqual(
        expect.arrayContaining([
          customerWire('c-1', 3),
          customerWire('c-2', 0),
          { FeatureGroupName: 'accounts', Record: [{ FeatureName: 'account_id', ValueAsString: '42' }, { FeatureName: 'ts', ValueAsString: '1714557600.5' }] },
        ]),
      );
      expect(inputs.every((input) => !('TargetStores' in input))).toBe(true);
      expect(await drainQueue()).toEqual([]);
      const emf = emfDocuments(lines);
      expect(emf).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ FeatureGroup: 'customers', RecordsIngested: 2, RecordsRejected: 0 }),
          expect.objectContaining({ FeatureGroup: 'accounts', RecordsIngested: 1, RecordsRejected: 0 }),
        ]),
      );
      expect(emf[0]).toMatchObject({ _aws: { CloudWatchMetrics: [{ Namespace: NAMESPACE, Dimensions: [expect.arrayContaining(['FeatureGroup'])] }] } });
      expect(logEntries(lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'batch processed', records: 3, ingested: 3, rejected: 0, failed: 0 }));
    });

    it('sends invalid records to the rejected queue with the reason and the original payload, and ingests the rest', async () => {
      const badValues = '{"featureGroup":"customers","record":{"customer_id":"c-9","event_time":"yesterday","orders_30d":"many"}}';
      const event = kinesisEvent([customer('c-1', 1), badValues, 'not json at all', { featureGroup: 'orders', record: {} }]);

      const { result, lines } = await captureOutput(() => handler(event));

      expect(result).toEqual({ batchItemFailures: [] });
      expect(featureStore.commandCalls(sdk.PutRecordCommand).map((call) => call.args[0].input)).toEqual([customerWire('c-1', 1)]);
      const messages = await drainQueue();
      const bySequence = new Map(messages.map((message) => [(message.body.source as { sequenceNumber: string }).sequenceNumber, message]));
      expect(bySequence.get(seq(event, 1))).toEqual({
        body: {
          reason: expect.stringMatching(/^record\.event_time: must be an ISO-8601 timestamp .*; record\.orders_30d: must be a whole number/),
          issues: [
            { field: 'record.event_time', feature: 'event_time', message: expect.any(String) },
            { field: 'record.orders_30d', feature: 'orders_30d', message: 'must be a whole number (64-bit); got "many"' },
          ],
          featureGroup: 'customers',
          source: { kind: 'kinesis', sequenceNumber: seq(event, 1), shardId: 'shardId-000000000002' },
          payload: badValues,
        },
        attributes: { featureGroup: { DataType: 'String', StringValue: 'customers' } },
      });
      expect(bySequence.get(seq(event, 2))?.body).toMatchObject({ reason: 'payload: must be valid JSON', payload: 'not json at all' });
      expect(bySequence.get(seq(event, 3))?.body).toMatchObject({ reason: expect.stringMatching(/^featureGroup: unknown feature group 'orders'/), featureGroup: 'orders' });
      expect(bySequence.get(seq(event, 3))?.attributes).toEqual({ featureGroup: { DataType: 'String', StringValue: 'unresolved' } });
      expect(messages).toHaveLength(3);
      expect(emfDocuments(lines)).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ FeatureGroup: 'customers', RecordsIngested: 1, RecordsRejected: 1 }),
          expect.objectContaining({ FeatureGroup: 'unresolved', RecordsIngested: 0, RecordsRejected: 2 }),
        ]),
      );
      expect(logEntries(lines, 'WARN').filter((line) => line.message === 'record rejected')).toHaveLength(3);
    });

    it('reports a throttled PutRecord as a batch item failure and still ingests the others', async () => {
      featureStore.on(sdk.PutRecordCommand, customerWire('c-2', 2)).rejects(awsError('ThrottlingException', 400, 'Rate exceeded'));
      const event = kinesisEvent([customer('c-1', 1), customer('c-2', 2), customer('c-3', 3)]);

      const { result, lines } = await captureOutput(() => handler(event));

      expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: seq(event, 1) }] });
      expect(featureStore.commandCalls(sdk.PutRecordCommand).map((call) => call.args[0].input)).toEqual(
        expect.arrayContaining([customerWire('c-1', 1), customerWire('c-2', 2), customerWire('c-3', 3)]),
      );
      expect(await drainQueue()).toEqual([]);
      expect(emfDocuments(lines)).toEqual([expect.objectContaining({ FeatureGroup: 'customers', RecordsIngested: 2, RecordsRejected: 0 })]);
      expect(logEntries(lines, 'ERROR')).toContainEqual(
        expect.objectContaining({ message: 'PutRecord failed; the record will be retried', recordId: 'c-2', error: expect.objectContaining({ kind: 'throttled' }) }),
      );
    });

    it('retries (batch item failure) on a 5xx, and on every record when every PutRecord fails, without throwing', async () => {
      featureStore.on(sdk.PutRecordCommand).rejects(awsError('ServiceUnavailable', 503, 'try later'));
      const event = kinesisEvent([customer('c-1', 1), customer('c-2', 2)]);

      const { result } = await captureOutput(() => handler(event));

      expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: seq(event, 0) }, { itemIdentifier: seq(event, 1) }] });
    });

    it("treats Feature Store's ValidationError as a rejection with Feature Store's message", async () => {
      featureStore.on(sdk.PutRecordCommand, customerWire('c-2', 2)).rejects(awsError('ValidationError', 400, 'The event time is too far in the future'));
      const event = kinesisEvent([customer('c-1', 1), customer('c-2', 2)]);

      const { result } = await captureOutput(() => handler(event));

      expect(result).toEqual({ batchItemFailures: [] });
      const messages = await drainQueue();
      expect(messages.map((message) => message.body)).toEqual([
        {
          reason: 'featureStore: Feature Store refused the record: The event time is too far in the future',
          issues: [{ field: 'featureStore', message: 'Feature Store refused the record: The event time is too far in the future' }],
          featureGroup: 'customers',
          source: { kind: 'kinesis', sequenceNumber: seq(event, 1), shardId: 'shardId-000000000002' },
          payload: JSON.stringify(customer('c-2', 2)),
        },
      ]);
    });

    it('reports a rejected record as a batch item failure when the rejected queue cannot take it', async () => {
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl }));
      const event = kinesisEvent([customer('c-1', 1), 'garbage']);

      const { result, lines } = await captureOutput(() => handler(event));

      expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: seq(event, 1) }] });
      expect(featureStore.commandCalls(sdk.PutRecordCommand)).toHaveLength(1);
      expect(logEntries(lines, 'ERROR')).toContainEqual(
        expect.objectContaining({ message: 'could not send a rejected record to the queue; the record will be retried', source: expect.objectContaining({ sequenceNumber: seq(event, 1) }) }),
      );
    });
  });

  describe('configuration', () => {
    it('fails the whole invocation (so Lambda retries the batch) naming the variable', async () => {
      setEnv({ AWS_ENDPOINT_URL_SQS: moto.endpoint, FEATURE_GROUPS: '[{"name":"x"}]', REJECTED_RECORDS_QUEUE_URL: queueUrl });
      const handler = loadFreshHandler<KinesisHandler>(HANDLER_SOURCE);

      const outcome = await captureOutput(() => handler(kinesisEvent([customer('c-1', 1)])).catch((error: Error) => error));

      expect(outcome.result).toBeInstanceOf(Error);
      expect((outcome.result as Error).message).toMatch(/^FEATURE_GROUPS: \[0\]\.description: must be a string/);
      expect(logEntries(outcome.lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'invalid function configuration' }));

      setEnv({ AWS_ENDPOINT_URL_SQS: moto.endpoint });
      const noQueue = loadFreshHandler<KinesisHandler>(HANDLER_SOURCE);
      await expect(captureOutput(() => noQueue(kinesisEvent([customer('c-1', 1)])))).rejects.toThrow('REJECTED_RECORDS_QUEUE_URL: is not set');
    });
  });

  describe('bundle (esbuild), Feature Store stand-in over HTTP', () => {
    let fake: FeatureStoreStandIn;

    beforeAll(async () => {
      // PutRecord succeeds, except for the record whose id is 'throttle-me'.
      fake = await startFeatureStoreStandIn(({ body }) => (body.includes('throttle-me') ? WIRE_THROTTLED : WIRE_OK));
    });

    afterAll(async () => {
      await fake?.close();
    });

    it('ingests valid records, retries the throttled one and rejects the invalid one to moto SQS', async () => {
      setEnv({ AWS_ENDPOINT_URL_SQS: moto.endpoint, AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME: fake.endpoint, REJECTED_RECORDS_QUEUE_URL: queueUrl });
      const bundled = loadFreshHandler<KinesisHandler>(HANDLER_BUNDLE);
      const event = kinesisEvent([customer('c-1', 1), customer('throttle-me', 2), '{"featureGroup":"customers","record":{}}']);

      const { result, lines } = await captureOutput(() => bundled(event));

      expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: seq(event, 1) }] });
      const puts = fake.requests.filter((request) => request.method === 'PUT');
      expect(puts.map((request) => request.url).sort()).toEqual(['/FeatureGroup/customers', '/FeatureGroup/customers']);
      expect(puts.map((request) => JSON.parse(request.body) as unknown)).toEqual(expect.arrayContaining([{ Record: customerWire('c-1', 1).Record }]));
      const messages = await drainQueue();
      expect(messages.map((message) => message.body.reason)).toEqual(['record.customer_id: is the record identifier and is required; record.event_time: is the event time and is required']);
      expect(emfDocuments(lines)).toEqual([expect.objectContaining({ FeatureGroup: 'customers', RecordsIngested: 1, RecordsRejected: 1 })]);
    });

    it('ingests records producers put on a (moto) Kinesis stream, as the event-source mapping delivers them', async () => {
      setEnv({ AWS_ENDPOINT_URL_SQS: moto.endpoint, AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME: fake.endpoint, REJECTED_RECORDS_QUEUE_URL: queueUrl });
      // The Kinesis client speaks HTTP/2 by default (for SubscribeToShard); moto serves HTTP/1.1.
      const kinesis = new KinesisClient({ ...sdkTestConfig(moto.endpoint), requestHandler: new NodeHttpHandler() });
      const StreamName = `features-${Date.now()}`;
      await kinesis.send(new CreateStreamCommand({ StreamName, ShardCount: 1 }));
      for (const payload of [customer('c-7', 7), { featureGroup: 'customers', record: { customer_id: 'c-8', event_time: 'yesterday' } }]) {
        await kinesis.send(new PutRecordCommand({ StreamName, PartitionKey: 'customers', Data: Buffer.from(JSON.stringify(payload)) }));
      }
      const { StreamDescription } = await kinesis.send(new DescribeStreamCommand({ StreamName }));
      const shard = StreamDescription!.Shards![0];
      const { ShardIterator } = await kinesis.send(new GetShardIteratorCommand({ StreamName, ShardId: shard.ShardId!, ShardIteratorType: 'TRIM_HORIZON' }));
      const { Records } = await kinesis.send(new GetRecordsCommand({ ShardIterator }));
      expect(Records).toHaveLength(2);
      // What Lambda's event-source mapping hands the function for these stream records.
      const event: KinesisStreamEvent = {
        Records: Records!.map((record) => ({
          kinesis: {
            kinesisSchemaVersion: '1.0',
            partitionKey: record.PartitionKey!,
            sequenceNumber: record.SequenceNumber!,
            data: Buffer.from(record.Data!).toString('base64'),
            approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp ?? new Date()).getTime() / 1000,
          },
          eventSource: 'aws:kinesis',
          eventVersion: '1.0',
          eventID: `${shard.ShardId}:${record.SequenceNumber}`,
          eventName: 'aws:kinesis:record',
          invokeIdentityArn: 'arn:aws:iam::123456789012:role/ingest',
          awsRegion: 'us-east-1',
          eventSourceARN: StreamDescription!.StreamARN!,
        })),
      };
      fake.requests.length = 0;
      const bundled = loadFreshHandler<KinesisHandler>(HANDLER_BUNDLE);
      const { result } = await captureOutput(() => bundled(event));

      expect(result).toEqual({ batchItemFailures: [] });
      expect(fake.requests.filter((request) => request.method === 'PUT').map((request) => JSON.parse(request.body) as unknown)).toEqual([{ Record: customerWire('c-7', 7).Record }]);
      const messages = await drainQueue();
      expect(messages).toHaveLength(1);
      expect(messages[0].body).toMatchObject({
        reason: expect.stringContaining('record.event_time: must be an ISO-8601 timestamp'),
        source: { kind: 'kinesis', sequenceNumber: Records![1].SequenceNumber, shardId: shard.ShardId },
      });
    });
  });
});
