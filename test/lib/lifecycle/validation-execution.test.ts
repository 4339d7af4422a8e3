// The training pipeline's data validation in moto's Step Functions engine. moto's Lambda cannot run the
// function without Docker, so each test first runs the function as it ships (the esbuild bundle,
// assets/lambda/validate-data) against the dataset and constraints in moto's S3, with the very payloads the
// workflow sends, and queues what it returned (or the error it threw) as the Lambda's results. The workflow
// then runs from its start (input, dataset listing and version) with that dataset, up to the preprocessing
// job, which moto cannot run (`.sync`), or to the end of a failed validation.
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateModelPackageGroupCommand, DescribeModelPackageCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import { Template } from 'aws-cdk-lib/assertions';
import type { ValidateResult } from '../../../lambda/validate-data';
import { parseConstraints } from '../../../lambda/shared/data-validation';
import type { ValidationReport } from '../../../lambda/shared/data-validation-run';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { handlerModulePaths, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv } from '../../support/handler-harness';
import { queueLambdaResults, sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { enableStepFunctionsExecution, renderForMoto, runExecution, startingAt } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { trainingPipeline } from './fixtures';
import { contextRunningOutAfter, startDroppingProxy } from '../../support/dropping-proxy';

type ValidateHandler = (event: unknown, context?: Context) => Promise<ValidateResult>;

const DATA_BUCKET = 'training-data';
const ARTIFACTS_BUCKET = 'model-artifacts';
const KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:validate-data-churn';
const DATA_PREFIX = 'churn/datasets/2026-11-26/';
/** The run id the workflow would draw at random; fixed, so the handler can be run beforehand with the report location the workflow names. */
const RUN_ID = 'a1b2c3d4e5f6';
const REPORT_URI = `s3://${ARTIFACTS_BUCKET}/churn/runs/${RUN_ID}/validation/`;

const HEADER = 'customer_id,tenure,charges,plan,churned';
const row = (index: number) => `c-${index},${index % 60},${((index * 7) % 100) + 0.25},${index % 3 === 0 ? 'annual' : 'monthly'},${index % 2 === 0}`;
const csv = (lines: readonly string[]) => `${[HEADER, ...lines].join('\n')}\n`;
const rows = (from: number, count: number) => Array.from({ length: count }, (_, offset) => row(from + offset));

const CONSTRAINTS = parseConstraints({
  version: 1,
  datasetVersion: 'churn-2026-11',
  columns: [
    { name: 'customer_id', type: 'string', required: true },
    { name: 'tenure', type: 'integral', required: true, min: 0, max: 120 },
    { name: 'charges', type: 'fractional', min: 0, max: 1000, maxMissingFraction: 0.1 },
    { name: 'plan', type: 'string', categories: ['annual', 'monthly'] },
    { name: 'churned', type: 'boolean' },
  ],
  dataset: { minRows: 20, maxQuarantinedFraction: 0.05 },
});

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3'], {
  POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/DataValidation',
  POWERTOOLS_SERVICE_NAME: 'data-validation-churn',
});


const plentyOfTime = { getRemainingTimeInMillis: () => 900_000 } as unknown as Context;

/** The payloads the Lambda task was called with, in order. */
const payloads = (events: readonly HistoryEvent[]) =>
  events.filter((event) => event.taskScheduledEventDetails?.resourceType === 'lambda').map((event) => JSON.parse(event.taskScheduledEventDetails!.parameters!).Payload);

/** What the function answers for a handler that threw, as Lambda reports it. */
const functionError = (error: Error) => ({ errorType: error.name, errorMessage: error.message });

let moto: MotoServer;
let proxy: Awaited<ReturnType<typeof startDroppingProxy>>;
let s3: S3Client;
let handler: ValidateHandler;
let notices: { topicArn: string; read: () => Promise<string[]> };

const world = trainingPipeline({ dataValidation: {} });
const template = Template.fromStack(world.stack).toJSON();
const logicalId = (construct: { node: { defaultChild?: unknown } }) => world.stack.getLogicalId(construct.node.defaultChild as any);
const groupName = world.group.modelPackageGroupName;

/**
 * The workflow as moto runs it: the test's buckets, topic, key and function, the fixed run id, a one-second
 * retry interval, and a Pass state in place of the preprocessing job, which moto cannot run (it fails the
 * execution with States.Runtime, "Unsupported sync callback procedure", before entering a `.sync` state).
 */
