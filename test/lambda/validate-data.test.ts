// The data-validation function as it ships (the esbuild bundle, assets/lambda/validate-data) against
// moto's S3. The function talks to S3 through a small proxy in front of moto, which can drop connections
// as an S3 that goes away does, so the tests see what the workflow would: an error to retry.
import { CreateBucketCommand, GetObjectCommand, GetObjectTaggingCommand, HeadObjectCommand, ListObjectsV2Command, PutBucketVersioningCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import type { ValidateResult } from '../../lambda/validate-data';
import { parseConstraints, type Constraints } from '../../lambda/shared/data-validation';
import type { ValidationReport } from '../../lambda/shared/data-validation-run';
import { buildBaseline } from '../../lambda/shared/drift';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { contextRunningOutAfter, startDroppingProxy } from '../support/dropping-proxy';

type ValidateHandler = (event: unknown, context?: Context) => Promise<ValidateResult>;

const { bundle: HANDLER_BUNDLE } = handlerModulePaths('validate-data');
const DATA_BUCKET = 'ml-training';
const CONFIG_BUCKET = 'ml-config';
const PREFIX = 'churn/train/run-1/';
const CONSTRAINTS_KEY = 'constraints/churn/constraints.json';
const REPORT_URI = `s3://${DATA_BUCKET}/${PREFIX}validation/`;
const KMS_KEY = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const EVENT = {
  datasetUri: `s3://${DATA_BUCKET}/${PREFIX}`,
  format: 'csv',
  constraintsUri: `s3://${CONFIG_BUCKET}/${CONSTRAINTS_KEY}`,
  reportUri: REPORT_URI,
};

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'STATE_OBJECT_TAG'], {
  POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/DataValidation',
  POWERTOOLS_SERVICE_NAME: 'validate-data-test',
});

const HEADER = 'customer_id,tenure,charges,plan,churned';
/** A row like the reference's: tenure spread over 0-59, a third of the plans annual. */
const csvRow = (index: number): string => `c-${index},${index % 60},${((index * 7) % 100) + 0.25},${index % 3 === 0 ? 'annual' : 'monthly'},${index % 2 === 0}`;
const csvObject = (from: number, count: number): string => [HEADER, ...Array.from({ length: count }, (_, offset) => csvRow(from + offset))].join('\n');

const reference = Array.from({ length: 300 }, (_, index) => ({ tenure: index % 60, plan: index % 3 === 0 ? 'annual' : 'monthly' }));
const CONSTRAINTS: Constraints = parseConstraints({
  version: 1,
  datasetVersion: 'churn-2026-11',
  description: 'churn training data',
  columns: [
    { name: 'customer_id', type: 'string', required: true },
    { name: 'tenure', type: 'integral', required: true, min: 0, max: 120 },
    { name: 'charges', type: 'fractional', min: 0, max: 1000, maxMissingFraction: 0.2 },
    { name: 'plan', type: 'string', categories: ['annual', 'monthly'] },
    { name: 'churned', type: 'boolean' },
  ],
  dataset: { minRows: 10, maxQuarantinedFraction: 0.02 },
  drift: { baseline: buildBaseline(['tenure', 'plan'], reference, { categorical: ['plan'] }), psiThreshold: 0.2, minRows: 20 },
});



async function rejects(promise: Promise<unknown>): Promise<Error & { field?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the handler to throw');
}

