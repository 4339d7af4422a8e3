// Incremental training from streamed micro-batches (lambda/online-learning): the pure helpers of
// lambda/shared/online-learning.ts, then the function, its source and its esbuild bundle, against moto's S3 (a
// versioned bucket, SSE-KMS objects) and DynamoDB (the state table, partition key `id`). The function talks to
// each service through its own dropping proxy: the tests count its requests (a bad event makes none) and take S3
// away in the middle of a tick.
import {
  CreateTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  ScanCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Context } from 'aws-lambda';
import fc from 'fast-check';
import type { FinishResult, TickResult } from '../../lambda/online-learning';
import { parseConstraints, type Constraints } from '../../lambda/shared/data-validation';
import {
  arrivedPrefix,
  batchName,
  decideUpdate,
  formatRows,
  nextWindowId,
  OnlineLearningInputError,
  quarantineKey,
  rejectedKey,
  splitJsonRecords,
  WINDOW_ID_PATTERN,
  windowId,
  windowOpenedAt,
  windowPartKey,
  windowPrefix,
  type UpdateSettings,
  type UpdateState,
} from '../../lambda/shared/online-learning';
import { contextRunningOutAfter, startDroppingProxy, type DroppingProxy } from '../support/dropping-proxy';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv, type LogLine } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';

type OnlineLearningHandler = (event: unknown, context?: Context) => Promise<TickResult | FinishResult>;

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('online-learning');

const BUCKET = 'ml-data';
const TABLE = 'online-learning-state';
const FAMILY = 'churn';
const CONSTRAINTS_KEY = 'churn/constraints/constraints.json';
const KMS_KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const NAMESPACE = 'MlPlatform/OnlineLearning';
const SERVICE = 'online-learning-test';

const MINUTE = 60_000;
const DAY_SECONDS = 86_400;
const NOW = '2026-12-07T10:15:00.000Z';
const NOW_MS = Date.parse(NOW);
const at = (minutes: number) => new Date(NOW_MS + minutes * MINUTE).toISOString();
/** The window the first tick at NOW opens, and the one that opens when it closes in the same second. */
const W0 = 'w-20261207T101500Z';
const W1 = 'w-20261207T101501Z';

const SETTINGS = { minRecords: 10, cooldownSeconds: 3600, updateTimeoutSeconds: 7200 };

/** The columns a window's CSV has, in the constraints' order. */
const HEADER = 'customer_id,tenure,plan,charges,churned';
const CONSTRAINTS: Constraints = parseConstraints({
  version: 1,
  datasetVersion: 'churn-2026-12',
  columns: [
    { name: 'customer_id', type: 'string', required: true },
    { name: 'tenure', type: 'integral', min: 0, max: 120 },
    { name: 'plan', type: 'string', categories: ['annual', 'monthly'] },
    { name: 'charges', type: 'fractional', min: 0, maxMissingFraction: 0.2 },
    { name: 'churned', type: 'boolean', required: true },
  ],
  // minRows is for a whole dataset: a micro-batch of a few rows is not rejected for it.
  dataset: { minRows: 1000, maxQuarantinedFraction: 0.5 },
});

interface Row {
  customer_id?: string;
  tenure?: number;
  plan?: string;
  charges?: number;
  churned?: boolean;
  [field: string]: unknown;
}

const row = (index: number): Row => ({ customer_id: `c-${index}`, tenure: index % 60, plan: index % 3 === 0 ? 'annual' : 'monthly', charges: 20 + index / 4, churned: index % 2 === 0 });
const rows = (from: number, count: number): Row[] => Array.from({ length: count }, (_, offset) => row(from + offset));
const jsonl = (records: ReadonlyArray<Row | string>, separator = '\n'): string => records.map((record) => (typeof record === 'string' ? record : JSON.stringify(record))).join(separator);
const csvLine = (record: Row): string => [record.customer_id, record.tenure, record.plan, record.charges, record.churned].map((value) => (value === undefined ? '' : String(value))).join(',');
const csvOf = (records: readonly Row[]): string => `${[HEADER, ...records.map(csvLine)].join('\n')}\n`;

/** A key the delivery stream writes: <family>/stream/arrived/<yyyy/MM/dd/HH>/<stream>-<version>-<time>-<id>. */
const arrivedKey = (id: string, hour = '10'): string => `churn/stream/arrived/2026/12/07/${hour}/churn-stream-1-2026-12-07-${hour}-00-00-${id}`;
const batchOf = (key: string): string => batchName(FAMILY, key);
const partOf = (window: string, key: string): string => windowPartKey(FAMILY, window, batchOf(key), 'csv');

function tickEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { action: 'tick', now: NOW, constraintsKey: CONSTRAINTS_KEY, settings: SETTINGS, ...overrides };
}

function finishEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return { action: 'finish', now: at(30), window: W0, outcome: 'registered', detail: 'model package approved', ...overrides };
}

const noneFiled = { objects: 0, rows: 0, valid: 0, quarantined: 0, rejected: 0 };

// ---------------------------------------------------------------------------------------------------
// The pure helpers
// ---------------------------------------------------------------------------------------------------

describe('splitJsonRecords', () => {
  it('splits JSON Lines and concatenated objects alike', () => {
    expect(splitJsonRecords('{"a":1}\n{"a":2}\n')).toEqual({ records: [{ a: 1 }, { a: 2 }], malformed: [] });
    expect(splitJsonRecords('{"a":1}{"a":2}')).toEqual({ records: [{ a: 1 }, { a: 2 }], malformed: [] });
    expect(splitJsonRecords('  {"a":1}  \r\n\n {"a":{"b":[1,{"c":2}]}} {"a":3}')).toEqual({ records: [{ a: 1 }, { a: { b: [1, { c: 2 }] } }, { a: 3 }], malformed: [] });
    // A record may span lines (pretty-printed).
    expect(splitJsonRecords('{\n  "a": 1\n}\n{"a":2}')).toEqual({ records: [{ a: 1 }, { a: 2 }], malformed: [] });
    expect(splitJsonRecords('')).toEqual({ records: [], malformed: [] });
  });

  it('returns every stretch that is no record in malformed, and drops nothing', () => {
    const text = ['{"a":1}', 'not json', '42', '{"a":2}{"b":', '{"a":3}', '[1,2]', '{bad}', 'oops {"a":4} 7 {"a":5} trailing'].join('\n');
    expect(splitJsonRecords(text)).toEqual({
      records: [{ a: 1 }, { a: 2 }, { a: 3 }, { a: 4 }, { a: 5 }],
      // A truncated object is junk to the end of its line; the next line is read again.
      malformed: ['not json', '42', '{"b":', '[1,2]', '{bad}', 'oops', '7', 'trailing'],
    });
    // A JSON value that is no object, glued to records.
    expect(splitJsonRecords('{"a":1}"text"{"a":2}null')).toEqual({ records: [{ a: 1 }, { a: 2 }], malformed: ['"text"', 'null'] });
    // An object that never closes, at the end.
    expect(splitJsonRecords('{"a":1}\n{"a":"unterminated')).toEqual({ records: [{ a: 1 }], malformed: ['{"a":"unterminated'] });
    // A bracket that closes the wrong thing: the rest of the line is junk.
    expect(splitJsonRecords('{"a":]}\n{"a":1}')).toEqual({ records: [{ a: 1 }], malformed: ['{"a":]}'] });
    // Long junk is cut to 1 000 characters.
    const long = splitJsonRecords(`${'x'.repeat(1500)}\n{"a":1}`);
    expect(long.records).toEqual([{ a: 1 }]);
    expect(long.malformed).toEqual(['x'.repeat(1000)]);
  });

  it('does not count brackets inside strings', () => {
    const first = { s: '}{', t: '"}\\', u: '[[{' };
    const second = { v: ']}', w: 'line\nbreak' };
    expect(splitJsonRecords(`${JSON.stringify(first)}${JSON.stringify(second)}`)).toEqual({ records: [first, second], malformed: [] });
    expect(splitJsonRecords('{"a":"{"}\n{"b":"}"}')).toEqual({ records: [{ a: '{' }, { b: '}' }], malformed: [] });
  });

  it('splits any JSON objects serialized one after another, with or without newlines, back into the same objects', () => {
    fc.assert(
      fc.property(fc.array(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 5 }), { maxLength: 8 }), fc.constantFrom('', '\n'), (objects, separator) => {
        const text = objects.map((object) => JSON.stringify(object)).join(separator);
        expect(splitJsonRecords(text)).toEqual({ records: objects.map((object) => JSON.parse(JSON.stringify(object)) as unknown), malformed: [] });
      }),
      { numRuns: 300 },
    );
  });
});

