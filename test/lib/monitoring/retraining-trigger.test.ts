import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { CreateTableCommand, DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutEventsCommand, PutRuleCommand, PutTargetsCommand, EventBridgeClient } from '@aws-sdk/client-eventbridge';
import {
  CreateStateMachineCommand,
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { RetrainingTrigger } from '../../../lib/monitoring/retraining-trigger';
import { expectValidStateMachines, placeholderArn, placeholderRef } from '../../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { nagFindings } from '../../support/platform';
import { enableStepFunctionsExecution, renderForMoto } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { allMonitors, monitorWorld } from './monitor-fixtures';

// Long enough that the overlapping second execution ends well inside it on a busy machine.
const COOLDOWN_SECONDS = 8;
const world = monitorWorld();
const monitor = allMonitors(world);
const retraining = new sfn.StateMachine(world.stack, 'Retraining', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(world.stack, 'Train')) });
const trigger = new RetrainingTrigger(world.stack, 'Trigger', {
  monitor,
  alarmTopic: world.topic,
  encryptionKey: world.key,
  retrainingWorkflow: retraining,
  retrainingInput: { pipeline: 'churn-training', datasetKey: 'datasets/churn/latest.csv' },
  cooldown: Duration.seconds(COOLDOWN_SECONDS),
});
const template = Template.fromStack(world.stack);
const json = template.toJSON();
const logicalId = (construct: any) => world.stack.getLogicalId(construct.node.defaultChild ?? construct);
/** What SageMaker would put in an event: the schedule ARN as the stack's GetAtt resolves it, named after the logical id. */
const scheduleArn = (kind: string) => `arn:aws:sagemaker:us-east-1:123456789012:monitoring-schedule/${kind}`;
const scheduleArnFor = (index: number) => scheduleArn(`schedule-${index}`);

function processingEvent(detail: Record<string, unknown>, time = '2026-11-26T10:00:00Z') {
  return {
    version: '0',
    id: 'e6d3c1a2-0000-0000-0000-000000000000',
    'detail-type': 'SageMaker Processing Job State Change',
    source: 'aws.sagemaker',
    account: '123456789012',
    time,
    region: 'us-east-1',
    resources: [],
    detail: { ProcessingJobName: 'model-monitoring-202611261000-abc', ProcessingJobStatus: 'Completed', ...detail },
  };
}
const violation = (index = 0) =>
  processingEvent({ MonitoringScheduleArn: scheduleArnFor(index), ExitMessage: 'CompletedWithViolations: Job completed successfully with 2 violations.' });

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

