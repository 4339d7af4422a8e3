import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { TrainingPipeline } from '../../../lib/lifecycle/training-pipeline';
import { expectValidStateMachines } from '../../support/asl';
import { nagFindings } from '../../support/platform';
import { IMAGE, lifecycleStack, pipelineProps, trainingPipeline } from './fixtures';

const BASE_MODEL = 's3://jumpstart-cache-prod-us-east-1/huggingface-training/model/';

function states(template: Template): Record<string, any> {
  const [machine] = expectValidStateMachines(template.toJSON());
  return (machine.definition as any).States;
}

describe('TrainingPipeline', () => {
  const world = trainingPipeline({ transferLearning: { baseModelS3Uri: BASE_MODEL, hyperparameters: { learning_rate: '2e-5' } }, schedule: events.Schedule.rate(Duration.days(7)), trainOnDataArrival: true });
  const template = Template.fromStack(world.stack);
  const machine = states(template);

  test('passes the three cdk-nag packs', () => {
    world.app.synth();
    expect(nagFindings(world.stack)).toEqual([]);
  });

  test('runs the preprocessing, training and evaluation jobs to completion (.sync), with timeouts, capacity retries and a catch', () => {
    // moto cannot run `.sync` SageMaker tasks: these states are checked here, by structure.
    for (const [name, action] of [
      ['Preprocess', 'createProcessingJob'],
      ['Train from scratch', 'createTrainingJob'],
      ['Fine-tune base model', 'createTrainingJob'],
      ['Evaluate', 'createProcessingJob'],
    ]) {
      const state = machine[name];
      expect(state.Resource).toBe(`arn:aws:states:::sagemaker:${action}.sync`);
      expect(state.TimeoutSeconds).toBeGreaterThan(3600);
      expect(state.Retry.flatMap((retry: any) => retry.ErrorEquals)).toEqual(expect.arrayContaining(['SageMaker.ThrottlingException', 'SageMaker.ResourceLimitExceededException']));
      expect(state.Catch).toEqual([expect.objectContaining({ ErrorEquals: ['States.ALL'], Next: 'Describe failure' })]);
    }
  });

  test('encrypts every job volume and output with the key, and isolates the containers', () => {
    const keyArn = expect.stringContaining('placeholder:Key');
    for (const name of ['Preprocess', 'Evaluate']) {
      const parameters = machine[name].Parameters;
      expect(parameters.ProcessingResources.ClusterConfig.VolumeKmsKeyId).toEqual(keyArn);
      expect(parameters.ProcessingOutputConfig.KmsKeyId).toEqual(keyArn);
      expect(parameters.NetworkConfig).toMatchObject({ EnableNetworkIsolation: true, EnableInterContainerTrafficEncryption: true });
    }
    for (const name of ['Train from scratch', 'Fine-tune base model']) {
      const parameters = machine[name].Parameters;
      expect(parameters).toMatchObject({ EnableNetworkIsolation: true, EnableInterContainerTrafficEncryption: true });
      expect(parameters.ResourceConfig.VolumeKmsKeyId).toEqual(keyArn);
      expect(parameters.OutputDataConfig.KmsKeyId).toEqual(keyArn);
      expect(parameters.AlgorithmSpecification.TrainingImage).toBe(IMAGE);
    }
  });

  test('fine-tuning adds the base model as the model channel and uses the fine-tuning hyperparameters', () => {
    const scratch = machine['Train from scratch'].Parameters;
    const fineTune = machine['Fine-tune base model'].Parameters;
    expect(scratch['HyperParameters.$']).toBe('$.config.hyperparameters');
    expect(fineTune['HyperParameters.$']).toBe('$.config.fineTuneHyperparameters');
    expect(scratch.InputDataConfig.map((channel: any) => channel.ChannelName)).toEqual(['train', 'validation']);
    expect(fineTune.InputDataConfig.map((channel: any) => channel.ChannelName)).toEqual(['train', 'validation', 'model']);
    expect(fineTune.InputDataConfig[2].DataSource.S3DataSource['S3Uri.$']).toBe('$.config.baseModelUri');
    expect(world.pipeline.defaults).toMatchObject({
      useTransferLearning: true,
      baseModelUri: BASE_MODEL,
      hyperparameters: { objective: 'binary:logistic', num_round: '100' },
      fineTuneHyperparameters: { objective: 'binary:logistic', num_round: '100', learning_rate: '2e-5' },
    });
    expect(machine['Fine-tune?'].Choices[0].Next).toBe('Fine-tune base model');
    expect(machine['Fine-tune?'].Default).toBe('Train from scratch');
  });

  test('trains from scratch by default when no base model is configured', () => {
    const plain = trainingPipeline();
    expect(plain.pipeline.defaults).toMatchObject({ useTransferLearning: false });
    expect(plain.pipeline.defaults).not.toHaveProperty('baseModelUri');
  });

  /** Every statement of the managed policies, with its resources flattened to text, for containment checks. */
  const statements = Object.values(template.findResources('AWS::IAM::ManagedPolicy')).flatMap((policy: any) =>
    policy.Properties.PolicyDocument.Statement.map((statement: any) => ({ actions: [statement.Action].flat(), resources: JSON.stringify(statement.Resource), condition: statement.Condition })),
  );
  const grantsOf = (action: string) => statements.filter((statement) => statement.actions.includes(action));

  test('the job role reads only the datasets, the runs and the base model, and writes only this family\'s runs', () => {
    const reads = grantsOf('s3:GetObject').map((grant) => grant.resources).join(' ');
    expect(reads).toContain('jumpstart-cache-prod-us-east-1/huggingface-training/model/*');
    expect(reads).toContain('/churn/datasets/*');
    const writes = grantsOf('s3:PutObject');
    expect(writes).toHaveLength(1);
    expect(writes[0].resources).toMatch(/Artifacts.*\/churn\/runs\/\*/);
    expect(statements.flatMap((statement) => statement.actions).filter((action) => action.includes('*'))).toEqual([]);
  });

  test('the workflow may run only this family\'s jobs and pass only the job role, to SageMaker', () => {
    expect(grantsOf('sagemaker:CreateTrainingJob').map((grant) => grant.resources)).toEqual([expect.stringContaining(':training-job/churn-train-*')]);
    expect(grantsOf('sagemaker:CreateProcessingJob').map((grant) => grant.resources)).toEqual([expect.stringContaining(':processing-job/churn-*')]);
    for (const passRole of grantsOf('iam:PassRole')) {
      expect(passRole.condition).toEqual({ StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } });
      expect(passRole.resources).toContain('ChurnTrainingJobRole');
    }
    expect(grantsOf('sagemaker:CreateModelPackage').map((grant) => grant.resources)).toEqual([expect.stringContaining('model-package/')]);
  });

  test('retrains on the schedule and when a dataset marker lands', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(7 days)',
      Targets: [Match.objectLike({ Input: JSON.stringify({ modelFamily: 'churn', trigger: { source: 'schedule' } }) })],
    });
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { source: ['aws.s3'], 'detail-type': ['Object Created'], detail: { object: { key: [{ wildcard: 'churn/datasets/*/_SUCCESS' }] } } },
      Targets: [Match.objectLike({ InputTransformer: Match.objectLike({ InputPathsMap: { 'detail-object-key': '$.detail.object.key' } }) })],
    });
    template.hasResourceProperties('AWS::S3::Bucket', { NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } } });
  });

  test('rejects bad props with errors that name them', () => {
    const bad = lifecycleStack();
    expect(
      () =>
        new TrainingPipeline(
          bad.stack,
          'Bad',
          pipelineProps(bad, {
            training: { image: 'xgboost:latest', instanceType: 'ml.m5.xlarge', instanceCount: 0 },
            gate: { metric: 'auc value', threshold: Number.NaN },
            transferLearning: { baseModelS3Uri: 'https://example.com/model' },
          }),
        ),
    ).toThrow(
      /Lifecycle\/Bad \(TrainingPipeline\): invalid props:[\s\S]*training\.image: must be an ECR image URI[\s\S]*training\.instanceCount: must be a whole number of at least 1[\s\S]*gate\.metric: must be a dotted path[\s\S]*gate\.threshold: must be a finite number[\s\S]*transferLearning\.baseModelS3Uri: must be an s3:\/\/bucket\/key URI/,
    );
  });

  test('checks each job\'s instance type against SageMaker\'s list for that kind of job, all at once', () => {
    const bad = lifecycleStack();
    const props = pipelineProps(bad, {});
    expect(
      () =>
        new TrainingPipeline(bad.stack, 'BadTypes', {
          ...props,
          preprocessing: { ...props.preprocessing, instanceType: 'ml.m5.huge' },
          // An endpoint (hosting) type, but not a training one.
          training: { ...props.training, instanceType: 'ml.t2.medium' },
          // A training type, but not a processing one.
          evaluation: { ...props.evaluation, instanceType: 'ml.c5n.xlarge' },
        }),
    ).toThrow(
      /BadTypes \(TrainingPipeline\): invalid props:\n  - preprocessing\.instanceType: 'ml\.m5\.huge' is not a SageMaker processing instance type \(for example ml\.m5\.xlarge\)\n  - training\.instanceType: 'ml\.t2\.medium' is not a SageMaker training instance type \(for example ml\.m5\.xlarge\)\n  - evaluation\.instanceType: 'ml\.c5n\.xlarge' is not a SageMaker processing instance type/,
    );
    // The types each kind does accept still synthesize.
    const good = lifecycleStack();
    const accepted = pipelineProps(good, {});
    expect(
      () =>
        new TrainingPipeline(good.stack, 'GoodTypes', {
          ...accepted,
          preprocessing: { ...accepted.preprocessing, instanceType: 'ml.t3.medium' },
          training: { ...accepted.training, instanceType: 'ml.g5.xlarge' },
          evaluation: { ...accepted.evaluation, instanceType: 'ml.m5.large' },
        }),
    ).not.toThrow();
  });
});
