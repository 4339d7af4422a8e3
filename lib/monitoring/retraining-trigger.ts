import { Duration, Lazy, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { terminalQueue } from '../core/private/terminal-queue';
import { grantPublishTo } from '../core/alarm-topic';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { MlWorkflow } from '../core/ml-workflow';
import { acknowledgeWildcardResource } from '../core/private/nag';
import type { ModelMonitor } from './model-monitor';
import { assertRequiredProps } from '../core/private/props';

/** The EventBridge detail type of the processing jobs that monitoring schedules run. */
export const PROCESSING_JOB_STATE_CHANGE = 'SageMaker Processing Job State Change';
/** How Model Monitor's exit message starts when a run found constraint violations. */
export const VIOLATIONS_EXIT_MESSAGE_PREFIX = 'CompletedWithViolations';

/** Namespace of the trigger's metrics: `Violations` and `FailedExecutions` per `Model`. */
export const MODEL_MONITOR_EVENTS_NAMESPACE = 'MlPlatform/ModelMonitor';

export interface RetrainingTriggerProps {
  /** The monitor whose schedules' executions are watched. */
  readonly monitor: ModelMonitor;
  /** Notified of every failed monitoring execution and of every retraining started. */
  readonly alarmTopic: sns.ITopic;
  /** Key that encrypts the cooldown table, the workflow's state and logs, and the dead-letter queue. */
  readonly encryptionKey: kms.IKey;
  /**
   * The retraining workflow a violation starts.
   * @default - violations only notify
   */
  readonly retrainingWorkflow?: sfn.IStateMachine;
  /**
   * Static input of the retraining workflow; the trigger adds a `trigger` field
   * (`source`, `monitoringSchedule`, `reason`, `detectedAt`).
   * @default {}
   */
  readonly retrainingInput?: Record<string, unknown>;
  /**
   * After a violation starts retraining, further violations of this model within this time only
   * wait: a noisy feature cannot start a retraining storm.
   * @default Duration.hours(24)
   */
  readonly cooldown?: Duration;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * Starts retraining when Model Monitor finds violations, at most once per cooldown.
 *
 * An EventBridge rule matches the processing jobs that this monitor's schedules run when they fail
 * or complete with violations, and starts a small workflow. A failed execution notifies the alarm
 * topic. A violation takes the model's cooldown lock with a conditional write to a DynamoDB table
 * (encrypted with the customer-managed key, point-in-time recovery on), notifies the topic, starts
 * the retraining workflow with `{ ...retrainingInput, trigger: { source, monitoringSchedule,
 * reason, detectedAt } }`, waits out the cooldown and releases the lock. A violation while the lock
 * is held ends without retraining; a lock whose holder no longer runs (an execution stopped by hand)
 * is taken over.
 */
export class RetrainingTrigger extends Construct {
  public readonly rule: events.Rule;
  public readonly table: dynamodb.Table;
  public readonly workflow: MlWorkflow;
  public readonly deadLetterQueue: sqs.Queue;
  public readonly cooldown: Duration;
  public readonly modelName: string;

  constructor(scope: Construct, id: string, props: RetrainingTriggerProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'RetrainingTrigger', props, { monitor: 'construct', alarmTopic: 'object', encryptionKey: 'object' });
    const where = `${this.node.path} (RetrainingTrigger)`;
    const monitor = props.monitor;
    if (monitor.monitors.length === 0) throw new Error(`${where}: monitor: has no monitoring schedule to watch`);
    this.cooldown = props.cooldown ?? Duration.hours(24);
    const cooldownSeconds = this.cooldown.toMilliseconds() / 1000;
    if (!Token.isUnresolved(cooldownSeconds) && !(Number.isInteger(cooldownSeconds) && cooldownSeconds >= 1 && cooldownSeconds <= 30 * 24 * 3600)) {
      throw new Error(`${where}: cooldown: must be a whole number of seconds from 1 second to 30 days; got ${cooldownSeconds} s`);
    }
    const input = props.retrainingInput ?? {};
    if ('trigger' in input) throw new Error(`${where}: retrainingInput: must not set 'trigger'; the trigger adds it`);
    this.modelName = monitor.endpoint.modelName;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.table = new dynamodb.Table(this, 'CooldownLock', {
      partitionKey: { name: 'model', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy,
    });
    const backupReason =
      'The table holds one short-lived cooldown lock per model, released when the cooldown ends and rebuilt by the next violation; point-in-time recovery covers it and a backup plan would only keep expired locks.';
    Validations.of(this.table).acknowledge(
      { id: 'HIPAA.Security-DynamoDBInBackupPlan', reason: backupReason },
      { id: 'NIST.800.53.R5-DynamoDBInBackupPlan', reason: backupReason },
    );

    const definition = this.definition(props, input);
    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Starts retraining of ${this.modelName} on Model Monitor violations, at most once per cooldown`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: removalPolicy,
      // The execution waits out the cooldown while it holds the lock.
      timeout: this.cooldown.plus(Duration.hours(1)),
      failureAlarmAction: new actions.SnsAction(props.alarmTopic),
      wildcardResourceReason: `cloudwatch:PutMetricData has no resource-level permissions; the workflow only counts ${MODEL_MONITOR_EVENTS_NAMESPACE} metrics.`,
    });
    // The DynamoDB tasks grant their own actions on the table; reading and writing it needs its key too.
    this.table.encryptionKey?.grant(this.workflow.role, 'kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey');
    grantPublishTo(props.alarmTopic, this.workflow.role);
    props.retrainingWorkflow?.grantStartExecution(this.workflow.role);
    // The lock holder's status: the workflow's own executions. Its name is generated by CloudFormation
    // from its logical id, and naming the state machine itself in its policy would be a cycle.
    acknowledgeWildcardResource(
      this.workflow.role.grantsPolicy,
      this.ownExecutions(),
      "The workflow reads the status of the execution holding the cooldown lock: one of its own executions, whose names Step Functions chooses; describe-only, limited to this state machine's generated name.",
    );

    this.deadLetterQueue = terminalQueue(this, 'DeadLetterQueue', { encryptionKey: props.encryptionKey, removalPolicy, holds: 'the dead-letter queue of the retraining trigger rule' });

    this.rule = new events.Rule(this, 'Rule', {
      description: `Model Monitor executions of ${this.modelName} that failed or found violations`,
      eventPattern: RetrainingTrigger.eventPattern(monitor.monitors.map((m) => m.scheduleArn)),
    });
    const eventsRole = new ManagedPolicyRole(this, 'RuleRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: `Starts the retraining trigger of ${this.modelName} on Model Monitor events`,
    });
    this.rule.addTarget(new targets.SfnStateMachine(this.workflow.stateMachine, { role: eventsRole, deadLetterQueue: this.deadLetterQueue, retryAttempts: 4, maxEventAge: Duration.hours(6) }));
  }

  /**
   * The event pattern: processing jobs of these monitoring schedules that failed, or completed with
   * constraint violations (Model Monitor reports them in the job's exit message).
   */
  public static eventPattern(scheduleArns: string[]): events.EventPattern {
    return {
      source: ['aws.sagemaker'],
      detailType: [PROCESSING_JOB_STATE_CHANGE],
      detail: {
        MonitoringScheduleArn: scheduleArns,
        $or: [{ ProcessingJobStatus: ['Failed'] }, { ExitMessage: [{ prefix: VIOLATIONS_EXIT_MESSAGE_PREFIX }] }],
      },
    };
  }

  /** ARN pattern of this workflow's own executions (its name is `<logical id>-<suffix>`). */
  private ownExecutions(): string {
    const stack = Stack.of(this);
    const logicalId = stack.getLogicalId(this.workflow.stateMachine.node.defaultChild as sfn.CfnStateMachine);
    return `arn:${stack.partition}:states:${stack.region}:${stack.account}:execution:${logicalId}-*:*`;
  }

  /** Monitoring executions that found constraint violations (every one, in cooldown or not). Default: sum over 1 hour. */
  public metricViolations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('Violations', props);
  }

  /** Monitoring executions that failed (a missing or malformed baseline, a bad analysis configuration, capacity). Default: sum over 1 hour. */
  public metricFailedExecutions(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.eventMetric('FailedExecutions', props);
  }

  private eventMetric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: MODEL_MONITOR_EVENTS_NAMESPACE, metricName, dimensionsMap: { Model: this.modelName }, statistic: 'Sum', period: Duration.hours(1), ...props });
  }

  /** Workflow executions that started retraining are the ones that reached the Wait; this counts every run. Default: sum over 1 hour. */
  public metricRuns(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.workflow.stateMachine.metricStarted({ period: Duration.hours(1), statistic: 'Sum', ...props });
  }

  private definition(props: RetrainingTriggerProps, input: Record<string, unknown>): sfn.IChainable {
    const model = this.modelName;
    const topic = props.alarmTopic;
    // Fields a job's event may leave out are filled in first, so later states can always read them.
    const defaults = new sfn.Pass(this, 'Defaults', { result: sfn.Result.fromObject({ ExitMessage: '', FailureReason: '' }), resultPath: '$.defaults' });
    const normalise = new sfn.Pass(this, 'Describe execution', {
      parameters: {
        'detail.$': 'States.JsonMerge($.defaults, $.detail, false)',
        'trigger': {
          source: 'model-monitor',
          'monitoringSchedule.$': "States.ArrayGetItem(States.StringSplit($.detail.MonitoringScheduleArn, '/'), 1)",
          'processingJob.$': '$.detail.ProcessingJobName',
          'detectedAt.$': '$.time',
        },
      },
    });
    const withReason = new sfn.Pass(this, 'Violation reason', {
      inputPath: '$.detail.ExitMessage',
      resultPath: '$.trigger.reason',
    });

    const notifyFailure = new tasks.SnsPublish(this, 'Notify failed execution', {
      topic,
      subject: `[WARNING] Model Monitor execution of ${model} failed`,
      message: sfn.TaskInput.fromJsonPathAt(
        `States.Format('Model Monitor execution {} of schedule {} ({}) failed: {}', $.trigger.processingJob, $.trigger.monitoringSchedule, '${model}', $.detail.FailureReason)`,
      ),
      resultPath: sfn.JsonPath.DISCARD,
    });
    const failureNotified = new sfn.Succeed(this, 'Failure notified');

    const lockItem = (condition: string, values?: Record<string, tasks.DynamoAttributeValue>) =>
      ({
        table: this.table,
        item: {
          model: tasks.DynamoAttributeValue.fromString(model),
          executionArn: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.Execution.Id')),
          acquiredAt: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.State.EnteredTime')),
          monitoringSchedule: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.trigger.monitoringSchedule')),
          reason: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.trigger.reason')),
        },
        conditionExpression: condition,
        expressionAttributeValues: values,
        resultPath: sfn.JsonPath.DISCARD,
      }) satisfies tasks.DynamoPutItemProps;
    const takeLock = new tasks.DynamoPutItem(this, 'Take cooldown lock', lockItem('attribute_not_exists(model)'));
    const takeOver = new tasks.DynamoPutItem(
      this,
      'Take over stale lock',
      lockItem('executionArn = :holder', { ':holder': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.holder.Item.executionArn.S')) }),
    );

    const retraining = props.retrainingWorkflow;
    const wait = new sfn.Wait(this, 'Cooldown', { time: sfn.WaitTime.duration(this.cooldown) });
    const release = new tasks.DynamoDeleteItem(this, 'Release cooldown lock', {
      table: this.table,
      key: { model: tasks.DynamoAttributeValue.fromString(model) },
      conditionExpression: 'executionArn = :me',
      expressionAttributeValues: { ':me': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$$.Execution.Id')) },
      resultPath: sfn.JsonPath.DISCARD,
    });
    const released = new sfn.Succeed(this, 'Cooldown over');
    release.addCatch(released, { errors: ['DynamoDB.ConditionalCheckFailedException'], resultPath: sfn.JsonPath.DISCARD });
    wait.next(release.next(released));
    const details = '$.trigger.reason, $.trigger.monitoringSchedule, $.trigger.processingJob, $.trigger.detectedAt';
    let onLock: sfn.IChainable;
    if (retraining) {
      const start = new tasks.StepFunctionsStartExecution(this, 'Start retraining', {
        stateMachine: retraining,
        input: sfn.TaskInput.fromObject({ ...input, trigger: sfn.JsonPath.objectAt('$.trigger') }),
        resultSelector: { 'executionArn.$': '$.ExecutionArn' },
        resultPath: '$.retraining',
      });
      const started = new tasks.SnsPublish(this, 'Notify retraining started', {
        topic,
        subject: `[WARNING] ${model}: Model Monitor found violations; retraining started`,
        message: sfn.TaskInput.fromJsonPathAt(
          `States.Format('${model}: {} (schedule {}, job {}, at {}). Retraining started: {}. Further violations wait until the cooldown ends.', ${details}, $.retraining.executionArn)`,
        ),
        resultPath: sfn.JsonPath.DISCARD,
      });
      // The lock is kept either way: a retraining that cannot start is a human's call, not a loop's.
      const notStarted = new tasks.SnsPublish(this, 'Notify retraining not started', {
        topic,
        subject: `[WARNING] ${model}: Model Monitor found violations; retraining could not be started`,
        message: sfn.TaskInput.fromJsonPathAt(
          `States.Format('${model}: {} (schedule {}, job {}, at {}). The retraining workflow could not be started: {} {}', ${details}, $.retrainingError.Error, $.retrainingError.Cause)`,
        ),
        resultPath: sfn.JsonPath.DISCARD,
      });
      start.addCatch(notStarted, { errors: ['States.ALL'], resultPath: '$.retrainingError' });
      start.next(started).next(wait);
      notStarted.next(wait);
      onLock = start;
    } else {
      onLock = new tasks.SnsPublish(this, 'Notify violation', {
        topic,
        subject: `[WARNING] ${model}: Model Monitor found violations`,
        message: sfn.TaskInput.fromJsonPathAt(`States.Format('${model}: {} (schedule {}, job {}, at {}). No retraining workflow is configured.', ${details})`),
        resultPath: sfn.JsonPath.DISCARD,
      }).next(wait);
    }

    const withinCooldown = new sfn.Succeed(this, 'Within cooldown', { comment: 'Another violation already started retraining; this one only waits.' });
    const readHolder = new tasks.DynamoGetItem(this, 'Read cooldown holder', {
      table: this.table,
      key: { model: tasks.DynamoAttributeValue.fromString(model) },
      consistentRead: true,
      resultPath: '$.holder',
    });
    const describeHolder = new tasks.CallAwsService(this, 'Describe holder', {
      service: 'sfn',
      action: 'describeExecution',
      parameters: { ExecutionArn: sfn.JsonPath.stringAt('$.holder.Item.executionArn.S') },
      iamResources: [Lazy.string({ produce: () => this.ownExecutions() })],
      iamAction: 'states:DescribeExecution',
      resultSelector: { 'status.$': '$.Status' },
      resultPath: '$.holderExecution',
    });
    const holderRunning = new sfn.Choice(this, 'Holder still running?')
      .when(sfn.Condition.stringEquals('$.holderExecution.status', 'RUNNING'), withinCooldown)
      .otherwise(takeOver);
    // The holder cannot be read (not allowed, or gone in an unexpected way): keep the lock, never retrain twice.
    describeHolder.addCatch(takeOver, { errors: ['Sfn.ExecutionDoesNotExistException'], resultPath: sfn.JsonPath.DISCARD });
    describeHolder.addCatch(withinCooldown, { errors: ['States.ALL'], resultPath: sfn.JsonPath.DISCARD });
    const lockReleased = new sfn.Choice(this, 'Lock still held?')
      .when(sfn.Condition.isPresent('$.holder.Item.executionArn.S'), describeHolder.next(holderRunning))
      .otherwise(takeLock);
    takeLock.addCatch(readHolder.next(lockReleased), { errors: ['DynamoDB.ConditionalCheckFailedException'], resultPath: sfn.JsonPath.DISCARD });
    takeOver.addCatch(withinCooldown, { errors: ['DynamoDB.ConditionalCheckFailedException'], resultPath: sfn.JsonPath.DISCARD });
    takeLock.next(onLock);
    takeOver.next(onLock);

    // Counted as metrics, so that alarms (keyed by severity) and dashboards see every one, cooldown or not.
    const count = (metricName: string) =>
      new tasks.CallAwsService(this, `Count ${metricName}`, {
        service: 'cloudwatch',
        action: 'putMetricData',
        parameters: {
          Namespace: MODEL_MONITOR_EVENTS_NAMESPACE,
          MetricData: [
            {
              MetricName: metricName,
              Value: 1,
              Unit: 'Count',
              Dimensions: [
                { Name: 'Model', Value: model },
                { Name: 'MonitoringSchedule', Value: sfn.JsonPath.stringAt('$.trigger.monitoringSchedule') },
              ],
            },
            { MetricName: metricName, Value: 1, Unit: 'Count', Dimensions: [{ Name: 'Model', Value: model }] },
          ],
        },
        iamResources: ['*'],
        iamAction: 'cloudwatch:PutMetricData',
        resultPath: sfn.JsonPath.DISCARD,
      });
    const classify = new sfn.Choice(this, 'Failed or violations?')
      .when(sfn.Condition.stringEquals('$.detail.ProcessingJobStatus', 'Failed'), count('FailedExecutions').next(notifyFailure).next(failureNotified))
      .when(sfn.Condition.stringMatches('$.detail.ExitMessage', `${VIOLATIONS_EXIT_MESSAGE_PREFIX}*`), withReason.next(count('Violations')).next(takeLock))
      .otherwise(new sfn.Succeed(this, 'Nothing to do', { comment: 'Neither failed nor violations (the rule should not have matched).' }));
    return defaults.next(normalise).next(classify);
  }
}