describe('validate-data bundle against moto S3', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let proxy: Awaited<ReturnType<typeof startDroppingProxy>>;
  let handler: ValidateHandler;
  let constraintsVersion: string;

  const put = (key: string, body: string, bucket = DATA_BUCKET) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
  const text = async (key: string, bucket = DATA_BUCKET) => (await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString('utf-8'));
  const report = async () => JSON.parse(await text(`${PREFIX}validation/report.json`)) as ValidationReport;
  const keys = async (prefix: string) => ((await s3.send(new ListObjectsV2Command({ Bucket: DATA_BUCKET, Prefix: prefix }))).Contents ?? []).map((object) => object.Key!);
  const quarantined = async (parts: readonly string[]) => {
    const lines: Array<{ object: string; line: number; reasons: Array<{ kind: string; column?: string; message: string }>; text: string }> = [];
    for (const part of parts) {
      const body = await text(part.replace(`s3://${DATA_BUCKET}/`, ''));
      lines.push(...body.trim().split('\n').map((line) => JSON.parse(line)));
    }
    return lines;
  };
  /** Calls the handler with its continuation until it is done. */
  const runToEnd = async (event: Record<string, unknown>, checks: number) => {
    const results: ValidateResult[] = [];
    let continuation: string | null | undefined;
    await captureOutput(async () => {
      do {
        const result = await handler({ ...event, continuation }, contextRunningOutAfter(checks));
        results.push(result);
        continuation = result.continuation;
      } while (continuation !== null && results.length < 100);
    });
    return results;
  };

  beforeAll(async () => {
    moto = await startMoto();
    proxy = await startDroppingProxy(moto.endpoint);
    setEnv({ AWS_ENDPOINT_URL_S3: proxy.endpoint });
    s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    handler = loadFreshHandler<ValidateHandler>(HANDLER_BUNDLE);
  }, 30_000);

  afterAll(async () => {
    s3?.destroy();
    await proxy?.close();
    await moto?.stop();
  });

  beforeEach(async () => {
    proxy.allow = Number.POSITIVE_INFINITY;
    proxy.requests.length = 0;
    await moto.reset();
    await s3.send(new CreateBucketCommand({ Bucket: DATA_BUCKET }));
    await s3.send(new CreateBucketCommand({ Bucket: CONFIG_BUCKET }));
    await s3.send(new PutBucketVersioningCommand({ Bucket: CONFIG_BUCKET, VersioningConfiguration: { Status: 'Enabled' } }));
    constraintsVersion = (await s3.send(new PutObjectCommand({ Bucket: CONFIG_BUCKET, Key: CONSTRAINTS_KEY, Body: JSON.stringify(CONSTRAINTS) }))).VersionId!;
  });

  it('passes a dataset that meets its constraints, skipping markers and its own report, and reports which constraints judged it', async () => {
    await put(`${PREFIX}part-0000.csv`, csvObject(0, 60));
    await put(`${PREFIX}part-0001.csv`, `${csvObject(60, 60)}\n`);
    await put(`${PREFIX}_SUCCESS`, '');
    await put(`${PREFIX}_temporary/0/part-0002.csv`, 'not,a,dataset');
    await put(`${PREFIX}validation/report.json`, '{"from":"an earlier run"}');

    const { result, lines } = await captureOutput(() => handler({ ...EVENT, kmsKeyId: KMS_KEY }));

    expect(result).toEqual({
      status: 'passed',
      rows: 120,
      valid: 120,
      quarantined: 0,
      objects: 2,
      violations: [],
      violationCount: 0,
      reportUri: `${REPORT_URI}report.json`,
      done: true,
      continuation: null,
    });
    const written = await report();
    const head = await s3.send(new HeadObjectCommand({ Bucket: CONFIG_BUCKET, Key: CONSTRAINTS_KEY }));
    expect(written).toMatchObject({
      version: 1,
      status: 'passed',
      dataset: { uri: EVENT.datasetUri, format: 'csv', objects: 2 },
      constraints: { uri: EVENT.constraintsUri, versionId: constraintsVersion, etag: head.ETag, formatVersion: 1, datasetVersion: 'churn-2026-11', description: 'churn training data' },
      calls: 1,
      rows: 120,
      valid: 120,
      quarantined: 0,
      violations: [],
      quarantine: { prefix: `${REPORT_URI}quarantine/`, objects: [], sample: [] },
    });
    expect(written.columns.find((column) => column.column === 'tenure')).toMatchObject({ present: 120, missing: 0, min: 0, max: 59, psi: expect.any(Number) });
    expect(written.columns.find((column) => column.column === 'tenure')!.psi!).toBeLessThan(0.05);
    const encryption = await s3.send(new HeadObjectCommand({ Bucket: DATA_BUCKET, Key: `${PREFIX}validation/report.json` }));
    expect(encryption).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: KMS_KEY });
    expect(emfDocuments(lines)).toEqual([expect.objectContaining({ RecordsValidated: 120, RecordsQuarantined: 0, ValidationViolations: 0 })]);
    expect(JSON.stringify(emfDocuments(lines)[0]!._aws)).toContain('"Namespace":"MlPlatform/DataValidation"');
    expect(logEntries(lines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'validation passed', rows: 120, objects: 2 }));
  });

  it('fails a dataset that does not, naming each violated constraint, and quarantines the bad rows with their object, line and reasons', async () => {
    const good = Array.from({ length: 100 }, (_, index) =>
      JSON.stringify({ customer_id: `c-${index}`, tenure: 100 + (index % 20), ...(index % 10 < 3 ? {} : { charges: 20.5 }), plan: index % 3 === 0 ? 'annual' : 'monthly', churned: index % 2 === 0 }),
    );
    const bad = [
      JSON.stringify({ customer_id: 'b-1', tenure: -5, plan: 'annual' }),
      JSON.stringify({ customer_id: 'b-2', tenure: 3, plan: 'weekly', churned: 'maybe' }),
      JSON.stringify({ tenure: 3 }),
      'not json',
    ];
    await put(`${PREFIX}part-0000.jsonl`, [...good.slice(0, 50), bad[0], bad[1]].join('\n'));
    await put(`${PREFIX}part-0001.jsonl`, [bad[2], ...good.slice(50), '', bad[3]].join('\n'));

    const { result, lines } = await captureOutput(() => handler({ ...EVENT, format: 'jsonl' }));

    expect(result).toMatchObject({ status: 'failed', rows: 104, valid: 100, quarantined: 4, objects: 2, done: true, continuation: null, violationCount: 3 });
    expect(result.violations.map((violation) => [violation.constraint, violation.column])).toEqual([
      ['completeness', 'charges'],
      ['distribution', 'tenure'],
      ['quarantined-fraction', null],
    ]);
    expect(result.violations[0]).toEqual({
      constraint: 'completeness',
      column: 'charges',
      observed: 0.3,
      expected: 0.2,
      message: "'charges' is missing in 30% of the valid rows (30 of 100); at most 20% may be",
    });
    expect(result.violations[2]).toMatchObject({ observed: 4 / 104, expected: 0.02 });
    const written = await report();
    expect(written.violations).toEqual(result.violations);
    expect(written.quarantine.objects).toEqual([`${REPORT_URI}quarantine/part-00000.jsonl`]);
    expect(await quarantined(written.quarantine.objects)).toEqual([
      { object: `${PREFIX}part-0000.jsonl`, line: 51, reasons: [{ kind: 'range', column: 'tenure', message: 'is below the minimum 0; got -5' }], text: bad[0] },
      {
        object: `${PREFIX}part-0000.jsonl`,
        line: 52,
        reasons: [
          { kind: 'category', column: 'plan', message: 'is not an allowed category (annual, monthly); got "weekly"' },
          { kind: 'type', column: 'churned', message: 'must be boolean (true or false); got "maybe"' },
        ],
        text: bad[1],
      },
      { object: `${PREFIX}part-0001.jsonl`, line: 1, reasons: [{ kind: 'missing', column: 'customer_id', message: 'is required; the value is missing' }], text: bad[2] },
      { object: `${PREFIX}part-0001.jsonl`, line: 53, reasons: [{ kind: 'malformed', message: 'line 53 is not valid JSON' }], text: 'not json' },
    ]);
    expect(written.quarantine.sample).toHaveLength(4);
    expect(written.columns.find((column) => column.column === 'plan')!.quarantined).toEqual({ missing: 0, type: 0, range: 0, category: 1 });
    expect(emfDocuments(lines)).toEqual([expect.objectContaining({ RecordsValidated: 104, RecordsQuarantined: 4, ValidationViolations: 3 })]);
    expect(logEntries(lines, 'WARN')).toHaveLength(4);
  });

  it('fails a CSV object whose header lacks a required column', async () => {
    await put(`${PREFIX}part-0000.csv`, csvObject(0, 60));
    await put(`${PREFIX}part-0001.csv`, ['tenure,charges', '5,1.5'].join('\n'));
    const { result } = await captureOutput(() => handler(EVENT));
    expect(result.violations[0]).toEqual({
      constraint: 'required-column',
      column: 'customer_id',
      observed: 1,
      expected: 0,
      message: "required column 'customer_id' is missing from the header of 1 CSV object",
    });
  });

  it.each([2, 3, 7])('goes on from its continuation before the deadline (after %i lines a call), inside objects, records and across objects, to the result of one call', async (checks) => {
    // A record whose quoted field spans three lines: a continuation must never start inside it.
    const quoted = `${HEADER}\n"c-q1\nsecond\nthird",5,10.25,annual,true\n${csvRow(1)}\nc-bad,x,1,annual,true\n${csvRow(2)}`;
    await put(`${PREFIX}a.csv`, csvObject(0, 40));
    await put(`${PREFIX}b.csv`, quoted);
    await put(`${PREFIX}c.csv`, `${csvObject(40, 30)}\nc-worse,7,-1,weekly,true\n`);

    const { result: single } = await captureOutput(() => handler(EVENT));
    const singleReport = await report();
    const results = await runToEnd(EVENT, checks);

    expect(results.length).toBeGreaterThan(8);
    expect(results.slice(0, -1).every((result) => result.status === 'in-progress' && !result.done && result.reportUri === null && typeof result.continuation === 'string')).toBe(true);
    expect(results.at(-1)).toEqual(single);
    expect(single).toMatchObject({ rows: 75, valid: 73, quarantined: 2, objects: 3 });
    const rows = results.map((result) => result.rows);
    expect([...rows].sort((a, b) => a - b)).toEqual(rows);
    // The continuation is small: the state is in S3, one object per call.
    expect(Math.max(...results.map((result) => result.continuation?.length ?? 0))).toBeLessThan(200);
    expect((await keys(`${PREFIX}validation/_state/`)).length).toBe(results.length - 1);

    const written = await report();
    expect(written).toMatchObject({ calls: results.length, rows: 75, violations: singleReport.violations, columns: singleReport.columns });
    expect(written.quarantine.objects.length).toBeGreaterThanOrEqual(1);
    expect((await quarantined(written.quarantine.objects)).map((line) => [line.object, line.line, line.reasons.map((reason) => reason.kind)])).toEqual([
      [`${PREFIX}b.csv`, 6, ['type']],
      [`${PREFIX}c.csv`, 32, ['range', 'category']],
    ]);
  });

  it('judges every call by the constraints version it started with', async () => {
    await put(`${PREFIX}a.csv`, csvObject(0, 60));
    await captureOutput(async () => {
      const first = await handler(EVENT, contextRunningOutAfter(10));
      expect(first.done).toBe(false);
      await put(CONSTRAINTS_KEY, JSON.stringify({ ...CONSTRAINTS, dataset: { minRows: 1000 } }), CONFIG_BUCKET);
      const results = [first];
      while (results.at(-1)!.continuation !== null) results.push(await handler({ ...EVENT, continuation: results.at(-1)!.continuation }));
      expect(results.at(-1)).toMatchObject({ status: 'passed', rows: 60 });
    });
    expect((await report()).constraints.versionId).toBe(constraintsVersion);
  });

  it('tags its resume state, and only that, when told the tag: a lifecycle rule expires those objects', async () => {
    setEnv({ AWS_ENDPOINT_URL_S3: proxy.endpoint, STATE_OBJECT_TAG: 'ml-platform:purpose=validation-resume-state' });
    const tagging = loadFreshHandler<ValidateHandler>(HANDLER_BUNDLE);
    setEnv({ AWS_ENDPOINT_URL_S3: proxy.endpoint });
    await put(`${PREFIX}a.csv`, csvObject(0, 60));
    const tagsOf = async (key: string) => (await s3.send(new GetObjectTaggingCommand({ Bucket: DATA_BUCKET, Key: key }))).TagSet;
    await captureOutput(async () => {
      const results = [await tagging(EVENT, contextRunningOutAfter(10))];
      expect(results[0]!.done).toBe(false);
      while (results.at(-1)!.continuation !== null) results.push(await tagging({ ...EVENT, continuation: results.at(-1)!.continuation }));
      expect(results.at(-1)).toMatchObject({ status: 'passed', rows: 60 });
    });
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: DATA_BUCKET, Prefix: `${PREFIX}validation/` }));
    const keys = (listed.Contents ?? []).map((object) => object.Key!);
    const states = keys.filter((key) => key.includes('/_state/'));
    expect(states.length).toBeGreaterThan(0);
    for (const key of states) expect(await tagsOf(key)).toEqual([{ Key: 'ml-platform:purpose', Value: 'validation-resume-state' }]);
    expect(await tagsOf(`${PREFIX}validation/report.json`)).toEqual([]);
  });

  it('validates a micro-batch of records in one call', async () => {
    const records = [
      { customer_id: 'c-1', tenure: 5, charges: 1.5, plan: 'annual', churned: false },
      { customer_id: 'c-2', tenure: 500 },
    ];
    const { result } = await captureOutput(() => handler({ records, constraintsUri: EVENT.constraintsUri, reportUri: `s3://${DATA_BUCKET}/stream/batch-7/` }));
    expect(result).toMatchObject({ status: 'failed', rows: 2, valid: 1, quarantined: 1, objects: 0, done: true, reportUri: `s3://${DATA_BUCKET}/stream/batch-7/report.json` });
    expect(result.violations.map((violation) => violation.constraint)).toEqual(['min-rows', 'quarantined-fraction']);
    const body = await text('stream/batch-7/quarantine/part-00000.jsonl');
    expect(JSON.parse(body)).toEqual({ object: 'records', line: 2, reasons: [{ kind: 'range', column: 'tenure', message: 'is above the maximum 120; got 500' }], text: JSON.stringify(records[1]) });
  });

  it('lets S3 errors through for the workflow to retry, and a retried call ends as an undisturbed run does', async () => {
    await put(`${PREFIX}a.csv`, `${csvObject(0, 40)}\nc-bad,x,1,annual,true`);
    await put(`${PREFIX}b.csv`, csvObject(40, 40));

    // S3 goes away after the constraints, the listing and the first object: reading the second fails.
    proxy.allow = 3;
    const { result: error, lines } = await captureOutput(() => rejects(handler(EVENT)));
    expect(error.name).not.toBe('DataValidationInputError');
    expect(logEntries(lines, 'ERROR')).toContainEqual(expect.objectContaining({ message: 'validation failed' }));
    proxy.allow = Number.POSITIVE_INFINITY;
    expect(await keys(`${PREFIX}validation/`)).toEqual([]);

    // Mid-run: the second call loses S3 while it saves its state; the workflow retries it with the same continuation.
    const first = await captureOutput(() => handler(EVENT, contextRunningOutAfter(20)));
    expect(first.result.done).toBe(false);
    proxy.requests.length = 0;
    proxy.allow = 3; // the state, the constraints, the object it stopped in; then the quarantine part or the state fails
    const failed = await captureOutput(() => rejects(handler({ ...EVENT, continuation: first.result.continuation }, contextRunningOutAfter(20))));
    expect(failed.result.name).not.toBe('DataValidationInputError');
    expect(proxy.requests.length).toBeGreaterThan(3);
    proxy.allow = Number.POSITIVE_INFINITY;
    const rest = await runToEnd({ ...EVENT, continuation: first.result.continuation }, 20);

    const { result: undisturbed } = await captureOutput(() => handler(EVENT));
    expect(rest.at(-1)).toEqual(undisturbed);
    expect(undisturbed).toMatchObject({ rows: 81, quarantined: 1 });
  });

  it.each([
    [{ ...EVENT, datasetUri: `s3://${DATA_BUCKET}/churn/none/` }, 'datasetUri', `datasetUri: no data objects under s3://${DATA_BUCKET}/churn/none/ (folder markers and names starting with _ or . are skipped)`],
    [{ ...EVENT, datasetUri: 's3://no-such-bucket/train/' }, 'datasetUri', "datasetUri: no bucket 'no-such-bucket'"],
    [{ ...EVENT, constraintsUri: `s3://${CONFIG_BUCKET}/missing.json` }, 'constraintsUri', `constraintsUri: cannot read s3://${CONFIG_BUCKET}/missing.json (NoSuchKey)`],
    [{ ...EVENT, constraintsUri: `s3://${CONFIG_BUCKET}/bad.json` }, 'constraintsUri', `constraintsUri: s3://${CONFIG_BUCKET}/bad.json is not a valid constraints document: columns[0].type: must be one of integral, fractional, string, boolean`],
    [{ ...EVENT, continuation: 'bogus' }, 'continuation', 'continuation: is not a continuation this function returned'],
    [{ ...EVENT, format: 'xml' }, 'format', 'format: must be one of csv, jsonl'],
  ])('throws DataValidationInputError naming the field for %j', async (event, field, message) => {
    await put(`${PREFIX}_SUCCESS`, '');
    await put('churn/none/_SUCCESS', '');
    await put('bad.json', JSON.stringify({ version: 1, columns: [{ name: 'a', type: 'number' }] }), CONFIG_BUCKET);
    const { result: error } = await captureOutput(() => rejects(handler(event)));
    expect(error).toMatchObject({ name: 'DataValidationInputError', field, message });
  });
});
