import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { documentId } from '../../lambda/shared/documents';
import { captureOutput, emfDocuments, handlerModulePaths, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { invokeModelBody, loadWithBedrockMocks, ndjson, startFakeServer, type FakeServer, type LoadedWithBedrock, type RecordedRequest } from '../support/rag-fixtures';

type Handler = (event: SQSEvent, context?: Context) => Promise<SQSBatchResponse>;

const BUCKET = 'knowledge-base';
const setEnv = useHandlerEnv(
  [...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'OPENSEARCH_ENDPOINT', 'INDEX_NAME', 'EMBEDDING_MODEL_ID', 'EMBEDDING_DIMENSION', 'CHUNK_SIZE', 'CHUNK_OVERLAP', 'MAX_DOCUMENT_BYTES'],
  { POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Rag', POWERTOOLS_SERVICE_NAME: 'document-ingestion', INDEX_NAME: 'docs', EMBEDDING_DIMENSION: '256', CHUNK_SIZE: '120', CHUNK_OVERLAP: '30', MAX_DOCUMENT_BYTES: '5000' },
);

let moto: MotoServer;
let s3: S3Client;
let opensearch: FakeServer;
let loaded: LoadedWithBedrock<Handler>;
let bulkErrors = false;
const titanVector = Array.from({ length: 256 }, (_, i) => i / 1000);

function openSearchRoute(request: RecordedRequest) {
  if (request.method === 'POST' && request.path === '/_bulk') {
    const lines = ndjson(request.body);
    const items = lines.filter((_, i) => i % 2 === 0).map(() => (bulkErrors ? { index: { status: 429, error: { type: 'es_rejected_execution_exception', reason: 'queue full' } } } : { index: { status: 201 } }));
    return { status: 200, body: { took: 1, errors: bulkErrors, items } };
  }
  if (request.method === 'POST' && request.path === '/docs/_delete_by_query') return { status: 200, body: { deleted: 2 } };
  return { status: 400, body: { error: `unexpected ${request.method} ${request.path}` } };
}

function bridgeEvent(key: string, detailType = 'Object Created') {
  return JSON.stringify({ version: '0', source: 'aws.s3', 'detail-type': detailType, detail: { bucket: { name: BUCKET }, object: { key } } });
}

function sqsEvent(...bodies: string[]): SQSEvent {
  return {
    Records: bodies.map((body, i) => ({
      messageId: `m${i}`,
      receiptHandle: 'r',
      body,
      attributes: {} as never,
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:q',
      awsRegion: 'us-east-1',
    })),
  };
}

function load(modelId: string) {
  setEnv({ AWS_ENDPOINT_URL_S3: moto.endpoint, OPENSEARCH_ENDPOINT: opensearch.endpoint, EMBEDDING_MODEL_ID: modelId, EMBEDDING_DIMENSION: modelId.startsWith('cohere') ? '1024' : '256' });
  loaded = loadWithBedrockMocks<Handler>(handlerModulePaths('ingest-documents').source);
}

beforeAll(async () => {
  moto = await startMoto();
  opensearch = await startFakeServer(openSearchRoute);
  s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
});
afterAll(async () => {
  await opensearch.stop();
  await moto.stop();
});
beforeEach(() => {
  opensearch.requests.length = 0;
  bulkErrors = false;
  load('amazon.titan-embed-text-v2:0');
  loaded.runtime.on(loaded.runtimeSdk.InvokeModelCommand).resolves({ body: invokeModelBody({ embedding: titanVector }) } as never);
});

const text = 'Leave is accrued monthly. Employees get two days per month. Unused leave carries over once. Requests go to the line manager. Approval takes two days.';

test('chunks, embeds (one Titan call per chunk) and bulk-indexes a document with its source, then drops stale chunks', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/leave policy.txt', Body: text }));
  const { result, lines } = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/leave policy.txt'))));
  expect(result.batchItemFailures).toEqual([]);
  const docId = documentId(BUCKET, 'documents/leave policy.txt');
  const embedCalls = loaded.runtime.commandCalls(loaded.runtimeSdk.InvokeModelCommand);
  expect(embedCalls.length).toBeGreaterThan(1);
  expect(JSON.parse(String(embedCalls[0].args[0].input.body))).toEqual({ inputText: expect.stringMatching(/^Leave is accrued monthly\./), dimensions: 256, normalize: true });

  expect(opensearch.requests.map((request) => `${request.method} ${request.path}`)).toEqual(['POST /_bulk', 'POST /docs/_delete_by_query']);
  const [bulk, deleteStale] = opensearch.requests;
  expect(bulk.headers['content-type']).toMatch(/application\/x-ndjson/);
  expect(bulk.query).toBe('');
  expect(deleteStale.query).toMatch(/conflicts=proceed/);
  const bulkLines = ndjson(bulk.body) as Array<Record<string, any>>;
  expect(bulkLines).toHaveLength(embedCalls.length * 2);
  expect(bulkLines[0]).toEqual({ index: { _index: 'docs', _id: `${docId}:0` } });
  expect(bulkLines[1]).toMatchObject({
    embedding: titanVector,
    document_id: docId,
    source_uri: `s3://${BUCKET}/documents/leave policy.txt`,
    source_key: 'documents/leave policy.txt',
    chunk_index: 0,
    chunk_start: 0,
    content_type: 'text',
  });
  const chunksText = bulkLines.filter((_, i) => i % 2 === 1).map((doc) => doc.text as string);
  chunksText.forEach((chunk) => expect(chunk.length).toBeLessThanOrEqual(120));
  expect(JSON.parse(deleteStale.body)).toEqual({ query: { bool: { filter: [{ term: { document_id: docId } }, { range: { chunk_index: { gte: chunksText.length } } }] } } });
  expect(emfDocuments(lines)[0]).toMatchObject({ DocumentsIndexed: 1, ChunksIndexed: chunksText.length, DocumentsRejected: 0 });
});

test('Cohere embeds the chunks in one batched call as search documents', async () => {
  load('cohere.embed-english-v3');
  const vector = Array.from({ length: 1024 }, () => 0.5);
  loaded.runtime.on(loaded.runtimeSdk.InvokeModelCommand).callsFake((input: { body: string }) => {
    const { texts } = JSON.parse(input.body) as { texts: string[] };
    return { body: invokeModelBody({ embeddings: texts.map(() => vector) }) };
  });
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/leave.md', Body: `# Leave\n${text}` }));
  const { result } = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/leave.md'))));
  expect(result.batchItemFailures).toEqual([]);
  const calls = loaded.runtime.commandCalls(loaded.runtimeSdk.InvokeModelCommand);
  expect(calls).toHaveLength(1);
  const body = JSON.parse(String(calls[0].args[0].input.body));
  expect(body).toMatchObject({ input_type: 'search_document', truncate: 'END' });
  expect(body.texts.length).toBeGreaterThan(1);
  expect((ndjson(opensearch.requests[0].body)[1] as Record<string, unknown>).title).toBe('Leave');
});

test('a deleted document loses all its chunks', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/old.txt', Body: text }));
  await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'documents/old.txt' }));
  const { result } = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/old.txt', 'Object Deleted'))));
  expect(result.batchItemFailures).toEqual([]);
  expect(opensearch.requests.map((request) => request.path)).toEqual(['/docs/_delete_by_query']);
  expect(JSON.parse(opensearch.requests[0].body).query.bool.filter).toEqual([{ term: { document_id: documentId(BUCKET, 'documents/old.txt') } }, { range: { chunk_index: { gte: 0 } } }]);
  expect(loaded.runtime.calls()).toHaveLength(0);
});

