// The incremental-training workflow in moto's Step Functions engine, against moto's SageMaker (the registry and its
// approved champion), S3 (the streamed micro-batches), DynamoDB (the state) and SNS. moto's Lambda cannot run the
// collector without Docker, so each test first runs the function as it ships (the esbuild bundle,
// assets/lambda/online-learning) with the payloads the workflow sends, against moto's bucket and table, and queues
// what it returned as the Lambda's results. The training pipeline run (`startExecution.sync:2`, which moto cannot
// wait for) becomes a Pass that outputs a run's verdict and the input the task would send; that input is then given
// to the training pipeline's own definition in moto, which accepts it and versions the window as its dataset.
import { CreateTableCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateModelPackageCommand, CreateModelPackageGroupCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { Template } from 'aws-cdk-lib/assertions';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { handlerModulePaths, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv } from '../../support/handler-harness';
import { queueLambdaResults, sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { startDroppingProxy, type DroppingProxy } from '../../support/dropping-proxy';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { incrementalTraining } from './fixtures';

type Handler = (event: unknown) => Promise<any>;

const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:online-learning-churn';
/** When the workflow's states run ($$.State.EnteredTime); fixed, so the function can be run beforehand. */
const NOW = '2026-12-07T10:15:00.000Z';
const DATA = 'training-data';
const ARTIFACTS = 'model-artifacts';
const TABLE = 'online-learning-state';
const CONSTRAINTS_KEY = 'churn/constraints/constraints.json';
const CHAMPION_MODEL = `s3://${ARTIFACTS}/churn/runs/0f0e0d0c0b0a/model/churn-train-0f0e0d0c0b0a-0/output/model.tar.gz`;

const world = incrementalTraining({ minRecords: 4 });
const template = Template.fromStack(world.stack).toJSON();
const logicalId = (construct: any) => world.stack.getLogicalId(construct.node?.defaultChild ?? construct);
const groupName = world.group.modelPackageGroupName;
const defaults = world.construct.defaults as { constraintsKey: string; settings: Record<string, number> };

const constraints = {
  version: 1,
  // A streamed micro-batch may carry a few bad rows: they are quarantined, and the batch is still used.
  dataset: { maxQuarantinedFraction: 0.2 },
  columns: [
    { name: 'tenure_months', type: 'integral', required: true, min: 0, max: 600 },
    { name: 'contract_type', type: 'string', required: true, categories: ['monthly', 'one-year', 'two-year'] },
    { name: 'churned', type: 'integral', required: true, min: 0, max: 1 },
  ],
};

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_DYNAMODB', 'STATE_TABLE', 'DATA_BUCKET', 'MODEL_FAMILY', 'DATASET_FORMAT', 'KMS_KEY_ID'], {
  POWERTOOLS_SERVICE_NAME: 'online-learning-churn',
  POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/OnlineLearning',
  STATE_TABLE: TABLE,
  DATA_BUCKET: DATA,
  MODEL_FAMILY: 'churn',
  DATASET_FORMAT: 'csv',
  // moto's S3 records the key id of SSE-KMS without using the key.
  KMS_KEY_ID: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
});

let moto: MotoServer;
let proxy: DroppingProxy;
let s3: S3Client;
let dynamodb: DynamoDBClient;
let sagemaker: SageMakerClient;
let handler: Handler;
let notices: { topicArn: string; read: () => Promise<string[]> };