describe('windows and keys', () => {
  it('names a window by the second it opened, and reads the time back', () => {
    expect(windowId(new Date('2026-12-07T10:15:00.789Z'))).toBe(W0);
    expect(windowId(new Date('2027-01-02T03:04:05.000Z'))).toBe('w-20270102T030405Z');
    expect(WINDOW_ID_PATTERN.test(W0)).toBe(true);
    expect(windowOpenedAt(W0).toISOString()).toBe(NOW);
    for (const bad of ['2026-12-07', 'w-20261207T1015Z', `${W0}x`, 'w-20261207t101500z']) {
      expect(() => windowOpenedAt(bad)).toThrow(OnlineLearningInputError);
      expect(() => windowOpenedAt(bad)).toThrow(`window: must be a window id such as w-20261207T101500Z; got ${JSON.stringify(bad)}`);
      expect(WINDOW_ID_PATTERN.test(bad)).toBe(false);
    }
    fc.assert(
      fc.property(fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true }), (date) => {
        const id = windowId(date);
        expect(id).toMatch(WINDOW_ID_PATTERN);
        expect(windowOpenedAt(id).getTime()).toBe(Math.floor(date.getTime() / 1000) * 1000);
      }),
    );
  });

  it('opens the next window at now, or a second after the closing one opened when that is later', () => {
    expect(nextWindowId(W0, new Date('2026-12-07T10:15:00.900Z'))).toBe(W1);
    // A clock behind the window's own: still after it.
    expect(nextWindowId(W0, new Date('2026-12-07T10:14:00.000Z'))).toBe(W1);
    expect(nextWindowId(W0, new Date('2026-12-07T10:15:01.999Z'))).toBe(W1);
    expect(nextWindowId(W0, new Date('2026-12-07T11:30:00.500Z'))).toBe('w-20261207T113000Z');
    expect(() => nextWindowId('today', new Date(NOW_MS))).toThrow(OnlineLearningInputError);
    fc.assert(
      fc.property(fc.integer({ min: -86_400_000, max: 86_400_000 }), (offset) => {
        const next = nextWindowId(W0, new Date(NOW_MS + offset));
        expect(next > W0).toBe(true);
        expect(windowOpenedAt(next).getTime()).toBe(Math.max(NOW_MS + 1000, Math.floor((NOW_MS + offset) / 1000) * 1000));
      }),
    );
  });

  it('lays out a family: arrived, window, quarantine, rejected and the batch names', () => {
    expect(arrivedPrefix('churn')).toBe('churn/stream/arrived/');
    expect(windowPrefix('churn', W0)).toBe(`churn/datasets/increments/${W0}/`);
    const key = 'churn/stream/arrived/2026/12/07/10/churn-stream-1-2026-12-07-10-00-00-abc';
    expect(batchName('churn', key)).toBe('2026-12-07-10-churn-stream-1-2026-12-07-10-00-00-abc');
    expect(batchName('churn', 'churn/stream/arrived/x.jsonl')).toBe('x.jsonl');
    expect(() => batchName('churn', 'fraud/stream/arrived/2026/12/07/10/x')).toThrow('key: must be an object under churn/stream/arrived/; got "fraud/stream/arrived/2026/12/07/10/x"');
    expect(() => batchName('churn', 'churn/stream/arrived/')).toThrow(OnlineLearningInputError);
    expect(quarantineKey('churn', W0, 'b-1')).toBe(`churn/stream/quarantine/${W0}/b-1.jsonl`);
    expect(rejectedKey('churn', 'b-1')).toBe('churn/stream/rejected/b-1');
    expect(windowPartKey('churn', W0, 'b-1', 'csv')).toBe(`churn/datasets/increments/${W0}/b-1.csv`);
    expect(windowPartKey('churn', W0, 'b-1', 'jsonl')).toBe(`churn/datasets/increments/${W0}/b-1.jsonl`);
    // The batch's own extension is replaced; any other is kept.
    expect(windowPartKey('churn', W0, 'b-1.jsonl', 'csv')).toBe(`churn/datasets/increments/${W0}/b-1.csv`);
    expect(windowPartKey('churn', W0, 'b-1.json', 'jsonl')).toBe(`churn/datasets/increments/${W0}/b-1.jsonl`);
    expect(windowPartKey('churn', W0, 'b-1.txt', 'csv')).toBe(`churn/datasets/increments/${W0}/b-1.csv`);
    expect(windowPartKey('churn', W0, 'b-1.gz', 'csv')).toBe(`churn/datasets/increments/${W0}/b-1.gz.csv`);
  });
});

describe('formatRows', () => {
  const columns = ['id', 'note', 'text', 'n', 'flag'];

  it('writes CSV with a header of the columns, quoting commas, quotes and line breaks, a missing field empty', () => {
    const records = [
      { id: 'a,b', note: 'say "hi"', text: 'two\nlines', n: 3, flag: true, extra: 'left out' },
      { id: 'plain' },
      { id: 'cr\r', note: null, text: { nested: [1, 'x'] }, n: 0.5, flag: false },
    ];
    expect(formatRows(records, 'csv', columns)).toBe(['id,note,text,n,flag', '"a,b","say ""hi""","two\nlines",3,true', 'plain,,,,', '"cr\r",,"{""nested"":[1,""x""]}",0.5,false', ''].join('\n'));
    expect(formatRows([{ 'a,b': 1, 'c"': 2 }], 'csv', ['a,b', 'c"'])).toBe('"a,b","c"""\n1,2\n');
  });

  it('writes JSON Lines of the rows as they are, and nothing for no rows', () => {
    const records = [{ id: 'a\nb', extra: { x: 1 } }, { n: 2 }];
    expect(formatRows(records, 'jsonl', columns)).toBe('{"id":"a\\nb","extra":{"x":1}}\n{"n":2}\n');
    expect(formatRows([], 'csv', columns)).toBe('');
    expect(formatRows([], 'jsonl', columns)).toBe('');
  });
});

