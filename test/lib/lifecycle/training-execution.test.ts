import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateModelPackageGroupCommand, DescribeModelPackageCommand, ListModelPackagesCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { Template } from 'aws-cdk-lib/assertions';
import { TrainingPipeline } from '../../../lib/lifecycle/training-pipeline';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { matchesOf, type SampleEvent } from '../../support/event-patterns';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { enableStepFunctionsExecution, renderForMoto, runExecution, startingAt } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { trainingPipeline } from './fixtures';

// moto runs the pipeline's request-response states (S3 listing and reads, model registration, SNS)
// but not the `.sync` SageMaker jobs: the input and dataset states run from the start up to the
// preprocessing job, and the gate and registration run from the state after the evaluation job, with
// the input the jobs before it produce. The job states themselves are checked structurally in
// training-pipeline.test.ts.

let moto: MotoServer;
let definition: string;
let groupName: string;
let read: () => Promise<string[]>;
const s3 = () => new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
const sagemaker = () => new SageMakerClient(sdkTestConfig(moto.endpoint));

let topicArnPlaceholder: string;
let template: Record<string, any>;
let substitutions: Record<string, string>;

beforeAll(async () => {
  moto = await startMoto();
  const { stack, pipeline, dataBucket, artifactsBucket, topic, group } = trainingPipeline();
  groupName = group.modelPackageGroupName;
  expect(pipeline.defaults).not.toHaveProperty('modelFamily');
  template = Template.fromStack(stack).toJSON();
  topicArnPlaceholder = placeholderArn(stack.getLogicalId(topic.node.defaultChild as any));
  substitutions = {
    [placeholderRef(stack.getLogicalId(dataBucket.node.defaultChild as any))]: 'training-data',
    [placeholderRef(stack.getLogicalId(artifactsBucket.node.defaultChild as any))]: 'model-artifacts',
  };
}, 60_000);

// moto's Step Functions cannot start a second execution once one has run: every test starts from a
// reset moto with the buckets, the model package group and the topic (read through a queue).
beforeEach(async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const notifications = await topicWithQueue(moto, 'lifecycle-notices');
  read = notifications.read;
  definition = renderForMoto(template, /ChurnTraining/, { ...substitutions, [topicArnPlaceholder]: notifications.topicArn });
  await s3().send(new CreateBucketCommand({ Bucket: 'training-data' }));
  await s3().send(new CreateBucketCommand({ Bucket: 'model-artifacts' }));
  await sagemaker().send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
});
afterAll(async () => moto?.stop());

describe('the training pipeline input', () => {
  test.each([
    [{}, "config.modelFamily: must be a string and 'churn', the family this pipeline trains"],
    [{ modelFamily: 'fraud' }, "config.modelFamily: must be a string and 'churn', the family this pipeline trains"],
    [{ modelFamily: 'churn', threshold: '0.9' }, 'config.threshold: must be a number'],
    [{ modelFamily: 'churn', dataPrefix: 'other/datasets/v1/' }, 'config.dataPrefix: must be a string and a prefix under churn/datasets/'],
    [{ modelFamily: 'churn', dataReadyKey: 'churn/datasets/v1/part-0.csv' }, 'config.dataReadyKey: must be absent or a string and churn/datasets/<version>/_SUCCESS'],
    [{ modelFamily: 'churn', baseModelUri: 'https://example.com/model' }, 'config.baseModelUri: must be absent or a string and an s3:// URI'],
  ])('rejects %j at the first states with InvalidInput naming the field', async (input, cause) => {
    const result = await runExecution(moto, definition, input).catch((error) => {
      throw new Error(`${error}\n${moto.log().split("\n").slice(-8).join("\n")}`);
    });
    expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause });
    expect(result.states).not.toContain('List dataset');
  });

  test('fails clearly when the dataset prefix holds no objects', async () => {
    const result = await runExecution(moto, definition, { modelFamily: 'churn', dataPrefix: 'churn/datasets/missing/' });
    expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'dataPrefix: no objects under s3://training-data/churn/datasets/missing/' });
  });

  test('rejects a marker key that is not at the dataset layout', async () => {
    const result = await runExecution(moto, definition, { modelFamily: 'churn', dataReadyKey: 'churn/datasets/v1/extra/_SUCCESS' });
    expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'dataReadyKey: must be churn/datasets/<version>/_SUCCESS' });
  });
});

/** Resets moto between two executions of one test, restoring the fixtures, then runs `fill`. */
async function resetWith(fill: () => Promise<void>) {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const notifications = await topicWithQueue(moto, 'lifecycle-notices');
  read = notifications.read;
  await s3().send(new CreateBucketCommand({ Bucket: 'training-data' }));
  await s3().send(new CreateBucketCommand({ Bucket: 'model-artifacts' }));
  await sagemaker().send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
  await fill();
}