describe('RetrainingTrigger', () => {
  test('watches exactly this endpoint\'s schedules for failed runs and violations', () => {
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0] as any;
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.sagemaker'],
      'detail-type': ['SageMaker Processing Job State Change'],
      detail: {
        MonitoringScheduleArn: monitor.monitors.map((m) => ({ 'Fn::GetAtt': [logicalId(m.schedule), 'MonitoringScheduleArn'] })),
        $or: [{ ProcessingJobStatus: ['Failed'] }, { ExitMessage: [{ prefix: 'CompletedWithViolations' }] }],
      },
    });
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: Match.anyValue() },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
    });
    template.hasResourceProperties('AWS::Events::Rule', { Targets: [Match.objectLike({ DeadLetterConfig: Match.anyValue(), RetryPolicy: Match.anyValue() })] });
  });

  test('renders as valid ASL', () => {
    expect(expectValidStateMachines(json).map((machine) => machine.logicalId)).toEqual(expect.arrayContaining([expect.stringMatching(/^TriggerWorkflow/)]));
  });

  test('is clean under cdk-nag', () => {
    world.app.synth();
    const ours = nagFindings(world.app).filter((f) => f.resource.includes('/Trigger/') || f.resource.includes('/Monitor/'));
    expect(ours.map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('without a retraining workflow, a violation takes the lock and only notifies', () => {
    const other = monitorWorld();
    const alone = new RetrainingTrigger(other.stack, 'Alone', { monitor: allMonitors(other), alarmTopic: other.topic, encryptionKey: other.key });
    const machine = expectValidStateMachines(Template.fromStack(other.stack).toJSON()).find((m) => m.logicalId.startsWith('AloneWorkflow'))!.definition as any;
    expect(machine.States['Take cooldown lock'].Next).toBe('Notify violation');
    expect(machine.States['Notify violation']).toMatchObject({ Resource: 'arn:aws:states:::sns:publish', Next: 'Cooldown' });
    expect(Object.keys(machine.States)).not.toContain('Start retraining');
    const policies = Template.fromStack(other.stack).findResources('AWS::IAM::ManagedPolicy');
    const workflowPolicy = Object.entries(policies).find(([id]) => id.startsWith('AloneWorkflowRole'))![1];
    expect(JSON.stringify(workflowPolicy)).not.toContain('states:StartExecution');
    expect(alone.cooldown.toHours()).toBe(24);
  });

  test('refuses a trigger field in the static input and a bad cooldown, naming them', () => {
    const other = monitorWorld();
    const m = allMonitors(other);
    const base = { monitor: m, alarmTopic: other.topic, encryptionKey: other.key };
    expect(() => new RetrainingTrigger(other.stack, 'A', { ...base, retrainingInput: { trigger: 1 } })).toThrow("Monitoring/A (RetrainingTrigger): retrainingInput: must not set 'trigger'; the trigger adds it");
    expect(() => new RetrainingTrigger(other.stack, 'B', { ...base, cooldown: Duration.millis(500) })).toThrow('cooldown: must be a whole number of seconds from 1 second to 30 days; got 0.5 s');
  });
});

describe('the EventBridge rule, matched by moto against sample events', () => {
  test('passes failed runs and violations of this endpoint\'s schedules, and nothing else', async () => {
    await moto.reset();
    const config = sdkTestConfig(moto.endpoint);
    const eventbridge = new EventBridgeClient(config);
    const sqs = new SQSClient(config);
    // The synthesized pattern, with each schedule's GetAtt replaced by the ARN SageMaker would report.
    const rule = Object.values(template.findResources('AWS::Events::Rule'))[0] as any;
    const ids = monitor.monitors.map((m) => logicalId(m.schedule));
    const pattern = JSON.parse(
      JSON.stringify(rule.Properties.EventPattern, (_key, value) =>
        value && typeof value === 'object' && value['Fn::GetAtt'] ? scheduleArnFor(ids.indexOf(value['Fn::GetAtt'][0])) : value,
      ),
    );
    expect(pattern.detail.MonitoringScheduleArn).toEqual(ids.map((_, index) => scheduleArnFor(index)));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: 'matched' }));
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    await eventbridge.send(new PutRuleCommand({ Name: 'monitor-executions', EventPattern: JSON.stringify(pattern) }));
    await eventbridge.send(new PutTargetsCommand({ Rule: 'monitor-executions', Targets: [{ Id: 'queue', Arn: Attributes!.QueueArn }] }));

    const samples: Record<string, ReturnType<typeof processingEvent>> = {
      'violation, data quality': violation(0),
      'violation, model quality': violation(1),
      'failed run': processingEvent({ MonitoringScheduleArn: scheduleArnFor(2), ProcessingJobStatus: 'Failed', FailureReason: 'ClientError: baseline constraints not found' }),
      'clean run': processingEvent({ MonitoringScheduleArn: scheduleArnFor(0), ExitMessage: 'Completed: Job completed successfully with no violations.' }),
      'still running': processingEvent({ MonitoringScheduleArn: scheduleArnFor(0), ProcessingJobStatus: 'InProgress' }),
      "another endpoint's violation": processingEvent({ MonitoringScheduleArn: scheduleArn('other-endpoint-data-quality'), ExitMessage: 'CompletedWithViolations: 5 violations.' }),
      'a processing job of no schedule': processingEvent({ ProcessingJobStatus: 'Failed' }),
      'a training job event': { ...violation(0), 'detail-type': 'SageMaker Training Job State Change' },
    };
    for (const [name, event] of Object.entries(samples)) {
      await eventbridge.send(new PutEventsCommand({ Entries: [{ Source: event.source, DetailType: event['detail-type'], Detail: JSON.stringify({ ...event.detail, sample: name }) }] }));
    }
    const matched: string[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      matched.push(...(received.Messages ?? []).map((message) => JSON.parse(message.Body!).detail.sample));
      if ((received.Messages ?? []).length === 0) break;
    }
    expect(matched.sort()).toEqual(['failed run', 'violation, data quality', 'violation, model quality']);
  });
});

