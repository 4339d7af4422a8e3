// The precomputed-predictions loader as it ships (the esbuild bundle, assets/lambda/load-precomputed) on
// batch transform output in moto's S3, writing into moto's DynamoDB. Unprocessed items and throttling are
// DynamoDB's answers under load, which moto never gives: a small proxy in front of moto's DynamoDB gives
// them on the wire, so the bundle's retries are what is tested.
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient, ScanCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type { LoadResult } from '../../lambda/load-precomputed';
import { precomputedKey } from '../../lambda/shared/precomputed';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';

type LoadHandler = (event: unknown, context?: Context) => Promise<LoadResult>;

const { bundle: HANDLER_BUNDLE } = handlerModulePaths('load-precomputed');
const BUCKET = 'ml-artifacts';
const TABLE = 'inference-state';
const PREFIX = 'churn/batch-output/run-1/';
const COMPUTED_AT = '2026-11-26T02:00:00.000Z';
const EVENT = {
  tableName: TABLE,
  model: 'churn',
  modelVersion: '7',
  featureGroup: 'customers',
  outputPrefix: `s3://${BUCKET}/${PREFIX}`,
  recordIdField: 'customer_id',
  ttlSeconds: 86_400,
  computedAt: COMPUTED_AT,
};

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_DYNAMODB'], {
  POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Inference',
  POWERTOOLS_SERVICE_NAME: 'precomputed-test',
});

/** One joined JSON Lines record of the transform's output. */
const joined = (id: string | number, score: number) => JSON.stringify({ customer_id: id, tenure: 3, SageMakerOutput: { score } });

/** What the proxy does to BatchWriteItem calls before moto sees them. */
interface Interference {
  /** Calls in which to leave the second half of the items unprocessed. */
  unprocessCalls: number;
  /** Calls to answer with ProvisionedThroughputExceededException. */
  throttleCalls: number;
}

