// Speed layer of the Feature Store pattern: Kinesis Data Streams event source (with
// ReportBatchItemFailures) -> SageMaker Feature Store PutRecord. Thin by design: decoding, routing,
// validation and the rejected-record message live in lambda/shared/features.ts.
//
// Each Kinesis record is UTF-8 JSON `{ "featureGroup": "...", "record": { feature: value, ... } }`.
//   valid                          -> PutRecord (both stores), counted as RecordsIngested
//   invalid, or refused by Feature Store's ValidationError
//                                  -> SendMessage to the rejected-records queue (reason + original payload),
//                                     counted as RecordsRejected; handled, not a batch item failure
//   throttling / 5xx / network from PutRecord, or the rejected queue unreachable
//                                  -> batch item failure: Lambda retries the record (nothing is dropped)
//
// Environment:
//   FEATURE_GROUPS                 JSON array of FeatureGroupDefinition (lib/features/feature-definition.ts)
//   REJECTED_RECORDS_QUEUE_URL     SQS queue for records that fail validation
//   POWERTOOLS_METRICS_NAMESPACE   EMF namespace (MlPlatform/Features); POWERTOOLS_SERVICE_NAME names the service
//   AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME / AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS,
//   AWS_RETRY_MODE, AWS_REGION: read by the SDK itself
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { PutRecordCommand, SageMakerFeatureStoreRuntimeClient } from '@aws-sdk/client-sagemaker-featurestore-runtime';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context, KinesisStreamBatchResponse, KinesisStreamEvent, KinesisStreamRecord } from 'aws-lambda';
import {
  classifyFeatureStoreError,
  createLimiter,
  evaluateKinesisRecord,
  featureStoreRejection,
  ingestionConfigLoader,
  putRecordInput,
  rejectedMessageBody,
  shardIdOf,
  type RecordSource,
  type RejectedRecordMessage,
} from '../shared/features';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'feature-ingestion';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const featureStore = new SageMakerFeatureStoreRuntimeClient({});
const sqs = new SQSClient({});
const processor = new BatchProcessor(EventType.KinesisDataStreams);

/** PutRecord / SendMessage calls in flight at once per invocation (a Kinesis batch can hold 10 000 records). */
const MAX_IN_FLIGHT = 10;

/** FeatureGroup dimension for a record whose feature group could not be read or is unknown (bounded cardinality). */
const UNRESOLVED_GROUP = 'unresolved';

/**
 * FEATURE_GROUPS and REJECTED_RECORDS_QUEUE_URL, read on first use and kept for the life of the
 * environment. While they are unusable every invocation logs and throws: Lambda retries the batch.
 */
const getConfig = ingestionConfigLoader(process.env, (error) => logger.error('invalid function configuration', { error: error.message }));

type Counts = Map<string, { ingested: number; rejected: number }>;

function tally(counts: Counts, group: string, key: 'ingested' | 'rejected'): void {
  const entry = counts.get(group) ?? { ingested: 0, rejected: 0 };
  entry[key] += 1;
  counts.set(group, entry);
}

/** One EMF document per feature group touched by the batch. Never throws. */
function publishCounts(counts: Counts): void {
  for (const [group, { ingested, rejected }] of counts) {
    try {
      metrics.addDimension('FeatureGroup', group);
      metrics.addMetric('RecordsIngested', MetricUnit.Count, ingested);
      metrics.addMetric('RecordsRejected', MetricUnit.Count, rejected);
      metrics.publishStoredMetrics();
    } catch {
      // Metrics must never fail the batch.
    }
  }
}

export async function handler(event: KinesisStreamEvent, context?: Context): Promise<KinesisStreamBatchResponse> {
  if (context !== undefined) {
    logger.addContext(context);
  }
  const { groups, queueUrl } = getConfig();
  const counts: Counts = new Map();
  const limit = createLimiter(MAX_IN_FLIGHT);

  const reject = async (rejection: RejectedRecordMessage): Promise<void> => {
    const group = rejection.featureGroup !== undefined && groups.has(rejection.featureGroup) ? rejection.featureGroup : UNRESOLVED_GROUP;
    try {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: rejectedMessageBody(rejection),
          MessageAttributes: { featureGroup: { DataType: 'String', StringValue: group } },
        }),
      );
    } catch (error) {
      const failure = classifyFeatureStoreError(error);
      logger.error('could not send a rejected record to the queue; the record will be retried', { source: rejection.source, featureGroup: rejection.featureGroup, error: failure });
      // A batch item failure: Lambda retries the record rather than lose it.
      throw new Error(`rejected-records queue unavailable (${failure.name ?? failure.kind}): ${failure.message}`);
    }
    logger.warn('record rejected', { source: rejection.source, featureGroup: rejection.featureGroup, reason: rejection.reason });
    tally(counts, group, 'rejected');
  };

  const recordHandler = (record: KinesisStreamRecord): Promise<void> =>
    limit(async () => {
      const source: RecordSource = { kind: 'kinesis', sequenceNumber: record.kinesis.sequenceNumber, shardId: shardIdOf(record.eventID) };
      const evaluation = evaluateKinesisRecord(groups, record.kinesis.data, source);
      if (!evaluation.ok) {
        await reject(evaluation.rejection);
        return;
      }
      try {
        await featureStore.send(new PutRecordCommand(putRecordInput(evaluation)));
      } catch (error) {
        const failure = classifyFeatureStoreError(error);
        if (failure.kind === 'validation') {
          await reject(featureStoreRejection(evaluation, failure));
          return;
        }
        logger.error('PutRecord failed; the record will be retried', { source, featureGroup: evaluation.featureGroup, recordId: evaluation.recordId, error: failure });
        throw new Error(`PutRecord to ${evaluation.featureGroup} failed (${failure.name ?? failure.kind}): ${failure.message}`);
      }
      tally(counts, evaluation.featureGroup, 'ingested');
    });

  try {
    // Records run concurrently (bounded by the limiter): the online store keeps the record with the
    // latest event time, so the order of PutRecord calls does not change what is served.
    const response = await processPartialResponse(event, recordHandler, processor, {
      ...(context === undefined ? {} : { context }),
      // A batch whose every record failed is reported item by item, like any other.
      throwOnFullBatchFailure: false,
    });
    const summary = [...counts.values()].reduce((sum, entry) => ({ ingested: sum.ingested + entry.ingested, rejected: sum.rejected + entry.rejected }), { ingested: 0, rejected: 0 });
    logger.info('batch processed', { records: event.Records.length, ...summary, failed: response.batchItemFailures.length });
    return response;
  } finally {
    publishCounts(counts);
  }
}