/** The workflow as moto runs it: the test's topic, function and buckets, a fixed time, and `train` for the pipeline run. */
function definitionFor(train: Record<string, unknown> | { error: string; cause: string }): string {
  const parsed = JSON.parse(
    renderForMoto(template, /^ChurnIncremental/, {
      [placeholderArn(logicalId(world.topic))]: notices.topicArn,
      [placeholderArn(logicalId(world.construct.function))]: FUNCTION_ARN,
      [placeholderRef(logicalId(world.artifactsBucket))]: ARTIFACTS,
      [placeholderRef(logicalId(world.dataBucket))]: DATA,
    }),
  );
  for (const state of Object.values<any>(parsed.States)) {
    const payload = state.Parameters?.Payload;
    if (payload?.['now.$'] === undefined) continue;
    expect(payload['now.$']).toBe('$$.State.EnteredTime');
    delete payload['now.$'];
    payload.now = NOW;
  }
  const start = parsed.States['Train on window'];
  expect(start.Resource).toMatch(/startExecution\.sync:2$/);
  parsed.States['Train on window'] =
    'error' in train
      ? { Type: 'Pass', Result: { Error: train.error, Cause: train.cause }, ResultPath: '$.updateError', Next: start.Catch[0].Next }
      : { Type: 'Pass', Parameters: { executionArn: 'arn:aws:states:us-east-1:123456789012:execution:training:churn-w', output: train }, ResultPath: '$.pipeline', Next: start.Next };
  parsed.States['Train on window'].Comment = JSON.stringify(start.Parameters.Input);
  return JSON.stringify(parsed);
}

/** A Parameters template applied to a state: `key.$` fields take the value at their `$.a.b` path. */
function applyTemplate(template: Record<string, unknown>, state: unknown): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(template).map(([key, value]) => {
      if (key.endsWith('.$')) {
        expect(value).toMatch(/^\$(\.[A-Za-z]+)+$/);
        return [key.slice(0, -2), (value as string).split('.').slice(1).reduce<any>((node, name) => node?.[name], state)];
      }
      return [key, value !== null && typeof value === 'object' && !Array.isArray(value) ? applyTemplate(value as Record<string, unknown>, state) : value];
    }),
  );
}

/** The payloads the Lambda tasks were called with, in order. */
const payloads = (events: readonly HistoryEvent[]) =>
  events.filter((event) => event.taskScheduledEventDetails?.resourceType === 'lambda').map((event) => JSON.parse(event.taskScheduledEventDetails!.parameters!).Payload);

beforeAll(async () => {
  moto = await startMoto({ extended: true });
  const config = sdkTestConfig(moto.endpoint);
  s3 = new S3Client({ ...config, forcePathStyle: true });
  dynamodb = new DynamoDBClient(config);
  sagemaker = new SageMakerClient(config);
  // The function's S3 client addresses buckets by host name; behind a proxy at an IP address it uses paths, as moto needs.
  proxy = await startDroppingProxy(moto.endpoint);
  setEnv({ AWS_ENDPOINT_URL_S3: proxy.endpoint, AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
  handler = loadFreshHandler<Handler>(handlerModulePaths('online-learning').bundle);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  dynamodb?.destroy();
  sagemaker?.destroy();
  await proxy?.close();
  await moto?.stop();
});

beforeEach(async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  notices = await topicWithQueue(moto, 'incremental-notices');
  for (const bucket of [DATA, ARTIFACTS]) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutObjectCommand({ Bucket: DATA, Key: CONSTRAINTS_KEY, Body: JSON.stringify(constraints) }));
  await dynamodb.send(new CreateTableCommand({ TableName: TABLE, KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }));
  await sagemaker.send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
});

