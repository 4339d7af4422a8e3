// Ingestion of the RAG knowledge base: S3 events (documents put in or removed from the knowledge base's
// prefix, delivered by EventBridge) reach this function through an SQS queue with a dead-letter queue
// (SQS event source with ReportBatchItemFailures). Each event reconciles the index with what S3 holds now, so
// events that arrive late or twice do no harm:
//   object present   -> GetObject, parse (txt, md, html, json), chunk (sentence-aware), embed with
//                       Bedrock (batched where the model allows), bulk-index chunk `<documentId>:<n>`
//                       with its source metadata, then delete the document's chunks numbered >= the new
//                       count: a changed document replaces its chunks without a moment with none
//   object gone      -> delete every chunk of the document (delete by query on document_id)
//   malformed        -> the document's old chunks are removed (they no longer match it), the reason is
//                       logged with the key and counted (DocumentsRejected); handled: a retry cannot fix it
//   throttling, 5xx, network -> batch item failure: SQS redelivers, and after maxReceiveCount the event
//                       lands in the dead-letter queue; nothing is dropped
//
// Environment: OPENSEARCH_ENDPOINT, INDEX_NAME, EMBEDDING_MODEL_ID, EMBEDDING_DIMENSION, CHUNK_SIZE,
// CHUNK_OVERLAP, MAX_DOCUMENT_BYTES (lambda/shared/rag-config.ts); POWERTOOLS_METRICS_NAMESPACE;
// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL_BEDROCK_RUNTIME / AWS_REGION: read by the SDK itself.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { embedTexts } from '../genai-io/bedrock';
import { openSearchClient } from '../genai-io/opensearch';
import { chunkText } from '../shared/chunking';
import { documentId, MalformedDocumentError, parseDocument } from '../shared/documents';
import { VECTOR_FIELD } from '../shared/knn-index';
import { loadIngestionConfig, RagConfigError, type IngestionConfig } from '../shared/rag-config';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'document-ingestion';
const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const s3 = new S3Client({ forcePathStyle: process.env.AWS_ENDPOINT_URL_S3 !== undefined });
const bedrock = new BedrockRuntimeClient({});
const processor = new BatchProcessor(EventType.SQS);

let config: IngestionConfig | undefined;
function getConfig(): IngestionConfig {
  if (config === undefined) {
    try {
      config = loadIngestionConfig(process.env);
    } catch (error) {
      logger.error('invalid function configuration', { error: (error as Error).message });
      throw error instanceof RagConfigError ? error : new RagConfigError('configuration could not be loaded');
    }
  }
  return config;
}

interface ObjectRef {
  readonly bucket: string;
  readonly key: string;
}

/**
 * The objects an SQS message names: an S3 event delivered by EventBridge (`detail.bucket.name`,
 * `detail.object.key`, the key as it is) or an S3 event notification (`Records[].s3`, the key
 * URL-encoded with '+' for spaces). S3's test event names none.
 */
export function objectsOf(record: SQSRecord): ObjectRef[] {
  let body: {
    Event?: string;
    source?: string;
    detail?: { bucket?: { name?: string }; object?: { key?: string } };
    Records?: Array<{ s3?: { bucket?: { name?: string }; object?: { key?: string } } }>;
  };
  const malformed = (reason: string) => new MalformedDocumentError(`message ${record.messageId}`, reason);
  try {
    body = JSON.parse(record.body);
  } catch {
    throw malformed('the message is not an S3 event (not JSON)');
  }
  if (body.Event === 's3:TestEvent') return [];
  if (body.source === 'aws.s3') {
    const bucket = body.detail?.bucket?.name;
    const key = body.detail?.object?.key;
    if (typeof bucket !== 'string' || typeof key !== 'string') throw malformed('the S3 event has no bucket or key');
    return [{ bucket, key }];
  }
  if (!Array.isArray(body.Records)) throw malformed('the message is not an S3 event (no detail and no Records)');
  return body.Records.map((entry) => {
    const bucket = entry.s3?.bucket?.name;
    const key = entry.s3?.object?.key;
    if (typeof bucket !== 'string' || typeof key !== 'string') throw malformed('an S3 record has no bucket or key');
    return { bucket, key: decodeURIComponent(key.replace(/\+/g, ' ')) };
  });
}

async function readObject(ref: ObjectRef, maxBytes: number): Promise<{ content: string; etag?: string; contentType?: string } | 'missing' | { tooLarge: number }> {
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key }));
    if (response.ContentLength !== undefined && response.ContentLength > maxBytes) {
      // Close the stream unread: an oversized document is never downloaded.
      (response.Body as { destroy?: () => void } | undefined)?.destroy?.();
      return { tooLarge: response.ContentLength };
    }
    const content = (await response.Body?.transformToString('utf-8')) ?? '';
    return { content, etag: response.ETag?.replace(/"/g, ''), contentType: response.ContentType };
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'NoSuchKey' || name === 'NotFound') return 'missing';
    throw error;
  }
}

/** Deletes the document's chunks numbered `fromChunk` and above (all of them from 0). */
async function deleteChunks(cfg: IngestionConfig, docId: string, fromChunk: number): Promise<number> {
  const response = await openSearchClient(cfg.endpoint).deleteByQuery(
    cfg.indexName,
    { query: { bool: { filter: [{ term: { document_id: docId } }, { range: { chunk_index: { gte: fromChunk } } }] } } },
    { conflicts: 'proceed', refresh: true },
  );
  return Number(response.deleted ?? 0);
}

