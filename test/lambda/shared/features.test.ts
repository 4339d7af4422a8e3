import fc from 'fast-check';
import { toFeatureStoreRecord, type FeatureValue } from '../../../lib/features/feature-definition';
import {
  batchGetRecordInputs,
  checkRecordId,
  classifyFeatureStoreError,
  createLimiter,
  evaluateChunk,
  evaluateKinesisRecord,
  evaluateRecord,
  featureStoreRejection,
  fromFeatureStoreRecord,
  IngestionInputError,
  loadFeatureGroups,
  loadQueueUrl,
  lookupFeatures,
  lookupRecord,
  MAX_SQS_MESSAGE_BYTES,
  parseBatchIngestionInput,
  parseBatchLookupRequest,
  parseCsvChunk,
  parseCsvRows,
  parseFeaturesQuery,
  parseJsonLinesChunk,
  putRecordInput,
  rejectedRecord,
  resolveFeatureGroup,
  shardIdOf,
  sqsBatches,
  type BatchGetRecordInputLike,
  type BatchGetRecordOutputLike,
  type RecordSource,
} from '../../../lambda/shared/features';
import { ConfigError, RequestError, UpstreamError } from '../../../lambda/shared/inference';
import { accountsGroup, customersGroup, putRecordWire, wireRecord } from '../../support/feature-fixtures';
import { catchError } from '../../support/assertions';

const CUSTOMERS = customersGroup('spend_30d', 'segment');
const ACCOUNTS = accountsGroup('balance');

const GROUPS = loadFeatureGroups(JSON.stringify([CUSTOMERS, ACCOUNTS]));
const KINESIS: RecordSource = { kind: 'kinesis', sequenceNumber: '4955', shardId: 'shardId-000000000000' };
const b64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');


