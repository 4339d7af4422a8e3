// Batch layer of the Feature Store pattern: called by a Step Functions Distributed Map once per chunk
// object (the map's ItemReader lists the objects under a prefix; MaxConcurrency bounds parallelism).
// Reads the chunk from S3, checks every line against the feature group definition, writes the valid
// records with PutRecord (at most 10 in flight) and sends the rejected lines to the rejected-records
// queue (SendMessageBatch). Parsing and validation live in lambda/shared/features.ts.
//
// Input:  { "featureGroup": "...", "bucket": "...", "key": "...", "format": "csv" | "jsonl" }
//         csv: RFC 4180 with a header row of feature names; jsonl: one JSON object per line.
// Output: { featureGroup, bucket, key, ingested, rejected, failed }   (failed is always 0 when it returns)
// Errors (the `error` Step Functions sees):
//   IngestionInputError         bad input (missing field, unknown feature group or format, no such object): do not retry
//   FeatureStoreRetriableError  PutRecord still throttled / unavailable after the SDK's retries: Retry the chunk
//                               (PutRecord of the same record is idempotent)
//   RejectedQueueError          the rejected-records queue refused messages: Retry the chunk
//   FeatureStoreError           any other PutRecord failure (missing feature group, access denied): fix and redrive
//   ConfigError                 FEATURE_GROUPS / REJECTED_RECORDS_QUEUE_URL unusable
// A retried chunk is processed again from the start, so its rejected lines can reach the queue twice.
//
// Environment:
//   FEATURE_GROUPS                 JSON array of FeatureGroupDefinition (lib/features/feature-definition.ts)
//   REJECTED_RECORDS_QUEUE_URL     SQS queue for records that fail validation
//   POWERTOOLS_METRICS_NAMESPACE   EMF namespace (MlPlatform/Features); POWERTOOLS_SERVICE_NAME names the service
//   AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_SQS / AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME / AWS_ENDPOINT_URL,
//   AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, AWS_REGION: read by the SDK itself
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { PutRecordCommand, SageMakerFeatureStoreRuntimeClient } from '@aws-sdk/client-sagemaker-featurestore-runtime';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { Context } from 'aws-lambda';
import {
  classifyFeatureStoreError,
  createLimiter,
  evaluateChunk,
  featureStoreRejection,
  ingestionConfigLoader,
  IngestionInputError,
  parseBatchIngestionInput,
  parseChunk,
  putRecordInput,
  rejectedMessageBody,
  sqsBatches,
  type BatchIngestionResult,
  type FeatureStoreFailure,
  type RejectedRecordMessage,
} from '../shared/features';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'feature-ingestion-batch';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const s3 = new S3Client({});
const featureStore = new SageMakerFeatureStoreRuntimeClient({});
const sqs = new SQSClient({});

/** PutRecord calls in flight at once. */
const MAX_IN_FLIGHT = 10;

/** A PutRecord that still failed with a retriable error (throttling, 5xx, network) after the SDK's own retries. */
export class FeatureStoreRetriableError extends Error {
  override readonly name = 'FeatureStoreRetriableError';
}

/** A PutRecord that failed for a reason retrying will not fix (missing feature group, access denied, ...). */
export class FeatureStoreError extends Error {
  override readonly name = 'FeatureStoreError';
}

/** The rejected-records queue refused or could not take the rejected lines. */
export class RejectedQueueError extends Error {
  override readonly name = 'RejectedQueueError';
}

/**
 * FEATURE_GROUPS and REJECTED_RECORDS_QUEUE_URL, read on first use and kept for the life of the
 * environment. While they are unusable every invocation logs and throws ConfigError.
 */
const getConfig = ingestionConfigLoader(process.env, (error) => logger.error('invalid function configuration', { error: error.message }));

async function readChunk(bucket: string, key: string): Promise<string> {
  try {
    const object = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (await object.Body?.transformToString('utf-8')) ?? '';
  } catch (error) {
    const name = (error as { name?: unknown } | null)?.name;
    if (name === 'NoSuchKey') {
      throw new IngestionInputError(`key: no object '${key}' in bucket '${bucket}'`, 'key');
    }
    if (name === 'NoSuchBucket') {
      throw new IngestionInputError(`bucket: no bucket '${bucket}'`, 'bucket');
    }
    throw error;
  }
}

