import { CreateModelPackageCommand, CreateModelPackageGroupCommand, ListModelsCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { BatchInference } from '../../../lib/lifecycle/batch-inference';
import { expectValidStateMachines, placeholderArn } from '../../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { nagFindings } from '../../support/platform';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { IMAGE, lifecycleStack } from './fixtures';

function batch(overrides: Partial<ConstructorParameters<typeof BatchInference>[2]> = {}) {
  const world = lifecycleStack();
  const construct = new BatchInference(world.stack, 'ChurnBatch', {
    modelPackageGroup: world.group,
    bucket: world.artifactsBucket,
    inferenceImages: [IMAGE],
    notificationTopic: world.topic,
    encryptionKey: world.key,
    instanceType: 'ml.m5.xlarge',
    inputFilter: '$[1:]',
    outputFilter: '$[0,-1]',
    schedule: scheduler.ScheduleExpression.expression('cron(0 2 * * ? *)'),
    ...overrides,
  });
  const template = Template.fromStack(world.stack);
  return { ...world, construct, template };
}

describe('BatchInference', () => {
  const world = batch();
  const [machine] = expectValidStateMachines(world.template.toJSON());
  const states = (machine.definition as any).States;

  test('passes the three cdk-nag packs', () => {
    world.app.synth();
    expect(nagFindings(world.stack)).toEqual([]);
  });

  test('runs the transform job to completion with input filter, join and output filter, encrypted', () => {
    // moto cannot run `.sync` SageMaker tasks: the transform state is checked here, by structure.
    const score = states['Score records'];
    expect(score.Resource).toBe('arn:aws:states:::sagemaker:createTransformJob.sync');
    expect(score.Parameters.DataProcessing).toEqual({ InputFilter: '$[1:]', JoinSource: 'Input', OutputFilter: '$[0,-1]' });
    expect(score.Parameters.TransformOutput.KmsKeyId).toContain('placeholder:Key');
    expect(score.Parameters.TransformResources).toMatchObject({ InstanceType: 'ml.m5.xlarge', InstanceCount: 1, VolumeKmsKeyId: expect.stringContaining('placeholder:Key') });
    expect(score.Retry.flatMap((retry: any) => retry.ErrorEquals)).toContain('SageMaker.ResourceLimitExceededException');
    expect(score.Catch[0].Next).toBe('Describe failure');
    expect(score.TimeoutSeconds).toBe(6 * 3600);
  });

  test('runs nightly on EventBridge Scheduler, encrypted with the key', () => {
    world.template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 2 * * ? *)',
      KmsKeyArn: { 'Fn::GetAtt': [world.stack.getLogicalId(world.key.node.defaultChild as any), 'Arn'] },
      Target: { Input: JSON.stringify({ inputPrefix: 'churn/batch-input/current/', trigger: { source: 'schedule' } }) },
    });
  });

  test('the job role pulls only the family\'s inference images', () => {
    const statements = Object.values(world.template.findResources('AWS::IAM::ManagedPolicy')).flatMap((policy: any) => policy.Properties.PolicyDocument.Statement);
    const pulls = statements.filter((statement: any) => [statement.Action].flat().includes('ecr:BatchGetImage'));
    expect(pulls.map((statement: any) => JSON.stringify(statement.Resource))).toEqual([expect.stringContaining(':683313688378:repository/sagemaker-xgboost')]);
  });

  test('checks the instance type against the SDK\'s TransformInstanceType', () => {
    expect(() => batch({ instanceType: 'ml.t2.mega' })).toThrow(/^Lifecycle\/ChurnBatch \(BatchInference\): invalid props:\n {2}- instanceType: 'ml\.t2\.mega' is not a SageMaker transform instance type/);
  });
});

describe('BatchInference in moto', () => {
  let moto: MotoServer;
  let template: Record<string, any>;
  let topicPlaceholder: string;
  let groupName: string;
  const sagemaker = () => new SageMakerClient(sdkTestConfig(moto.endpoint));

  beforeAll(async () => {
    moto = await startMoto();
    const world = batch();
    template = world.template.toJSON();
    groupName = world.group.modelPackageGroupName;
    topicPlaceholder = placeholderArn(Stack.of(world.topic).getLogicalId(world.topic.node.defaultChild as any));
  }, 60_000);
  afterAll(async () => moto?.stop());

  async function fresh() {
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    const notifications = await topicWithQueue(moto, 'batch-notices');
    await sagemaker().send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
    return renderForMoto(template, /ChurnBatch/, { [topicPlaceholder]: notifications.topicArn });
  }
  const register = async (status: 'Approved' | 'PendingManualApproval') =>
    (await sagemaker().send(new CreateModelPackageCommand({ ModelPackageGroupName: groupName, ModelApprovalStatus: status, InferenceSpecification: { Containers: [{ Image: IMAGE }], SupportedContentTypes: ['text/csv'], SupportedResponseMIMETypes: ['text/csv'] } }))).ModelPackageArn!;

  test('scores with the latest approved version when the input names none, creating its model first', async () => {
    const definition = await fresh();
    await register('Approved');
    const latest = await register('Approved');
    await register('PendingManualApproval');
    // The run goes on to the transform job, which moto cannot run.
    const result = await runExecution(moto, definition, { inputPrefix: 'churn/batch-input/2026-11-26/' });
    expect(result.states).toEqual(expect.arrayContaining(['Find latest approved version', 'Use latest approved version', 'Describe model version', 'Create model']));
    expect(result.stateOutputs['Describe model version'].config.modelPackageArn).toBe(latest);
    const models = ((await sagemaker().send(new ListModelsCommand({}))).Models ?? []).map((model) => model.ModelName);
    expect(models).toEqual([expect.stringMatching(/^churn-batch-v2-[0-9a-f]{12}$/)]);
  });

  test.each([
    [{ inputPrefix: 'fraud/batch-input/x/' }, 'InvalidInput', 'config.inputPrefix: must be a string and a prefix under churn/batch-input/'],
    [{ inputPrefix: 7 }, 'InvalidInput', 'config.inputPrefix: must be a string'],
    [{}, 'NoApprovedVersion', 'the churn registry has no approved version to score with'],
  ])('%j fails with %s', async (input, error, cause) => {
    const definition = await fresh();
    const result = await runExecution(moto, definition, input);
    expect(result).toMatchObject({ status: 'FAILED', error });
    expect(result.cause).toContain(cause);
  });
});