describe('the trigger workflow, run in moto', () => {
  const tableName = placeholderRef(logicalId(trigger.table));
  let sfnClient: SFNClient;
  let dynamodb: DynamoDBClient;
  let definition: string;
  let retrainingArn: string;
  let notifications: () => Promise<string[]>;

  beforeAll(async () => {
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    const config = sdkTestConfig(moto.endpoint);
    sfnClient = new SFNClient(config);
    dynamodb = new DynamoDBClient(config);
    await dynamodb.send(
      new CreateTableCommand({ TableName: tableName, KeySchema: [{ AttributeName: 'model', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'model', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
    );
    const topic = await topicWithQueue(moto, 'alarms');
    notifications = topic.read;
    retrainingArn = (
      await sfnClient.send(new CreateStateMachineCommand({ name: 'retraining', definition: JSON.stringify({ StartAt: 'Train', States: { Train: { Type: 'Pass', End: true } } }), roleArn: 'arn:aws:iam::123456789012:role/sfn' }))
    ).stateMachineArn!;
    definition = renderForMoto(json, /^TriggerWorkflow/, {
      [placeholderArn(logicalId(world.topic))]: topic.topicArn,
      [placeholderArn(logicalId(retraining))]: retrainingArn,
    });
  }, 30_000);

  /** What the trigger counted for one schedule (moto matches dimension subsets, so both are named). */
  const counted = async (metricName: string, schedule: string) => {
    const stats = await new CloudWatchClient(sdkTestConfig(moto.endpoint)).send(
      new GetMetricStatisticsCommand({
        Namespace: 'MlPlatform/ModelMonitor',
        MetricName: metricName,
        Dimensions: [
          { Name: 'Model', Value: 'churn' },
          { Name: 'MonitoringSchedule', Value: schedule },
        ],
        StartTime: new Date(Date.now() - 3_600_000),
        EndTime: new Date(Date.now() + 60_000),
        Period: 7200,
        Statistics: ['Sum'],
      }),
    );
    return (stats.Datapoints ?? []).reduce((sum, point) => sum + (point.Sum ?? 0), 0);
  };
  let runs = 0;
  const clients = new Map<string, SFNClient>();
  /**
   * Starts the trigger on an event, from an account of its own. moto cannot start an execution in an
   * account where another one waits or has waited (it deep-copies the account's whole backend,
   * thread locks included), so every execution gets a fresh account for its state machine; its tasks
   * still reach the table and topic of the default account (moto's engine calls them with the
   * default account's keys), where the cooldown lock lives.
   */
  const start = async (event: unknown) => {
    const account = String(210987654300 + ++runs);
    const config = sdkTestConfig(moto.endpoint);
    const { Credentials } = await new STSClient(config).send(new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/trigger`, RoleSessionName: 'trigger' }));
    const client = new SFNClient({ ...config, credentials: { accessKeyId: Credentials!.AccessKeyId!, secretAccessKey: Credentials!.SecretAccessKey!, sessionToken: Credentials!.SessionToken } });
    clients.set(account, client);
    const { stateMachineArn } = await client.send(new CreateStateMachineCommand({ name: 'trigger', definition, roleArn: `arn:aws:iam::${account}:role/sfn` }));
    return (await client.send(new StartExecutionCommand({ stateMachineArn, name: 'run', input: JSON.stringify(event) }))).executionArn!;
  };
  const clientFor = (executionArn: string) => clients.get(executionArn.split(':')[4])!;
  const statesOf = async (executionArn: string) =>
    ((await clientFor(executionArn).send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }))).events ?? []).flatMap((e) => (e.stateEnteredEventDetails?.name ? [e.stateEnteredEventDetails.name] : []));
  async function waitFor(executionArn: string, until: (status: string, states: string[]) => boolean, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const described = await clientFor(executionArn).send(new DescribeExecutionCommand({ executionArn }));
      const states = await statesOf(executionArn);
      if (until(described.status!, states)) return { status: described.status!, states, output: described.output && JSON.parse(described.output), cause: described.cause };
      if (described.status !== 'RUNNING' || Date.now() > deadline) throw new Error(`execution ${executionArn} is ${described.status} in ${states.join(' > ')}: ${described.error} ${described.cause}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const finished = (executionArn: string) => waitFor(executionArn, (status) => status !== 'RUNNING');
  /**
   * The startExecution requests an execution sent to the retraining workflow, from its history. moto
   * 5.2 schedules them but cannot perform them (its engine passes the integration's PascalCase
   * parameters to botocore's camelCase Step Functions shapes), so the request is what is checked.
   */
  const retrainingRequests = async (executionArn: string) =>
    ((await clientFor(executionArn).send(new GetExecutionHistoryCommand({ executionArn, maxResults: 1000 }))).events ?? [])
      .filter((e) => e.type === 'TaskScheduled' && e.taskScheduledEventDetails?.resource === 'startExecution')
      .map((e) => JSON.parse(e.taskScheduledEventDetails!.parameters!));

  test('a violation starts retraining once per cooldown: first starts, second waits, after the cooldown again', async () => {
    const first = await start(violation(0));
    const holding = await waitFor(first, (_, states) => states.includes('Cooldown'));
    expect(holding.states).toEqual(expect.arrayContaining(['Take cooldown lock', 'Start retraining', 'Cooldown']));
    expect(await retrainingRequests(first)).toEqual([
      {
        StateMachineArn: retrainingArn,
        Input: {
          pipeline: 'churn-training',
          datasetKey: 'datasets/churn/latest.csv',
          trigger: {
            source: 'model-monitor',
            monitoringSchedule: 'schedule-0',
            processingJob: 'model-monitoring-202611261000-abc',
            reason: 'CompletedWithViolations: Job completed successfully with 2 violations.',
            detectedAt: '2026-11-26T10:00:00Z',
          },
        },
      },
    ]);
    const lock = await dynamodb.send(new GetItemCommand({ TableName: tableName, Key: { model: { S: 'churn' } } }));
    expect(lock.Item?.executionArn?.S).toBe(first);
    expect(lock.Item?.monitoringSchedule?.S).toBe('schedule-0');

    // A second violation (another feature, another schedule) inside the cooldown.
    const second = await finished(await start(violation(1)));
    expect(second.status).toBe('SUCCEEDED');
    expect(second.states).toEqual(expect.arrayContaining(['Take cooldown lock', 'Read cooldown holder', 'Within cooldown']));
    expect(second.states).not.toContain('Start retraining');

    const firstDone = await finished(first);
    expect(firstDone.status).toBe('SUCCEEDED');
    expect(firstDone.states.slice(-2)).toEqual(['Release cooldown lock', 'Cooldown over']);
    expect((await dynamodb.send(new GetItemCommand({ TableName: tableName, Key: { model: { S: 'churn' } } }))).Item).toBeUndefined();

    // After the cooldown, a violation starts retraining again.
    const third = await start(violation(1));
    await waitFor(third, (_, states) => states.includes('Cooldown'));
    expect((await retrainingRequests(third)).map((request) => request.Input.trigger.monitoringSchedule)).toEqual(['schedule-1']);
    expect(await finished(third)).toMatchObject({ status: 'SUCCEEDED' });

    // Each start was notified (as started, or as not started with the reason when the call failed).
    const messages = await notifications();
    expect(messages.filter((m) => /Retraining started|could not be started/.test(m))).toHaveLength(2);
    expect(messages.every((m) => m.includes('CompletedWithViolations'))).toBe(true);
  }, 60_000);

  test('a failed monitoring execution notifies the alarm topic with the reason and does not retrain', async () => {
    await notifications();
    const result = await finished(
      await start(processingEvent({ MonitoringScheduleArn: scheduleArnFor(2), ProcessingJobStatus: 'Failed', FailureReason: 'ClientError: baseline constraints.json not found' })),
    );
    expect(result.states).toEqual(expect.arrayContaining(['Notify failed execution', 'Failure notified']));
    expect(result.states).not.toContain('Start retraining');
    const messages = await notifications();
    expect(messages).toEqual([expect.stringContaining('failed: ClientError: baseline constraints.json not found')]);
    expect(messages[0]).toContain('schedule-2');
    expect(await counted('FailedExecutions', 'schedule-2')).toBe(1);
    // Every violation of the first test was counted, in cooldown or not: schedule-1 had two.
    expect(await counted('Violations', 'schedule-1')).toBe(2);
  }, 30_000);

  test('a lock whose holder cannot be read is kept: a violation then never starts a second retraining', async () => {
    // (moto cannot describe executions either, for the reason above: the take-over of a lock whose
    // holder has ended is checked on the definition below.)
    await dynamodb.send(new PutItemCommand({ TableName: tableName, Item: { model: { S: 'churn' }, executionArn: { S: 'arn:aws:states:us-east-1:123456789012:execution:trigger:gone' } } }));
    const result = await finished(await start(violation(0)));
    expect(result.states).toEqual(expect.arrayContaining(['Read cooldown holder', 'Describe holder', 'Within cooldown']));
    expect(result.states).not.toContain('Start retraining');
    await dynamodb.send(new DeleteItemCommand({ TableName: tableName, Key: { model: { S: 'churn' } } }));
  }, 30_000);

  test('a holder that no longer runs is taken over with a write conditional on it still holding the lock', () => {
    const machine = expectValidStateMachines(json).find((m) => /^TriggerWorkflow/.test(m.logicalId))!.definition as any;
    expect(machine.States['Holder still running?']).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.holderExecution.status', StringEquals: 'RUNNING', Next: 'Within cooldown' }],
      Default: 'Take over stale lock',
    });
    expect(machine.States['Take over stale lock'].Parameters).toMatchObject({ ConditionExpression: 'executionArn = :holder', ExpressionAttributeValues: { ':holder': { 'S.$': '$.holder.Item.executionArn.S' } } });
    expect(machine.States['Take over stale lock'].Next).toBe('Start retraining');
    expect(machine.States['Describe holder'].Catch.map((c: any) => [c.ErrorEquals, c.Next])).toEqual([
      [['Sfn.ExecutionDoesNotExistException'], 'Take over stale lock'],
      [['States.ALL'], 'Within cooldown'],
    ]);
  });

  test('an event that is neither a failure nor a violation does nothing', async () => {
    const result = await finished(await start(processingEvent({ MonitoringScheduleArn: scheduleArnFor(0), ExitMessage: 'Completed: no violations.' })));
    expect(result.states).toEqual(['Defaults', 'Describe execution', 'Failed or violations?', 'Nothing to do']);
  }, 30_000);
});