async function catchAsync(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('configuration', () => {
  it('loads FEATURE_GROUPS into a catalog by name', () => {
    expect([...GROUPS.keys()]).toEqual(['customers', 'accounts']);
    expect(GROUPS.get('accounts')).toEqual(ACCOUNTS);
  });

  it.each([
    [undefined, 'FEATURE_GROUPS: is not set'],
    ['  ', 'FEATURE_GROUPS: is not set'],
    ['{', 'FEATURE_GROUPS: is not valid JSON'],
    ['[]', 'FEATURE_GROUPS: (root): must define at least one feature group'],
    ['{"name":"x"}', 'FEATURE_GROUPS: (root): must be a JSON array of feature group definitions'],
  ])('refuses %j with a message naming the variable', (raw, message) => {
    const error = catchError(() => loadFeatureGroups(raw));
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(message);
  });

  it('names the path of a shape problem and of a rule checkFeatureGroupDefinition enforces', () => {
    const badType = { ...CUSTOMERS, features: [CUSTOMERS.features[0], { name: 'x', type: 'boolean', description: 'd' }] };
    expect((catchError(() => loadFeatureGroups(JSON.stringify([badType]))) as Error).message).toMatch(/^FEATURE_GROUPS: \[0\]\.features\[1\]\.type: must be one of string, integral, fractional/);
    const noIdentifier = { ...ACCOUNTS, recordIdentifier: 'missing' };
    expect((catchError(() => loadFeatureGroups(JSON.stringify([CUSTOMERS, noIdentifier]))) as Error).message).toBe(
      "FEATURE_GROUPS: [1].recordIdentifier: 'missing' is not one of the features",
    );
    expect((catchError(() => loadFeatureGroups(JSON.stringify([CUSTOMERS, CUSTOMERS]))) as Error).message).toBe(
      "FEATURE_GROUPS: [1].name: feature group 'customers' is defined twice",
    );
  });

  it('checks REJECTED_RECORDS_QUEUE_URL', () => {
    expect(loadQueueUrl(' https://sqs.eu-west-1.amazonaws.com/123456789012/rejected ')).toBe('https://sqs.eu-west-1.amazonaws.com/123456789012/rejected');
    expect((catchError(() => loadQueueUrl(undefined)) as Error).message).toBe('REJECTED_RECORDS_QUEUE_URL: is not set');
    expect((catchError(() => loadQueueUrl('rejected')) as Error).message).toMatch(/^REJECTED_RECORDS_QUEUE_URL: must be an SQS queue URL/);
  });
});

describe('speed layer: Kinesis payloads', () => {
  const valid = { featureGroup: 'customers', record: { customer_id: 'c-1', event_time: '2024-05-01T10:00:00Z', orders_30d: 3, spend_30d: 12.5, segment: 'gold' } };

  it('decodes, routes and converts a valid record to the wire form', () => {
    const evaluation = evaluateKinesisRecord(GROUPS, b64(JSON.stringify(valid)), KINESIS);
    expect(evaluation).toMatchObject({ ok: true, featureGroup: 'customers', recordId: 'c-1', source: KINESIS, payload: JSON.stringify(valid) });
    if (!evaluation.ok) throw new Error('expected ok');
    expect(putRecordInput(evaluation)).toEqual(
      putRecordWire('customers', { customer_id: 'c-1', event_time: '2024-05-01T10:00:00Z', orders_30d: '3', spend_30d: '12.5', segment: 'gold' }),
    );
  });

  it.each([
    ['not JSON', b64('{"featureGroup":'), 'payload: must be valid JSON', undefined],
    ['not UTF-8', Buffer.from([0xff, 0xfe, 0x00]).toString('base64'), 'payload: must be UTF-8 encoded JSON (kept here base64-encoded as received)', undefined],
    ['an array', b64('[1]'), 'payload: must be a JSON object with "featureGroup" and "record"', undefined],
    ['without featureGroup', b64(JSON.stringify({ record: valid.record })), 'featureGroup: is required (the feature group name, a string)', undefined],
    ['with an extra field', b64(JSON.stringify({ ...valid, features: {} })), 'features: unknown field', 'customers'],
    ['with a nested value', b64(JSON.stringify({ featureGroup: 'customers', record: { ...valid.record, segment: { a: 1 } } })), 'record.segment: must be a string, a number or null', 'customers'],
    ['for an unknown group', b64(JSON.stringify({ ...valid, featureGroup: 'orders' })), "featureGroup: unknown feature group 'orders'; this function serves: accounts, customers", 'orders'],
  ])('rejects a payload that is %s, naming the field', (_, data, reason, featureGroup) => {
    const evaluation = evaluateKinesisRecord(GROUPS, data, KINESIS);
    expect(evaluation.ok).toBe(false);
    if (evaluation.ok) return;
    expect(evaluation.rejection.reason).toBe(reason);
    expect(evaluation.rejection.featureGroup).toBe(featureGroup);
    expect(evaluation.rejection.source).toEqual(KINESIS);
    // The original text (or, when it is not UTF-8, the base64 as received) is kept.
    expect(evaluation.rejection.payload).toBe(reason.startsWith('payload: must be UTF-8') ? data : Buffer.from(data, 'base64').toString('utf8'));
  });

  it('rejects invalid feature values with one issue per feature, each naming the feature', () => {
    const record = { customer_id: 'c-1', event_time: 'yesterday', orders_30d: 2.5, spend_30d: 'lots', segment: true, colour: 'red' };
    const evaluation = evaluateKinesisRecord(GROUPS, b64(JSON.stringify({ featureGroup: 'customers', record })), KINESIS);
    if (evaluation.ok) throw new Error('expected a rejection');
    expect(evaluation.rejection.issues.map((issue) => issue.feature).sort()).toEqual(['colour', 'event_time', 'orders_30d', 'segment', 'spend_30d']);
    for (const issue of evaluation.rejection.issues) {
      expect(issue.field).toBe(`record.${issue.feature}`);
      expect(evaluation.rejection.reason).toContain(`record.${issue.feature}: `);
    }
    expect(evaluation.rejection.reason).toContain('record.colour: is not a feature of customers');
  });

  it('builds the Feature Store rejection from a valid record and the service message', () => {
    const evaluation = evaluateKinesisRecord(GROUPS, b64(JSON.stringify(valid)), KINESIS);
    if (!evaluation.ok) throw new Error('expected ok');
    const failure = classifyFeatureStoreError({ name: 'ValidationError', message: 'Record is larger than\n  the limit' });
    expect(featureStoreRejection(evaluation, failure)).toEqual({
      reason: 'featureStore: Feature Store refused the record: Record is larger than the limit',
      issues: [{ field: 'featureStore', message: 'Feature Store refused the record: Record is larger than the limit' }],
      featureGroup: 'customers',
      source: KINESIS,
      payload: JSON.stringify(valid),
    });
  });

  it('reads the shard id from the event id', () => {
    expect(shardIdOf('shardId-000000000003:49545115243490985018280067714973144582180062593244200961')).toBe('shardId-000000000003');
    expect(shardIdOf(undefined)).toBe('');
  });
});

describe('batch layer: CSV', () => {
  it('reads RFC 4180: quoted commas, escaped quotes, embedded line breaks, CRLF, a BOM and blank lines', () => {
    const text = '\ufeffcustomer_id,event_time,segment\r\nc-1,2024-05-01T00:00:00Z,"gold, plus"\r\n\r\nc-2,2024-05-01T00:00:00Z,"say ""hi""\nthere"\nc-3,2024-05-01T00:00:00Z,\n';
    expect(parseCsvRows(text)).toEqual([
      { line: 1, text: 'customer_id,event_time,segment', fields: ['customer_id', 'event_time', 'segment'] },
      { line: 2, text: 'c-1,2024-05-01T00:00:00Z,"gold, plus"', fields: ['c-1', '2024-05-01T00:00:00Z', 'gold, plus'] },
      { line: 4, text: 'c-2,2024-05-01T00:00:00Z,"say ""hi""\nthere"', fields: ['c-2', '2024-05-01T00:00:00Z', 'say "hi"\nthere'] },
      { line: 6, text: 'c-3,2024-05-01T00:00:00Z,', fields: ['c-3', '2024-05-01T00:00:00Z', ''] },
    ]);
    expect(parseCsvChunk(text).map((line) => [line.line, line.record])).toEqual([
      [2, { customer_id: 'c-1', event_time: '2024-05-01T00:00:00Z', segment: 'gold, plus' }],
      [4, { customer_id: 'c-2', event_time: '2024-05-01T00:00:00Z', segment: 'say "hi"\nthere' }],
      [6, { customer_id: 'c-3', event_time: '2024-05-01T00:00:00Z', segment: '' }],
    ]);
  });

  it('flags malformed rows with their line and keeps reading', () => {
    const text = 'a,b\n1,2,3\n"x"y,2\n4,5\n"open,6\n7,8\n';
    const lines = parseCsvChunk(text);
    expect(lines.map((line) => [line.line, line.text, line.record ?? line.issues])).toEqual([
      [2, '1,2,3', [{ field: 'line', message: 'line 2 has 3 fields; the header has 2' }]],
      [3, '"x"y,2', [{ field: 'line', message: 'line 3 has text after a closing quote (a quote inside a field must be doubled and the field quoted)' }]],
      [4, '4,5', { a: '4', b: '5' }],
      [5, '"open,6\n7,8\n', [{ field: 'line', message: 'line 5 has an unterminated quoted field' }]],
    ]);
  });

  it('rejects every row when the header is unusable', () => {
    expect(parseCsvChunk('a,a\n1,2\n')).toEqual([{ line: 2, text: '1,2', issues: [{ field: 'header', message: "the CSV header (line 1) is unusable: column 'a' appears twice" }] }]);
    expect(parseCsvChunk('')).toEqual([]);
    expect(parseCsvChunk('a,b\n')).toEqual([]);
  });

  const cell = fc.string({ unit: fc.constantFrom('a', 'Z', '1', ' ', ',', '"', '\n', '\r', 'é', '😀', '\t'), maxLength: 8 });
  const tables = fc
    .uniqueArray(fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/), { minLength: 1, maxLength: 5 })
    .chain((header) =>
      fc.record({
        header: fc.constant(header),
        rows: fc.array(fc.array(cell, { minLength: header.length, maxLength: header.length }), { maxLength: 8 }),
        crlf: fc.boolean(),
        trailingNewline: fc.boolean(),
      }),
    );

  function serialise(fields: readonly string[]): string {
    if (fields.length === 1 && fields[0] === '') return '""';
    return fields.map((field) => (/[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field)).join(',');
  }

  it('round-trips generated tables (quotes, commas, line breaks) with the line each row starts on', () => {
    fc.assert(
      fc.property(tables, ({ header, rows, crlf, trailingNewline }) => {
        const newline = crlf ? '\r\n' : '\n';
        const texts = [header, ...rows].map(serialise);
        const text = texts.join(newline) + (trailingNewline ? newline : '');
        const parsed = parseCsvRows(text);
        expect(parsed.map((row) => row.fields)).toEqual([header, ...rows]);
        expect(parsed.map((row) => row.text)).toEqual(texts);
        expect(parsed.every((row) => row.error === undefined)).toBe(true);
        let line = 1;
        texts.forEach((rowText, index) => {
          expect(parsed[index]?.line).toBe(line);
          line += rowText.split('\n').length;
        });
        const records = parseCsvChunk(text);
        expect(records.map((record) => record.record)).toEqual(rows.map((row) => Object.fromEntries(header.map((name, i) => [name, row[i]]))));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', ',', '"', '\n', '\r', ' ') }), (text) => {
        for (const line of parseCsvChunk(text)) {
          expect(line.record !== undefined || (line.issues?.length ?? 0) > 0).toBe(true);
        }
      }),
    );
  });
});

describe('batch layer: JSON Lines', () => {
  it('reads one object per line with its line number, flagging bad lines', () => {
    const text = '{"a":1}\r\n\n[1]\n{"a":{"b":1}}\nnot json\n{"a":"x","b":null}';
    expect(parseJsonLinesChunk(text)).toEqual([
      { line: 1, text: '{"a":1}', record: { a: 1 } },
      { line: 3, text: '[1]', issues: [{ field: 'line', message: 'line 3 must be a JSON object of feature name -> value' }] },
      { line: 4, text: '{"a":{"b":1}}', issues: [{ field: 'record.a', feature: 'a', message: 'must be a string, a number or null' }] },
      { line: 5, text: 'not json', issues: [{ field: 'line', message: 'line 5 is not valid JSON' }] },
      { line: 6, text: '{"a":"x","b":null}', record: { a: 'x', b: null } },
    ]);
  });

  it('evaluates a chunk into valid records and rejections that point at the object and line', () => {
    const text = [
      JSON.stringify({ account_id: 7, ts: 1714557600.5, balance: 10 }),
      JSON.stringify({ account_id: 'seven', ts: 1714557600 }),
      'oops',
    ].join('\n');
    const evaluations = evaluateChunk(ACCOUNTS, parseJsonLinesChunk(text), { bucket: 'b', key: 'k/part-0.jsonl' });
    expect(evaluations[0]).toMatchObject({ ok: true, recordId: '7', source: { kind: 's3', bucket: 'b', key: 'k/part-0.jsonl', line: 1 } });
    expect(evaluations[1]).toMatchObject({
      ok: false,
      rejection: { featureGroup: 'accounts', source: { kind: 's3', line: 2 }, issues: [{ feature: 'account_id' }], payload: '{"account_id":"seven","ts":1714557600}' },
    });
    expect(evaluations[2]).toMatchObject({ ok: false, rejection: { reason: 'line: line 3 is not valid JSON', payload: 'oops', source: { line: 3 } } });
  });

  it('checks the batch input, naming the field', () => {
    expect(parseBatchIngestionInput({ featureGroup: 'accounts', bucket: 'b', key: 'k', format: 'csv', Size: 10 }, GROUPS).input).toEqual({
      featureGroup: 'accounts',
      bucket: 'b',
      key: 'k',
      format: 'csv',
    });
    const cases: Array<[unknown, string, string]> = [
      [{ featureGroup: 'accounts', key: 'k', format: 'csv' }, 'bucket', 'bucket: is required (a string)'],
      [{ featureGroup: 'accounts', bucket: 'b', key: 'k', format: 'parquet' }, 'format', 'format: must be one of csv, jsonl'],
      [{ featureGroup: 'orders', bucket: 'b', key: 'k', format: 'csv' }, 'featureGroup', "featureGroup: unknown feature group 'orders'; this function serves: accounts, customers"],
      ['x', 'input', 'input: must be an object with featureGroup, bucket, key and format'],
    ];
    for (const [input, field, message] of cases) {
      const error = catchError(() => parseBatchIngestionInput(input, GROUPS));
      expect(error).toBeInstanceOf(IngestionInputError);
      expect(error).toMatchObject({ name: 'IngestionInputError', field, message });
    }
  });
});

describe('Feature Store errors', () => {
  it.each([
    [{ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }, 'throttled', true],
    [{ name: 'Whatever', $metadata: { httpStatusCode: 429 } }, 'throttled', true],
    [{ name: 'ValidationError', $metadata: { httpStatusCode: 400 } }, 'validation', false],
    [{ name: 'ResourceNotFound', $metadata: { httpStatusCode: 404 } }, 'not-found', false],
    [{ name: 'AccessForbidden', $metadata: { httpStatusCode: 403 } }, 'forbidden', false],
    [{ name: 'ServiceUnavailable', $metadata: { httpStatusCode: 503 } }, 'unavailable', true],
    [{ name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }, 'unavailable', true],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'unavailable', true],
    [{ name: 'TimeoutError', message: 'socket hang up' }, 'timeout', true],
    [{ name: 'Odd' }, 'other', false],
    ['a string', 'other', false],
    [null, 'other', false],
  ])('classifies %j as %s', (error, kind, retriable) => {
    expect(classifyFeatureStoreError(error)).toMatchObject({ kind, retriable });
  });
});