async function sendRejected(queueUrl: string, rejections: readonly RejectedRecordMessage[]): Promise<void> {
  const bodies = rejections.map(rejectedMessageBody);
  for (const entries of sqsBatches(bodies)) {
    let pending = entries;
    // One more try for entries SQS reports as failed with a server-side (retriable) error.
    for (let attempt = 0; pending.length > 0; attempt += 1) {
      let failed: Array<{ Id?: string | undefined; Code?: string | undefined; Message?: string | undefined; SenderFault?: boolean | undefined }>;
      try {
        failed = (await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: pending }))).Failed ?? [];
      } catch (error) {
        const failure = classifyFeatureStoreError(error);
        throw new RejectedQueueError(`could not send ${pending.length} rejected records to the queue (${failure.name ?? failure.kind}): ${failure.message}`);
      }
      if (failed.length === 0) break;
      const retriable = failed.every((entry) => entry.SenderFault !== true);
      if (attempt >= 1 || !retriable) {
        const first = failed[0];
        throw new RejectedQueueError(`the queue refused ${failed.length} rejected records (${first?.Code ?? 'unknown'}): ${first?.Message ?? ''}`.trim());
      }
      const ids = new Set(failed.map((entry) => entry.Id));
      pending = pending.filter((entry) => ids.has(entry.Id));
    }
  }
}

export async function handler(event: unknown, context?: Context): Promise<BatchIngestionResult> {
  if (context !== undefined) {
    logger.addContext(context);
  }
  const { groups, queueUrl } = getConfig();
  let parsed: ReturnType<typeof parseBatchIngestionInput>;
  try {
    parsed = parseBatchIngestionInput(event, groups);
  } catch (error) {
    logger.error('bad batch input', { error: (error as Error).message, input: event });
    throw error;
  }
  const { input, definition } = parsed;
  const location = { featureGroup: input.featureGroup, bucket: input.bucket, key: input.key };
  const started = Date.now();

  const text = await readChunk(input.bucket, input.key);
  const evaluations = evaluateChunk(definition, parseChunk(input.format, text), input);
  const rejected: RejectedRecordMessage[] = evaluations.flatMap((evaluation) => (evaluation.ok ? [] : [evaluation.rejection]));

  let ingested = 0;
  let failed = 0;
  let retriable: FeatureStoreFailure | undefined;
  let fatal: FeatureStoreFailure | undefined;
  const limit = createLimiter(MAX_IN_FLIGHT);
  await Promise.all(
    evaluations.map((evaluation) =>
      !evaluation.ok
        ? undefined
        : limit(async () => {
            if (retriable !== undefined || fatal !== undefined) {
              // Stop writing once Feature Store pushes back; the chunk is retried as a whole.
              failed += 1;
              return;
            }
            try {
              await featureStore.send(new PutRecordCommand(putRecordInput(evaluation)));
              ingested += 1;
            } catch (error) {
              const failure = classifyFeatureStoreError(error);
              if (failure.kind === 'validation') {
                rejected.push(featureStoreRejection(evaluation, failure));
                return;
              }
              failed += 1;
              if (failure.retriable) retriable ??= failure;
              else fatal ??= failure;
              logger.error('PutRecord failed', { ...location, source: evaluation.source, recordId: evaluation.recordId, error: failure });
            }
          }),
    ),
  );

  const counts = { ingested, rejected: rejected.length, failed };
  if (fatal !== undefined) {
    logger.error('chunk failed', { ...location, ...counts });
    throw new FeatureStoreError(`PutRecord to ${input.featureGroup} failed (${fatal.name ?? fatal.kind}): ${fatal.message}; ${counts.ingested} ingested, ${counts.failed} not written`);
  }
  if (retriable !== undefined) {
    logger.error('chunk failed; retry it', { ...location, ...counts });
    throw new FeatureStoreRetriableError(
      `PutRecord to ${input.featureGroup} failed (${retriable.name ?? retriable.kind}): ${retriable.message}; ${counts.ingested} ingested, ${counts.failed} not written`,
    );
  }

  // Rejections are sent once the chunk is written, so a retried chunk does not send them twice.
  await sendRejected(queueUrl, rejected);
  for (const rejection of rejected.slice(0, 20)) {
    logger.warn('record rejected', { source: rejection.source, reason: rejection.reason });
  }

  try {
    metrics.addDimension('FeatureGroup', input.featureGroup);
    metrics.addMetric('RecordsIngested', MetricUnit.Count, ingested);
    metrics.addMetric('RecordsRejected', MetricUnit.Count, rejected.length);
    metrics.publishStoredMetrics();
  } catch {
    // Metrics must never fail the chunk.
  }
  const result: BatchIngestionResult = { ...location, ingested, rejected: rejected.length, failed: 0 };
  logger.info('chunk ingested', { ...result, format: input.format, durationMs: Date.now() - started });
  return result;
}
