import { CreateBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeModelPackageCommand,
  ListEndpointConfigsCommand,
  ListModelsCommand,
  SageMakerClient,
} from '@aws-sdk/client-sagemaker';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ModelRetirement } from '../../../lib/lifecycle/model-retirement';
import { expectValidStateMachines, placeholderArn, placeholderRef } from '../../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { nagFindings } from '../../support/platform';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { endpointIn, IMAGE, lifecycleStack } from './fixtures';

// Retirement is request-response SageMaker and S3 calls only: moto runs all of it.
const ENDPOINT = 'churn-endpoint';
let moto: MotoServer;
let template: Record<string, any>;
let substitutions: Record<string, string>;
let topicPlaceholder: string;
let groupName: string;
let definition: string;
const sagemaker = () => new SageMakerClient(sdkTestConfig(moto.endpoint));
const s3 = () => new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });

beforeAll(async () => {
  moto = await startMoto();
  const world = lifecycleStack();
  const endpoint = endpointIn(world);
  new ModelRetirement(world.stack, 'ChurnRetirement', { modelPackageGroup: world.group, endpoint, artifactsBucket: world.artifactsBucket, notificationTopic: world.topic, encryptionKey: world.key, retainArtifacts: false });
  groupName = world.group.modelPackageGroupName;
  template = Template.fromStack(world.stack).toJSON();
  const stack = Stack.of(endpoint);
  substitutions = {
    [`placeholder-${stack.getLogicalId(endpoint.endpoint)}-EndpointName`]: ENDPOINT,
    [placeholderRef(stack.getLogicalId(world.artifactsBucket.node.defaultChild as any))]: 'model-artifacts',
  };
  topicPlaceholder = placeholderArn(stack.getLogicalId(world.topic.node.defaultChild as any));
  world.app.synth();
  expect(nagFindings(world.stack)).toEqual([]);
  expectValidStateMachines(template);
}, 60_000);
afterAll(async () => moto?.stop());

let versions: string[];
beforeEach(async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const notifications = await topicWithQueue(moto, 'retirement-notices');
  definition = renderForMoto(template, /ChurnRetirement/, { ...substitutions, [topicPlaceholder]: notifications.topicArn });
  await s3().send(new CreateBucketCommand({ Bucket: 'model-artifacts' }));
  await sagemaker().send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
  versions = [];
  for (const run of ['r1', 'r2']) {
    const { ModelPackageArn } = await sagemaker().send(
      new CreateModelPackageCommand({
        ModelPackageGroupName: groupName,
        ModelApprovalStatus: 'Approved',
        InferenceSpecification: { Containers: [{ Image: IMAGE }], SupportedContentTypes: ['text/csv'], SupportedResponseMIMETypes: ['application/json'] },
        CustomerMetadataProperties: { RunId: run, TrainingJobName: `churn-train-${run}` },
      }),
    );
    versions.push(ModelPackageArn!);
    await s3().send(new PutObjectCommand({ Bucket: 'model-artifacts', Key: `churn/runs/${run}/model/churn-train-${run}/output/model.tar.gz`, Body: 'model' }));
  }
  // Version 1 was deployed twice (both replaced since); version 2 serves now.
  for (const name of ['churn-v1-aaaa1111', 'churn-v1-bbbb2222', 'churn-v2-cccc3333']) {
    await sagemaker().send(new CreateModelCommand({ ModelName: name, ExecutionRoleArn: 'arn:aws:iam::123456789012:role/sm', PrimaryContainer: { Image: IMAGE } }));
    await sagemaker().send(new CreateEndpointConfigCommand({ EndpointConfigName: name, ProductionVariants: [{ VariantName: 'champion', ModelName: name, InitialInstanceCount: 1, InstanceType: 'ml.m5.large' }] }));
  }
  await sagemaker().send(new CreateEndpointCommand({ EndpointName: ENDPOINT, EndpointConfigName: 'churn-v2-cccc3333' }));
});

const configNames = async () => ((await sagemaker().send(new ListEndpointConfigsCommand({}))).EndpointConfigs ?? []).map((config) => config.EndpointConfigName).sort();
const modelNames = async () => ((await sagemaker().send(new ListModelsCommand({}))).Models ?? []).map((model) => model.ModelName).sort();

test('retires a version no longer served: deletes its deployments, archives it, and deletes its artifact outside prod', async () => {
  const result = await runExecution(moto, definition, { modelPackageArn: versions[0] });
  expect(result.status).toBe('SUCCEEDED');
  expect(result.output).toMatchObject({ result: 'retired', modelVersion: 1, artifact: 'deleted', deploymentsDeleted: ['churn-v1-aaaa1111', 'churn-v1-bbbb2222'] });
  expect(await configNames()).toEqual(['churn-v2-cccc3333']);
  expect(await modelNames()).toEqual(['churn-v2-cccc3333']);
  const archived = await sagemaker().send(new DescribeModelPackageCommand({ ModelPackageName: versions[0] }));
  expect(archived.ModelApprovalStatus).toBe('Rejected');
  expect(archived.ApprovalDescription).toMatch(/^Retired by arn:aws:states:/);
  await expect(s3().send(new HeadObjectCommand({ Bucket: 'model-artifacts', Key: 'churn/runs/r1/model/churn-train-r1/output/model.tar.gz' }))).rejects.toThrow();
  await s3().send(new HeadObjectCommand({ Bucket: 'model-artifacts', Key: 'churn/runs/r2/model/churn-train-r2/output/model.tar.gz' }));
});

test('refuses to retire the version the endpoint serves, and changes nothing', async () => {
  const result = await runExecution(moto, definition, { modelPackageArn: versions[1] });
  expect(result).toMatchObject({ status: 'FAILED', error: 'VersionInService' });
  expect(result.cause).toContain('is still served by the endpoint (configuration churn-v2-cccc3333)');
  expect(await configNames()).toEqual(['churn-v1-aaaa1111', 'churn-v1-bbbb2222', 'churn-v2-cccc3333']);
  expect((await sagemaker().send(new DescribeModelPackageCommand({ ModelPackageName: versions[1] }))).ModelApprovalStatus).toBe('Approved');
});

test.each([
  [{}, 'modelPackageArn: must be a string'],
  [{ modelPackageArn: 'arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud/1' }, 'modelPackageArn: must be a string and a version of model package group'],
])('rejects %j at the first state', async (input, cause) => {
  const result = await runExecution(moto, definition, input);
  expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput' });
  expect(result.cause).toContain(cause);
});