describe('decideUpdate', () => {
  const settings: UpdateSettings = { minRecords: 10, cooldownSeconds: 600, updateTimeoutSeconds: 3600 };
  const now = new Date(NOW_MS);
  const state = (overrides: Partial<UpdateState> = {}): UpdateState => ({ openWindow: W1, windowRecords: 10, windowObjects: 2, ...overrides });

  it('is busy while an update holds its lock, whatever the window holds', () => {
    const update = { id: W0, until: at(1) };
    expect(decideUpdate(state({ update }), settings, now)).toEqual({ decision: 'busy', reason: `update ${W0} is under way (its lock lapses at ${at(1)})` });
    expect(decideUpdate(state({ update, windowRecords: 0 }), settings, now)).toMatchObject({ decision: 'busy' });
    expect(decideUpdate(state({ update, lastUpdateAt: at(-1) }), settings, now)).toMatchObject({ decision: 'busy' });
  });

  it('takes over a lock that lapsed (at now or before)', () => {
    for (const until of [NOW, at(-5)]) {
      expect(decideUpdate(state({ update: { id: W0, until } }), settings, now)).toStrictEqual({ decision: 'start', window: W1, records: 10, objects: 2, takesOver: W0 });
    }
    expect(decideUpdate(state({ update: { id: W0, until: at(-5) }, windowRecords: 9 }), settings, now)).toMatchObject({ decision: 'waiting' });
  });

  it('answers the start of the update under way again when called with the now that started it (a retried call)', () => {
    const update = { id: W0, until: at(60), startedAt: NOW, records: 12, objects: 2 };
    expect(decideUpdate(state({ update, windowRecords: 3 }), settings, now)).toStrictEqual({ decision: 'start', window: W0, records: 12, objects: 2, resumed: true });
    expect(decideUpdate(state({ update }), settings, new Date(NOW_MS + 1))).toMatchObject({ decision: 'busy' });
    expect(decideUpdate(state({ update: { ...update, startedAt: at(-1) } }), settings, now)).toMatchObject({ decision: 'busy' });
  });

  it('waits under minRecords', () => {
    expect(decideUpdate(state({ windowRecords: 9 }), settings, now)).toEqual({ decision: 'waiting', reason: `window ${W1} holds 9 validated record(s); an update needs 10` });
    expect(decideUpdate(state({ windowRecords: 0, windowObjects: 0 }), { ...settings, minRecords: 1 }, now)).toMatchObject({ decision: 'waiting' });
  });

  it('cools down within cooldownSeconds of the last update, and starts when they have passed', () => {
    const lastUpdateAt = new Date(NOW_MS - 599_000).toISOString();
    const until = new Date(NOW_MS + 1000).toISOString();
    expect(decideUpdate(state({ lastUpdateAt }), settings, now)).toEqual({ decision: 'cooling-down', reason: `the last update ended at ${lastUpdateAt}; the next may start at ${until}`, until });
    // A millisecond before the cooldown ends, and at its end.
    expect(decideUpdate(state({ lastUpdateAt: new Date(NOW_MS - 599_999).toISOString() }), settings, now)).toMatchObject({ decision: 'cooling-down', until: new Date(NOW_MS + 1).toISOString() });
    expect(decideUpdate(state({ lastUpdateAt: at(-10) }), settings, now)).toMatchObject({ decision: 'start' });
    expect(decideUpdate(state({ lastUpdateAt: NOW }), { ...settings, cooldownSeconds: 0 }, now)).toMatchObject({ decision: 'start' });
  });

  it('starts with enough records, no update and the cooldown over', () => {
    expect(decideUpdate(state({ windowRecords: 25, windowObjects: 3 }), settings, now)).toStrictEqual({ decision: 'start', window: W1, records: 25, objects: 3 });
  });

  it('never starts with fewer than minRecords records, within the cooldown or under a held lock, and otherwise always does', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 50 }),
        fc.integer({ min: 1, max: 50 }),
        fc.oneof(fc.nat({ max: 7200 }), fc.constant(3600)),
        // Milliseconds since the last update ended, and until the lock lapses; near the boundaries half the time.
        fc.option(fc.oneof(fc.integer({ min: -10_000_000, max: 10_000_000 }), fc.integer({ min: -2, max: 2 }).map((delta) => 3_600_000 + delta)), { nil: undefined }),
        fc.option(fc.oneof(fc.integer({ min: -10_000_000, max: 10_000_000 }), fc.integer({ min: -2, max: 2 })), { nil: undefined }),
        (records, minRecords, cooldownSeconds, lastOffset, lockOffset) => {
          const lastUpdateAt = lastOffset === undefined ? undefined : new Date(NOW_MS - lastOffset).toISOString();
          const update = lockOffset === undefined ? undefined : { id: W0, until: new Date(NOW_MS + lockOffset).toISOString() };
          const decision = decideUpdate(state({ windowRecords: records, ...(lastUpdateAt === undefined ? {} : { lastUpdateAt }), ...(update === undefined ? {} : { update }) }), { minRecords, cooldownSeconds, updateTimeoutSeconds: 3600 }, now);
          const cooledDown = lastOffset === undefined || lastOffset >= cooldownSeconds * 1000;
          const lockFree = lockOffset === undefined || lockOffset <= 0;
          expect(decision.decision === 'start').toBe(records >= minRecords && cooledDown && lockFree);
          if (decision.decision === 'start') {
            expect(decision.records).toBeGreaterThanOrEqual(minRecords);
            expect(decision.takesOver).toBe(update?.id);
          }
          if (!lockFree) expect(decision.decision).toBe('busy');
        },
      ),
      { numRuns: 500 },
    );
  });
});

// ---------------------------------------------------------------------------------------------------
// The function against moto
// ---------------------------------------------------------------------------------------------------

const setEnv = useHandlerEnv(
  [...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_DYNAMODB', 'STATE_TABLE', 'DATA_BUCKET', 'MODEL_FAMILY', 'DATASET_FORMAT', 'KMS_KEY_ID'],
  {
    POWERTOOLS_SERVICE_NAME: SERVICE,
    POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
    STATE_TABLE: TABLE,
    DATA_BUCKET: BUCKET,
    MODEL_FAMILY: FAMILY,
    DATASET_FORMAT: 'csv',
    KMS_KEY_ID: KMS_KEY,
  },
);

type Plain = string | number | boolean | null | Plain[] | { [name: string]: Plain };

function plain(value: AttributeValue): Plain {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return plainItem(value.M);
  if (value.L !== undefined) return value.L.map(plain);
  throw new Error(`unexpected attribute value ${JSON.stringify(value)}`);
}

const plainItem = (item: Record<string, AttributeValue>): { [name: string]: Plain } => Object.fromEntries(Object.entries(item).map(([name, value]) => [name, plain(value)]));

async function rejects(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the handler to throw');
}

/** The metrics of the one EMF document the call printed, by name; its namespace and dimension checked. */
function metricsOf(lines: readonly LogLine[]): Record<string, unknown> {
  const documents = emfDocuments(lines);
  expect(documents).toHaveLength(1);
  const document = documents[0]!;
  const directives = (document._aws as { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][]; Metrics: Array<{ Name: string; Unit: string }> }> }).CloudWatchMetrics;
  expect(directives).toHaveLength(1);
  expect(directives[0]).toMatchObject({ Namespace: NAMESPACE, Dimensions: [['service']] });
  expect(document.service).toBe(SERVICE);
  return Object.fromEntries(directives[0]!.Metrics.map((metric) => [metric.Name, document[metric.Name]]));
}

const filedMetrics = (arrived: number, validated: number, quarantined: number, rejected: number) => ({
  RecordsArrived: arrived,
  RecordsValidated: validated,
  RecordsQuarantined: quarantined,
  MicroBatchesRejected: rejected,
});

/** Sees every request (method and path) before passing it on to moto: a writer that gets in between. */
interface InterposingProxy {
  readonly endpoint: string;
  beforeForward?: (method: string, path: string) => Promise<void>;
  close(): Promise<void>;
}