test('a malformed document is rejected with its key and reason, its old chunks removed, and not retried', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/broken.json', Body: '{"title": ' }));
  const { result, lines } = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/broken.json'))));
  expect(result.batchItemFailures).toEqual([]);
  expect(logEntries(lines, 'ERROR')).toEqual([expect.objectContaining({ message: 'document rejected', key: 'documents/broken.json', reason: expect.stringMatching(/^documents\/broken\.json: not valid JSON/) })]);
  expect(opensearch.requests.map((request) => request.path)).toEqual(['/docs/_delete_by_query']);
  expect(emfDocuments(lines)[0]).toMatchObject({ DocumentsRejected: 1 });
});

test('a document over the size limit is rejected without being read into the index', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/huge.txt', Body: 'x '.repeat(4000) }));
  const { lines } = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/huge.txt'))));
  expect(logEntries(lines, 'ERROR')[0]).toMatchObject({ reason: 'documents/huge.txt: too large: 8000 bytes; the limit is 5000' });
  expect(loaded.runtime.calls()).toHaveLength(0);
});

test('throttling by Bedrock and bulk rejections fail only that message, for SQS to redeliver', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/a.txt', Body: 'Short one.' }));
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/b.txt', Body: 'Another short one.' }));
  // Messages are processed concurrently: throttle by content, not by call order.
  loaded.runtime.on(loaded.runtimeSdk.InvokeModelCommand).callsFake((input: { body: string }) => {
    if (JSON.parse(input.body).inputText === 'Short one.') throw Object.assign(new Error('slow down'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 429 } });
    return { body: invokeModelBody({ embedding: titanVector }) };
  });
  const first = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/a.txt'), bridgeEvent('documents/b.txt'))));
  expect(first.result.batchItemFailures).toEqual([{ itemIdentifier: 'm0' }]);
  // The second document went through: its chunk was indexed.
  expect(opensearch.requests.map((request) => request.path)).toEqual(['/_bulk', '/docs/_delete_by_query']);
  expect((ndjson(opensearch.requests[0].body)[1] as Record<string, unknown>).source_key).toBe('documents/b.txt');
  bulkErrors = true;
  const second = await captureOutput(() => loaded.handler(sqsEvent(bridgeEvent('documents/a.txt'))));
  expect(second.result.batchItemFailures).toEqual([{ itemIdentifier: 'm0' }]);
});

test('reads S3 event notifications too, with URL-encoded keys, and ignores the S3 test event', async () => {
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'documents/q&a page.html', Body: '<h1>FAQ</h1><p>Ask HR.</p>' }));
  const notification = JSON.stringify({ Records: [{ s3: { bucket: { name: BUCKET }, object: { key: 'documents/q%26a+page.html' } } }] });
  const { result } = await captureOutput(() => loaded.handler(sqsEvent(notification, JSON.stringify({ Event: 's3:TestEvent' }))));
  expect(result.batchItemFailures).toEqual([]);
  expect((ndjson(opensearch.requests[0].body)[1] as Record<string, unknown>).source_key).toBe('documents/q&a page.html');
});