function definitionFor(topicArn: string): string {
  const rendered = renderForMoto(template, /ChurnTraining/, {
    [placeholderRef(logicalId(world.dataBucket))]: DATA_BUCKET,
    [placeholderRef(logicalId(world.artifactsBucket))]: ARTIFACTS_BUCKET,
    [placeholderArn(logicalId(world.topic))]: topicArn,
    [placeholderArn(logicalId(world.key))]: KEY_ARN,
    [placeholderArn(logicalId(world.pipeline.dataValidation!.function))]: FUNCTION_ARN,
  });
  const parsed = JSON.parse(rendered);
  const merge = parsed.States['Merge input over defaults'];
  expect(merge.Parameters.run).toEqual({ 'id.$': expect.stringContaining('States.UUID()') });
  merge.Parameters.run = { id: RUN_ID };
  // The catch-all retry waits 10 s and more on AWS; here a second, so that the test does not.
  const catchAll = parsed.States['Validate dataset'].Retry.find((retry: any) => retry.ErrorEquals.includes('States.ALL'));
  Object.assign(catchAll, { IntervalSeconds: 1 });
  expect(parsed.States.Preprocess.Resource).toBe('arn:aws:states:::sagemaker:createProcessingJob.sync');
  // What the job reads, but not the dataset listing: moto keeps its LastModified dates as Python datetimes and
  // cannot describe an execution that outputs them.
  parsed.States.Preprocess = { Type: 'Pass', Comment: 'stands in for the preprocessing job', Parameters: { 'config.$': '$.config', 'run.$': '$.run', 'data.$': '$.data', 'validation.$': '$.validation' }, End: true };
  return JSON.stringify(parsed);
}

/** The payload the workflow sends the function for this run: what the handler is run with before the workflow. */
const payloadFor = (constraintsKey = 'churn/constraints/constraints.json') => ({
  datasetUri: `s3://${DATA_BUCKET}/${DATA_PREFIX}`,
  format: 'csv',
  constraintsUri: `s3://${DATA_BUCKET}/${constraintsKey}`,
  reportUri: REPORT_URI,
  kmsKeyId: KEY_ARN,
  continuation: null as string | null,
});

/** Runs the shipped function as the workflow would: called again with each continuation until done. Returns each call's payload and result. */
async function validateAsTheWorkflowWould(payload: ReturnType<typeof payloadFor>, context: () => Context = () => plentyOfTime) {
  const calls: Array<{ payload: ReturnType<typeof payloadFor>; result: ValidateResult }> = [];
  await quietly(async () => {
    let next = payload;
    for (;;) {
      const result = await handler(next, context());
      calls.push({ payload: next, result });
      if (result.done || calls.length > 20) break;
      next = { ...payload, continuation: result.continuation };
    }
  });
  return calls;
}

