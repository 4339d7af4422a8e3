import {
  CreateEndpointCommand,
  CreateEndpointConfigCommand,
  CreateModelCommand,
  CreateModelPackageCommand,
  CreateModelPackageGroupCommand,
  DescribeEndpointCommand,
  DescribeEndpointConfigCommand,
  ListTagsCommand,
  SageMakerClient,
  UpdateEndpointCommand,
} from '@aws-sdk/client-sagemaker';
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ModelDeployment } from '../../../lib/lifecycle/model-deployment';
import { placeholderArn } from '../../support/asl';
import { matchesOf, type SampleEvent } from '../../support/event-patterns';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { enableStepFunctionsExecution, renderForMoto, runExecution, startingAt } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { endpointIn, IMAGE, lifecycleStack } from './fixtures';

// The deployment workflow is request-response SageMaker calls only, so moto runs all of it. moto 5.2
// has no UpdateEndpoint: the server runs with test/support/moto_server_ext.py, which adds it.

const ENDPOINT = 'churn-endpoint';
let moto: MotoServer;
let template: Record<string, any>;
let substitutions: Record<string, string>;
let topicPlaceholder: string;
let groupName: string;
let definition: string;
let read: () => Promise<string[]>;
const sagemaker = () => new SageMakerClient(sdkTestConfig(moto.endpoint));

beforeAll(async () => {
  moto = await startMoto({ extended: true });
  const world = lifecycleStack();
  const endpoint = endpointIn(world, { dataCapture: { samplingPercentage: 50, retain: false } });
  new ModelDeployment(world.stack, 'ChurnDeployment', { modelPackageGroup: world.group, endpoint, notificationTopic: world.topic, encryptionKey: world.key, pollInterval: Duration.seconds(1) });
  groupName = world.group.modelPackageGroupName;
  template = Template.fromStack(world.stack).toJSON();
  const stack = Stack.of(endpoint);
  substitutions = { [`placeholder-${stack.getLogicalId(endpoint.endpoint)}-EndpointName`]: ENDPOINT };
  topicPlaceholder = placeholderArn(stack.getLogicalId(world.topic.node.defaultChild as any));
}, 60_000);
afterAll(async () => moto?.stop());

interface Version {
  readonly arn: string;
}

async function register(status: 'Approved' | 'PendingManualApproval', group = groupName): Promise<Version> {
  const created = await sagemaker().send(
    new CreateModelPackageCommand({
      ModelPackageGroupName: group,
      ModelApprovalStatus: status,
      InferenceSpecification: { Containers: [{ Image: IMAGE, ModelDataUrl: 's3://model-artifacts/churn/runs/r1/model/model.tar.gz' }], SupportedContentTypes: ['text/csv'], SupportedResponseMIMETypes: ['application/json'] },
      CustomerMetadataProperties: { TrainingJobName: 'churn-train-r1', DataVersion: 'd'.repeat(64), CodeVersion: 'git:4f07d72' },
    }),
  );
  return { arn: created.ModelPackageArn! };
}

/** A fresh moto (its Step Functions runs one execution per reset) with the endpoint serving `churn-config-1`. */
beforeEach(async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const notifications = await topicWithQueue(moto, 'deployment-notices');
  read = notifications.read;
  definition = renderForMoto(template, /ChurnDeployment/, { ...substitutions, [topicPlaceholder]: notifications.topicArn });
  await sagemaker().send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
  for (const name of ['model-champion', 'model-challenger']) {
    await sagemaker().send(new CreateModelCommand({ ModelName: name, ExecutionRoleArn: 'arn:aws:iam::123456789012:role/sm', PrimaryContainer: { Image: IMAGE } }));
  }
  await sagemaker().send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: 'churn-config-1',
      ProductionVariants: [
        { VariantName: 'champion', ModelName: 'model-champion', InitialInstanceCount: 2, InstanceType: 'ml.m5.large', InitialVariantWeight: 90 },
        { VariantName: 'challenger', ModelName: 'model-challenger', InitialInstanceCount: 1, InstanceType: 'ml.m5.large', InitialVariantWeight: 10 },
      ],
      DataCaptureConfig: { EnableCapture: true, InitialSamplingPercentage: 50, DestinationS3Uri: 's3://capture/churn', CaptureOptions: [{ CaptureMode: 'Input' }, { CaptureMode: 'Output' }] },
      KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    }),
  );
  await sagemaker().send(new CreateEndpointCommand({ EndpointName: ENDPOINT, EndpointConfigName: 'churn-config-1' }));
});