async function approvedChampion(modelDataUrl = CHAMPION_MODEL): Promise<string> {
  const created = await sagemaker.send(
    new CreateModelPackageCommand({
      ModelPackageGroupName: groupName,
      ModelApprovalStatus: 'Approved',
      InferenceSpecification: { Containers: [{ Image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1', ModelDataUrl: modelDataUrl }], SupportedContentTypes: ['text/csv'], SupportedResponseMIMETypes: ['application/json'] },
    }),
  );
  return created.ModelPackageArn!;
}

/** Labelled events as the delivery stream writes them: JSON objects, one after another. */
async function arrive(records: ReadonlyArray<Record<string, unknown>>, name = 'churn-events-1-2026-12-07-10-00-00-abc'): Promise<string> {
  const key = `churn/stream/arrived/2026/12/07/10/${name}`;
  await s3.send(new PutObjectCommand({ Bucket: DATA, Key: key, Body: records.map((record) => JSON.stringify(record)).join('') }));
  return key;
}
const good = (count: number) => Array.from({ length: count }, (_, index) => ({ tenure_months: 3 + index, contract_type: index % 2 === 0 ? 'monthly' : 'one-year', churned: index % 2 }));

/** The shipped function's tick as the workflow's first call makes it, and, when an update starts, its finish call. */
async function runAsTheWorkflowWould(finish?: { outcome: 'registered' | 'refused' | 'failed'; detail: string; modelPackageArn?: string }): Promise<{ tick: any; results: unknown[] }> {
  return quietly(async () => {
    const tick = await handler({ action: 'tick', now: NOW, constraintsKey: defaults.constraintsKey, settings: defaults.settings });
    const results: unknown[] = [tick];
    if (finish) {
      expect(tick).toMatchObject({ decision: 'start' });
      results.push(await handler({ action: 'finish', now: NOW, window: tick.window, ...finish }));
    }
    return { tick, results };
  });
}

const start = async (train: Parameters<typeof definitionFor>[0]) => {
  const execution = await runExecution(moto, definitionFor(train), { trigger: 'schedule' }, 90_000);
  if (process.env.DEBUG_EXECUTION) console.log(JSON.stringify({ status: execution.status, error: execution.error, cause: execution.cause, states: execution.states }), moto.log().split('\n').filter((line) => /sagemaker|Error|error|Traceback|File /.test(line)).slice(-30).join('\n'));
  return execution;
};

test('enough validated records close the window: the pipeline fine-tunes the champion on it, the version is registered and recorded', async () => {
  const champion = await approvedChampion();
  await arrive([...good(5), { tenure_months: -4, contract_type: 'monthly', churned: 1 }]);
  const modelPackageArn = `${champion.replace(/\/\d+$/, '')}/2`;
  const { tick, results } = await runAsTheWorkflowWould({ outcome: 'registered', detail: `registered ${modelPackageArn}`, modelPackageArn });
  expect(tick).toMatchObject({ decision: 'start', records: 5, filed: { objects: 1, rows: 6, valid: 5, quarantined: 1 } });
  await queueLambdaResults(moto, results);

  const execution = await start({ result: 'registered', modelPackageArn });

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states).toEqual(
    expect.arrayContaining(['Load defaults', 'Validate micro-batches', 'Update now?', 'Find champion', 'Has champion?', 'Describe champion', 'Champion artifact readable?', 'Train on window', 'Registered?', 'Record registration', 'Notify registration', 'Update registered']),
  );
  const [tickSent, finishSent] = payloads(execution.events);
  expect(tickSent).toEqual({ action: 'tick', now: NOW, constraintsKey: CONSTRAINTS_KEY, settings: defaults.settings });
  expect(finishSent).toEqual({ action: 'finish', now: NOW, window: tick.window, outcome: 'registered', detail: `registered ${modelPackageArn}`, modelPackageArn });
  // What the task would start the pipeline with: the window, a warm start from the champion, and the champion to beat.
  const input = JSON.parse(execution.events.find((event) => event.stateEnteredEventDetails?.name === 'Train on window')!.stateEnteredEventDetails!.input!);
  expect(input.champion).toEqual({ arn: champion, modelDataUrl: CHAMPION_MODEL });
  expect(input.tick).toMatchObject({ window: tick.window, dataPrefix: `churn/datasets/increments/${tick.window}/`, records: 5 });
  const [notice] = await notices.read();
  expect(JSON.parse(notice!)).toMatchObject({ result: 'registered', model: 'churn', window: tick.window, records: 5, modelPackageArn, champion });
  const update = await dynamodb.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: `update#${tick.window}` } } }));
  expect(update.Item).toMatchObject({ status: { S: 'registered' }, modelPackageArn: { S: modelPackageArn } });

  // The training pipeline accepts that input and versions the window's validated records as its dataset (in a moto
  // reset for a second execution, holding the window's object again).
  const windowKey = `churn/datasets/increments/${tick.window}/2026-12-07-10-churn-events-1-2026-12-07-10-00-00-abc.csv`;
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: DATA, Prefix: `churn/datasets/increments/${tick.window}/` }));
  expect(listed.Contents?.map((object) => object.Key)).toEqual([windowKey]);
  const windowBody = await (await s3.send(new GetObjectCommand({ Bucket: DATA, Key: windowKey }))).Body!.transformToString();
  expect(windowBody.split('\n')[0]).toBe('tenure_months,contract_type,churned');
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  for (const bucket of [DATA, ARTIFACTS]) await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  await s3.send(new PutObjectCommand({ Bucket: DATA, Key: windowKey, Body: windowBody }));
  const pipelineDefinition = renderForMoto(template, /^ChurnTraining/, { [placeholderRef(logicalId(world.dataBucket))]: DATA, [placeholderRef(logicalId(world.artifactsBucket))]: ARTIFACTS, [placeholderArn(logicalId(world.topic))]: notices.topicArn });
  // The task's Input template, applied to the state the task was entered with (its paths are plain $.a.b paths).
  const inputTemplate = JSON.parse(JSON.parse(definitionFor({ result: 'registered' })).States['Train on window'].Comment);
  const sentInput = applyTemplate(inputTemplate, input);
  expect(sentInput).toEqual({
    modelFamily: 'churn',
    dataPrefix: `churn/datasets/increments/${tick.window}/`,
    useTransferLearning: true,
    baseModelUri: CHAMPION_MODEL,
    championModelUri: CHAMPION_MODEL,
    fineTuneHyperparameters: { objective: 'binary:logistic', num_round: '100' },
    trigger: { source: 'online-learning', window: tick.window, records: 5 },
  });
  const pipeline = await runExecution(moto, pipelineDefinition, sentInput, 90_000, 'Start validation');
  expect(pipeline.states).toEqual(expect.arrayContaining(['Check config.championModelUri', 'List dataset', 'Dataset versioned']));
  expect(pipeline.states).not.toContain('Invalid input');
  expect(pipeline.stateOutputs['Dataset versioned']).toMatchObject({ config: { dataPrefix: `churn/datasets/increments/${tick.window}/`, useTransferLearning: true, championModelUri: CHAMPION_MODEL }, data: { objects: 1 } });
}, 180_000);

