// DataValidation on its own (the validate-data function, its grants and its steps in any workflow) and inside
// TrainingPipeline with `dataValidation` (the validation between versioning the dataset and preprocessing it).
// The workflow itself runs in moto in validation-execution.test.ts; here it is checked by structure.
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { DataKey } from '../../../lib/core/data-key';
import type { MlFunction } from '../../../lib/core/ml-function';
import { SecureBucket } from '../../../lib/core/secure-bucket';
import { DATA_VALIDATION_METRICS_NAMESPACE, DATA_VALIDATION_STATE_TAG, DatasetFormat, DataValidation, type DataValidationProps } from '../../../lib/lifecycle/data-validation';
import { TrainingPipeline, type TrainingPipelineProps } from '../../../lib/lifecycle/training-pipeline';
import { expectValidStateMachines } from '../../support/asl';
import { cfnLintTemplate } from '../../support/cli';
import { nagFindings } from '../../support/platform';
import { lifecycleStack, pipelineProps, trainingPipeline } from './fixtures';
import { thrownLines } from '../../support/assertions';

const actionsOf = (statement: any): string[] => [statement.Action].flat();
const resourceText = (statement: any): string => JSON.stringify(statement.Resource);

/** A DataValidation in the lifecycle stack: datasets and constraints in the data bucket, reports in the artifacts bucket. */
function validation(overrides: Partial<DataValidationProps> = {}) {
  const world = lifecycleStack();
  const construct = new DataValidation(world.stack, 'ChurnValidation', {
    dataBucket: world.dataBucket,
    datasetsPrefix: 'churn/datasets/',
    constraintsPrefix: 'churn/constraints/',
    reportsBucket: world.artifactsBucket,
    reportsPrefix: 'churn/validation/',
    encryptionKey: world.key,
    name: 'churn',
    ...overrides,
  });
  return { ...world, construct };
}

/** The statements of the validator role's grants policy, resolved. */
function validatorStatements(stack: Stack, construct: DataValidation): any[] {
  const validator = construct.node.findChild('Validator') as MlFunction;
  const template = Template.fromStack(stack).toJSON();
  return template.Resources[stack.getLogicalId(validator.role.grantsPolicy.node.defaultChild as any)].Properties.PolicyDocument.Statement;
}

/** The message of the error `build` throws, as its lines. */