async function endpointConfig() {
  const { EndpointConfigName } = await sagemaker().send(new DescribeEndpointCommand({ EndpointName: ENDPOINT }));
  return sagemaker().send(new DescribeEndpointConfigCommand({ EndpointConfigName }));
}

describe('deploying an approved version', () => {
  test('replaces only the target variant\'s model, keeps weights, capacity, capture and key, and tags the lineage', async () => {
    const version = await register('Approved');
    const result = await runExecution(moto, definition, { modelPackageArn: version.arn, targetVariant: 'challenger', trigger: { source: 'approval' } });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ result: 'deployed', modelPackageArn: version.arn, modelVersion: 1, variant: 'challenger', previousEndpointConfig: 'churn-config-1' });
    expect(result.output.endpointConfig).toMatch(/^churn-v1-[0-9a-f]{12}$/);

    const config = await endpointConfig();
    expect(config.EndpointConfigName).toBe(result.output.endpointConfig);
    expect(config.ProductionVariants).toEqual([
      expect.objectContaining({ VariantName: 'champion', ModelName: 'model-champion', InitialVariantWeight: 90, InitialInstanceCount: 2 }),
      expect.objectContaining({ VariantName: 'challenger', ModelName: result.output.endpointConfig, InitialVariantWeight: 10, InitialInstanceCount: 1 }),
    ]);
    expect(config.DataCaptureConfig).toMatchObject({ EnableCapture: true, InitialSamplingPercentage: 50, DestinationS3Uri: 's3://capture/churn' });
    expect(config.KmsKeyId).toContain('1234abcd');

    const modelArn = `arn:aws:sagemaker:us-east-1:123456789012:model/${result.output.endpointConfig}`;
    const tags = Object.fromEntries(((await sagemaker().send(new ListTagsCommand({ ResourceArn: modelArn }))).Tags ?? []).map((tag) => [tag.Key, tag.Value]));
    expect(tags).toMatchObject({
      'ml:model-family': 'churn',
      'ml:model-package-arn': version.arn,
      'ml:model-version': '1',
      'ml:training-job': 'churn-train-r1',
      'ml:data-version': 'd'.repeat(64),
      'ml:code-version': 'git:4f07d72',
    });
    const notices = (await read()).map((body) => JSON.parse(body));
    expect(notices).toContainEqual(expect.objectContaining({ result: 'deployed', modelPackageArn: version.arn }));
  });

  test('replaces the first production variant (the champion) by default', async () => {
    const version = await register('Approved');
    const result = await runExecution(moto, definition, { modelPackageArn: version.arn, pollSeconds: 1 });
    expect(result.status).toBe('SUCCEEDED');
    const config = await endpointConfig();
    expect(config.ProductionVariants?.map((variant) => [variant.VariantName, variant.ModelName])).toEqual([
      ['champion', result.output.endpointConfig],
      ['challenger', 'model-challenger'],
    ]);
  });

  test('rolls back to the approved version before the latest', async () => {
    const older = await register('Approved');
    await register('Approved');
    const result = await runExecution(moto, definition, { rollbackToPrevious: true });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ result: 'deployed', modelPackageArn: older.arn, modelVersion: 1 });
  });
});