type Outcome = { kind: 'indexed'; chunks: number; removed: number } | { kind: 'deleted'; removed: number } | { kind: 'rejected'; reason: string; removed: number };

async function reconcile(cfg: IngestionConfig, ref: ObjectRef): Promise<Outcome> {
  const docId = documentId(ref.bucket, ref.key);
  const object = await readObject(ref, cfg.maxDocumentBytes);
  if (object === 'missing') return { kind: 'deleted', removed: await deleteChunks(cfg, docId, 0) };
  let chunks;
  let parsed;
  try {
    if ('tooLarge' in object) throw new MalformedDocumentError(ref.key, `too large: ${object.tooLarge} bytes; the limit is ${cfg.maxDocumentBytes}`);
    parsed = parseDocument(ref.key, object.content, cfg.maxDocumentBytes);
    chunks = chunkText(parsed.text, cfg.chunking).filter((chunk) => chunk.text.trim() !== '');
  } catch (error) {
    if (!(error instanceof MalformedDocumentError)) throw error;
    return { kind: 'rejected', reason: error.message, removed: await deleteChunks(cfg, docId, 0) };
  }
  const vectors = await embedTexts(bedrock, cfg.model, chunks.map((chunk) => chunk.text), cfg.dimension, 'document');
  const ingestedAt = new Date().toISOString();
  const body = chunks.flatMap((chunk, i) => [
    { index: { _index: cfg.indexName, _id: `${docId}:${i}` } },
    {
      [VECTOR_FIELD]: vectors[i],
      text: chunk.text,
      ...(parsed.title ? { title: parsed.title } : {}),
      document_id: docId,
      source_uri: `s3://${ref.bucket}/${ref.key}`,
      source_key: ref.key,
      chunk_index: i,
      chunk_start: chunk.start,
      chunk_end: chunk.end,
      content_type: parsed.format,
      ...(object.etag ? { etag: object.etag } : {}),
      ingested_at: ingestedAt,
    },
  ]);
  // No forced refresh: the index's 1 s refresh interval makes the chunks searchable without a refresh per document.
  const result = await openSearchClient(cfg.endpoint).bulk(body);
  if (result.errors) {
    const failed = (result.items ?? []).map((item) => Object.values(item)[0]).find((entry) => entry?.error !== undefined);
    throw new Error(`bulk indexing of ${ref.key} failed for some chunks (HTTP ${failed?.status}: ${failed?.error?.type} ${failed?.error?.reason})`);
  }
  // Only after the new chunks are in: a shorter new version leaves no stale tail behind.
  const removed = await deleteChunks(cfg, docId, chunks.length);
  return { kind: 'indexed', chunks: chunks.length, removed };
}

export async function handler(event: SQSEvent, context?: Context): Promise<SQSBatchResponse> {
  if (context !== undefined) logger.addContext(context);
  const cfg = getConfig();
  const counts = { indexed: 0, deleted: 0, rejected: 0, chunks: 0 };

  const recordHandler = async (record: SQSRecord): Promise<void> => {
    let refs: ObjectRef[];
    try {
      refs = objectsOf(record);
    } catch (error) {
      // Not an S3 event: nothing to ingest and nothing a retry would change.
      logger.error('message rejected', { messageId: record.messageId, reason: (error as Error).message });
      counts.rejected += 1;
      return;
    }
    for (const ref of refs) {
      let outcome: Outcome;
      try {
        outcome = await reconcile(cfg, ref);
      } catch (error) {
        // A batch item failure: SQS redelivers the event, and after maxReceiveCount it waits in the dead-letter queue.
        logger.error('document could not be ingested; the event will be retried', { bucket: ref.bucket, key: ref.key, error: (error as Error).message, name: (error as Error).name });
        throw error;
      }
      if (outcome.kind === 'rejected') {
        counts.rejected += 1;
        logger.error('document rejected', { bucket: ref.bucket, key: ref.key, reason: outcome.reason, chunksRemoved: outcome.removed });
      } else if (outcome.kind === 'deleted') {
        counts.deleted += 1;
        logger.info('document removed', { bucket: ref.bucket, key: ref.key, chunksRemoved: outcome.removed });
      } else {
        counts.indexed += 1;
        counts.chunks += outcome.chunks;
        logger.info('document indexed', { bucket: ref.bucket, key: ref.key, chunks: outcome.chunks, staleChunksRemoved: outcome.removed });
      }
    }
  };

  try {
    return await processPartialResponse(event, recordHandler, processor, { ...(context === undefined ? {} : { context }), throwOnFullBatchFailure: false });
  } finally {
    try {
      metrics.addMetric('DocumentsIndexed', MetricUnit.Count, counts.indexed);
      metrics.addMetric('DocumentsDeleted', MetricUnit.Count, counts.deleted);
      metrics.addMetric('DocumentsRejected', MetricUnit.Count, counts.rejected);
      metrics.addMetric('ChunksIndexed', MetricUnit.Count, counts.chunks);
      metrics.publishStoredMetrics();
    } catch {
      // Metrics must never fail the batch.
    }
  }
}