describe('the dataset version', () => {
  async function putDataset(prefix: string, files: Record<string, string>) {
    for (const [name, body] of Object.entries(files)) {
      await s3().send(new PutObjectCommand({ Bucket: 'training-data', Key: `${prefix}${name}`, Body: Buffer.from(body) }));
    }
  }
  async function versionOf(input: Record<string, unknown>) {
    // The run goes on to the preprocessing job, which moto cannot run; the version is what the dataset states output.
    const result = await runExecution(moto, definition, { modelFamily: 'churn', ...input });
    expect(result.states).toContain('Dataset versioned');
    return result.stateOutputs['Dataset versioned'];
  }

  test('hashes every page of objects, and changes when any object changes', async () => {
    // 160 objects: two pages of at most 150.
    const files = Object.fromEntries(Array.from({ length: 160 }, (_, index) => [`part-${String(index).padStart(4, '0')}.csv`, `row,${index}\n`]));
    await putDataset('churn/datasets/v1/', files);
    const first = await versionOf({ dataPrefix: 'churn/datasets/v1/' });
    expect(first.data.objects).toBe(160);
    expect(first.data.version).toMatch(/^[0-9a-f]{64}$/);

    // The same objects again, in a fresh moto, give the same version: it depends on content only.
    await resetWith(async () => putDataset('churn/datasets/v1/', files));
    expect(await versionOf({ dataPrefix: 'churn/datasets/v1/' })).toMatchObject({ data: first.data });

    await resetWith(async () => putDataset('churn/datasets/v1/', { ...files, 'part-0159.csv': 'row,changed\n' }));
    const changed = await versionOf({ dataPrefix: 'churn/datasets/v1/' });
    expect(changed.data.objects).toBe(160);
    expect(changed.data.version).not.toBe(first.data.version);
  }, 120_000);

  test('a _SUCCESS marker names the dataset prefix it completes', async () => {
    await putDataset('churn/datasets/2026-11-26/', { 'data.csv': 'a,b\n1,2\n', _SUCCESS: '' });
    const versioned = await versionOf({ dataReadyKey: 'churn/datasets/2026-11-26/_SUCCESS', trigger: { source: 'data-arrival' } });
    expect(versioned.config.dataPrefix).toBe('churn/datasets/2026-11-26/');
    expect(versioned.data.objects).toBe(2);
  }, 60_000);
});

