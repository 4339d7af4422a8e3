import { CreateBucketCommand, GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { MonitoringBaselineWorkflow } from '../../../lib/monitoring/monitoring-baseline-workflow';
import { expectValidStateMachines, placeholderRef } from '../../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { nagFindings } from '../../support/platform';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { allMonitors, HEADERS, monitorWorld } from './monitor-fixtures';

const world = monitorWorld({ vpc: true });
const monitor = allMonitors(world);
new MonitoringBaselineWorkflow(world.stack, 'Baselines', { monitor, encryptionKey: world.key, failureAlarmAction: new actions.SnsAction(world.topic) });
const json = Template.fromStack(world.stack).toJSON();
const machine = () => expectValidStateMachines(json).find((m) => /^BaselinesWorkflow/.test(m.logicalId))!.definition as any;
const bucketName = placeholderRef(world.stack.getLogicalId(world.bucket.node.defaultChild as s3.CfnBucket));
const dataset = 'model-monitor/churn/datasets/train-2026-11.csv';
const validation = 'model-monitor/churn/datasets/validation-2026-11.csv';

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

describe('MonitoringBaselineWorkflow', () => {
  test('runs one suggest-baseline processing job per monitor, writing where the schedules read', () => {
    const jobs = machine().States['Suggest baselines'].Branches.map((branch: any) => branch.States[branch.StartAt]);
    expect(jobs.map((job: any) => job.Resource)).toEqual(Array(4).fill('arn:aws:states:::sagemaker:createProcessingJob.sync'));
    const [dataQuality, modelQuality, bias] = jobs.map((job: any) => job.Parameters);
    expect(dataQuality).toMatchObject({
      'ProcessingJobName.$': "States.Format('baseline-dq-{}', $.run.id)",
      AppSpecification: { ImageUri: '156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer:latest' },
      Environment: { dataset_source: '/opt/ml/processing/input/baseline_dataset_input', output_path: '/opt/ml/processing/output', publish_cloudwatch_metrics: 'Disabled' },
      ProcessingInputs: [{ S3Input: { 'S3Uri.$': `States.Format('s3://{}/{}', '${bucketName}', $.datasetKey)`, LocalPath: '/opt/ml/processing/input/baseline_dataset_input' } }],
      ProcessingOutputConfig: { Outputs: [{ S3Output: { S3Uri: `s3://${bucketName}/model-monitor/churn/baselines/data-quality`, LocalPath: '/opt/ml/processing/output' } }] },
      NetworkConfig: { EnableInterContainerTrafficEncryption: true, VpcConfig: { SecurityGroupIds: [expect.any(String)], Subnets: [expect.any(String), expect.any(String)] } },
    });
    expect(dataQuality.ProcessingOutputConfig.KmsKeyId).toMatch(/^arn:/);
    expect(dataQuality.ProcessingResources.ClusterConfig.VolumeKmsKeyId).toMatch(/^arn:/);
    expect(modelQuality).toMatchObject({
      Environment: { analysis_type: 'MODEL_QUALITY', problem_type: 'BinaryClassification', ground_truth_attribute: 'label', probability_attribute: '0', probability_threshold_attribute: '0.5' },
      ProcessingInputs: [{ S3Input: { 'S3Uri.$': `States.Format('s3://{}/{}', '${bucketName}', $.validationKey)` } }],
    });
    expect(bias).toMatchObject({
      AppSpecification: { ImageUri: '205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0' },
      ProcessingInputs: [
        { InputName: 'dataset', S3Input: { LocalPath: '/opt/ml/processing/input/data' } },
        { InputName: 'analysis_config', S3Input: { S3Uri: `s3://${bucketName}/model-monitor/churn/config/bias/analysis_config.json`, LocalPath: '/opt/ml/processing/input/config' } },
      ],
      ProcessingOutputConfig: { Outputs: [{ S3Output: { S3Uri: `s3://${bucketName}/model-monitor/churn/baselines/bias` } }] },
    });
  });

  test('is clean under cdk-nag', () => {
    world.app.synth();
    const ours = nagFindings(world.app).filter((f) => f.resource.includes('/Baselines/') || f.resource.includes('/Monitor/'));
    expect(ours.map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('refuses an input without a dataset under the datasets prefix, naming the field (run in moto)', async () => {
    const definition = renderForMoto(json, /^BaselinesWorkflow/, {});
    // moto can only start an execution in a fresh backend once another one has run: reset each time.
    const run = async (input: unknown) => {
      await moto.reset();
      await enableStepFunctionsExecution(moto);
      return runExecution(moto, definition, input);
    };
    const missing = await run({ validationKey: validation });
    expect({ status: missing.status, error: missing.error, cause: missing.cause }).toEqual({ status: 'FAILED', error: 'InvalidInput', cause: 'datasetKey: must be a string and a CSV key under model-monitor/churn/datasets/' });
    const outside = await run({ datasetKey: 'secrets/other-team.csv', validationKey: validation });
    expect(outside.cause).toBe('datasetKey: must be a string and a CSV key under model-monitor/churn/datasets/');
    const noValidation = await run({ datasetKey: dataset });
    expect(noValidation.cause).toBe('validationKey: must be a string and a CSV key under model-monitor/churn/datasets/ (validation set with predictions and labels)');
    expect(noValidation.states).not.toContain('Suggest baselines');
  }, 60_000);

  test('writes the Clarify analysis configurations before the jobs (run in moto, which cannot run SageMaker .sync jobs)', async () => {
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    const s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: bucketName }));
    const result = await runExecution(moto, renderForMoto(json, /^BaselinesWorkflow/, {}), { datasetKey: dataset, validationKey: validation });
    expect(result.states).toEqual(expect.arrayContaining(['Write bias analysis configuration', 'Write explainability analysis configuration', 'Suggest baselines']));
    // moto stops at the first SageMaker processing job; everything before it ran.
    expect(result.status).toBe('FAILED');
    const read = async (key: string) => JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucketName, Key: key }))).Body!.transformToString());
    const bias = await read('model-monitor/churn/config/bias/analysis_config.json');
    expect(bias).toMatchObject({ headers: [...HEADERS, 'churned'], label: 'churned', facet: [{ name_or_index: 'age', value_or_threshold: [40] }], dataset_type: 'text/csv' });
    expect(typeof bias.predictor.model_name).toBe('string');
    const explainability = await read('model-monitor/churn/config/explainability/analysis_config.json');
    expect(explainability.methods.shap.baseline).toEqual([[12, 70, 'month-to-month', 45]]);
  }, 60_000);
});