const put = (key: string, body: string, bucket = DATA_BUCKET) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentLength: Buffer.byteLength(body) }));
const text = async (uri: string) => {
  const [, bucket, key] = /^s3:\/\/([^/]+)\/(.*)$/.exec(uri)!;
  return (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString('utf-8');
};

async function putDataset(files: Record<string, string>, constraints: Record<string, unknown> = { 'churn/constraints/constraints.json': CONSTRAINTS }) {
  for (const [name, body] of Object.entries(files)) await put(`${DATA_PREFIX}${name}`, body);
  for (const [key, document] of Object.entries(constraints)) await put(key, JSON.stringify(document));
}

/** Starts the workflow with `input` and the queued function results, and waits for it to end: failed, or at the preprocessing job. */
const start = (input: Record<string, unknown> = {}) => runExecution(moto, definitionFor(notices.topicArn), { modelFamily: 'churn', dataPrefix: DATA_PREFIX, ...input }, 30_000);

beforeAll(async () => {
  moto = await startMoto({ extended: true });
  proxy = await startDroppingProxy(moto.endpoint);
  setEnv({ AWS_ENDPOINT_URL_S3: proxy.endpoint });
  s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
  handler = loadFreshHandler<ValidateHandler>(handlerModulePaths('validate-data').bundle);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  await proxy?.close();
  await moto?.stop();
});

// moto's Step Functions cannot start a second execution once one has run: every test starts from a reset moto.
beforeEach(async () => {
  proxy.allow = Number.POSITIVE_INFINITY;
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  notices = await topicWithQueue(moto, 'training-notices');
  await s3.send(new CreateBucketCommand({ Bucket: DATA_BUCKET }));
  await s3.send(new CreateBucketCommand({ Bucket: ARTIFACTS_BUCKET }));
});

describe('the data validation of a training run', () => {
  test('a dataset that meets its constraints goes on to preprocessing, with the verdict and report in the state', async () => {
    await putDataset({ 'part-0000.csv': csv(rows(0, 30)), 'part-0001.csv': csv(rows(30, 30)), _SUCCESS: '' });
    const calls = await validateAsTheWorkflowWould(payloadFor());
    expect(calls.map((call) => call.result.status)).toEqual(['passed']);
    await queueLambdaResults(moto, calls.map((call) => call.result));

    const execution = await start();

    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.states).toContain('List dataset');
    expect(execution.states.slice(execution.states.indexOf('Dataset versioned'))).toEqual(['Dataset versioned', 'Start validation', 'Validate dataset', 'Dataset valid?', 'Preprocess']);
    expect(payloads(execution.events)).toEqual(calls.map((call) => call.payload));
    // What the preprocessing job would start with.
    expect(execution.output).toMatchObject({
      config: { constraintsKey: 'churn/constraints/constraints.json' },
      data: { objects: 3, version: expect.stringMatching(/^[0-9a-f]{64}$/) },
      validation: { status: 'passed', rows: 60, valid: 60, quarantined: 0, objects: 2, violations: [], violationCount: 0, reportUri: `${REPORT_URI}report.json`, done: true, continuation: null },
    });
    const report = JSON.parse(await text(`${REPORT_URI}report.json`)) as ValidationReport;
    expect(report).toMatchObject({ status: 'passed', rows: 60, dataset: { uri: `s3://${DATA_BUCKET}/${DATA_PREFIX}` }, constraints: { uri: `s3://${DATA_BUCKET}/churn/constraints/constraints.json` } });
    expect(await s3.send(new HeadObjectCommand({ Bucket: ARTIFACTS_BUCKET, Key: `churn/runs/${RUN_ID}/validation/report.json` }))).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: KEY_ARN });
    expect(await notices.read()).toEqual([]);
  });

  test('a dataset that fails stops the run with DataValidationFailed, naming the violations and the report, and notifies each violation', async () => {
    const bad = ['b-1,-5,10.25,annual,true', 'b-2,7,10.25,weekly,false', ',8,10.25,annual,true', 'b-4,9,10.25,annual,maybe'];
    // charges is missing in 12 of 50 valid rows: more than the 10% it may be.
    const missingCharges = rows(100, 12).map((line) => line.replace(/^(c-\d+,\d+),[^,]+,/, '$1,,'));
    await putDataset({ 'part-0000.csv': csv([...rows(0, 38), bad[0], bad[1]]), 'part-0001.csv': csv([...missingCharges, bad[2], bad[3]]) });
    const calls = await validateAsTheWorkflowWould(payloadFor());
    const [verdict] = calls.map((call) => call.result);
    expect(verdict).toMatchObject({ status: 'failed', rows: 54, valid: 50, quarantined: 4, done: true });
    expect(verdict.violations.map((violation) => [violation.constraint, violation.column])).toEqual([
      ['completeness', 'charges'],
      ['quarantined-fraction', null],
    ]);
    await queueLambdaResults(moto, [verdict]);

    const execution = await start();

    expect(execution).toMatchObject({
      status: 'FAILED',
      error: 'DataValidationFailed',
      cause: `the dataset under s3://${DATA_BUCKET}/${DATA_PREFIX} fails 2 constraint(s) of churn/constraints/constraints.json; 4 of 54 rows quarantined; report: ${REPORT_URI}report.json`,
    });
    expect(execution.states.slice(execution.states.indexOf('Dataset valid?'))).toEqual(['Dataset valid?', 'Invalid dataset verdict', 'Notify invalid dataset', 'Dataset failed validation']);
    expect(execution.states).not.toContain('Preprocess');
    expect(execution.states).not.toContain('Describe failure');

    const [notice, ...more] = await notices.read();
    expect(more).toEqual([]);
    const message = JSON.parse(notice);
    expect(message).toEqual({
      result: 'invalid-dataset',
      reason: execution.cause,
      violations: verdict.violations,
      report: `${REPORT_URI}report.json`,
      dataVersion: execution.stateOutputs['Dataset versioned'].data.version,
      console: expect.stringContaining('#/v2/executions/details/arn:aws:states:'),
    });
    expect(message.violations.map((violation: { message: string }) => violation.message)).toEqual([expect.stringContaining("'charges' is missing in 24% of the valid rows (12 of 50)"), expect.stringContaining('4 of 54 rows')]);
    // The report and the quarantined rows the notice points at are there.
    const report = JSON.parse(await text(message.report)) as ValidationReport;
    expect(report.violations).toEqual(verdict.violations);
    const quarantined = (await text(report.quarantine.objects[0]!)).trim().split('\n').map((line) => JSON.parse(line));
    expect(quarantined.map((line) => [line.object, line.line])).toEqual([
      [`${DATA_PREFIX}part-0000.csv`, 40],
      [`${DATA_PREFIX}part-0000.csv`, 41],
      [`${DATA_PREFIX}part-0001.csv`, 14],
      [`${DATA_PREFIX}part-0001.csv`, 15],
    ]);
  });

  test('a dataset that takes several calls is validated call after call with each continuation, then goes on', async () => {
    await putDataset({ 'part-0000.csv': csv(rows(0, 30)), 'part-0001.csv': csv(rows(30, 30)) }, { 'churn/constraints/v2.json': CONSTRAINTS });
    // Each call runs out of time after 25 lines and returns a continuation.
    const calls = await validateAsTheWorkflowWould(payloadFor('churn/constraints/v2.json'), () => contextRunningOutAfter(25));
    expect(calls.map((call) => call.result.status)).toEqual(['in-progress', 'in-progress', 'passed']);
    expect(calls.map((call) => call.result.rows)).toEqual([expect.any(Number), expect.any(Number), 60]);
    await queueLambdaResults(moto, calls.map((call) => call.result));

    const execution = await start({ constraintsKey: 'churn/constraints/v2.json' });

    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.states.slice(execution.states.indexOf('Start validation'))).toEqual(['Start validation', ...Array(3).fill(['Validate dataset', 'Dataset valid?']).flat(), 'Preprocess']);
    const sent = payloads(execution.events);
    expect(sent.map((payload) => payload.continuation)).toEqual([null, calls[0]!.result.continuation, calls[1]!.result.continuation]);
    expect(sent).toEqual(calls.map((call) => call.payload));
    expect(execution.output.validation).toEqual({ ...calls[2]!.result });
  });

  test('an S3 failure in the middle is retried with the same continuation, and the run goes on', async () => {
    await putDataset({ 'part-0000.csv': csv(rows(0, 30)), 'part-0001.csv': csv(rows(30, 30)) });
    const results: unknown[] = [];
    const sentToHandler: unknown[] = [];
    await quietly(async () => {
      const first = payloadFor();
      const stopped = await handler(first, contextRunningOutAfter(40));
      expect(stopped.done).toBe(false);
      const second = { ...payloadFor(), continuation: stopped.continuation };
      // S3 goes away after the state and the constraints are read: the call fails with the SDK's own error.
      proxy.allow = 2;
      const failure = await handler(second, plentyOfTime).then(
        () => undefined,
        (error: Error) => error,
      );
      proxy.allow = Number.POSITIVE_INFINITY;
      expect(failure).toBeInstanceOf(Error);
      expect(failure!.name).not.toBe('DataValidationInputError');
      const retried = await handler(second, plentyOfTime);
      results.push(stopped, functionError(failure!), retried);
      sentToHandler.push(first, second, second);
    });
    expect(results[2]).toMatchObject({ status: 'passed', rows: 60, done: true });
    await queueLambdaResults(moto, results);

    const execution = await start();

    expect(execution.status).toBe('SUCCEEDED');
    expect(execution.states.at(-1)).toBe('Preprocess');
    expect(payloads(execution.events)).toEqual(sentToHandler);
    expect(execution.events.filter((event) => event.taskFailedEventDetails).map((event) => event.taskFailedEventDetails!.error)).toEqual([(results[1] as { errorType: string }).errorType]);
  });

  test('a DataValidationInputError is not retried: the run fails through the failure notice with the function\'s error', async () => {
    // No constraints document where the run says it is.
    await putDataset({ 'part-0000.csv': csv(rows(0, 30)) }, {});
    const error = await quietly(() => handler(payloadFor(), plentyOfTime).then(() => undefined, (thrown: Error) => thrown));
    expect(error).toMatchObject({ name: 'DataValidationInputError', message: `constraintsUri: cannot read s3://${DATA_BUCKET}/churn/constraints/constraints.json (NoSuchKey)` });
    // Were the call retried, it would take the second result and go on.
    await queueLambdaResults(moto, [functionError(error!), { status: 'passed', rows: 30, valid: 30, quarantined: 0, objects: 1, violations: [], violationCount: 0, reportUri: `${REPORT_URI}report.json`, done: true, continuation: null }]);

    const execution = await start();

    expect(execution).toMatchObject({ status: 'FAILED', error: 'DataValidationInputError' });
    expect(execution.cause).toContain(error!.message);
    expect(payloads(execution.events)).toHaveLength(1);
    expect(execution.states.slice(execution.states.indexOf('Validate dataset'))).toEqual(['Validate dataset', 'Describe failure', 'Notify failure', 'Pipeline failed']);
    const [notice] = await notices.read();
    expect(JSON.parse(notice)).toMatchObject({ error: 'DataValidationInputError', cause: execution.cause, console: expect.stringContaining('#/v2/executions/details/') });
  });

  test('refuses a constraints document outside <family>/constraints/ at the first states', async () => {
    const execution = await runExecution(moto, definitionFor(notices.topicArn), { modelFamily: 'churn', dataPrefix: DATA_PREFIX, constraintsKey: 'churn/datasets/2026-11-26/constraints.json' });
    expect(execution).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'config.constraintsKey: must be a string and a key under churn/constraints/' });
    expect(execution.states).not.toContain('List dataset');
  });

  test('refuses a dataset prefix without its final / at the first states: the validator reads it as a folder', async () => {
    const unslashed = await runExecution(moto, definitionFor(notices.topicArn), { modelFamily: 'churn', dataPrefix: DATA_PREFIX.replace(/\/$/, '') });
    expect(unslashed).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'config.dataPrefix: must be a string and a prefix under churn/datasets/, ending in /' });
    expect(unslashed.states).not.toContain('List dataset');
  });

  test('the model version registered after a validated run names its validation report', async () => {
    await new SageMakerClient(sdkTestConfig(moto.endpoint)).send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
    await putDataset({ 'part-0000.csv': csv(rows(0, 30)) });
    const [{ result }] = await validateAsTheWorkflowWould(payloadFor());
    const { continuation: _continuation, ...validation } = result;
    // The state after evaluation, as the jobs leave it; the gate reads the report the evaluation job wrote (a Pass here: see training-execution.test.ts).
    const afterEvaluation = {
      config: { ...world.pipeline.defaults, modelFamily: 'churn', dataPrefix: DATA_PREFIX, codeVersion: 'git:4f07d72' },
      run: { id: RUN_ID },
      data: { version: 'f'.repeat(64), objects: 1 },
      validation: { ...validation, continuation: null },
      preprocessing: { jobName: `churn-prep-${RUN_ID}-0` },
      training: { jobName: `churn-train-${RUN_ID}-0`, jobArn: `arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train-${RUN_ID}-0`, modelArtifacts: `s3://${ARTIFACTS_BUCKET}/churn/runs/${RUN_ID}/model/output/model.tar.gz` },
      evaluationJob: { jobName: `churn-eval-${RUN_ID}-0` },
    };
    const parsed = JSON.parse(startingAt(definitionFor(notices.topicArn), 'Read evaluation report'));
    const read = parsed.States['Read evaluation report'];
    parsed.States['Read evaluation report'] = { Type: 'Pass', Result: { report: { binary_classification_metrics: { auc: { value: 0.91 } } } }, ResultPath: read.ResultPath, Next: read.Next };

    const execution = await runExecution(moto, JSON.stringify(parsed), afterEvaluation, 30_000);

    expect(execution.status).toBe('SUCCEEDED');
    const described = await new SageMakerClient(sdkTestConfig(moto.endpoint)).send(new DescribeModelPackageCommand({ ModelPackageName: execution.output.modelPackageArn }));
    expect(described.CustomerMetadataProperties).toMatchObject({ DataValidationReport: `${REPORT_URI}report.json`, DataPrefix: `s3://${DATA_BUCKET}/${DATA_PREFIX}` });
  });
});