/** A proxy in front of moto's DynamoDB that can leave items unprocessed or throttle, as DynamoDB does. */
async function startDynamoDbProxy(target: string, interference: Interference): Promise<{ endpoint: string; batchWrites: number[]; close: () => Promise<void> }> {
  const upstream = new URL(target);
  const batchWrites: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      let unprocessed: { table: string; items: unknown[] } | undefined;
      if (req.headers['x-amz-target'] === 'DynamoDB_20120810.BatchWriteItem') {
        const input = JSON.parse(body.toString('utf8')) as { RequestItems: Record<string, unknown[]> };
        const [table, items] = Object.entries(input.RequestItems)[0]!;
        batchWrites.push(items.length);
        if (interference.throttleCalls > 0) {
          interference.throttleCalls -= 1;
          res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'The level of configured provisioned throughput for the table was exceeded.' }));
          return;
        }
        if (interference.unprocessCalls > 0 && items.length > 1) {
          interference.unprocessCalls -= 1;
          const half = Math.ceil(items.length / 2);
          unprocessed = { table, items: items.slice(half) };
          body = Buffer.from(JSON.stringify({ ...input, RequestItems: { [table]: items.slice(0, half) } }), 'utf8');
        }
      }
      const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) };
      const forward = httpRequest({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (chunk: Buffer) => parts.push(chunk));
        answer.on('end', () => {
          let payload = Buffer.concat(parts);
          if (unprocessed !== undefined && answer.statusCode === 200) {
            const output = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
            payload = Buffer.from(JSON.stringify({ ...output, UnprocessedItems: { [unprocessed.table]: unprocessed.items } }), 'utf8');
          }
          const { 'content-length': _length, 'x-amz-crc32': _crc, ...rest } = answer.headers;
          res.writeHead(answer.statusCode ?? 500, { ...rest, 'content-length': String(payload.length) });
          res.end(payload);
        });
      });
      forward.on('error', (error) => {
        res.writeHead(502);
        res.end(String(error));
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    batchWrites,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A Lambda context whose clock runs out after `checks` looks at it: the loader then stops at its next batch boundary. */
const contextRunningOutAfter = (checks: number): Context => {
  let looked = 0;
  return { getRemainingTimeInMillis: () => (looked++ < checks ? 900_000 : 1_000) } as unknown as Context;
};

async function rejects(promise: Promise<unknown>): Promise<Error & { field?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the handler to throw');
}

describe('load-precomputed bundle against moto S3 and DynamoDB', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let dynamodb: DynamoDBClient;
  let handler: LoadHandler;
  let proxy: Awaited<ReturnType<typeof startDynamoDbProxy>>;
  const interference: Interference = { unprocessCalls: 0, throttleCalls: 0 };

  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const items = async () => {
    const found: Array<Record<string, unknown>> = [];
    let start: Record<string, any> | undefined;
    do {
      const page = await dynamodb.send(new ScanCommand({ TableName: TABLE, ...(start ? { ExclusiveStartKey: start } : {}) }));
      found.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return found;
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startDynamoDbProxy(moto.endpoint, interference);
    s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
    setEnv({ AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ENDPOINT_URL_DYNAMODB: proxy.endpoint });
    handler = loadFreshHandler<LoadHandler>(HANDLER_BUNDLE);
  }, 30_000);

  afterAll(async () => {
    s3?.destroy();
    dynamodb?.destroy();
    await proxy?.close();
    await moto?.stop();
  });

  beforeEach(async () => {
    Object.assign(interference, { unprocessCalls: 0, throttleCalls: 0 });
    proxy.batchWrites.length = 0;
    await moto.reset();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await dynamodb.send(
      new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }] }),
    );
  });

  it('loads every .out object under the prefix, 25 items a call, one item per record id with the answer, version, computedAt and ttl', async () => {
    const first = Array.from({ length: 60 }, (_, i) => joined(`c-${i}`, i / 100));
    await put(`${PREFIX}part-0000.jsonl.out`, `${first.join('\n')}\n`);
    await put(`${PREFIX}part-0001.jsonl.out`, [joined(7001, 0.5), joined('c#2', 0.25)].join('\r\n'));
    await put(`${PREFIX}_manifest.json`, '{"not":"output"}');
    await put('churn/batch-output/run-10/part-0000.jsonl.out', joined('other-run', 1));

    const { result, lines } = await captureOutput(() => handler(EVENT));

    expect(result).toEqual({ loaded: 62, invalid: 0, objects: 2, invalidLines: [], done: true, continuation: null });
    expect(proxy.batchWrites).toEqual([25, 25, 10, 2]);
    const stored = await items();
    expect(stored).toHaveLength(62);
    const computedAt = Date.parse(COMPUTED_AT);
    expect(stored.find((item) => (item.pk as { S: string }).S === precomputedKey('churn', 'customers', 'c-7'))).toEqual({
      pk: { S: 'pre#churn#customers#c-7' },
      body: { S: '{"score":0.07}' },
      contentType: { S: 'application/json' },
      modelVersion: { S: '7' },
      computedAt: { N: String(computedAt) },
      ttl: { N: String(computedAt / 1000 + 86_400) },
    });
    expect(stored.map((item) => (item.pk as { S: string }).S)).toEqual(expect.arrayContaining(['pre#churn#customers#7001', 'pre#churn#customers#c%232']));
    expect(emfDocuments(lines)).toEqual([expect.objectContaining({ Model: 'churn', PrecomputedPredictionsLoaded: 62, PrecomputedPredictionsInvalid: 0 })]);
    expect(logEntries(lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'precomputed predictions loaded', loaded: 62, objects: 2 }));
  });

  it('counts invalid lines and reports the first ten with their object and line number, writing the valid ones', async () => {
    const body = [
      joined('c-1', 0.1),
      'not json',
      JSON.stringify({ customer_id: 'c-2' }),
      JSON.stringify({ tenure: 1, SageMakerOutput: 1 }),
      '',
      JSON.stringify({ customer_id: 1.5, SageMakerOutput: 1 }),
      joined('c-3', 0.3),
      ...Array.from({ length: 12 }, () => '[1]'),
    ].join('\n');
    await put(`${PREFIX}part.out`, body);

    const { result, lines } = await captureOutput(() => handler(EVENT));

    expect(result).toMatchObject({ loaded: 2, invalid: 16, objects: 1, done: true });
    const object = `${PREFIX}part.out`;
    expect(result.invalidLines.slice(0, 5)).toEqual([
      { object, line: 2, reason: 'is not valid JSON' },
      { object, line: 3, reason: 'has no SageMakerOutput (the transform must join its input: JoinSource Input, JSON Lines)' },
      { object, line: 4, reason: 'has no record id at customer_id' },
      { object, line: 6, reason: 'record id at customer_id must be a non-empty string or a whole number up to 2^53; got number 1.5' },
      { object, line: 8, reason: 'is not a JSON object (got an array)' },
    ]);
    expect(result.invalidLines).toHaveLength(10);
    expect((await items()).map((item) => (item.pk as { S: string }).S).sort()).toEqual(['pre#churn#customers#c-1', 'pre#churn#customers#c-3']);
    expect(logEntries(lines, 'WARN')).toHaveLength(10);
    expect(emfDocuments(lines)).toEqual([expect.objectContaining({ PrecomputedPredictionsLoaded: 2, PrecomputedPredictionsInvalid: 16 })]);
  });

  it('retries the items DynamoDB leaves unprocessed until all are written', async () => {
    interference.unprocessCalls = 3;
    await put(`${PREFIX}part.out`, Array.from({ length: 30 }, (_, i) => joined(`c-${i}`, 0.5)).join('\n'));

    const { result } = await captureOutput(() => handler(EVENT));

    expect(result).toMatchObject({ loaded: 30, invalid: 0, done: true });
    expect(await items()).toHaveLength(30);
    // 25 and 5 sent; each time half is left unprocessed and sent again.
    expect(proxy.batchWrites.reduce((sum, count) => sum + count, 0)).toBeGreaterThan(30);
    expect(proxy.batchWrites.filter((count) => count === 25)).toHaveLength(1);
  });

  it('throws PrecomputedWriteRetriableError when DynamoDB keeps throttling (the workflow retries the call)', async () => {
    interference.throttleCalls = 100;
    await put(`${PREFIX}part.out`, joined('c-1', 0.5));

    const { result: error, lines } = await captureOutput(() => rejects(handler(EVENT)));

    expect(error.name).toBe('PrecomputedWriteRetriableError');
    expect(error.message).toMatch(/^BatchWriteItem to inference-state failed \(ProvisionedThroughputExceededException\)/);
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'load failed', errorName: 'PrecomputedWriteRetriableError' }));
  });

  it('throws PrecomputedWriteError when the table does not exist', async () => {
    await put(`${PREFIX}part.out`, joined('c-1', 0.5));
    const { result: error } = await captureOutput(() => rejects(handler({ ...EVENT, tableName: 'gone' })));
    expect(error).toMatchObject({ name: 'PrecomputedWriteError', message: expect.stringMatching(/^BatchWriteItem to gone failed \(ResourceNotFoundException\)/) });
  });

  it('stops before the deadline and goes on from its continuation, inside an object and across objects, writing each line once', async () => {
    await put(`${PREFIX}a.out`, Array.from({ length: 70 }, (_, i) => joined(`a-${i}`, 0.1)).join('\n'));
    await put(`${PREFIX}b.out`, ['bad', ...Array.from({ length: 40 }, (_, i) => joined(`b-${i}`, 0.2))].join('\n'));

    const results: LoadResult[] = [];
    let continuation: string | null | undefined;
    await captureOutput(async () => {
      do {
        const result = await handler({ ...EVENT, continuation }, contextRunningOutAfter(1));
        results.push(result);
        continuation = result.continuation;
      } while (continuation !== null && results.length < 20);
    });

    expect(results.length).toBeGreaterThan(2);
    expect(results.slice(0, -1).every((result) => !result.done && typeof result.continuation === 'string')).toBe(true);
    expect(results.at(-1)).toEqual({ loaded: 110, invalid: 1, objects: 2, invalidLines: [{ object: `${PREFIX}b.out`, line: 1, reason: 'is not valid JSON' }], done: true, continuation: null });
    // Counts only grow, and every line was sent once: no line skipped or written twice at a boundary.
    const loaded = results.map((result) => result.loaded);
    expect([...loaded].sort((a, b) => a - b)).toEqual(loaded);
    expect(proxy.batchWrites.reduce((sum, count) => sum + count, 0)).toBe(110);
    expect(await items()).toHaveLength(110);
  });

  it('takes computedAt from the object when the input gives none', async () => {
    await put(`${PREFIX}part.out`, joined('c-1', 0.5));
    const before = Date.now() - 5_000;
    const { computedAt: _computedAt, ...event } = EVENT;

    await captureOutput(() => handler(event));

    const [item] = await items();
    expect(Number((item!.computedAt as { N: string }).N)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(Number((item!.computedAt as { N: string }).N)).toBeLessThanOrEqual(Date.now());
  });

  it.each([
    [{ ...EVENT, outputPrefix: `s3://${BUCKET}/churn/batch-output/none/` }, 'outputPrefix', `outputPrefix: no transform output (.out objects) under s3://${BUCKET}/churn/batch-output/none/`],
    [{ ...EVENT, outputPrefix: 's3://no-such-bucket/churn/batch-output/run-1/' }, 'outputPrefix', "outputPrefix: no bucket 'no-such-bucket'"],
    [{ ...EVENT, recordIdField: '' }, 'recordIdField', 'recordIdField: must be a non-empty string'],
    [{ ...EVENT, continuation: 'bogus' }, 'continuation', 'continuation: is not a continuation this function returned'],
  ])('throws PrecomputedInputError naming the field for %j', async (event, field, message) => {
    await put(`${PREFIX}_manifest.json`, '{}');
    const { result: error } = await captureOutput(() => rejects(handler(event)));
    expect(error).toMatchObject({ name: 'PrecomputedInputError', field, message });
    expect(proxy.batchWrites).toEqual([]);
  });

  it('refuses to go on when an object changed between calls', async () => {
    await put(`${PREFIX}a.out`, Array.from({ length: 60 }, (_, i) => joined(`a-${i}`, 0.1)).join('\n'));
    const { result: first } = await captureOutput(() => handler(EVENT, contextRunningOutAfter(1)));
    expect(first.done).toBe(false);
    await put(`${PREFIX}a.out`, joined('replaced', 0.9));

    const { result: error } = await captureOutput(() => rejects(handler({ ...EVENT, continuation: first.continuation }, contextRunningOutAfter(1))));

    expect(error).toMatchObject({ name: 'PrecomputedInputError', field: 'continuation', message: `continuation: ${PREFIX}a.out changed while it was being loaded; start the load again` });
  });
});
