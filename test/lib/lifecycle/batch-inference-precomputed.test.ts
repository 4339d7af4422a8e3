// BatchInference with `precomputed`: the transform writes joined JSON Lines, and the workflow loads them into
// the inference API's state table with the load-precomputed function, in a loop over its continuation.
// The definition is checked by structure (moto cannot run the `.sync` transform before the load), and the
// load loop runs in moto's Step Functions engine with moto's Docker-free Lambda answering for the function.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { DataKey } from '../../../lib/core/data-key';
import type { MlFunction } from '../../../lib/core/ml-function';
import { BatchInference, type BatchInferenceProps, type PrecomputedLoadOptions } from '../../../lib/lifecycle/batch-inference';
import { InferenceStateTable } from '../../../lib/serving/inference-state-table';
import { expectValidStateMachines, placeholderArn } from '../../support/asl';
import { botocoreShapeMembers, REPO_ROOT, run, unknownParameters } from '../../support/cli';
import { queueLambdaResults, startMoto, type MotoServer } from '../../support/moto';
import { nagFindings } from '../../support/platform';
import { enableStepFunctionsExecution, renderForMoto, runExecution, startingAt } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { IMAGE, lifecycleStack } from './fixtures';

const FEATURE_GROUP = 'customer-churn-features';

function batch(overrides: Partial<BatchInferenceProps> = {}, precomputed: Partial<PrecomputedLoadOptions> = {}) {
  const world = lifecycleStack();
  // The table has a key of its own, so that the grants on each key show apart.
  const tableKey = new DataKey(world.stack, 'TableKey').key;
  const state = new InferenceStateTable(world.stack, 'State', { encryptionKey: tableKey });
  const construct = new BatchInference(world.stack, 'ChurnBatch', {
    modelPackageGroup: world.group,
    bucket: world.artifactsBucket,
    inferenceImages: [IMAGE],
    notificationTopic: world.topic,
    encryptionKey: world.key,
    instanceType: 'ml.m5.xlarge',
    precomputed: { table: state.table, featureGroupName: FEATURE_GROUP, recordIdField: 'customer_id', ttl: Duration.days(2), ...precomputed },
    ...overrides,
  });
  const template = Template.fromStack(world.stack);
  const id = (construct: { node: { defaultChild?: unknown } }) => world.stack.getLogicalId(construct.node.defaultChild as any);
  return { ...world, tableKey, state, construct, template, id };
}

/** The statements of the loader's policy, resolved. */
function loaderStatements(world: { construct: BatchInference; stack: Stack; template: Template }): any[] {
  const loader = world.construct.node.findChild('PrecomputedLoader') as MlFunction;
  const policy = world.template.toJSON().Resources[world.stack.getLogicalId(loader.role.grantsPolicy.node.defaultChild as any)];
  return policy.Properties.PolicyDocument.Statement;
}

const actionsOf = (statement: any): string[] => [statement.Action].flat();