test('a model the gate refuses (worse than the champion) is recorded as refused and notified; the run succeeds', async () => {
  await approvedChampion();
  await arrive(good(6));
  const reason = 'binary_classification_metrics.auc.value = 0.84 is worse than the champion (0.86) on the same test split (higher-is-better); the model was not registered';
  const { tick, results } = await runAsTheWorkflowWould({ outcome: 'refused', detail: reason });
  await queueLambdaResults(moto, results);

  const execution = await start({ result: 'rejected', reason });

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states.slice(execution.states.indexOf('Registered?'))).toEqual(['Registered?', 'Record gate refusal', 'Gate refusal verdict', 'Notify gate refusal', 'Update refused']);
  expect(payloads(execution.events)[1]).toMatchObject({ action: 'finish', outcome: 'refused', detail: reason, window: tick.window });
  expect(JSON.parse((await notices.read())[0]!)).toMatchObject({ result: 'refused', reason, window: tick.window });
});

test('a pipeline run that fails is recorded as failed, notified, and fails the workflow as IncrementalUpdateFailed', async () => {
  await approvedChampion();
  await arrive(good(6));
  const cause = 'the dataset under s3://training-data/churn/datasets/increments/w-20261207T101500Z/ fails 1 constraint(s)';
  const { tick, results } = await runAsTheWorkflowWould({ outcome: 'failed', detail: `DataValidationFailed: ${cause}` });
  await queueLambdaResults(moto, results);

  const execution = await start({ error: 'DataValidationFailed', cause });

  expect(execution).toMatchObject({ status: 'FAILED', error: 'IncrementalUpdateFailed', cause });
  expect(payloads(execution.events)[1]).toMatchObject({ action: 'finish', outcome: 'failed', detail: `DataValidationFailed: ${cause}`, window: tick.window });
  expect(JSON.parse((await notices.read())[0]!)).toMatchObject({ result: 'failed', error: 'DataValidationFailed', cause });
});