describe('a version the endpoint already serves', () => {
  async function servingVersion() {
    const version = await register('Approved');
    await sagemaker().send(new CreateModelCommand({ ModelName: 'churn-v1-00000000', ExecutionRoleArn: 'arn:aws:iam::123456789012:role/sm', PrimaryContainer: { ModelPackageName: version.arn } }));
    await sagemaker().send(
      new CreateEndpointConfigCommand({
        EndpointConfigName: 'churn-v1-00000000',
        ProductionVariants: [
          { VariantName: 'champion', ModelName: 'churn-v1-00000000', InitialInstanceCount: 2, InstanceType: 'ml.m5.large', InitialVariantWeight: 90 },
          { VariantName: 'challenger', ModelName: 'model-challenger', InitialInstanceCount: 1, InstanceType: 'ml.m5.large', InitialVariantWeight: 10 },
        ],
        // As the deployment workflow writes it: the data capture and key of the configuration before, and the lineage tags.
        DataCaptureConfig: { EnableCapture: true, InitialSamplingPercentage: 50, DestinationS3Uri: 's3://capture/churn', CaptureOptions: [{ CaptureMode: 'Input' }, { CaptureMode: 'Output' }] },
        KmsKeyId: 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        Tags: [
          { Key: 'ml:model-family', Value: 'churn' },
          { Key: 'ml:model-package-arn', Value: version.arn },
        ],
      }),
    );
    await sagemaker().send(new UpdateEndpointCommand({ EndpointName: ENDPOINT, EndpointConfigName: 'churn-v1-00000000' }));
    return version;
  }

  test('is not deployed again: an approval event that arrives twice changes nothing', async () => {
    const version = await servingVersion();
    const result = await runExecution(moto, definition, { modelPackageArn: version.arn, trigger: { source: 'approval' } });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ result: 'already-deployed', endpointConfig: 'churn-v1-00000000' });
    expect(result.states).not.toContain('Create model');
    expect((await endpointConfig()).EndpointConfigName).toBe('churn-v1-00000000');
  });

  test('is deployed again when forced', async () => {
    const version = await servingVersion();
    const result = await runExecution(moto, definition, { modelPackageArn: version.arn, force: true });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ result: 'deployed', previousEndpointConfig: 'churn-v1-00000000' });
    expect((await endpointConfig()).EndpointConfigName).toBe(result.output.endpointConfig);
  });
});

describe('refusals', () => {
  test('a version that is not approved is not deployed', async () => {
    const version = await register('PendingManualApproval');
    const result = await runExecution(moto, definition, { modelPackageArn: version.arn });
    expect(result).toMatchObject({ status: 'FAILED', error: 'NotApproved', cause: `${version.arn} is PendingManualApproval; only Approved versions are deployed` });
    expect((await endpointConfig()).EndpointConfigName).toBe('churn-config-1');
  });

  test.each([
    [{}, 'InvalidInput', 'modelPackageArn: must be given unless rollbackToPrevious is true'],
    [{ modelPackageArn: 'arn:aws:sagemaker:us-east-1:123456789012:model-package/fraud/1' }, 'InvalidInput', 'config.modelPackageArn: must be absent or a string and a version of model package group'],
    [{ modelPackageArn: 42 }, 'InvalidInput', 'config.modelPackageArn: must be absent or a string'],
    [{ rollbackToPrevious: 'yes' }, 'InvalidInput', 'config.rollbackToPrevious: must be a boolean'],
    [{ force: 'true' }, 'InvalidInput', 'config.force: must be a boolean'],
    [{ rollbackToPrevious: true }, 'NoPreviousVersion', 'rollbackToPrevious: the churn registry has fewer than two approved versions'],
  ])('%j fails with %s', async (input, error, cause) => {
    const result = await runExecution(moto, definition, input);
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe(error);
    expect(result.cause).toContain(cause);
    expect((await endpointConfig()).EndpointConfigName).toBe('churn-config-1');
  });

  test('a target variant the endpoint does not have is refused before anything changes', async () => {
    const version = await register('Approved');
    const result = await runExecution(moto, definition, { modelPackageArn: version.arn, targetVariant: 'candidate' });
    expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'targetVariant: the endpoint has no production variant candidate (it has ["champion","challenger"])' });
    expect((await endpointConfig()).EndpointConfigName).toBe('churn-config-1');
  });
});