describe('BatchInference with precomputed predictions', () => {
  const world = batch();
  const [machine] = expectValidStateMachines(world.template.toJSON());
  const states = (machine.definition as any).States;

  test('passes the three cdk-nag packs', () => {
    world.app.synth();
    expect(nagFindings(world.stack)).toEqual([]);
  });

  test('passes cfn-lint with no errors and no warnings', () => {
    const workdir = mkdtempSync(join(tmpdir(), 'batch-precomputed-'));
    try {
      const file = join(workdir, 'batch-precomputed.template.json');
      writeFileSync(file, JSON.stringify(world.template.toJSON()));
      // From the repository root, so that .cfnlintrc.yaml applies as in test/lint/cfn-lint.test.ts.
      const lint = run('cfn-lint', ['--format', 'parseable', file], { cwd: REPO_ROOT });
      expect(lint.stdout + lint.stderr).toBe('');
      expect(lint.status).toBe(0);
    } finally {
      rmSync(workdir, { recursive: true, force: true });
    }
  }, 120_000);

  test('has the transform write joined JSON Lines: JSON input split by line, each answer joined into its record', () => {
    const score = states['Score records'].Parameters;
    expect(score.TransformInput).toMatchObject({ ContentType: 'application/jsonlines', SplitType: 'Line' });
    expect(score.TransformOutput).toMatchObject({ Accept: 'application/jsonlines', AssembleWith: 'Line' });
    expect(score.DataProcessing).toEqual({ JoinSource: 'Input' });
  });

  test("calls CreateTransformJob with members of its request only, as botocore's SageMaker model defines it", () => {
    const request = botocoreShapeMembers('sagemaker', '2017-07-24', 'CreateTransformJobRequest');
    expect(Object.keys(request)).toEqual(expect.arrayContaining(['TransformInput', 'TransformOutput', 'DataProcessing']));
    expect(unknownParameters(states['Score records'].Parameters, request)).toEqual([]);
  });

  test('loads after the model is deleted, calling the loader again with its continuation until it is done', () => {
    expect(states['Delete model'].Next).toBe('Start loading predictions');
    expect(states['Start loading predictions']).toMatchObject({ Type: 'Pass', Result: { continuation: null }, ResultPath: '$.load', Next: 'Load precomputed predictions' });
    const load = states['Load precomputed predictions'];
    expect(load.Resource).toBe('arn:aws:states:::lambda:invoke');
    expect(load.Next).toBe('All predictions loaded?');
    expect(load.ResultPath).toBe('$.load');
    expect(load.ResultSelector).toEqual({
      'loaded.$': '$.Payload.loaded',
      'invalid.$': '$.Payload.invalid',
      'objects.$': '$.Payload.objects',
      'invalidLines.$': '$.Payload.invalidLines',
      'done.$': '$.Payload.done',
      'continuation.$': '$.Payload.continuation',
    });
    expect(states['All predictions loaded?']).toEqual({
      Type: 'Choice',
      Choices: [
        { Variable: '$.load.done', BooleanEquals: false, Next: 'Load precomputed predictions' },
        { Variable: '$.load.loaded', NumericGreaterThan: 0, Next: 'Completed verdict' },
      ],
      Default: 'Nothing loaded',
    });
  });

  test('gives the loader the table, the model, its version as a string, the feature group, the run\'s output, the id field, the TTL and the run\'s start', () => {
    const payload = states['Load precomputed predictions'].Parameters.Payload;
    expect(payload).toEqual({
      tableName: expect.stringContaining('placeholder-State'),
      model: 'churn',
      'modelVersion.$': "States.Format('{}', $.package.version)",
      featureGroup: FEATURE_GROUP,
      'outputPrefix.$': expect.stringMatching(/^States\.Format\('s3:\/\/placeholder-Artifacts[^/]*\/churn\/batch-output\/\{\}\/', \$\.run\.id\)$/),
      recordIdField: 'customer_id',
      format: 'jsonl',
      ttlSeconds: 2 * 86_400,
      'computedAt.$': '$$.Execution.StartTime',
      'continuation.$': '$.load.continuation',
    });
    expect(payload['outputPrefix.$']).toBe(states['Completed verdict'].Parameters['output.$']);
  });

  test('retries throttled writes with a jittered backoff and Lambda\'s own errors, and sends any other failure to the failure notice', () => {
    const load = states['Load precomputed predictions'];
    const retries = load.Retry.map((retry: any) => retry.ErrorEquals);
    expect(retries).toEqual(expect.arrayContaining([expect.arrayContaining(['Lambda.ServiceException', 'Lambda.SdkClientException']), expect.arrayContaining(['Lambda.TooManyRequestsException'])]));
    expect(load.Retry).toContainEqual({ ErrorEquals: ['PrecomputedWriteRetriableError'], IntervalSeconds: 30, BackoffRate: 2, MaxAttempts: 5, MaxDelaySeconds: 300, JitterStrategy: 'FULL' });
    expect(retries.flat()).not.toContain('PrecomputedInputError');
    expect(retries.flat()).not.toContain('PrecomputedWriteError');
    expect(load.Catch).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Describe failure' }]);
  });

  test('fails through the failure notice, naming the invalid lines, when the load wrote nothing', () => {
    const nothing = states['Nothing loaded'];
    expect(nothing.Next).toBe('Describe failure');
    expect(nothing.ResultPath).toBe('$.error');
    expect(nothing.Parameters.Error).toBe('NoPrecomputedPredictions');
    expect(nothing.Parameters['Cause.$']).toContain('States.JsonToString($.load.invalidLines)');
  });

  test('reports the load in the verdict the topic is told', () => {
    expect(states['Completed verdict'].Parameters.precomputed).toEqual({
      table: expect.stringContaining('placeholder-State'),
      model: 'churn',
      featureGroup: FEATURE_GROUP,
      'loaded.$': '$.load.loaded',
      'invalid.$': '$.load.invalid',
      'invalidLines.$': '$.load.invalidLines',
      'objects.$': '$.load.objects',
    });
  });

  test('runs the loader as a synchronously invoked platform function with a 15-minute timeout and two concurrent loads', () => {
    world.template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Timeout: 900,
      ReservedConcurrentExecutions: 2,
      Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'precomputed-predictions', POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Inference', POWERTOOLS_LOG_LEVEL: 'INFO' } },
    });
    expect(world.construct.precomputedLoader).toBeDefined();
  });

  test('lets the loader write to the table only (BatchWriteItem), read this family\'s batch output only, and use the two keys for just that', () => {
    const statements = loaderStatements(world);
    const dynamo = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('dynamodb:')));
    expect(dynamo).toEqual([expect.objectContaining({ Action: 'dynamodb:BatchWriteItem', Effect: 'Allow', Resource: { 'Fn::GetAtt': [world.id(world.state.table), 'Arn'] } })]);
    expect(dynamo[0].Condition).toBeUndefined();

    const s3 = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('s3:')));
    expect(s3).toHaveLength(2);
    const get = s3.find((statement) => actionsOf(statement).includes('s3:GetObject'));
    expect(actionsOf(get)).toEqual(['s3:GetObject']);
    expect(JSON.stringify(get.Resource)).toContain('/churn/batch-output/*');
    const list = s3.find((statement) => actionsOf(statement).includes('s3:ListBucket'));
    expect(list.Condition).toEqual({ StringLike: { 's3:prefix': 'churn/batch-output/*' } });
    expect(list.Resource).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^Artifacts/), 'Arn'] });

    const kms = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('kms:')));
    const keyOf = (statement: any) => statement.Resource['Fn::GetAtt'][0];
    const tableKey = kms.find((statement) => keyOf(statement) === world.id(world.tableKey));
    const dataKey = kms.find((statement) => keyOf(statement) === world.id(world.key));
    expect(actionsOf(tableKey).sort()).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey']);
    expect(actionsOf(dataKey)).toEqual(['kms:Decrypt']);
    expect(kms).toHaveLength(2);
    // Nothing else but the function's own logs and tracing.
    const rest = statements.filter((statement) => !dynamo.includes(statement) && !s3.includes(statement) && !kms.includes(statement));
    expect(rest.flatMap(actionsOf).every((action: string) => action.startsWith('logs:') || action.startsWith('xray:'))).toBe(true);
  });

  test('lets the workflow invoke that one function', () => {
    const loader = world.stack.getLogicalId(world.construct.precomputedLoader!.node.defaultChild as any);
    world.template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: 'lambda:InvokeFunction',
            Resource: [{ 'Fn::GetAtt': [loader, 'Arn'] }, { 'Fn::Join': ['', [{ 'Fn::GetAtt': [loader, 'Arn'] }, ':*']] }],
          }),
        ]),
      },
    });
  });

  test('gives the workflow two hours more for the load', () => {
    expect((machine.definition as any).TimeoutSeconds).toBe((6 + 1 + 2) * 3600);
  });

  test('stores the answers under the model the API serves when it is named', () => {
    const named = batch({}, { model: 'churn-v2' });
    const payload = (expectValidStateMachines(named.template.toJSON())[0].definition as any).States['Load precomputed predictions'].Parameters.Payload;
    expect(payload.model).toBe('churn-v2');
  });

  test('grants no table key when the table has none', () => {
    const world = lifecycleStack();
    const table = dynamodb.Table.fromTableName(world.stack, 'Imported', 'inference-state');
    const construct = new BatchInference(world.stack, 'ChurnBatch', {
      modelPackageGroup: world.group,
      bucket: world.artifactsBucket,
      inferenceImages: [IMAGE],
      notificationTopic: world.topic,
      encryptionKey: world.key,
      instanceType: 'ml.m5.xlarge',
      precomputed: { table, featureGroupName: FEATURE_GROUP, recordIdField: '/customer/id', ttl: Duration.hours(12) },
    });
    const statements = loaderStatements({ construct, stack: world.stack, template: Template.fromStack(world.stack) });
    const kms = statements.filter((statement) => actionsOf(statement).some((action) => action.startsWith('kms:')));
    expect(kms.map(actionsOf)).toEqual([['kms:Decrypt']]);
    expect(JSON.stringify(statements)).toContain(':table/inference-state');
  });

  test("runs the loader in the workflow's VPC, in its isolated subnets, and still passes the three cdk-nag packs", () => {
    const world = lifecycleStack();
    const vpc = new ec2.Vpc(world.stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
    const state = new InferenceStateTable(world.stack, 'State', { encryptionKey: world.key });
    const construct = new BatchInference(world.stack, 'ChurnBatch', {
      modelPackageGroup: world.group,
      bucket: world.artifactsBucket,
      inferenceImages: [IMAGE],
      notificationTopic: world.topic,
      encryptionKey: world.key,
      instanceType: 'ml.m5.xlarge',
      vpc,
      precomputed: { table: state.table, featureGroupName: FEATURE_GROUP, recordIdField: 'customer_id', ttl: Duration.days(1) },
    });
    Template.fromStack(world.stack).hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: { SubnetIds: vpc.isolatedSubnets.map((subnet) => ({ Ref: world.stack.getLogicalId(subnet.node.defaultChild as any) })) },
    });
    world.app.synth();
    expect(nagFindings(construct)).toEqual([]);
  });

  test('leaves the workflow as it was without precomputed: CSV in and out, no loader', () => {
    const world = lifecycleStack();
    new BatchInference(world.stack, 'ChurnBatch', { modelPackageGroup: world.group, bucket: world.artifactsBucket, inferenceImages: [IMAGE], notificationTopic: world.topic, encryptionKey: world.key, instanceType: 'ml.m5.xlarge' });
    const template = Template.fromStack(world.stack);
    template.resourceCountIs('AWS::Lambda::Function', 0);
    const definition = expectValidStateMachines(template.toJSON())[0].definition as any;
    expect(definition.States['Delete model'].Next).toBe('Completed verdict');
    expect(definition.States['Score records'].Parameters.TransformOutput.Accept).toBe('text/csv');
    expect(definition.States['Score records'].Parameters.TransformInput.ContentType).toBe('text/csv');
    expect(definition.States['Completed verdict'].Parameters.precomputed).toBeUndefined();
    expect(definition.TimeoutSeconds).toBe(7 * 3600);
  });

  test('keeps a JSON output filter that keeps the id and the answer, and a JSON content type of the props', () => {
    const kept = batch({ contentType: 'application/json', outputFilter: "$['customer_id','SageMakerOutput']" });
    const score = (expectValidStateMachines(kept.template.toJSON())[0].definition as any).States['Score records'].Parameters;
    expect(score.TransformInput.ContentType).toBe('application/json');
    expect(score.TransformOutput.Accept).toBe('application/jsonlines');
    expect(score.DataProcessing.OutputFilter).toBe("$['customer_id','SageMakerOutput']");
  });

  test('names every problem of the props at once, with the construct\'s path', () => {
    let message = '';
    try {
      batch(
        { instanceType: 'ml.t2.mega', contentType: 'application/x-parquet', splitType: 'None', joinInputToOutput: false, outputFilter: '$[0,-1]' },
        { featureGroupName: '', recordIdField: '/customer/~2id', ttl: Duration.seconds(30), model: '' },
      );
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message.split('\n')).toEqual([
      'Lifecycle/ChurnBatch (BatchInference): invalid props:',
      "  - instanceType: 'ml.t2.mega' is not a SageMaker transform instance type (for example ml.m5.xlarge)",
      '  - precomputed.featureGroupName: must be a non-empty string',
      '  - precomputed.model: must be a non-empty string',
      "  - precomputed.recordIdField: '/customer/~2id' is not a JSON pointer: '~' must be followed by 0 or 1",
      '  - precomputed.ttl: must be a whole number of seconds from 1 minute to 366 days; got 30 seconds',
      "  - contentType: must be a JSON type (application/jsonlines) or text/csv with precomputed: the loader reads joined JSON records or CSV rows; got 'application/x-parquet'",
      "  - splitType: must be 'Line' with precomputed (one record a line); got 'None'",
      "  - joinInputToOutput: must not be false with precomputed: the loader finds each answer's record id in its joined input record",
      "  - outputFilter: must keep customer and SageMakerOutput with precomputed, e.g. $['customer','SageMakerOutput']; got '$[0,-1]'",
    ]);
  });

  test('a CSV model: joined CSV rows in and out, the id read from a column, the loader told so', () => {
    const csv = batch({ contentType: 'text/csv', inputFilter: '$[1:]', outputFilter: '$[0,-1]' }, { recordIdField: '0' });
    const [csvMachine] = expectValidStateMachines(csv.template.toJSON());
    const csvStates = (csvMachine.definition as any).States;
    expect(csvStates['Score records'].Parameters.TransformOutput).toMatchObject({ Accept: 'text/csv', AssembleWith: 'Line' });
    expect(csvStates['Score records'].Parameters.DataProcessing).toMatchObject({ JoinSource: 'Input', OutputFilter: '$[0,-1]' });
    expect(csvStates['Load precomputed predictions'].Parameters.Payload).toMatchObject({ format: 'csv', recordIdField: '0' });
    expect(() => batch({ contentType: 'text/csv' }, { recordIdField: 'customer_id' })).toThrow(/precomputed\.recordIdField: must be a column number \(0-999\) of the joined, filtered CSV row/);
  });

  test.each([
    ['a TTL over 366 days', { ttl: Duration.days(367) }, 'precomputed.ttl: must be a whole number of seconds from 1 minute to 366 days; got 367 days'],
    ['a TTL of a fraction of seconds', { ttl: Duration.millis(90_500) }, 'precomputed.ttl: must be a whole number of seconds from 1 minute to 366 days'],
    ['a TTL that is no Duration', { ttl: 3600 as unknown as Duration }, 'precomputed.ttl: must be a Duration'],
    ['no TTL', { ttl: undefined }, 'precomputed.ttl: is required'],
    ['no table', { table: undefined }, 'precomputed.table: is required'],
    ['an empty record id field', { recordIdField: '' }, 'precomputed.recordIdField: must be a field name or a JSON pointer (/a/b)'],
    ['a feature group that is no string', { featureGroupName: 7 as unknown as string }, 'precomputed.featureGroupName: must be a string; got number 7'],
  ])('refuses %s', (_label, options: Partial<PrecomputedLoadOptions>, problem) => {
    expect(() => batch({}, options)).toThrow(problem);
  });

  test('refuses an output filter that drops the answer', () => {
    expect(() => batch({ outputFilter: "$['customer_id']" })).toThrow("outputFilter: must keep SageMakerOutput with precomputed, e.g. $['customer_id','SageMakerOutput']; got '$['customer_id']'");
  });
});