test('a registry that fails after the window closed records the update as failed, so the lock does not wait to lapse', async () => {
  await approvedChampion();
  await arrive(good(6));
  const { tick, results } = await runAsTheWorkflowWould({ outcome: 'failed', detail: 'the registry failed' });
  await queueLambdaResults(moto, results);
  // The version the list names cannot be described (it was deleted meanwhile): DescribeModelPackage fails.
  const parsed = JSON.parse(definitionFor({ result: 'registered' }));
  parsed.States['Describe champion'].Parameters = { ModelPackageName: 'arn:aws:sagemaker:us-east-1:123456789012:model-package/deleted-group/7' };

  const execution = await runExecution(moto, JSON.stringify(parsed), { trigger: 'schedule' }, 90_000);

  expect(execution).toMatchObject({ status: 'FAILED', error: 'IncrementalUpdateFailed' });
  expect(execution.states.slice(execution.states.indexOf('Describe champion'))).toEqual(['Describe champion', 'Record failure', 'Failure verdict', 'Notify update failure', 'Update failed']);
  const finishSent = payloads(execution.events)[1];
  expect(finishSent).toMatchObject({ action: 'finish', outcome: 'failed', window: tick.window });
  expect(finishSent.detail).toContain('model-package/deleted-group/7 not found');
});

test('without an approved version there is nothing to warm-start from: the update is refused and the window kept', async () => {
  await arrive(good(6));
  const { tick, results } = await runAsTheWorkflowWould({ outcome: 'refused', detail: 'no approved version of churn to warm-start from' });
  await queueLambdaResults(moto, results);

  const execution = await start({ result: 'registered' });

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states).toEqual(expect.arrayContaining(['Has champion?', 'No champion', 'Record refusal', 'Refusal verdict', 'Notify refusal', 'Refused before training']));
  expect(execution.states).not.toContain('Train on window');
  expect(payloads(execution.events)[1]).toMatchObject({ outcome: 'refused', detail: `no approved version of churn to warm-start from; window ${tick.window} stays for a full training run` });
});

test('a champion whose artifact lies outside the pipeline runs is refused before training', async () => {
  await approvedChampion(`s3://${ARTIFACTS}/churn/federated/global/model.tar.gz`);
  await arrive(good(6));
  const { results } = await runAsTheWorkflowWould({ outcome: 'refused', detail: 'outside' });
  await queueLambdaResults(moto, results);

  const execution = await start({ result: 'registered' });

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states).toEqual(expect.arrayContaining(['Champion artifact readable?', 'Champion unreadable', 'Record refusal', 'Refused before training']));
  expect(payloads(execution.events)[1].detail).toContain(`outside s3://${ARTIFACTS}/churn/runs/`);
});

test('too few validated records: the micro-batch is filed into the open window and the run ends without an update', async () => {
  await approvedChampion();
  await arrive(good(2));
  const { tick, results } = await runAsTheWorkflowWould();
  expect(tick).toMatchObject({ decision: 'waiting', pendingRecords: 2 });
  await queueLambdaResults(moto, results);

  const execution = await start({ result: 'registered' });

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states.slice(-2)).toEqual(['Update now?', 'No update']);
  expect(execution.output).toMatchObject({ decision: 'waiting', pendingRecords: 2 });
  expect(await notices.read()).toEqual([]);
});

test('a collector that fails ends in the failure notice', async () => {
  await queueLambdaResults(moto, [{ errorType: 'OnlineLearningInputError', errorMessage: 'constraintsKey: no constraints document at s3://training-data/churn/constraints/constraints.json' }]);

  const execution = await start({ result: 'registered' });

  expect(execution.status).toBe('FAILED');
  expect(execution.states).toEqual(expect.arrayContaining(['Validate micro-batches', 'Incremental training failed']));
  expect((await notices.read()).join('\n')).toContain('constraintsKey: no constraints document');
});