async function startInterposingProxy(target: string): Promise<InterposingProxy> {
  const upstream = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const hook = proxy.beforeForward?.(req.method ?? '', req.url ?? '') ?? Promise.resolve();
      hook.then(
        () => {
          const forward = httpRequest({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } }, (answer) => {
            res.writeHead(answer.statusCode ?? 500, answer.headers);
            answer.pipe(res);
          });
          forward.on('error', () => res.destroy());
          forward.end(Buffer.concat(chunks));
        },
        () => res.destroy(),
      );
    });
  });
  const proxy: InterposingProxy & { endpoint: string } = { endpoint: '', close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

describe('online-learning against moto', () => {
  let moto: MotoServer;
  let s3Interposer: InterposingProxy;
  let s3Proxy: DroppingProxy;
  let dynamodbProxy: DroppingProxy;
  /** Straight to moto: the tests' own reads and writes pass neither proxy. */
  let s3: S3Client;
  let dynamodb: DynamoDBClient;

  beforeAll(async () => {
    moto = await startMoto();
    s3Interposer = await startInterposingProxy(moto.endpoint);
    s3Proxy = await startDroppingProxy(s3Interposer.endpoint);
    dynamodbProxy = await startDroppingProxy(moto.endpoint);
    s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
  }, 30_000);

  afterAll(async () => {
    s3?.destroy();
    dynamodb?.destroy();
    await s3Proxy?.close();
    await s3Interposer?.close();
    await dynamodbProxy?.close();
    await moto?.stop();
  });

  const proxiedEnv = () => ({ AWS_ENDPOINT_URL_S3: s3Proxy.endpoint, AWS_ENDPOINT_URL_DYNAMODB: dynamodbProxy.endpoint });

  async function resetWorld(): Promise<void> {
    for (const proxy of [s3Proxy, dynamodbProxy]) {
      proxy.allow = Number.POSITIVE_INFINITY;
      proxy.requests.length = 0;
    }
    s3Interposer.beforeForward = undefined;
    await moto.reset();
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    await dynamodb.send(
      new CreateTableCommand({ TableName: TABLE, BillingMode: 'PAY_PER_REQUEST', AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }] }),
    );
    await put(CONSTRAINTS_KEY, JSON.stringify(CONSTRAINTS));
  }

  const put = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
  const text = async (key: string) => (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body!.transformToString('utf-8');
  const keys = async (prefix: string) => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((object) => object.Key!).sort();
  const jsonLines = async (key: string) => (await text(key)).trim().split('\n').map((line) => JSON.parse(line) as unknown);
  async function item(id: string): Promise<{ [name: string]: Plain } | undefined> {
    const found = (await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: id } }, ConsistentRead: true }))).Item;
    return found === undefined ? undefined : plainItem(found);
  }
  const state = () => item('state');
  const markers = async () => ((await dynamodb.send(new ScanCommand({ TableName: TABLE }))).Items ?? []).map(plainItem).filter((found) => String(found.id).startsWith('batch#'));
  const putItem = (fields: Record<string, AttributeValue>) => dynamodb.send(new PutItemCommand({ TableName: TABLE, Item: fields }));
  const S = (value: string): AttributeValue => ({ S: value });
  const N = (value: number): AttributeValue => ({ N: String(value) });
  /** A state item as a tick leaves it, with W0 open. */
  const stateAttributes = (records: number, objects: number): Record<string, AttributeValue> => ({
    id: S('state'),
    openWindow: S(W0),
    windowOpenedAt: S(NOW),
    windowRecords: N(records),
    windowObjects: N(objects),
  });
  const marker = (key: string, window: string, valid: number, quarantined: number, status: 'accepted' | 'rejected' = 'accepted') => ({
    id: `batch#${key}`,
    window,
    status,
    rows: valid + quarantined,
    valid: status === 'rejected' ? 0 : valid,
    quarantined: status === 'rejected' ? valid + quarantined : quarantined,
    filedAt: NOW,
    expiresAt: Math.floor(NOW_MS / 1000) + 90 * DAY_SECONDS,
  });

  describe.each([
    ['source', HANDLER_SOURCE],
    ['bundle', HANDLER_BUNDLE],
  ])('online-learning (%s)', (_label, path) => {
    let handler: OnlineLearningHandler;

    beforeAll(() => {
      setEnv(proxiedEnv());
      handler = loadFreshHandler<OnlineLearningHandler>(path);
    });

    beforeEach(() => resetWorld());

    const tick = (overrides: Record<string, unknown> = {}, context?: Context) => captureOutput(async () => (await handler(tickEvent(overrides), context)) as TickResult);
    const finish = (overrides: Record<string, unknown> = {}) => captureOutput(async () => (await handler(finishEvent(overrides))) as FinishResult);
    const failure = (event: unknown, context?: Context) => captureOutput(() => rejects(handler(event, context)));

    it('files micro-batches: valid rows to the open window as CSV, quarantined rows with their reasons, and counts them once', async () => {
      const keyA = arrivedKey('aaaa');
      const keyB = arrivedKey('bbbb');
      const badRange = { customer_id: 'b-1', tenure: -5, plan: 'annual', charges: 1, churned: true };
      const badCategory = { customer_id: 'b-2', tenure: 3, plan: 'weekly', churned: false };
      const quoted = { customer_id: 'c-"7", inc', tenure: 7, plan: 'monthly', charges: 0, churned: false, source: 'app' };
      // A: JSON Lines with two rows that fail a row-level check and a malformed line at the end.
      await put(keyA, `${jsonl([row(0), row(1), badRange, row(2), badCategory, row(3), 'not json'])}\n`);
      // B: concatenated as Firehose writes them, without newlines; one row needs quoting and has a field no column declares.
      await put(keyB, jsonl([row(4), quoted, row(5)], ''));

      const { result, lines } = await tick();

      expect(result).toEqual({
        decision: 'waiting',
        reason: `window ${W0} holds 7 validated record(s); an update needs 10`,
        window: null,
        dataPrefix: null,
        records: 0,
        objects: 0,
        openWindow: W0,
        pendingRecords: 7,
        filed: { objects: 2, rows: 10, valid: 7, quarantined: 3, rejected: 0 },
        backlog: false,
      });
      const batchA = '2026-12-07-10-churn-stream-1-2026-12-07-10-00-00-aaaa';
      const batchB = '2026-12-07-10-churn-stream-1-2026-12-07-10-00-00-bbbb';
      expect(await keys('churn/datasets/')).toEqual([`churn/datasets/increments/${W0}/${batchA}.csv`, `churn/datasets/increments/${W0}/${batchB}.csv`]);
      expect(await text(`churn/datasets/increments/${W0}/${batchA}.csv`)).toBe(
        [HEADER, 'c-0,0,annual,20,true', 'c-1,1,monthly,20.25,false', 'c-2,2,monthly,20.5,true', 'c-3,3,annual,20.75,false', ''].join('\n'),
      );
      expect(await text(`churn/datasets/increments/${W0}/${batchB}.csv`)).toBe([HEADER, csvLine(row(4)), '"c-""7"", inc",7,monthly,0,false', csvLine(row(5)), ''].join('\n'));

      expect(await keys('churn/stream/quarantine/')).toEqual([`churn/stream/quarantine/${W0}/${batchA}.jsonl`]);
      expect(await jsonLines(`churn/stream/quarantine/${W0}/${batchA}.jsonl`)).toEqual([
        { object: keyA, line: 3, reasons: [{ kind: 'range', column: 'tenure', message: 'is below the minimum 0; got -5' }], text: JSON.stringify(badRange) },
        { object: keyA, line: 5, reasons: [{ kind: 'category', column: 'plan', message: 'is not an allowed category (annual, monthly); got "weekly"' }], text: JSON.stringify(badCategory) },
        { object: keyA, line: 0, reasons: [{ kind: 'malformed', message: 'not a JSON object' }], text: 'not json' },
      ]);
      expect(await keys('churn/stream/rejected/')).toEqual([]);

      // Encrypted with the key, typed as what they hold.
      for (const [key, type] of [
        [`churn/datasets/increments/${W0}/${batchA}.csv`, 'text/csv'],
        [`churn/stream/quarantine/${W0}/${batchA}.jsonl`, 'application/x-ndjson'],
      ] as const) {
        expect(await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: KMS_KEY, ContentType: type });
      }

      // The arrived objects are deleted; the versioned bucket keeps what they were.
      expect(await keys('churn/stream/arrived/')).toEqual([]);
      const versions = await s3.send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: 'churn/stream/arrived/' }));
      expect((versions.Versions ?? []).map((version) => version.Key).sort()).toEqual([keyA, keyB]);
      expect((versions.DeleteMarkers ?? []).map((deleted) => [deleted.Key, deleted.IsLatest]).sort()).toEqual([
        [keyA, true],
        [keyB, true],
      ]);

      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 7, windowObjects: 2 });
      expect(await item(`batch#${keyA}`)).toEqual(marker(keyA, W0, 4, 3));
      expect(await item(`batch#${keyB}`)).toEqual(marker(keyB, W0, 3, 0));
      expect(metricsOf(lines)).toEqual(filedMetrics(10, 7, 3, 0));

      // Nothing arrived since: nothing changes, and the window keeps its time.
      const again = await tick({ now: at(5) });
      expect(again.result).toMatchObject({ decision: 'waiting', openWindow: W0, pendingRecords: 7, filed: noneFiled, backlog: false });
      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 7, windowObjects: 2 });
      expect(metricsOf(again.lines)).toEqual(filedMetrics(0, 0, 0, 0));
    });

    it('rejects a micro-batch that fails a dataset-level constraint: kept whole beside its report, all of it quarantined, nothing in the window', async () => {
      const keyC = arrivedKey('cccc');
      const keyD = arrivedKey('dddd');
      // Every row valid on its own, but charges is missing in 8 of 10 (at most 20% may be).
      const sparse = rows(0, 10).map((record, index) => (index < 8 ? { ...record, charges: undefined } : record));
      const body = `${jsonl(sparse)}\n`;
      await put(keyC, body);
      await put(keyD, jsonl(rows(10, 2)));

      const { result, lines } = await tick();

      expect(result).toMatchObject({ decision: 'waiting', openWindow: W0, pendingRecords: 2, filed: { objects: 2, rows: 12, valid: 2, quarantined: 10, rejected: 1 }, backlog: false });
      const batchC = batchOf(keyC);
      expect(await keys('churn/stream/rejected/')).toEqual([`churn/stream/rejected/${batchC}`, `churn/stream/rejected/${batchC}.report.json`]);
      expect(await text(`churn/stream/rejected/${batchC}`)).toBe(body);
      expect(JSON.parse(await text(`churn/stream/rejected/${batchC}.report.json`))).toEqual({
        batch: keyC,
        window: W0,
        validatedAt: NOW,
        rows: 10,
        valid: 10,
        quarantined: 0,
        // Not min-rows: 10 valid rows of the 1000 a dataset needs is no reason to reject a micro-batch.
        violations: [{ constraint: 'completeness', column: 'charges', observed: 0.8, expected: 0.2, message: "'charges' is missing in 80% of the valid rows (8 of 10); at most 20% may be" }],
        quarantine: 0,
      });
      for (const key of [`churn/stream/rejected/${batchC}`, `churn/stream/rejected/${batchC}.report.json`]) {
        expect(await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: KMS_KEY });
      }
      // Only the accepted batch is in the window; the rejected one is in neither the window nor the quarantine.
      expect(await keys(windowPrefix(FAMILY, W0))).toEqual([partOf(W0, keyD)]);
      expect(await keys('churn/stream/quarantine/')).toEqual([]);
      expect(await keys('churn/stream/arrived/')).toEqual([]);
      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 2, windowObjects: 1 });
      expect(await item(`batch#${keyC}`)).toEqual(marker(keyC, W0, 10, 0, 'rejected'));
      expect(metricsOf(lines)).toEqual(filedMetrics(12, 2, 10, 1));
      expect(logEntries(lines, 'WARN')).toContainEqual(expect.objectContaining({ message: 'micro-batch rejected', batch: keyC, violations: ["'charges' is missing in 80% of the valid rows (8 of 10); at most 20% may be"] }));

      // A batch of nothing but junk fails the quarantined fraction.
      const keyE = arrivedKey('eeee');
      await put(keyE, 'garbage\n{"truncated":');
      const junk = await tick({ now: at(1) });
      expect(junk.result.filed).toEqual({ objects: 1, rows: 2, valid: 0, quarantined: 2, rejected: 1 });
      const report = JSON.parse(await text(`churn/stream/rejected/${batchOf(keyE)}.report.json`)) as { violations: Array<{ constraint: string }>; quarantine: number };
      expect(report.violations.map((violation) => violation.constraint)).toEqual(['quarantined-fraction']);
      expect(report.quarantine).toBe(2);
      expect((await state())!.windowRecords).toBe(2);
    });

    it('writes JSON Lines windows with DATASET_FORMAT jsonl', async () => {
      setEnv({ ...proxiedEnv(), DATASET_FORMAT: 'jsonl' });
      try {
        const jsonlHandler = loadFreshHandler<OnlineLearningHandler>(path);
        const key = arrivedKey('ffff');
        const records = [{ ...row(0), source: 'app' }, row(1), { customer_id: 'b', tenure: 500, churned: true }];
        await put(key, jsonl(records));
        const { result } = await captureOutput(async () => (await jsonlHandler(tickEvent())) as TickResult);
        expect(result.filed).toEqual({ objects: 1, rows: 3, valid: 2, quarantined: 1, rejected: 0 });
        const part = `churn/datasets/increments/${W0}/${batchOf(key)}.jsonl`;
        expect(await keys('churn/datasets/')).toEqual([part]);
        expect(await text(part)).toBe(`${JSON.stringify(records[0])}\n${JSON.stringify(records[1])}\n`);
        expect(await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: part }))).toMatchObject({ ContentType: 'application/x-ndjson', ServerSideEncryption: 'aws:kms' });
      } finally {
        setEnv(proxiedEnv());
      }
    });

    it('starts an update with enough records, defers while it runs or cools down, finishes once, and starts the next after the cooldown', async () => {
      const [keyA, keyB] = [arrivedKey('aaaa'), arrivedKey('bbbb')];
      await put(keyA, jsonl(rows(0, 6)));
      await put(keyB, jsonl(rows(6, 6)));

      const first = await tick();
      expect(first.result).toEqual({
        decision: 'start',
        reason: `window ${W0} holds 12 validated record(s) in 2 micro-batch(es)`,
        window: W0,
        dataPrefix: `churn/datasets/increments/${W0}/`,
        records: 12,
        objects: 2,
        openWindow: W1,
        pendingRecords: 0,
        filed: { objects: 2, rows: 12, valid: 12, quarantined: 0, rejected: 0 },
        backlog: false,
      });
      expect(await keys(first.result.dataPrefix!)).toEqual([partOf(W0, keyA), partOf(W0, keyB)]);
      expect(await state()).toEqual({
        id: 'state',
        openWindow: W1,
        windowOpenedAt: NOW,
        windowRecords: 0,
        windowObjects: 0,
        update: { id: W0, records: 12, objects: 2, startedAt: NOW, until: at(120) },
      });
      expect(await item(`update#${W0}`)).toEqual({
        id: `update#${W0}`,
        window: W0,
        records: 12,
        objects: 2,
        startedAt: NOW,
        status: 'started',
        expiresAt: Math.floor(NOW_MS / 1000) + 400 * DAY_SECONDS,
      });
      expect(metricsOf(first.lines)).toEqual({ ...filedMetrics(12, 12, 0, 0), UpdatesTriggered: 1 });
      expect(logEntries(first.lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'update started', window: W0, records: 12, nextWindow: W1 }));

      // While the update runs: new batches go to the new window; too few of them is no deferred update.
      const keyC = arrivedKey('cccc', '11');
      await put(keyC, jsonl(rows(12, 3)));
      const busy = await tick({ now: at(10) });
      expect(busy.result).toEqual({
        decision: 'busy',
        reason: `update ${W0} is under way (its lock lapses at ${at(120)})`,
        window: null,
        dataPrefix: null,
        records: 0,
        objects: 0,
        openWindow: W1,
        pendingRecords: 3,
        filed: { objects: 1, rows: 3, valid: 3, quarantined: 0, rejected: 0 },
        backlog: false,
      });
      expect(metricsOf(busy.lines)).toEqual(filedMetrics(3, 3, 0, 0));
      // Enough of them, and the update still running: deferred.
      const keyD = arrivedKey('dddd', '11');
      await put(keyD, jsonl(rows(15, 8)));
      const deferred = await tick({ now: at(20) });
      expect(deferred.result).toMatchObject({ decision: 'busy', openWindow: W1, pendingRecords: 11, filed: { objects: 1, valid: 8 } });
      expect(metricsOf(deferred.lines)).toEqual({ ...filedMetrics(8, 8, 0, 0), UpdatesDeferred: 1 });
      expect(await keys(windowPrefix(FAMILY, W1))).toEqual([partOf(W1, keyC), partOf(W1, keyD)]);
      expect(await keys(windowPrefix(FAMILY, W0))).toEqual([partOf(W0, keyA), partOf(W0, keyB)]);
      expect(await state()).toMatchObject({ openWindow: W1, windowRecords: 11, windowObjects: 2, update: { id: W0 } });

      const arn = 'arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/3';
      const finished = await finish({ modelPackageArn: arn });
      expect(finished.result).toEqual({ window: W0, outcome: 'registered', lockReleased: true });
      expect(metricsOf(finished.lines)).toEqual({ UpdatesRegistered: 1 });
      expect(await state()).toEqual({
        id: 'state',
        openWindow: W1,
        windowOpenedAt: NOW,
        windowRecords: 11,
        windowObjects: 2,
        lastUpdateAt: at(30),
        lastOutcome: { window: W0, outcome: 'registered', at: at(30) },
      });
      const registered = await item(`update#${W0}`);
      expect(registered).toEqual({
        id: `update#${W0}`,
        window: W0,
        records: 12,
        objects: 2,
        startedAt: NOW,
        status: 'registered',
        detail: 'model package approved',
        endedAt: at(30),
        lockReleased: true,
        modelPackageArn: arn,
        expiresAt: Math.floor(NOW_MS / 1000) + 400 * DAY_SECONDS,
      });

      // The same finish again (a retried task) changes nothing; another outcome is refused.
      const repeated = await finish({ now: at(35), modelPackageArn: arn });
      expect(repeated.result).toEqual(finished.result);
      expect(emfDocuments(repeated.lines)).toEqual([]);
      expect(await item(`update#${W0}`)).toEqual(registered);
      expect((await state())!.lastUpdateAt).toBe(at(30));
      const refused = await failure(finishEvent({ now: at(36), outcome: 'failed' }));
      expect(refused.result).toMatchObject({ name: 'OnlineLearningInputError', message: `outcome: the update of window ${W0} already ended as registered` });
      expect(await item(`update#${W0}`)).toEqual(registered);

      // Enough records, within the cooldown (until 30 + 60 minutes).
      const cooling = await tick({ now: at(40) });
      expect(cooling.result).toEqual({
        decision: 'cooling-down',
        reason: `the last update ended at ${at(30)}; the next may start at ${at(90)}`,
        window: null,
        dataPrefix: null,
        records: 0,
        objects: 0,
        openWindow: W1,
        pendingRecords: 11,
        filed: noneFiled,
        backlog: false,
      });
      expect(metricsOf(cooling.lines)).toEqual({ ...filedMetrics(0, 0, 0, 0), UpdatesDeferred: 1 });
      expect(await item(`update#${W1}`)).toBeUndefined();

      // After it.
      const next = await tick({ now: at(91) });
      expect(next.result).toMatchObject({ decision: 'start', window: W1, dataPrefix: `churn/datasets/increments/${W1}/`, records: 11, objects: 2, openWindow: 'w-20261207T114600Z', pendingRecords: 0 });
      expect(metricsOf(next.lines)).toEqual({ ...filedMetrics(0, 0, 0, 0), UpdatesTriggered: 1 });
      expect(await state()).toMatchObject({ openWindow: 'w-20261207T114600Z', windowOpenedAt: at(91), windowRecords: 0, windowObjects: 0, update: { id: W1, records: 11, objects: 2, startedAt: at(91), until: at(211) } });
      expect(await item(`update#${W1}`)).toMatchObject({ status: 'started', records: 11, objects: 2, startedAt: at(91) });
    });

    it('answers a retried tick (the same now) that started the update with the same start, closing no second window', async () => {
      const key = arrivedKey('aaaa');
      await put(key, jsonl(rows(0, 12)));
      const first = await tick();
      expect(first.result).toMatchObject({ decision: 'start', window: W0, records: 12, objects: 1, openWindow: W1 });
      // The answer was lost; Step Functions calls again with the state's same entered time, and one more batch has arrived.
      await put(arrivedKey('bbbb'), jsonl(rows(12, 2)));
      const again = await tick();
      expect(again.result).toMatchObject({ decision: 'start', window: W0, dataPrefix: `churn/datasets/increments/${W0}/`, records: 12, objects: 1, openWindow: W1, pendingRecords: 2 });
      expect(metricsOf(again.lines)).toEqual(filedMetrics(2, 2, 0, 0));
      expect(await state()).toMatchObject({ openWindow: W1, windowRecords: 2, update: { id: W0, records: 12, startedAt: NOW } });
      // A later tick is no retry: the update is under way.
      expect((await tick({ now: at(1) })).result).toMatchObject({ decision: 'busy' });
    });

    it('finishes in one transaction: a lock taken over meanwhile is left alone and the record says so; a second finish changes nothing', async () => {
      await put(arrivedKey('aaaa'), jsonl(rows(0, 12)));
      expect((await tick()).result).toMatchObject({ decision: 'start', window: W0 });
      const done = await finish({ outcome: 'refused', detail: 'worse than the champion' });
      expect(done.result).toEqual({ window: W0, outcome: 'refused', lockReleased: true });
      expect(await state()).not.toHaveProperty('update');
      expect(await item(`update#${W0}`)).toMatchObject({ status: 'refused', detail: 'worse than the champion', lockReleased: true });
      expect((await finish({ outcome: 'refused', detail: 'again' })).result).toEqual({ window: W0, outcome: 'refused', lockReleased: true });
      expect(await item(`update#${W0}`)).toMatchObject({ detail: 'worse than the champion' });
      expect(metricsOf(done.lines)).toEqual({ UpdatesRefused: 1 });
    });

    it('takes over an update whose lock lapsed, and the late finish of the old one leaves the new lock alone', async () => {
      await put(arrivedKey('aaaa'), jsonl(rows(0, 10)));
      expect((await tick()).result).toMatchObject({ decision: 'start', window: W0 });
      await put(arrivedKey('bbbb', '12'), jsonl(rows(10, 10)));
      // Its workflow died: two hours (updateTimeoutSeconds) later its lock has lapsed.
      const later = await tick({ now: at(121) });
      expect(later.result).toMatchObject({ decision: 'start', window: W1, records: 10, objects: 1, openWindow: 'w-20261207T121600Z' });
      expect(metricsOf(later.lines)).toMatchObject({ UpdatesTriggered: 1 });
      expect(await item(`update#${W1}`)).toMatchObject({ status: 'started', tookOverFrom: W0 });
      expect(await state()).toMatchObject({ update: { id: W1, until: at(241) } });

      const late = await finish({ now: at(130), outcome: 'failed', detail: 'x'.repeat(1500) });
      expect(late.result).toEqual({ window: W0, outcome: 'failed', lockReleased: false });
      expect(metricsOf(late.lines)).toEqual({ UpdatesFailed: 1 });
      const stateAfter = await state();
      expect(stateAfter).toMatchObject({ update: { id: W1 } });
      expect(stateAfter).not.toHaveProperty('lastUpdateAt');
      expect(await item(`update#${W0}`)).toMatchObject({ status: 'failed', lockReleased: false, detail: 'x'.repeat(1000), endedAt: at(130) });

      const current = await finish({ now: at(140), window: W1, outcome: 'refused', detail: 'quality gate' });
      expect(current.result).toEqual({ window: W1, outcome: 'refused', lockReleased: true });
      expect(metricsOf(current.lines)).toEqual({ UpdatesRefused: 1 });
      const released = await state();
      expect(released).toMatchObject({ lastUpdateAt: at(140), lastOutcome: { window: W1, outcome: 'refused', at: at(140) } });
      expect(released).not.toHaveProperty('update');
    });

    it('deletes an arrived object a dead tick already counted, without counting it again', async () => {
      const [keyA, keyB] = [arrivedKey('aaaa'), arrivedKey('bbbb')];
      await put(keyA, jsonl(rows(0, 4)));
      await put(keyB, jsonl(rows(4, 3)));
      // The tick that died had counted A (its marker and the counters, one transaction) but not deleted it.
      await putItem(stateAttributes(4, 1));
      const counted = marker(keyA, W0, 4, 0);
      await putItem({ id: S(counted.id), window: S(W0), status: S('accepted'), rows: N(4), valid: N(4), quarantined: N(0), filedAt: S(NOW), expiresAt: N(counted.expiresAt) });

      const { result, lines } = await tick({ now: at(5) });

      expect(result).toMatchObject({ decision: 'waiting', openWindow: W0, pendingRecords: 7, filed: { objects: 1, rows: 3, valid: 3, quarantined: 0, rejected: 0 }, backlog: false });
      expect(await keys('churn/stream/arrived/')).toEqual([]);
      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 7, windowObjects: 2 });
      expect(await markers()).toEqual(expect.arrayContaining([counted, { ...marker(keyB, W0, 3, 0), filedAt: at(5), expiresAt: Math.floor(Date.parse(at(5)) / 1000) + 90 * DAY_SECONDS }]));
      expect(await markers()).toHaveLength(2);
      expect(await keys(windowPrefix(FAMILY, W0))).toEqual([partOf(W0, keyB)]);
      expect(metricsOf(lines)).toEqual(filedMetrics(3, 3, 0, 0));
    });

    it('is busy while another tick holds the lease, and takes over a lease that lapsed', async () => {
      const key = arrivedKey('aaaa');
      await put(key, jsonl(rows(0, 4)));
      const held = { M: { holder: S('tick-elsewhere'), until: S(new Date(Date.now() + 10 * MINUTE).toISOString()) } };
      await putItem({ ...stateAttributes(0, 0), lease: held });
      const before = await state();

      const { result, lines } = await tick();

      expect(result).toEqual({ decision: 'busy', reason: 'another tick is filing micro-batches', window: null, dataPrefix: null, records: 0, objects: 0, openWindow: null, pendingRecords: 0, filed: noneFiled, backlog: true });
      expect(s3Proxy.requests).toEqual([]);
      expect(await keys('churn/stream/arrived/')).toEqual([key]);
      expect(await keys('churn/datasets/')).toEqual([]);
      expect(await state()).toEqual(before);
      expect(await markers()).toEqual([]);
      expect(emfDocuments(lines)).toEqual([]);

      // The other tick died: its lease lapsed a second ago.
      await putItem({ ...stateAttributes(0, 0), lease: { M: { holder: S('tick-elsewhere'), until: S(new Date(Date.now() - 1000).toISOString()) } } });
      const takenOver = await tick();
      expect(takenOver.result).toMatchObject({ decision: 'waiting', pendingRecords: 4, filed: { objects: 1, valid: 4 }, backlog: false });
      expect(await keys('churn/stream/arrived/')).toEqual([]);
      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 4, windowObjects: 1 });
    });

    it('names every problem of a bad event by its path, before any AWS call', async () => {
      const bad = async (event: unknown) => {
        const { result: error } = await failure(event);
        expect(error).toBeInstanceOf(Error);
        expect(error.name).toBe('OnlineLearningInputError');
        return error.message.split('; ');
      };
      expect(await bad(undefined)).toEqual(['action: is required: one of tick, finish']);
      expect(await bad({ now: NOW })).toEqual(['action: is required: one of tick, finish']);
      expect(await bad({ action: 'train' })).toEqual(['action: must be one of tick, finish, not "train"']);
      expect(await bad(tickEvent({ settings: { ...SETTINGS, minRecords: 2.5 } }))).toEqual(['settings.minRecords: must be a whole number from 1 to 100000000']);
      expect(
        await bad({
          action: 'tick',
          now: 'yesterday',
          constraintsKey: 'churn/constraints/',
          settings: { minRecords: 0, cooldownSeconds: -1, updateTimeoutSeconds: 30, colour: 'red' },
          extra: true,
        }),
      ).toEqual([
        'now: must be an ISO 8601 time',
        'constraintsKey: must be an object key, not a prefix',
        'settings.minRecords: must be a whole number from 1 to 100000000',
        'settings.cooldownSeconds: must be a whole number from 0 to 2592000',
        'settings.updateTimeoutSeconds: must be a whole number from 60 to 2592000',
        'settings.colour: unknown field',
        'extra: unknown field',
      ]);
      expect(await bad({ action: 'tick' })).toEqual(['now: is required', 'constraintsKey: is required', expect.stringMatching(/^settings: /)]);
      expect(await bad(finishEvent({ window: 'yesterday', outcome: 'done', detail: undefined, modelPackageArn: 'churn-3', extra: 1 }))).toEqual([
        'window: must be a window id such as w-20261207T101500Z',
        'outcome: must be one of registered, refused, failed',
        'detail: is required',
        'modelPackageArn: must be a model package ARN',
        'extra: unknown field',
      ]);
      expect(s3Proxy.requests).toEqual([]);
      expect(dynamodbProxy.requests).toEqual([]);
    });

    it('throws OnlineLearningInputError for a missing or invalid constraints document and an update never started, leaving the batches and the lease alone', async () => {
      const key = arrivedKey('aaaa');
      await put(key, jsonl(rows(0, 4)));
      const missing = await failure(tickEvent({ constraintsKey: 'churn/constraints/missing.json' }));
      expect(missing.result).toMatchObject({
        name: 'OnlineLearningInputError',
        message: `constraintsKey: no constraints document at s3://${BUCKET}/churn/constraints/missing.json (make one with npm run suggest-constraints)`,
      });
      expect(logEntries(missing.lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'tick failed', errorName: 'OnlineLearningInputError' }));
      await put('churn/constraints/bad.json', JSON.stringify({ version: 1, columns: [{ name: 'tenure', type: 'number' }] }));
      const invalid = await failure(tickEvent({ constraintsKey: 'churn/constraints/bad.json' }));
      expect(invalid.result).toMatchObject({
        name: 'OnlineLearningInputError',
        message: `constraintsKey: s3://${BUCKET}/churn/constraints/bad.json is not a valid constraints document: columns[0].type: must be one of integral, fractional, string, boolean`,
      });
      expect(await keys('churn/stream/arrived/')).toEqual([key]);
      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 0, windowObjects: 0 });
      expect(await markers()).toEqual([]);

      const never = await failure(finishEvent());
      expect(never.result).toMatchObject({ name: 'OnlineLearningInputError', message: `window: no update of window ${W0} was started` });

      // A state item that is not valid.
      await putItem({ ...stateAttributes(0, 0), windowRecords: S('many') });
      expect((await failure(tickEvent())).result).toMatchObject({ name: 'OnlineLearningInputError', message: 'state: windowRecords is not a number; the state item is not valid' });
      expect(await state()).not.toHaveProperty('lease');
    });

    it('throws ConfigError when its environment is unusable, before any AWS call', async () => {
      try {
        setEnv({ ...proxiedEnv(), STATE_TABLE: '', KMS_KEY_ID: '' });
        const unset = loadFreshHandler<OnlineLearningHandler>(path);
        expect((await captureOutput(() => rejects(unset(tickEvent())))).result).toMatchObject({ name: 'ConfigError', message: 'STATE_TABLE, KMS_KEY_ID: not set' });
        setEnv({ ...proxiedEnv(), DATASET_FORMAT: 'parquet' });
        const format = loadFreshHandler<OnlineLearningHandler>(path);
        expect((await captureOutput(() => rejects(format(finishEvent())))).result).toMatchObject({ name: 'ConfigError', message: 'DATASET_FORMAT: must be csv or jsonl; got "parquet"' });
      } finally {
        setEnv(proxiedEnv());
      }
      expect(s3Proxy.requests).toEqual([]);
      expect(dynamodbProxy.requests).toEqual([]);
    });

    it("throws the SDK's error when S3 goes away mid-tick, and a repeated tick files every batch exactly once", async () => {
      const [keyA, keyB] = [arrivedKey('aaaa'), arrivedKey('bbbb')];
      // The tick's S3 requests: [0] the constraints, [1] the listing, then per batch get, put (window), delete: S3 goes
      // away at the listing, at A's window part (nothing counted yet), at A's delete (counted, not deleted) and at B's.
      for (const allow of [1, 3, 4, 7]) {
        await resetWorld();
        await put(keyA, jsonl(rows(0, 4)));
        await put(keyB, jsonl(rows(4, 3)));
        s3Proxy.allow = allow;
        const failed = await failure(tickEvent());
        expect(s3Proxy.requests).toHaveLength(allow + 1);
        expect(failed.result.name).not.toMatch(/OnlineLearningInputError|ConfigError/);
        expect(logEntries(failed.lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'tick failed', action: 'tick', errorName: failed.result.name }));
        // The lease is released on the way out: the next tick need not wait for it to lapse.
        expect(await state()).not.toHaveProperty('lease');
        s3Proxy.allow = Number.POSITIVE_INFINITY;

        const { result } = await tick({ now: at(1) });
        const label = `S3 gone after ${allow} request(s)`;
        expect([label, result.decision, result.backlog]).toEqual([label, 'waiting', false]);
        expect([label, await state()]).toEqual([label, { id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 7, windowObjects: 2 }]);
        expect([label, await keys('churn/stream/arrived/')]).toEqual([label, []]);
        expect([label, await text(partOf(W0, keyA)), await text(partOf(W0, keyB))]).toEqual([label, csvOf(rows(0, 4)), csvOf(rows(4, 3))]);
        expect([label, (await markers()).map((found) => [found.id, found.valid]).sort()]).toEqual([
          label,
          [
            [`batch#${keyA}`, 4],
            [`batch#${keyB}`, 3],
          ],
        ]);
      }
    });

    it('stops filing before its deadline with a backlog, oldest first, and the next tick files the rest', async () => {
      const keys3 = [arrivedKey('aaaa', '08'), arrivedKey('bbbb', '09'), arrivedKey('cccc', '10')];
      // Put newest first: the listing, not the order they were written in, decides.
      await put(keys3[2]!, jsonl(rows(8, 5)));
      await put(keys3[1]!, jsonl(rows(4, 4)));
      await put(keys3[0]!, jsonl(rows(0, 4)));

      const first = await tick({}, contextRunningOutAfter(0));
      expect(first.result).toMatchObject({ decision: 'waiting', pendingRecords: 4, filed: { objects: 1, rows: 4, valid: 4 }, backlog: true });
      expect(await keys('churn/stream/arrived/')).toEqual([keys3[1], keys3[2]]);
      expect(await keys(windowPrefix(FAMILY, W0))).toEqual([partOf(W0, keys3[0]!)]);
      expect(metricsOf(first.lines)).toEqual(filedMetrics(4, 4, 0, 0));
      expect(await state()).not.toHaveProperty('lease');

      const rest = await tick({ now: at(1) }, contextRunningOutAfter(10));
      expect(rest.result).toMatchObject({ decision: 'start', window: W0, records: 13, objects: 3, filed: { objects: 2, rows: 9, valid: 9 }, backlog: false });
      expect(await keys('churn/stream/arrived/')).toEqual([]);
      expect(await keys(windowPrefix(FAMILY, W0))).toEqual(keys3.map((key) => partOf(W0, key)).sort());
    });
    it('stops when another tick took its lease over, leaving what it could not count to that tick', async () => {
      const [keyA, keyB] = [arrivedKey('aaaa'), arrivedKey('bbbb')];
      await put(keyA, jsonl(rows(0, 4)));
      await put(keyB, jsonl(rows(4, 3)));
      // While this tick writes its first window part, its lease lapses and another tick takes it.
      let tookOver = false;
      s3Interposer.beforeForward = async (method, requestPath) => {
        if (tookOver || method !== 'PUT' || !requestPath.startsWith(`/${BUCKET}/churn/datasets/`)) return;
        tookOver = true;
        await putItem({ ...stateAttributes(0, 0), lease: { M: { holder: S('tick-elsewhere'), until: S(new Date(Date.now() + 10 * MINUTE).toISOString()) } } });
      };

      const { result, lines } = await tick();

      expect(tookOver).toBe(true);
      expect(result).toEqual({ decision: 'busy', reason: 'the tick outlived its lease; another tick goes on', window: null, dataPrefix: null, records: 0, objects: 0, openWindow: null, pendingRecords: 0, filed: noneFiled, backlog: true });
      // Nothing counted, nothing deleted, and the other tick's lease is not released.
      expect(await keys('churn/stream/arrived/')).toEqual([keyA, keyB]);
      expect(await markers()).toEqual([]);
      expect(await state()).toMatchObject({ windowRecords: 0, windowObjects: 0, lease: { holder: 'tick-elsewhere' } });
      expect(logEntries(lines, 'WARN')).toContainEqual(expect.objectContaining({ message: 'lease not released' }));
      expect(emfDocuments(lines)).toEqual([]);

      // That tick died too; the next one files both batches, once.
      await putItem({ ...stateAttributes(0, 0), lease: { M: { holder: S('tick-elsewhere'), until: S(new Date(Date.now() - 1000).toISOString()) } } });
      const next = await tick({ now: at(20) });
      expect(next.result).toMatchObject({ decision: 'waiting', pendingRecords: 7, filed: { objects: 2, valid: 7 } });
      expect(await state()).toEqual({ id: 'state', openWindow: W0, windowOpenedAt: NOW, windowRecords: 7, windowObjects: 2 });
      expect(await text(partOf(W0, keyA))).toBe(csvOf(rows(0, 4)));
    });
  });
});
