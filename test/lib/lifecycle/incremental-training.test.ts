// IncrementalTraining by structure: the delivery stream and what its role may write, the collector's grants, the
// workflow's states and the requests it sends SageMaker and Step Functions, the schedule, the alarm, the training
// pipeline's comparison with the champion, cdk-nag and cfn-lint, and bad props. The workflow runs in moto in
// incremental-training-execution.test.ts; the function in test/lambda/online-learning.test.ts.
import { Duration, Size } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type { MlFunction } from '../../../lib/core/ml-function';
import { DatasetFormat } from '../../../lib/lifecycle/data-validation';
import { INCREMENTAL_TRAINING_METRICS_NAMESPACE } from '../../../lib/lifecycle/incremental-training';
import { thrownLines } from '../../support/assertions';
import { expectValidStateMachines } from '../../support/asl';
import { botocoreShapeMembers, cfnLintTemplate, unknownParameters } from '../../support/cli';
import { nagFindings } from '../../support/platform';
import { incrementalTraining } from './fixtures';

describe('IncrementalTraining', () => {
  const world = incrementalTraining();
  const template = Template.fromStack(world.stack).toJSON();
  const machines = expectValidStateMachines(template);
  const machine = machines.find((candidate) => candidate.logicalId.startsWith('ChurnIncremental'))!;
  const pipelineMachine = machines.find((candidate) => candidate.logicalId.startsWith('ChurnTraining'))!;
  const states: Record<string, any> = (machine.definition as any).States;
  const pipelineStates: Record<string, any> = (pipelineMachine.definition as any).States;
  const id = (construct: any) => world.stack.getLogicalId(construct.node.defaultChild ?? construct);
  const resources = (type: string) => Object.entries<any>(template.Resources).filter(([, resource]) => resource.Type === type);
  const policyOf = (role: any) => template.Resources[world.stack.getLogicalId(role.grantsPolicy.node.defaultChild)].Properties.PolicyDocument.Statement as any[];
  const text = (value: unknown) => JSON.stringify(value);

  test('the delivery stream writes KMS-encrypted micro-batches under churn/stream/arrived/<hour>/, its role only under churn/stream/', () => {
    const [[, stream]] = resources('AWS::KinesisFirehose::DeliveryStream');
    const destination = stream.Properties.ExtendedS3DestinationConfiguration;
    expect(stream.Properties).toMatchObject({ DeliveryStreamType: 'DirectPut', DeliveryStreamEncryptionConfigurationInput: { KeyType: 'CUSTOMER_MANAGED_CMK' } });
    expect(destination).toMatchObject({
      Prefix: 'churn/stream/arrived/!{timestamp:yyyy/MM/dd/HH}/',
      ErrorOutputPrefix: 'churn/stream/delivery-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/',
      BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 5 },
      CompressionFormat: 'UNCOMPRESSED',
      CloudWatchLoggingOptions: { Enabled: true },
    });
    expect(destination.EncryptionConfiguration.KMSEncryptionConfig.AWSKMSKeyARN).toEqual({ 'Fn::GetAtt': [id(world.key), 'Arn'] });
    const deliveryRole = world.construct.node.findChild('DeliveryRole') as any;
    const statements = policyOf(deliveryRole);
    const put = statements.find((statement) => text(statement.Action).includes('s3:PutObject'));
    expect(text(put.Resource)).toContain('/churn/stream/*');
    expect(statements.every((statement) => !text(statement.Action).includes('s3:GetObject') && !text(statement.Action).includes('s3:DeleteObject'))).toBe(true);
    const logging = statements.find((statement) => statement.Action === 'logs:PutLogEvents');
    expect(logging.Resource).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:us-east-1:123456789012:log-group:', { Ref: id(world.construct.node.findChild('DeliveryLogs')) }, ':log-stream:', { Ref: id(world.construct.node.findChild('DeliveryLogStream')) }]],
    });
    const trust = template.Resources[id(deliveryRole)].Properties.AssumeRolePolicyDocument.Statement[0];
    expect(trust).toMatchObject({ Principal: { Service: 'firehose.amazonaws.com' }, Condition: { StringEquals: { 'sts:ExternalId': '123456789012' } } });
  });

  test('the collector reads and deletes arrived micro-batches, reads the constraints, and writes only windows, quarantine and rejected batches', () => {
    const collector = world.construct.node.findChild('Collector') as MlFunction;
    const statements = policyOf(collector.role);
    const actionsOn = (fragment: string) => statements.filter((statement) => text(statement.Resource).includes(fragment)).flatMap((statement) => [statement.Action].flat()).sort();
    expect(actionsOn('/churn/stream/arrived/*')).toEqual(['s3:DeleteObject', 's3:GetObject']);
    expect(actionsOn('/churn/constraints/constraints.json')).toEqual(['s3:GetObject']);
    for (const prefix of ['/churn/datasets/increments/*', '/churn/stream/quarantine/*', '/churn/stream/rejected/*']) expect(actionsOn(prefix)).toEqual(['s3:PutObject']);
    const list = statements.find((statement) => statement.Action === 's3:ListBucket');
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': 'churn/stream/arrived/*' } });
    expect(statements.some((statement) => text(statement.Resource).includes('/churn/datasets/*') || text(statement.Resource).includes('/churn/runs/'))).toBe(false);
    const env = template.Resources[id(world.construct.function)].Properties.Environment.Variables;
    expect(env).toMatchObject({ MODEL_FAMILY: 'churn', DATASET_FORMAT: 'csv', POWERTOOLS_METRICS_NAMESPACE: INCREMENTAL_TRAINING_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME: 'online-learning-churn', STATE_TABLE: { Ref: id(world.construct.table) } });
    const table = template.Resources[id(world.construct.table)].Properties;
    expect(table).toMatchObject({ SSESpecification: { SSEEnabled: true, SSEType: 'KMS' }, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true }, TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true } });
  });

  test('validates micro-batches, then finds the champion, warm-starts the pipeline from it on the window, and records the outcome', () => {
    expect(machine.definition).toMatchObject({ StartAt: 'Load defaults' });
    expect(states['Load defaults'].Parameters).toEqual({
      constraintsKey: 'churn/constraints/constraints.json',
      settings: { minRecords: 1000, cooldownSeconds: 86_400, updateTimeoutSeconds: world.pipeline.runTimeout.plus(Duration.hours(1)).toSeconds() },
      fineTuneHyperparameters: { objective: 'binary:logistic', num_round: '100' },
    });
    expect(states['Validate micro-batches'].Parameters.Payload).toEqual({ action: 'tick', 'now.$': '$$.State.EnteredTime', 'constraintsKey.$': '$.config.constraintsKey', 'settings.$': '$.config.settings' });
    expect(states['Validate micro-batches'].Retry[0]).toEqual({ ErrorEquals: ['OnlineLearningInputError', 'ConfigError'], MaxAttempts: 0 });
    expect(states['Update now?'].Choices).toEqual([{ Variable: '$.tick.decision', StringEquals: 'start', Next: 'Find champion' }]);
    expect(states['Update now?'].Default).toBe('No update');
    expect(states['Find champion'].Parameters).toMatchObject({ ModelApprovalStatus: 'Approved', SortBy: 'CreationTime', SortOrder: 'Descending', MaxResults: 1 });
    expect(states['Has champion?'].Default).toBe('No champion');
    expect(states['Champion artifact readable?'].Default).toBe('Champion unreadable');
    for (const refusal of ['No champion', 'Champion unreadable']) expect(states[refusal]).toMatchObject({ Type: 'Pass', ResultPath: '$.refusal', Next: 'Record refusal' });
    const start = states['Train on window'];
    expect(start.Resource).toMatch(/states:startExecution\.sync:2$/);
    expect(start.Parameters.Input).toMatchObject({
      modelFamily: 'churn',
      'dataPrefix.$': '$.tick.dataPrefix',
      useTransferLearning: true,
      'baseModelUri.$': '$.champion.modelDataUrl',
      'championModelUri.$': '$.champion.modelDataUrl',
      'fineTuneHyperparameters.$': '$.config.fineTuneHyperparameters',
    });
    expect(start.Parameters['Name.$']).toBe("States.Format('churn-{}', $.tick.window)");
    expect(start.Catch[0].Next).toBe('Record failure');
    expect(states['Registered?'].Choices).toEqual([{ Variable: '$.pipeline.output.result', StringEquals: 'registered', Next: 'Record registration' }]);
    for (const [state, outcome] of [['Record registration', 'registered'], ['Record gate refusal', 'refused'], ['Record failure', 'failed'], ['Record refusal', 'refused']]) {
      expect(states[state].Parameters.Payload).toMatchObject({ action: 'finish', outcome, 'window.$': '$.tick.window' });
    }
    expect(states['Update failed']).toMatchObject({ Type: 'Fail', Error: 'IncrementalUpdateFailed' });
  });

  test("sends ListModelPackages and DescribeModelPackage members of their requests only, as botocore's models define them", () => {
    expect(unknownParameters(states['Find champion'].Parameters, botocoreShapeMembers('sagemaker', '2017-07-24', 'ListModelPackagesInput'))).toEqual([]);
    expect(unknownParameters(states['Describe champion'].Parameters, botocoreShapeMembers('sagemaker', '2017-07-24', 'DescribeModelPackageInput'))).toEqual([]);
    // The optimised Step Functions integration names StartExecution's members in PascalCase; the API in camelCase.
    const start = botocoreShapeMembers('stepfunctions', '2016-11-23', 'StartExecutionInput');
    const pascal = Object.fromEntries(Object.entries(start).map(([name, members]) => [name[0]!.toUpperCase() + name.slice(1), members]));
    expect(Object.keys(start)).toContain('stateMachineArn');
    expect(unknownParameters(states['Train on window'].Parameters, pascal)).toEqual([]);
  });

  test("the pipeline scores the champion on the same test split and refuses a model worse than it", () => {
    expect(pipelineStates['Compare with champion?'].Choices).toEqual([{ Variable: '$.config.championModelUri', IsPresent: true, Next: 'Evaluate champion' }]);
    const champion = pipelineStates['Evaluate champion'].Parameters;
    const evaluation = pipelineStates.Evaluate.Parameters;
    expect(champion.ProcessingInputs[0].S3Input['S3Uri.$']).toBe('$.config.championModelUri');
    expect(champion.ProcessingInputs[1]).toEqual(evaluation.ProcessingInputs[1]);
    expect(champion.AppSpecification).toEqual(evaluation.AppSpecification);
    expect(text(champion.ProcessingOutputConfig)).toContain('champion-evaluation');
    const gate = pipelineStates['Meets threshold and champion?'];
    expect(gate.Choices.map((choice: any) => choice.Next)).toEqual(['Evaluation report lacks the metric', 'Champion evaluation lacks the metric', 'Rejected verdict', 'Register model version']);
    expect(gate.Choices[3]).toMatchObject({ Variable: '$.evaluation.report.binary_classification_metrics.auc.value', NumericGreaterThanEqualsPath: '$.championEvaluation.report.binary_classification_metrics.auc.value' });
    expect(gate.Default).toBe('Worse than champion verdict');
    expect(pipelineStates['Worse than champion verdict'].Next).toBe('Notify rejection');
    const lower = incrementalTraining({}, { gate: { metric: 'regression_metrics.rmse.value', threshold: 0.5, direction: 'lower-is-better' } });
    const lowerStates = (expectValidStateMachines(Template.fromStack(lower.stack).toJSON()).find((candidate) => candidate.logicalId.startsWith('ChurnTraining'))!.definition as any).States;
    expect(lowerStates['Meets threshold and champion?'].Choices[3]).toMatchObject({ NumericLessThanEqualsPath: '$.championEvaluation.report.regression_metrics.rmse.value' });
  });

  test('runs every 15 minutes from EventBridge Scheduler, alarms on a rejected micro-batch, passes cdk-nag and cfn-lint', () => {
    const schedule = resources('AWS::Scheduler::Schedule').map(([, resource]) => resource).find((resource) => text(resource.Properties.Target.Arn).includes(machine.logicalId));
    expect(schedule.Properties).toMatchObject({ ScheduleExpression: 'rate(15 minutes)', Target: { Input: '{"trigger":"schedule"}' } });
    const alarm = template.Resources[id(world.construct.rejectedBatchesAlarm!)].Properties;
    expect(alarm).toMatchObject({ MetricName: 'MicroBatchesRejected', Namespace: INCREMENTAL_TRAINING_METRICS_NAMESPACE, Threshold: 0 });
    world.app.synth();
    expect(nagFindings(world.stack)).toEqual([]);
    const lint = cfnLintTemplate('incremental-training', template);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  });

  test('its settings reach the stream, the schedule and the defaults; a pipeline without validation windows CSV unless told', () => {
    const other = incrementalTraining(
      { minRecords: 50, cooldown: Duration.hours(2), schedule: scheduler.ScheduleExpression.rate(Duration.hours(1)), hyperparameters: { num_round: '20' }, bufferingInterval: Duration.seconds(60), bufferingSize: Size.mebibytes(64), format: DatasetFormat.JSON_LINES },
      { dataValidation: undefined },
    );
    const otherTemplate = Template.fromStack(other.stack).toJSON();
    const otherMachine = expectValidStateMachines(otherTemplate).find((candidate) => candidate.logicalId.startsWith('ChurnIncremental'))!;
    expect((otherMachine.definition as any).States['Load defaults'].Parameters).toMatchObject({ settings: { minRecords: 50, cooldownSeconds: 7200 }, fineTuneHyperparameters: { objective: 'binary:logistic', num_round: '20' } });
    const stream = Object.values<any>(otherTemplate.Resources).find((resource) => resource.Type === 'AWS::KinesisFirehose::DeliveryStream');
    expect(stream.Properties.ExtendedS3DestinationConfiguration.BufferingHints).toEqual({ IntervalInSeconds: 60, SizeInMBs: 64 });
    expect(otherTemplate.Resources[other.stack.getLogicalId(other.construct.function.node.defaultChild as any)].Properties.Environment.Variables.DATASET_FORMAT).toBe('jsonl');
    const schedules = Object.values<any>(otherTemplate.Resources).filter((resource) => resource.Type === 'AWS::Scheduler::Schedule');
    expect(schedules.map((resource) => resource.Properties.ScheduleExpression)).toContain('rate(1 hour)');
  });

  test('names every bad prop at once', () => {
    const problems = thrownLines(() =>
      incrementalTraining({
        constraintsKey: 'other/constraints/c.json',
        format: 'parquet' as never,
        minRecords: 0,
        cooldown: Duration.days(31),
        bufferingInterval: Duration.minutes(20),
        bufferingSize: Size.mebibytes(200),
        hyperparameters: { num_round: 20 as never },
      }),
    );
    const message = problems.join('\n');
    for (const field of ['constraintsKey:', 'format:', 'minRecords:', 'cooldown:', 'bufferingInterval:', 'bufferingSize:', 'hyperparameters.num_round:']) expect(message).toContain(field);
    expect(thrownLines(() => incrementalTraining({ trainingPipeline: undefined as never })).join('\n')).toContain('trainingPipeline: is required');
  });
});