describe('when the update does not take', () => {
  const updating = (endpoint: { status: string; configName: string }) => ({
    config: { modelPackageArn: 'arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1', targetVariant: 'champion', rollbackToPrevious: false, force: false, pollSeconds: 1 },
    deploy: { id: 'abcd1234' },
    package: { ModelPackageVersion: 1 },
    lineage: { values: {} },
    current: { EndpointConfigName: 'churn-config-1' },
    names: { name: 'churn-v1-abcd1234' },
    endpoint,
  });

  test('an endpoint back on its old configuration is reported as rolled back by SageMaker', async () => {
    const result = await runExecution(moto, startingAt(definition, 'Endpoint state?'), updating({ status: 'InService', configName: 'churn-config-1' }));
    expect(result).toMatchObject({ status: 'FAILED', error: 'DeploymentRolledBack' });
    expect(result.cause).toContain('the endpoint went back to churn-config-1 instead of churn-v1-abcd1234');
    expect((await read()).map((body) => JSON.parse(body))).toContainEqual(expect.objectContaining({ result: 'rolled-back' }));
  });

  test('a failed endpoint gets its previous configuration back', async () => {
    await sagemaker().send(
      new CreateEndpointConfigCommand({ EndpointConfigName: 'churn-v1-abcd1234', ProductionVariants: [{ VariantName: 'champion', ModelName: 'model-champion', InitialInstanceCount: 1, InstanceType: 'ml.m5.large' }] }),
    );
    await sagemaker().send(new CreateEndpointCommand({ EndpointName: 'unused', EndpointConfigName: 'churn-v1-abcd1234' }));
    const result = await runExecution(moto, startingAt(definition, 'Endpoint state?'), updating({ status: 'Failed', configName: 'churn-v1-abcd1234' }));
    expect(result.states).toContain('Restore previous configuration');
    expect(result).toMatchObject({ status: 'FAILED', error: 'DeploymentFailed' });
    expect((await endpointConfig()).EndpointConfigName).toBe('churn-config-1');
  });

  test('an endpoint still updating is polled again', async () => {
    const result = await runExecution(moto, startingAt(definition, 'Endpoint state?'), updating({ status: 'Updating', configName: 'churn-config-1' }));
    // moto's endpoint is InService on churn-config-1: after one poll, the rollback is detected.
    expect(result.states.slice(0, 4)).toEqual(['Endpoint state?', 'Endpoint updating', 'Check endpoint', 'Endpoint state?']);
    expect(result.error).toBe('DeploymentRolledBack');
  });
});

describe('the approval rule', () => {
  const event = (detail: Record<string, unknown>): SampleEvent => ({
    source: 'aws.sagemaker',
    detailType: 'SageMaker Model Package State Change',
    detail: { ModelPackageGroupName: groupName, ModelPackageVersion: 3, ModelPackageArn: `arn:aws:sagemaker:us-east-1:123456789012:model-package/${groupName.toLowerCase()}/3`, ModelApprovalStatus: 'Approved', ...detail },
  });

  test('matches a version of this group becoming Approved, and nothing else', async () => {
    const rule = Object.entries<any>(template.Resources).find(([id]) => id.startsWith('ChurnDeploymentOnApproval'))![1];
    const matched = await matchesOf(moto, rule.Properties.EventPattern, [
      event({}),
      event({ ModelApprovalStatus: 'PendingManualApproval' }),
      event({ ModelApprovalStatus: 'Rejected' }),
      event({ ModelPackageGroupName: 'fraud-versions' }),
      { ...event({}), detailType: 'SageMaker Model Package Group State Change' },
    ]);
    expect(matched).toEqual([true, false, false, false, false]);
    // The target hands the workflow the version's ARN.
    expect(rule.Properties.Targets[0].InputTransformer.InputPathsMap).toEqual({ 'detail-ModelPackageArn': '$.detail.ModelPackageArn' });
  });
});