describe('DataValidation', () => {
  const world = validation();
  const template = Template.fromStack(world.stack);
  const statements = validatorStatements(world.stack, world.construct);
  const dataBucketId = world.stack.getLogicalId(world.dataBucket.node.defaultChild as any);
  const artifactsBucketId = world.stack.getLogicalId(world.artifactsBucket.node.defaultChild as any);
  const keyId = world.stack.getLogicalId(world.key.node.defaultChild as any);
  const objects = (bucketId: string, prefix: string) => ({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${prefix}*`]] });

  test('lists the data bucket only under the datasets prefix', () => {
    const lists = statements.filter((statement) => actionsOf(statement).includes('s3:ListBucket'));
    expect(lists).toEqual([{ Action: 's3:ListBucket', Effect: 'Allow', Resource: { 'Fn::GetAtt': [dataBucketId, 'Arn'] }, Condition: { StringLike: { 's3:prefix': 'churn/datasets/*' } } }]);
  });

  test('reads the datasets and the constraints (with their versions), and reads and writes only under the reports prefix', () => {
    const s3Statements = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('s3:')) && !actionsOf(statement).includes('s3:ListBucket'));
    expect(s3Statements).toEqual([
      { Action: 's3:GetObject', Effect: 'Allow', Resource: objects(dataBucketId, 'churn/datasets/') },
      { Action: ['s3:GetObject', 's3:GetObjectVersion'], Effect: 'Allow', Resource: objects(dataBucketId, 'churn/constraints/') },
      { Action: ['s3:GetObject', 's3:PutObject'], Effect: 'Allow', Resource: objects(artifactsBucketId, 'churn/validation/') },
      // Its resume-state objects carry the one tag a lifecycle rule expires them by, and no other.
      {
        Action: 's3:PutObjectTagging',
        Effect: 'Allow',
        Resource: objects(artifactsBucketId, 'churn/validation/'),
        Condition: { 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['ml-platform:purpose'] } },
      },
    ]);
    // No write to the data bucket, no version read of the datasets, no delete anywhere.
    const writes = statements.filter((statement) => actionsOf(statement).includes('s3:PutObject'));
    expect(writes.map(resourceText).join(' ')).not.toContain(dataBucketId);
    expect(statements.filter((statement) => actionsOf(statement).includes('s3:GetObjectVersion')).map(resourceText)).toEqual([JSON.stringify(objects(dataBucketId, 'churn/constraints/'))]);
    expect(statements.flatMap(actionsOf).filter((action) => /Delete|\*/.test(action))).toEqual([]);
  });

  test('decrypts and encrypts with the key, and uses no other key', () => {
    const kms = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('kms:')));
    expect(kms).toEqual([{ Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: { 'Fn::GetAtt': [keyId, 'Arn'] } }]);
  });

  test('grants nothing else but its logs and tracing, and no managed policy but its own grants', () => {
    const rest = statements.filter((statement) => !actionsOf(statement).some((action) => action.startsWith('s3:') || action.startsWith('kms:')));
    expect(rest.flatMap(actionsOf).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
    const roles = Object.values(template.findResources('AWS::IAM::Role')) as any[];
    expect(roles).toHaveLength(1);
    expect(roles[0].Properties.ManagedPolicyArns).toHaveLength(1);
    expect(template.findResources('AWS::IAM::Policy')).toEqual({});
  });

  test('grants the keys of buckets encrypted with another key, for just decrypting and encrypting', () => {
    const world = lifecycleStack();
    const reportsKey = new DataKey(world.stack, 'ReportsKey').key;
    const reportsBucket = new SecureBucket(world.stack, 'Reports', { encryptionKey: reportsKey, retain: false }).bucket;
    const construct = new DataValidation(world.stack, 'ChurnValidation', {
      dataBucket: world.dataBucket,
      datasetsPrefix: 'churn/datasets/',
      constraintsPrefix: 'churn/constraints/',
      reportsBucket,
      reportsPrefix: 'churn/validation/',
      encryptionKey: world.key,
      name: 'churn',
    });
    const kms = validatorStatements(world.stack, construct).filter((statement) => actionsOf(statement).some((action) => action.startsWith('kms:')));
    expect(kms.map((statement) => [statement.Resource['Fn::GetAtt'][0], actionsOf(statement)])).toEqual([
      [world.stack.getLogicalId(world.key.node.defaultChild as any), ['kms:Decrypt', 'kms:GenerateDataKey']],
      [world.stack.getLogicalId(reportsKey.node.defaultChild as any), ['kms:Decrypt', 'kms:GenerateDataKey']],
    ]);
  });

  test('runs the function with its service name and metrics namespace, for up to 15 minutes, two at a time', () => {
    template.resourceCountIs('AWS::Lambda::Function', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'Validates the churn datasets against their constraints',
      Runtime: 'nodejs24.x',
      Handler: 'index.handler',
      Timeout: 900,
      MemorySize: 1024,
      ReservedConcurrentExecutions: 2,
      Environment: {
        Variables: {
          POWERTOOLS_SERVICE_NAME: 'data-validation-churn',
          POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/DataValidation',
          POWERTOOLS_LOG_LEVEL: 'INFO',
          STATE_OBJECT_TAG: `${DATA_VALIDATION_STATE_TAG.key}=${DATA_VALIDATION_STATE_TAG.value}`,
        },
      },
    });
    expect(world.construct.serviceName).toBe('data-validation-churn');
    expect(DATA_VALIDATION_METRICS_NAMESPACE).toBe('MlPlatform/DataValidation');
    expect(world.construct.function).toBe((world.construct.node.findChild('Validator') as MlFunction).function);
  });

  test('offers the EMF metrics the function publishes, summed hourly under its service dimension', () => {
    const metrics = [world.construct.metricRecordsValidated(), world.construct.metricRecordsQuarantined(), world.construct.metricViolations({ period: Duration.days(1) })];
    expect(metrics.map((metric) => [metric.namespace, metric.metricName, metric.dimensions, metric.statistic, metric.period.toSeconds()])).toEqual([
      ['MlPlatform/DataValidation', 'RecordsValidated', { service: 'data-validation-churn' }, 'Sum', 3600],
      ['MlPlatform/DataValidation', 'RecordsQuarantined', { service: 'data-validation-churn' }, 'Sum', 3600],
      ['MlPlatform/DataValidation', 'ValidationViolations', { service: 'data-validation-churn' }, 'Sum', 86_400],
    ]);
  });

  test('passes the three cdk-nag packs', () => {
    world.app.synth();
    expect(nagFindings(world.construct)).toEqual([]);
  });

  test('has no alarm unless it is told where to notify', () => {
    template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
    expect(world.construct.violationsAlarm).toBeUndefined();
  });

  test('with alarmAction, warns when a validation ends with a violated constraint, and passes the three cdk-nag packs', () => {
    const world = lifecycleStack();
    const construct = new DataValidation(world.stack, 'ChurnValidation', {
      dataBucket: world.dataBucket,
      datasetsPrefix: 'churn/datasets/',
      constraintsPrefix: 'churn/constraints/',
      reportsBucket: world.artifactsBucket,
      reportsPrefix: 'churn/validation/',
      encryptionKey: world.key,
      name: 'churn',
      alarmAction: new actions.SnsAction(world.topic),
    });
    Template.fromStack(world.stack).hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'MlPlatform/DataValidation',
      MetricName: 'ValidationViolations',
      Dimensions: [{ Name: 'service', Value: 'data-validation-churn' }],
      Statistic: 'Sum',
      Period: 3600,
      EvaluationPeriods: 1,
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: world.stack.getLogicalId(world.topic.node.defaultChild as any) }],
      AlarmDescription: Match.stringLikeRegexp('^\\[WARNING\\] a dataset of churn failed validation'),
    });
    expect(construct.violationsAlarm).toBeDefined();
    world.app.synth();
    expect(nagFindings(construct)).toEqual([]);
  });

  test('names every problem of the props at once, with the construct\'s path', () => {
    const world = lifecycleStack();
    expect(
      thrownLines(
        () =>
          new DataValidation(world.stack, 'Bad', {
            dataBucket: undefined as unknown as s3.IBucket,
            reportsBucket: undefined as unknown as s3.IBucket,
            encryptionKey: world.key,
            datasetsPrefix: 'churn/datasets',
            constraintsPrefix: '/churn/constraints/',
            reportsPrefix: 'churn runs/',
            name: 'Churn_Model',
          }),
      ),
    ).toEqual([
      'Lifecycle/Bad (DataValidation): invalid props:',
      '  - dataBucket: is required',
      '  - reportsBucket: is required',
      `  - datasetsPrefix: must be a key prefix ending in '/' (letters, digits and !_.*'()-); got "churn/datasets"`,
      `  - constraintsPrefix: must be a key prefix ending in '/' (letters, digits and !_.*'()-); got "/churn/constraints/"`,
      `  - reportsPrefix: must be a key prefix ending in '/' (letters, digits and !_.*'()-); got "churn runs/"`,
      '  - name: must be 1-41 lowercase letters, digits or hyphens, starting with a letter; got "Churn_Model"',
    ]);
  });

  test.each([
    ['an empty prefix', { datasetsPrefix: '' }, `datasetsPrefix: must be a key prefix ending in '/' (letters, digits and !_.*'()-); got ""`],
    ['a prefix with an empty segment', { reportsPrefix: 'churn//runs/' }, `reportsPrefix: must be a key prefix ending in '/' (letters, digits and !_.*'()-); got "churn//runs/"`],
    ['a prefix that is no string', { constraintsPrefix: 7 as unknown as string }, 'constraintsPrefix: must be a string; got number 7'],
    ['a name over 41 characters', { name: `c${'x'.repeat(41)}` }, 'name: must be 1-41 lowercase letters, digits or hyphens, starting with a letter'],
    ['a name that is no string', { name: 42 as unknown as string }, 'name: must be a string; got number 42'],
    ['no key', { encryptionKey: undefined }, 'encryptionKey: is required'],
    ['no reports prefix', { reportsPrefix: undefined }, 'reportsPrefix: is required'],
  ])('refuses %s', (_label, overrides: Partial<DataValidationProps>, problem) => {
    expect(() => validation(overrides)).toThrow(problem);
  });

  test('accepts a prefix at the bucket root level and one with the allowed punctuation', () => {
    expect(() => validation({ datasetsPrefix: 'datasets/', reportsPrefix: "team_a/runs.v2/(x)/'y'-z!*/" })).not.toThrow();
  });

  describe('steps in a workflow of its own', () => {
    const world = lifecycleStack();
    const construct = new DataValidation(world.stack, 'Validation', {
      dataBucket: world.dataBucket,
      datasetsPrefix: 'stream/datasets/',
      constraintsPrefix: 'stream/constraints/',
      reportsBucket: world.artifactsBucket,
      reportsPrefix: 'stream/reports/',
      encryptionKey: world.key,
      name: 'stream',
    });
    const machineScope = world.stack;
    const passed = new sfn.Succeed(machineScope, 'Use dataset');
    const failed = new sfn.Fail(machineScope, 'Reject dataset', { error: 'Rejected' });
    const errored = new sfn.Fail(machineScope, 'Validation broke', { error: 'Broken' });
    const steps = construct.steps(machineScope, {
      datasetUri: '$.dataset',
      constraintsUri: '$.constraints',
      reportUri: "States.Format('s3://reports/{}/', $$.Execution.Name)",
      format: DatasetFormat.JSON_LINES,
      resultPath: '$.check',
      passed,
      failed,
      errored,
    });
    const machine = new sfn.StateMachine(machineScope, 'Machine', { definitionBody: sfn.DefinitionBody.fromChainable(steps) });
    const template = Template.fromStack(world.stack);
    const [rendered] = expectValidStateMachines(template.toJSON());
    const states = (rendered.definition as any).States;

    test('starts with no continuation, calls the function and routes on its verdict, at the result path it is given', () => {
      expect((rendered.definition as any).StartAt).toBe('Start validation');
      expect(states['Start validation']).toEqual({ Type: 'Pass', Result: { continuation: null }, ResultPath: '$.check', Next: 'Validate dataset' });
      expect(states['Validate dataset'].Parameters.Payload).toEqual({
        'datasetUri.$': '$.dataset',
        format: 'jsonl',
        'constraintsUri.$': '$.constraints',
        'reportUri.$': "States.Format('s3://reports/{}/', $$.Execution.Name)",
        kmsKeyId: expect.stringContaining('placeholder:Key'),
        'continuation.$': '$.check.continuation',
      });
      expect(states['Validate dataset'].ResultPath).toBe('$.check');
      expect(states['Dataset valid?']).toEqual({
        Type: 'Choice',
        Choices: [
          { Variable: '$.check.done', BooleanEquals: false, Next: 'Validate dataset' },
          { Variable: '$.check.status', StringEquals: 'passed', Next: 'Use dataset' },
        ],
        Default: 'Reject dataset',
      });
      expect(states['Validate dataset'].Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Validation broke' }]);
    });

    test('lets the workflow invoke the function', () => {
      const functionId = world.stack.getLogicalId(construct.function.node.defaultChild as any);
      const roleId = world.stack.getLogicalId(machine.role.node.defaultChild as any);
      const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((policy: any) => JSON.stringify(policy.Properties.Roles).includes(roleId));
      expect(JSON.stringify(policies)).toContain(JSON.stringify({ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: [{ 'Fn::GetAtt': [functionId, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [functionId, 'Arn'] }, ':*']] }] }));
    });
  });
});