describe('lookups', () => {
  it('types values by the definition: integral -> number when safe, fractional -> number, string -> string', () => {
    expect(
      fromFeatureStoreRecord(CUSTOMERS, [
        { FeatureName: 'customer_id', ValueAsString: '0042' },
        { FeatureName: 'orders_30d', ValueAsString: '9007199254740993' },
        { FeatureName: 'spend_30d', ValueAsString: '1.5e3' },
        { FeatureName: 'segment', ValueAsString: '12' },
        { FeatureName: 'dropped_feature', ValueAsString: '1' },
      ]),
    ).toEqual({ customer_id: '0042', orders_30d: '9007199254740993', spend_30d: 1500, segment: '12', dropped_feature: '1' });
    expect(fromFeatureStoreRecord(ACCOUNTS, [{ FeatureName: 'account_id', ValueAsString: '-12' }])).toEqual({ account_id: -12 });
  });

  it('splits BatchGetRecord into calls of at most 100 ids, without duplicates', () => {
    const ids = Array.from({ length: 250 }, (_, i) => `c-${i}`);
    const inputs = batchGetRecordInputs(CUSTOMERS, [...ids, 'c-0'], ['segment']);
    expect(inputs.map((input) => input.Identifiers[0]?.RecordIdentifiersValueAsString.length)).toEqual([100, 100, 50]);
    expect(inputs[2]).toEqual({ Identifiers: [{ FeatureGroupName: 'customers', RecordIdentifiersValueAsString: ids.slice(200), FeatureNames: ['segment'] }] });
  });

  function fakeBatchClient(answer: (input: BatchGetRecordInputLike, call: number) => BatchGetRecordOutputLike | Promise<BatchGetRecordOutputLike>) {
    const calls: BatchGetRecordInputLike[] = [];
    return {
      calls,
      batchGetRecord: async (input: BatchGetRecordInputLike) => {
        calls.push(input);
        return answer(input, calls.length);
      },
    };
  }

  const stored = (id: string) => ({
    FeatureGroupName: 'accounts',
    RecordIdentifierValueAsString: id,
    Record: wireRecord({ account_id: id, balance: '2.25' }),
  });

  it('returns found entities in the order asked for and lists the missing ones', async () => {
    const client = fakeBatchClient((input) => ({ Records: input.Identifiers[0]!.RecordIdentifiersValueAsString.filter((id) => id !== '2').reverse().map(stored), Errors: [], UnprocessedIdentifiers: [] }));
    const result = await lookupFeatures(client, ACCOUNTS, ['3', '1', '2', '3']);
    expect(result).toEqual({
      records: [
        { recordId: '3', features: { account_id: 3, balance: 2.25 } },
        { recordId: '1', features: { account_id: 1, balance: 2.25 } },
      ],
      missing: ['2'],
    });
    expect(client.calls).toEqual([{ Identifiers: [{ FeatureGroupName: 'accounts', RecordIdentifiersValueAsString: ['3', '1', '2'] }] }]);
  });

  it('asks again for unprocessed identifiers, and gives up with a 503 after two more tries', async () => {
    const once = fakeBatchClient((input, call) =>
      call === 1 ? { Records: [stored('1')], UnprocessedIdentifiers: [{ FeatureGroupName: 'accounts', RecordIdentifiersValueAsString: ['2'] }] } : { Records: input.Identifiers[0]!.RecordIdentifiersValueAsString.map(stored) },
    );
    expect((await lookupFeatures(once, ACCOUNTS, ['1', '2'])).missing).toEqual([]);
    expect(once.calls[1]).toEqual({ Identifiers: [{ FeatureGroupName: 'accounts', RecordIdentifiersValueAsString: ['2'] }] });

    const never = fakeBatchClient(() => ({ UnprocessedIdentifiers: [{ FeatureGroupName: 'accounts', RecordIdentifiersValueAsString: ['2'] }] }));
    const error = await catchAsync(() => lookupFeatures(never, ACCOUNTS, ['2']));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ status: 503 });
    expect(never.calls).toHaveLength(3);
  });

  it('maps failures: thrown throttling -> 429, per-id throttling -> 429, per-id not found -> missing', async () => {
    const thrown = fakeBatchClient(() => Promise.reject(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } })));
    expect(await catchAsync(() => lookupFeatures(thrown, ACCOUNTS, ['1']))).toMatchObject({ status: 429, code: 'Throttled' });
    const perId = fakeBatchClient(() => ({ Errors: [{ FeatureGroupName: 'accounts', RecordIdentifierValueAsString: '1', ErrorCode: 'ThrottlingException', ErrorMessage: 'slow down' }] }));
    expect(await catchAsync(() => lookupFeatures(perId, ACCOUNTS, ['1']))).toMatchObject({ status: 429 });
    const notFound = fakeBatchClient(() => ({ Errors: [{ FeatureGroupName: 'accounts', RecordIdentifierValueAsString: '1', ErrorCode: 'ResourceNotFound', ErrorMessage: 'no record' }] }));
    expect(await lookupFeatures(notFound, ACCOUNTS, ['1'])).toEqual({ records: [], missing: ['1'] });
  });

  it('refuses unknown feature names and malformed ids before calling Feature Store', async () => {
    const client = fakeBatchClient(() => ({}));
    expect(await catchAsync(() => lookupFeatures(client, ACCOUNTS, ['1'], ['balance', 'colour']))).toMatchObject({
      status: 400,
      field: 'features',
      message: "features: unknown feature 'colour' in accounts; features: account_id, balance, ts",
    });
    expect(await catchAsync(() => lookupFeatures(client, ACCOUNTS, ['1', 'x']))).toMatchObject({ status: 400, field: 'ids[1]' });
    expect(client.calls).toHaveLength(0);
    expect(catchError(() => checkRecordId(ACCOUNTS, ''))).toMatchObject({ status: 400, message: 'recordId: must be a non-empty string' });
  });

  it('looks one entity up with GetRecord; an empty answer means no features', async () => {
    const calls: unknown[] = [];
    const client = {
      getRecord: async (input: unknown) => {
        calls.push(input);
        return calls.length === 1 ? { Record: [{ FeatureName: 'segment', ValueAsString: 'gold' }] } : {};
      },
    };
    expect(await lookupRecord(client, CUSTOMERS, 'c-1', ['segment', 'segment'])).toEqual({ segment: 'gold' });
    expect(await lookupRecord(client, CUSTOMERS, 'c-2')).toBeUndefined();
    expect(calls).toEqual([
      { FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-1', FeatureNames: ['segment'] },
      { FeatureGroupName: 'customers', RecordIdentifierValueAsString: 'c-2' },
    ]);
  });

  it('resolves groups (404 listing them) and parses the batch body and features query', () => {
    expect(catchError(() => resolveFeatureGroup(GROUPS, 'orders'))).toMatchObject({ status: 404, message: "featureGroup: unknown feature group 'orders'; feature groups: accounts, customers" });
    expect(catchError(() => parseBatchLookupRequest({ ids: [] }))).toMatchObject({ status: 400, field: 'ids', message: 'ids: must hold at least one id' });
    expect(catchError(() => parseBatchLookupRequest({ ids: Array.from({ length: 101 }, String) }))).toMatchObject({ field: 'ids', message: 'ids: must hold at most 100 ids' });
    expect(catchError(() => parseBatchLookupRequest({ ids: ['1'], extra: 1 }))).toMatchObject({ field: 'extra', message: 'extra: unknown field' });
    expect(catchError(() => parseBatchLookupRequest({ ids: ['1', 2] }))).toMatchObject({ field: 'ids[1]', message: 'ids[1]: must be a string' });
    expect(parseFeaturesQuery(' a, ,b ')).toEqual(['a', 'b']);
    expect(parseFeaturesQuery(undefined)).toBeUndefined();
    expect(() => new RequestError(400, 'x')).not.toThrow();
  });
});