describe('the precomputed load loop in moto', () => {
  let moto: MotoServer;
  let definition: string;
  const world = batch();
  const topicPlaceholder = placeholderArn(Stack.of(world.topic).getLogicalId(world.topic.node.defaultChild as any));
  const loaderPlaceholder = placeholderArn(world.stack.getLogicalId(world.construct.precomputedLoader!.node.defaultChild as any));
  /** Where the transform left the run: what the load and the verdict read. */
  const afterTransform = {
    config: { inputPrefix: 'churn/batch-input/2026-11-26/', modelPackageArn: 'arn:aws:sagemaker:us-east-1:123456789012:model-package/churn/7' },
    run: { id: '0123456789ab' },
    package: { group: 'churn', version: 7 },
    transform: { jobName: 'churn-batch-0123456789ab-0' },
  };
  const result = (loaded: number, done: boolean, extra: Record<string, unknown> = {}) => ({ loaded, invalid: 0, objects: done ? 2 : 1, invalidLines: [], done, continuation: done ? null : `token-${loaded}`, ...extra });
  /** The payloads the loader was called with, in order. */
  const payloads = (events: any[]) =>
    events.filter((event) => event.taskScheduledEventDetails?.resourceType === 'lambda').map((event) => JSON.parse(event.taskScheduledEventDetails.parameters).Payload);

  beforeAll(async () => {
    moto = await startMoto({ extended: true });
  }, 60_000);
  afterAll(async () => moto?.stop());

  async function fresh(results: unknown[]) {
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    await queueLambdaResults(moto, results);
    const notices = await topicWithQueue(moto, 'batch-notices');
    const rendered = renderForMoto(world.template.toJSON(), /ChurnBatch/, { [topicPlaceholder]: notices.topicArn, [loaderPlaceholder]: 'arn:aws:lambda:us-east-1:123456789012:function:load-precomputed' });
    // The retry of throttled writes waits 30 s and more on AWS; here a second, so the test does not.
    const parsed = JSON.parse(startingAt(rendered, 'Start loading predictions'));
    for (const retry of parsed.States['Load precomputed predictions'].Retry) {
      if (retry.ErrorEquals.includes('PrecomputedWriteRetriableError')) Object.assign(retry, { IntervalSeconds: 1, MaxDelaySeconds: 1 });
    }
    definition = JSON.stringify(parsed);
    return notices;
  }

  test('calls the loader again with each continuation until it is done, then reports the counts', async () => {
    const notices = await fresh([result(25, false), result(50, false), result(60, true, { invalid: 2, invalidLines: [{ object: 'churn/batch-output/0123456789ab/a.jsonl.out', line: 4, reason: 'has no record id at customer_id' }] })]);
    const execution = await runExecution(moto, definition, afterTransform);
    expect(execution.status).toBe('SUCCEEDED');
    const calls = payloads(execution.events);
    expect(calls.map((payload) => payload.continuation)).toEqual([null, 'token-25', 'token-50']);
    expect(calls[0]).toMatchObject({ model: 'churn', modelVersion: '7', featureGroup: FEATURE_GROUP, recordIdField: 'customer_id', ttlSeconds: 172_800, outputPrefix: expect.stringMatching(/\/churn\/batch-output\/0123456789ab\/$/) });
    expect(Number.isNaN(Date.parse(calls[0].computedAt))).toBe(false);
    expect(execution.output).toMatchObject({ result: 'completed', precomputed: { model: 'churn', featureGroup: FEATURE_GROUP, loaded: 60, invalid: 2, objects: 2 } });
    const [notice] = await notices.read();
    expect(JSON.parse(notice)).toMatchObject({ precomputed: { loaded: 60, invalid: 2, invalidLines: [{ line: 4, reason: 'has no record id at customer_id' }] } });
  });

  test('retries a call whose writes DynamoDB kept throttling, with the same continuation', async () => {
    await fresh([result(25, false), { errorType: 'PrecomputedWriteRetriableError', errorMessage: 'BatchWriteItem to inference-state failed (ProvisionedThroughputExceededException)' }, result(40, true)]);
    const execution = await runExecution(moto, definition, afterTransform);
    expect(execution.status).toBe('SUCCEEDED');
    expect(payloads(execution.events).map((payload) => payload.continuation)).toEqual([null, 'token-25', 'token-25']);
    expect(execution.events.filter((event) => event.taskFailedEventDetails).map((event) => event.taskFailedEventDetails!.error)).toEqual(['PrecomputedWriteRetriableError']);
    expect(execution.output.precomputed.loaded).toBe(40);
  });

  test('fails with the loader\'s error, after telling the topic, when a write fails for good', async () => {
    const notices = await fresh([result(25, false), { errorType: 'PrecomputedWriteError', errorMessage: 'BatchWriteItem to inference-state failed (ResourceNotFoundException): Requested resource not found' }]);
    const execution = await runExecution(moto, definition, afterTransform);
    expect(execution).toMatchObject({ status: 'FAILED', error: 'PrecomputedWriteError' });
    expect(execution.cause).toContain('Requested resource not found');
    expect(execution.states).toEqual(expect.arrayContaining(['Describe failure', 'Notify failure', 'Batch inference failed']));
    expect(payloads(execution.events)).toHaveLength(2);
    const [notice] = await notices.read();
    expect(JSON.parse(notice)).toMatchObject({ error: 'PrecomputedWriteError' });
  });

  test('fails with NoPrecomputedPredictions, naming the invalid lines, when no line loaded', async () => {
    const notices = await fresh([result(0, true, { invalid: 3, invalidLines: [{ object: 'churn/batch-output/0123456789ab/a.jsonl.out', line: 1, reason: 'is not valid JSON' }] })]);
    const execution = await runExecution(moto, definition, afterTransform);
    expect(execution).toMatchObject({ status: 'FAILED', error: 'NoPrecomputedPredictions' });
    expect(execution.cause).toContain('/churn/batch-output/0123456789ab/ was loaded: 3 invalid');
    expect(execution.cause).toContain('is not valid JSON');
    const [notice] = await notices.read();
    expect(JSON.parse(notice)).toMatchObject({ error: 'NoPrecomputedPredictions' });
  });

  test("the console's sample input (examples/inputs/batch-inference.json) passes validation and starts the work", async () => {
    await fresh([]);
    const sample = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'examples', 'inputs', 'batch-inference.json'), 'utf8'));
    const rendered = renderForMoto(world.template.toJSON(), /ChurnBatch/, { [topicPlaceholder]: 'arn:aws:sns:us-east-1:123456789012:batch-notices' });
    const execution = await runExecution(moto, rendered, sample, 30_000, 'Find latest approved version');
    expect(execution.states).toContain('Find latest approved version');
    expect(execution.states.filter((state) => state.startsWith('Invalid '))).toEqual([]);
  });
});