describe('the evaluation gate and registration', () => {
  const runId = 'a1b2c3d4e5f6';
  const afterEvaluation = {
    config: { modelFamily: 'churn', dataPrefix: 'churn/datasets/v1/', threshold: 0.8, useTransferLearning: false, codeVersion: 'git:4f07d72', hyperparameters: {} },
    run: { id: runId },
    data: { version: 'f'.repeat(64), objects: 160 },
    preprocessing: { jobName: `churn-prep-${runId}` },
    training: {
      jobName: `churn-train-${runId}`,
      jobArn: `arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train-${runId}`,
      modelArtifacts: `s3://model-artifacts/churn/runs/${runId}/model/churn-train-${runId}/output/model.tar.gz`,
    },
    evaluationJob: { jobName: `churn-eval-${runId}` },
  };
  // moto's Step Functions hands S3 GetObject's Body on as a stream where Step Functions gives a
  // string, so StringToJson cannot run on it there: the gate tests replace the read with a Pass that
  // outputs what the read outputs. The read's request is checked in training-pipeline.test.ts.
  let report: unknown;
  const gateFrom = (inputDefinition: string) => {
    const parsed = JSON.parse(startingAt(inputDefinition, 'Read evaluation report'));
    const read = parsed.States['Read evaluation report'];
    parsed.States['Read evaluation report'] = { Type: 'Pass', Result: { report }, ResultPath: read.ResultPath, Next: read.Next };
    return JSON.stringify(parsed);
  };
  async function packages() {
    return (await sagemaker().send(new ListModelPackagesCommand({ ModelPackageGroupName: groupName }))).ModelPackageSummaryList ?? [];
  }

  test('registers a model that meets the threshold, with its metrics and lineage, and notifies', async () => {
    report = { binary_classification_metrics: { auc: { value: 0.91, standard_deviation: 0.01 } } };
    const before = (await packages()).length;
    const result = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ result: 'registered', approvalStatus: 'PendingManualApproval', value: 0.91, threshold: 0.8, trainingJob: `churn-train-${runId}` });
    expect(result.output.console).toMatch(/^https:\/\/us-east-1\.console\.aws\.amazon\.com\/states\/home\?region=us-east-1#\/v2\/executions\/details\/arn:aws:states:/);
    const listed = await packages();
    expect(listed).toHaveLength(before + 1);
    const described = await sagemaker().send(new DescribeModelPackageCommand({ ModelPackageName: result.output.modelPackageArn }));
    expect(described.ModelApprovalStatus).toBe('PendingManualApproval');
    expect(described.InferenceSpecification?.Containers?.[0]).toMatchObject({ ModelDataUrl: afterEvaluation.training.modelArtifacts });
    expect(described.ModelMetrics?.ModelQuality?.Statistics?.S3Uri).toBe(`s3://model-artifacts/churn/runs/${runId}/evaluation/evaluation.json`);
    expect(described.CustomerMetadataProperties).toMatchObject({
      TrainingJobName: `churn-train-${runId}`,
      DataVersion: 'f'.repeat(64),
      DataObjects: '160',
      DataPrefix: 's3://training-data/churn/datasets/v1/',
      CodeVersion: 'git:4f07d72',
      EvaluationMetric: 'binary_classification_metrics.auc.value',
      EvaluationValue: '0.91',
    });
    const notices = (await read()).map((body) => JSON.parse(body));
    expect(notices).toContainEqual(expect.objectContaining({ result: 'registered', modelPackageArn: result.output.modelPackageArn }));
  });

  test('rejects a model below the threshold: nothing is registered and the reason is notified', async () => {
    report = { binary_classification_metrics: { auc: { value: 0.62 } } };
    const before = (await packages()).length;
    const result = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ result: 'rejected', reason: 'binary_classification_metrics.auc.value = 0.62 does not meet the threshold 0.8 (higher-is-better); the model was not registered' });
    expect(result.states).not.toContain('Register model version');
    expect(await packages()).toHaveLength(before);
    const notices = (await read()).map((body) => JSON.parse(body));
    expect(notices).toContainEqual(expect.objectContaining({ result: 'rejected' }));
  });

  test('an execution input can raise the threshold', async () => {
    report = { binary_classification_metrics: { auc: { value: 0.91 } } };
    const result = await runExecution(moto, gateFrom(definition), { ...afterEvaluation, config: { ...afterEvaluation.config, threshold: 0.95 } });
    expect(result.output).toMatchObject({ result: 'rejected' });
  });

  test('a report without the metric fails with a clear error instead of passing or rejecting', async () => {
    report = { regression_metrics: { mse: { value: 0.1 } } };
    const result = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(result).toMatchObject({ status: 'FAILED', error: 'EvaluationReportInvalid', cause: 'evaluation.json: binary_classification_metrics.auc.value must be present and a number' });
  });

  test('a failing state ends in the failure notice, with the error and the console link', async () => {
    // A fresh moto without the model package group: the registration fails.
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    const notifications = await topicWithQueue(moto, 'lifecycle-notices');
    read = notifications.read;
    report = { binary_classification_metrics: { auc: { value: 0.91 } } };
    const result = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(result.status).toBe('FAILED');
    expect(result.states).toEqual(expect.arrayContaining(['Register model version', 'Describe failure', 'Notify failure', 'Pipeline failed']));
    const notices = (await read()).map((body) => JSON.parse(body));
    expect(notices).toContainEqual(expect.objectContaining({ error: result.error, cause: result.cause, console: expect.stringContaining('#/v2/executions/details/') }));
  });
});