describe('helpers', () => {
  it('never runs more than the limit at once', async () => {
    const limit = createLimiter(3);
    let active = 0;
    let peak = 0;
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        limit(async () => {
          active += 1;
          peak = Math.max(peak, active);
          await new Promise((resolve) => setTimeout(resolve, 1));
          active -= 1;
          if (i === 5) throw new Error('boom');
          return i;
        }).catch((error: Error) => error.message),
      ),
    );
    expect(peak).toBe(3);
    expect(results[5]).toBe('boom');
    expect(results[19]).toBe(19);
  });

  it('packs SQS batches by count and size', () => {
    const small = Array.from({ length: 23 }, (_, i) => `m${i}`);
    expect(sqsBatches(small).map((batch) => batch.length)).toEqual([10, 10, 3]);
    expect(sqsBatches(small)[2]).toEqual([
      { Id: '20', MessageBody: 'm20' },
      { Id: '21', MessageBody: 'm21' },
      { Id: '22', MessageBody: 'm22' },
    ]);
    const big = 'x'.repeat(MAX_SQS_MESSAGE_BYTES / 2);
    expect(sqsBatches([big, big, 'a', big]).map((batch) => batch.map((entry) => entry.Id))).toEqual([['0', '1'], ['2', '3']]);
  });

  it('builds a rejection whose reason lists every issue', () => {
    expect(rejectedRecord({ issues: [], source: KINESIS, payload: 'p' }).reason).toBe('record: was rejected');
  });
});