/** The pipeline with `dataValidation`, its template and the rendered states of its workflow. */
function validatingPipeline(overrides: Partial<TrainingPipelineProps> = {}) {
  const world = trainingPipeline({ dataValidation: {}, ...overrides });
  const template = Template.fromStack(world.stack);
  const [machine] = expectValidStateMachines(template.toJSON());
  return { ...world, template, definition: machine.definition as any, states: (machine.definition as any).States as Record<string, any> };
}

describe('TrainingPipeline with dataValidation', () => {
  const world = validatingPipeline();
  const { states } = world;
  const validate = states['Validate dataset'];

  test('validates the dataset once it is versioned, before preprocessing it', () => {
    expect(states['Dataset versioned'].Next).toBe('Start validation');
    expect(states['Start validation']).toEqual({ Type: 'Pass', Result: { continuation: null }, ResultPath: '$.validation', Next: 'Validate dataset' });
    expect(validate).toMatchObject({ Type: 'Task', Resource: 'arn:aws:states:::lambda:invoke', ResultPath: '$.validation', Next: 'Dataset valid?' });
    expect(states['Dataset valid?']).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.validation.done', BooleanEquals: false, Next: 'Validate dataset' },
        { Variable: '$.validation.status', StringEquals: 'passed', Next: 'Preprocess' },
      ],
      Default: 'Invalid dataset verdict',
    });
    expect(world.pipeline.dataValidation).toBeInstanceOf(DataValidation);
    expect(validate.Parameters.FunctionName).toContain(world.stack.getLogicalId(world.pipeline.dataValidation!.function.node.defaultChild as any));
  });

  test('calls the function with the run\'s dataset, its constraints, a report under the run, the key and the continuation', () => {
    expect(validate.Parameters.Payload).toEqual({
      'datasetUri.$': expect.stringMatching(/^States\.Format\('s3:\/\/placeholder-Data[^/]*\/\{\}', \$\.config\.dataPrefix\)$/),
      format: 'csv',
      'constraintsUri.$': expect.stringMatching(/^States\.Format\('s3:\/\/placeholder-Data[^/]*\/\{\}', \$\.config\.constraintsKey\)$/),
      'reportUri.$': expect.stringMatching(/^States\.Format\('s3:\/\/placeholder-Artifacts[^/]*\/churn\/runs\/\{\}\/validation\/', \$\.run\.id\)$/),
      kmsKeyId: expect.stringContaining('placeholder:Key'),
      'continuation.$': '$.validation.continuation',
    });
    // The dataset validated is the one preprocessed.
    expect(validate.Parameters.Payload['datasetUri.$']).toBe(states.Preprocess.Parameters.ProcessingInputs[0].S3Input['S3Uri.$']);
    expect(validate.ResultSelector).toEqual({
      'status.$': '$.Payload.status',
      'rows.$': '$.Payload.rows',
      'valid.$': '$.Payload.valid',
      'quarantined.$': '$.Payload.quarantined',
      'objects.$': '$.Payload.objects',
      'violations.$': '$.Payload.violations',
      'violationCount.$': '$.Payload.violationCount',
      'reportUri.$': '$.Payload.reportUri',
      'done.$': '$.Payload.done',
      'continuation.$': '$.Payload.continuation',
    });
  });

  test('never retries a DataValidationInputError, retries any other error three times, and sends what is left to the failure notice', () => {
    const errors = validate.Retry.map((retry: any) => retry.ErrorEquals);
    const inputError = errors.findIndex((names: string[]) => names.includes('DataValidationInputError'));
    const anything = errors.findIndex((names: string[]) => names.includes('States.ALL'));
    expect(validate.Retry[inputError]).toEqual({ ErrorEquals: ['DataValidationInputError'], MaxAttempts: 0 });
    expect(validate.Retry[anything]).toEqual({ ErrorEquals: ['States.ALL'], IntervalSeconds: 10, MaxAttempts: 3, BackoffRate: 2, JitterStrategy: 'FULL' });
    // Step Functions takes the first retrier that matches: the input error's comes before the catch-all, which is last.
    expect(inputError).toBeLessThan(anything);
    expect(anything).toBe(validate.Retry.length - 1);
    expect(errors.flat()).toEqual(expect.arrayContaining(['Lambda.ServiceException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException']));
    expect(validate.Retry.find((retry: any) => retry.ErrorEquals.includes('Lambda.TooManyRequestsException'))).toMatchObject({ JitterStrategy: 'FULL', MaxAttempts: 6 });
    expect(validate.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Describe failure' }]);
    expect(states['Describe failure'].Next).toBe('Notify failure');
  });

  test('a failed dataset is notified with its violations and report, then fails the run with DataValidationFailed and the reason', () => {
    const verdict = states['Invalid dataset verdict'];
    expect(verdict).toMatchObject({ Type: 'Pass', ResultPath: '$.verdict', Next: 'Notify invalid dataset' });
    expect(verdict.Parameters).toMatchObject({
      result: 'invalid-dataset',
      'violations.$': '$.validation.violations',
      'report.$': '$.validation.reportUri',
      'dataVersion.$': '$.data.version',
      'console.$': expect.stringContaining('$$.Execution.Id'),
    });
    for (const path of ['$.config.dataPrefix', '$.validation.violationCount', '$.config.constraintsKey', '$.validation.quarantined', '$.validation.rows', '$.validation.reportUri']) {
      expect(verdict.Parameters['reason.$']).toContain(path);
    }
    expect(states['Notify invalid dataset']).toMatchObject({
      Resource: 'arn:aws:states:::sns:publish',
      Parameters: { 'Message.$': '$.verdict', Subject: 'Training pipeline churn: dataset failed validation', TopicArn: expect.stringContaining('placeholder:Topic') },
      Next: 'Dataset failed validation',
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Describe failure' }],
    });
    expect(states['Dataset failed validation']).toEqual({ Type: 'Fail', Error: 'DataValidationFailed', CausePath: '$.verdict.reason' });
  });

  test('takes the constraints document from the input, by default <family>/constraints/constraints.json, and checks it is under <family>/constraints/', () => {
    expect(world.pipeline.defaults.constraintsKey).toBe('churn/constraints/constraints.json');
    expect(states['Check config.constraintsKey value'].Choices).toEqual([{ Not: { Variable: '$.config.constraintsKey', StringMatches: 'churn/constraints/*' }, Next: 'Invalid config.constraintsKey' }]);
    expect(states['Invalid config.constraintsKey']).toEqual({ Type: 'Fail', Error: 'InvalidInput', Cause: 'config.constraintsKey: must be a string and a key under churn/constraints/' });
  });

  test('records the validation report on the registered model version', () => {
    expect(states['Register model version'].Parameters.CustomerMetadataProperties['DataValidationReport.$']).toBe('$.validation.reportUri');
  });

  test('gives the function the datasets and constraints of the family, and the runs for its reports, in the pipeline\'s key', () => {
    const statements = validatorStatements(world.stack, world.pipeline.dataValidation!);
    const s3 = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('s3:')));
    expect(s3.map((statement) => [actionsOf(statement).join(','), resourceText(statement).replace(/"Fn::GetAtt":\["(Data|Artifacts)[0-9A-F]+","Arn"\]/, '$1'), statement.Condition])).toEqual([
      ['s3:ListBucket', '{Data}', { StringLike: { 's3:prefix': 'churn/datasets/*' } }],
      ['s3:GetObject', '{"Fn::Join":["",[{Data},"/churn/datasets/*"]]}', undefined],
      ['s3:GetObject,s3:GetObjectVersion', '{"Fn::Join":["",[{Data},"/churn/constraints/*"]]}', undefined],
      ['s3:GetObject,s3:PutObject', '{"Fn::Join":["",[{Artifacts},"/churn/runs/*"]]}', undefined],
      ['s3:PutObjectTagging', '{"Fn::Join":["",[{Artifacts},"/churn/runs/*"]]}', { 'ForAllValues:StringEquals': { 's3:RequestObjectTagKeys': ['ml-platform:purpose'] } }],
    ]);
    world.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'data-validation-churn' } }, Tags: [{ Key: 'ml:model-family', Value: 'churn' }] });
  });

  test('warns through the pipeline\'s failure alarm action when a dataset fails validation', () => {
    expect(world.pipeline.dataValidation!.violationsAlarm).toBeUndefined();
    const alarmed = lifecycleStack();
    const pipeline = new TrainingPipeline(alarmed.stack, 'ChurnTraining', pipelineProps(alarmed, { dataValidation: {}, failureAlarmAction: new actions.SnsAction(alarmed.topic) }));
    const alarm = pipeline.dataValidation!.violationsAlarm!;
    const resolved = Template.fromStack(alarmed.stack).toJSON().Resources[alarmed.stack.getLogicalId(alarm.node.defaultChild as any)];
    expect(resolved.Properties).toMatchObject({ MetricName: 'ValidationViolations', Dimensions: [{ Name: 'service', Value: 'data-validation-churn' }], AlarmActions: [{ Ref: alarmed.stack.getLogicalId(alarmed.topic.node.defaultChild as any) }] });
  });

  test('validates JSON Lines datasets against another document when told so', () => {
    const jsonl = validatingPipeline({ dataValidation: { format: DatasetFormat.JSON_LINES, constraintsKey: 'churn/constraints/v2/churn.json' } });
    expect(jsonl.states['Validate dataset'].Parameters.Payload.format).toBe('jsonl');
    expect(jsonl.pipeline.defaults.constraintsKey).toBe('churn/constraints/v2/churn.json');
  });

  test('names the problems of dataValidation with the pipeline\'s other problems', () => {
    const bad = lifecycleStack();
    const lines = thrownLines(
      () =>
        new TrainingPipeline(bad.stack, 'Bad', pipelineProps(bad, { gate: { metric: 'binary_classification_metrics.auc.value', threshold: Number.NaN }, dataValidation: { format: 'parquet' as DatasetFormat, constraintsKey: 'fraud/constraints/constraints.json' } })),
    );
    expect(lines).toEqual([
      'Lifecycle/Bad (TrainingPipeline): invalid props:',
      '  - gate.threshold: must be a finite number; got NaN',
      '  - dataValidation.format: must be a DatasetFormat (csv or jsonl); got "parquet"',
      '  - dataValidation.constraintsKey: must be an object key under churn/constraints/; got "fraud/constraints/constraints.json"',
    ]);
  });

  test.each([
    ['a prefix, not a document', 'churn/constraints/'],
    ['a document beside the constraints', 'churn/constraints.json'],
    ['a document of the datasets', 'churn/datasets/v1/constraints.json'],
  ])('refuses a constraintsKey that is %s', (_label, constraintsKey) => {
    const bad = lifecycleStack();
    expect(() => new TrainingPipeline(bad.stack, 'Bad', pipelineProps(bad, { dataValidation: { constraintsKey } }))).toThrow(
      `Lifecycle/Bad (TrainingPipeline): invalid props:\n  - dataValidation.constraintsKey: must be an object key under churn/constraints/; got "${constraintsKey}"`,
    );
  });

  test('passes the three cdk-nag packs', () => {
    world.app.synth();
    expect(nagFindings(world.stack)).toEqual([]);
  });

  test('passes cfn-lint with no errors and no warnings', () => {
    const lint = cfnLintTemplate('training-validation', world.template.toJSON());
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  }, 120_000);

  describe('in a VPC', () => {
    const world = lifecycleStack();
    const vpc = new ec2.Vpc(world.stack, 'Vpc', { availabilityZones: ['us-east-1a', 'us-east-1b'], natGateways: 0, subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    vpc.addGatewayEndpoint('S3', { service: ec2.GatewayVpcEndpointAwsService.S3 });
    const pipeline = new TrainingPipeline(world.stack, 'ChurnTraining', pipelineProps(world, { vpc, dataValidation: { format: DatasetFormat.JSON_LINES } }));
    const template = Template.fromStack(world.stack);

    test('runs the function in the isolated subnets', () => {
      const functionId = world.stack.getLogicalId(pipeline.dataValidation!.function.node.defaultChild as any);
      const fn = template.toJSON().Resources[functionId];
      expect(fn.Properties.VpcConfig.SubnetIds).toEqual(vpc.isolatedSubnets.map((subnet) => ({ Ref: world.stack.getLogicalId(subnet.node.defaultChild as any) })));
      expect(fn.Properties.VpcConfig.SecurityGroupIds).toHaveLength(1);
      expect(expectValidStateMachines(template.toJSON())).toHaveLength(1);
    });

    test('passes the three cdk-nag packs', () => {
      world.app.synth();
      // The pipeline's findings: the test's VPC itself has no flow log.
      expect(nagFindings(pipeline)).toEqual([]);
    });

    test('passes cfn-lint with no errors and no warnings', () => {
      const lint = cfnLintTemplate('training-validation-vpc', template.toJSON());
      expect(lint.stdout + lint.stderr).toBe('');
      expect(lint.status).toBe(0);
    }, 120_000);
  });
});

describe('TrainingPipeline without dataValidation', () => {
  const world = trainingPipeline();
  const template = Template.fromStack(world.stack);
  const states = (expectValidStateMachines(template.toJSON())[0].definition as any).States as Record<string, any>;

  test('preprocesses the dataset once it is versioned, as before: no validation states, function, constraints or report', () => {
    expect(states['Dataset versioned'].Next).toBe('Preprocess');
    expect(Object.keys(states).filter((name) => /validation|Validate dataset|Dataset valid|Invalid dataset|constraintsKey/.test(name))).toEqual([]);
    template.resourceCountIs('AWS::Lambda::Function', 0);
    expect(world.pipeline.dataValidation).toBeUndefined();
    expect(world.pipeline.defaults).not.toHaveProperty('constraintsKey');
    expect(states['Register model version'].Parameters.CustomerMetadataProperties).not.toHaveProperty('DataValidationReport.$');
  });
});