describe('the comparison with the champion (an incremental run)', () => {
  const runId = 'b2c3d4e5f6a1';
  const championModelUri = 's3://model-artifacts/churn/runs/0f0e0d0c0b0a/model/churn-train-0f0e0d0c0b0a-0/output/model.tar.gz';
  const afterEvaluation = {
    config: {
      modelFamily: 'churn',
      dataPrefix: 'churn/datasets/increments/w-20261207T101500Z/',
      threshold: 0.8,
      useTransferLearning: true,
      baseModelUri: championModelUri,
      championModelUri,
      codeVersion: 'git:4f07d72',
      hyperparameters: {},
    },
    run: { id: runId },
    data: { version: 'e'.repeat(64), objects: 3 },
    preprocessing: { jobName: `churn-prep-${runId}` },
    training: {
      jobName: `churn-train-${runId}`,
      jobArn: `arn:aws:sagemaker:us-east-1:123456789012:training-job/churn-train-${runId}`,
      modelArtifacts: `s3://model-artifacts/churn/runs/${runId}/model/churn-train-${runId}/output/model.tar.gz`,
    },
    evaluationJob: { jobName: `churn-eval-${runId}` },
  };
  // As above, the reports' reads become Passes with what they read; the champion's processing job (.sync) is a Pass
  // with its output, so the run goes from the new model's report through the champion's to the gate.
  let report: unknown;
  let championReport: unknown;
  const gateFrom = (inputDefinition: string) => {
    const parsed = JSON.parse(startingAt(inputDefinition, 'Read evaluation report'));
    for (const [state, result] of [['Read evaluation report', { report }], ['Read champion evaluation report', { report: championReport }], ['Evaluate champion', { jobName: `churn-champ-${runId}-0` }]] as const) {
      const original = parsed.States[state];
      parsed.States[state] = { Type: 'Pass', Result: result, ResultPath: original.ResultPath, Next: original.Next };
    }
    return JSON.stringify(parsed);
  };

  test('registers a model that meets the threshold and beats the champion on the same test split', async () => {
    report = { binary_classification_metrics: { auc: { value: 0.91 } } };
    championReport = { binary_classification_metrics: { auc: { value: 0.88 } } };
    const result = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.states).toEqual(expect.arrayContaining(['Compare with champion?', 'Evaluate champion', 'Read champion evaluation report', 'Meets threshold and champion?', 'Register model version']));
    expect(result.output).toMatchObject({ result: 'registered', value: 0.91 });
    const described = await sagemaker().send(new DescribeModelPackageCommand({ ModelPackageName: result.output.modelPackageArn }));
    expect(described.CustomerMetadataProperties).toMatchObject({ TransferLearning: 'true', DataPrefix: 's3://training-data/churn/datasets/increments/w-20261207T101500Z/' });
  });

  test('refuses a model worse than the champion even above the threshold, and says so', async () => {
    report = { binary_classification_metrics: { auc: { value: 0.91 } } };
    championReport = { binary_classification_metrics: { auc: { value: 0.93 } } };
    const result = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({
      result: 'rejected',
      reason: 'binary_classification_metrics.auc.value = 0.91 is worse than the champion (0.93) on the same test split (higher-is-better); the model was not registered',
      champion: championModelUri,
      championValue: 0.93,
    });
    expect(result.states).not.toContain('Register model version');
    expect((await read()).map((body) => JSON.parse(body))).toContainEqual(expect.objectContaining({ result: 'rejected', championValue: 0.93 }));
  });

  test('a model below the threshold is refused whatever the champion scored; a champion report without the metric fails', async () => {
    report = { binary_classification_metrics: { auc: { value: 0.7 } } };
    championReport = { binary_classification_metrics: { auc: { value: 0.5 } } };
    const below = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(below.output).toMatchObject({ result: 'rejected', reason: expect.stringContaining('does not meet the threshold 0.8') });
    await resetWith(async () => undefined);
    report = { binary_classification_metrics: { auc: { value: 0.91 } } };
    championReport = { regression_metrics: { mse: { value: 0.1 } } };
    const broken = await runExecution(moto, gateFrom(definition), afterEvaluation);
    expect(broken).toMatchObject({ status: 'FAILED', error: 'EvaluationReportInvalid', cause: 'champion-evaluation/evaluation.json: binary_classification_metrics.auc.value must be present and a number' });
  });

  test('refuses a championModelUri that is no s3:// URI at the first states', async () => {
    const result = await runExecution(moto, definition, { modelFamily: 'churn', championModelUri: 'https://example.com/model.tar.gz' });
    expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: expect.stringContaining('config.championModelUri: must be absent or a string and an s3:// URI') });
  });
});

describe('the data-arrival rule', () => {
  test('matches a _SUCCESS marker at the dataset layout in the data bucket, and nothing else', async () => {
    const pattern = TrainingPipeline.dataArrivalPattern('training-data', 'churn');
    const created = (bucket: string, key: string): SampleEvent => ({ source: 'aws.s3', detailType: 'Object Created', detail: { bucket: { name: bucket }, object: { key, size: 0 } } });
    const rendered = JSON.parse(JSON.stringify(pattern).replace('"detailType"', '"detail-type"'));
    const matched = await matchesOf(moto, rendered, [
      created('training-data', 'churn/datasets/2026-11-26/_SUCCESS'),
      created('training-data', 'churn/datasets/2026-11-26/part-0000.csv'),
      created('training-data', 'fraud/datasets/2026-11-26/_SUCCESS'),
      created('other-bucket', 'churn/datasets/2026-11-26/_SUCCESS'),
      { ...created('training-data', 'churn/datasets/2026-11-26/_SUCCESS'), detailType: 'Object Deleted' },
    ]);
    expect(matched).toEqual([true, false, false, false, false]);
  });
});