describe('properties', () => {
  const featureValue = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.double(),
    fc.integer(),
    fc.bigInt().map(String),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom('2024-05-01T00:00:00Z', '', ' 7 ', '1e999', 'NaN'),
  );
  const anyRecord = fc.dictionary(fc.oneof(fc.constantFrom(...CUSTOMERS.features.map((feature) => feature.name)), fc.string({ maxLength: 6 })), featureValue, { maxKeys: 8 });

  it('validation never throws, and every rejection names a feature', () => {
    fc.assert(
      fc.property(anyRecord, (record) => {
        const evaluation = evaluateRecord(CUSTOMERS, record as Record<string, FeatureValue>, KINESIS, JSON.stringify(record));
        if (evaluation.ok) return;
        expect(evaluation.rejection.issues.length).toBeGreaterThan(0);
        for (const issue of evaluation.rejection.issues) {
          expect(typeof issue.feature).toBe('string');
          expect(issue.field).toBe(`record.${issue.feature}`);
          expect(issue.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('the Kinesis path never throws on arbitrary payloads', () => {
    const payload = fc.oneof(
      fc.string(),
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.record({ featureGroup: fc.constantFrom('customers', 'accounts', 'x'), record: anyRecord }).map((envelope) => JSON.stringify(envelope)),
    );
    fc.assert(
      fc.property(payload, fc.boolean(), (text, raw) => {
        const evaluation = evaluateKinesisRecord(GROUPS, raw ? text : b64(text), KINESIS);
        if (!evaluation.ok) {
          expect(evaluation.rejection.reason.length).toBeGreaterThan(0);
          expect(typeof evaluation.rejection.payload).toBe('string');
        }
      }),
      { numRuns: 500 },
    );
  });

  const trimmedString = fc.string({ minLength: 1, maxLength: 16 }).filter((text) => text.trim() === text && text.length > 0);
  const typedRecord = fc.record(
    {
      customer_id: trimmedString,
      event_time: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((date) => date.toISOString()),
      orders_30d: fc.maxSafeInteger(),
      spend_30d: fc.double({ noNaN: true, noDefaultInfinity: true }).map((value) => (Object.is(value, -0) ? 0 : value)),
      segment: trimmedString,
    },
    { requiredKeys: ['customer_id', 'event_time'] },
  );

  it('round-trips typed record -> wire -> typed', () => {
    fc.assert(
      fc.property(typedRecord, (record) => {
        const wire = toFeatureStoreRecord(CUSTOMERS, record);
        if (!wire.ok) throw new Error(`expected a valid record: ${JSON.stringify(wire.issues)}`);
        expect(fromFeatureStoreRecord(CUSTOMERS, wire.record)).toEqual(record);
      }),
      { numRuns: 500 },
    );
  });
});
