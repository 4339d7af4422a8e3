import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ManagedPolicyRole } from './managed-policy-role';
import { acknowledgeWildcardResource } from './private/nag';
import { assertRequiredProps } from './private/props';

export interface MlWorkflowProps {
  /** The workflow's states, from the first one. */
  readonly definition: sfn.IChainable;
  /** What the workflow does; shown in the IAM and Step Functions consoles. */
  readonly description: string;
  /** Key that encrypts the execution logs and the state machine's data. */
  readonly encryptionKey: kms.IKey;
  /**
   * Retention of the execution logs.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Removal policy of the execution logs.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Longest an execution may run before Step Functions stops it.
   * @default Duration.hours(24)
   */
  readonly timeout?: Duration;
  /**
   * Why the workflow itself calls actions that have no resource-level permissions (for example
   * `cloudwatch:GetMetricData`); added to the reason of the `Resource::*` acknowledgement.
   * @default - only log delivery and tracing need `*`
   */
  readonly wildcardResourceReason?: string;
  /**
   * Notified when an execution fails, times out or is aborted.
   * @default - no alarm
   */
  readonly failureAlarmAction?: cloudwatch.IAlarmAction;
}

/**
 * A Step Functions workflow as the ML patterns run them: a STANDARD state machine that logs ALL
 * events with execution data to a KMS-encrypted log group, traces with X-Ray, encrypts its state
 * with a customer-managed key, keeps its grants in a customer-managed policy, and alarms on failed
 * executions.
 */
export class MlWorkflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly role: ManagedPolicyRole;
  public readonly failureAlarm?: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: MlWorkflowProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'MlWorkflow', props, { definition: 'object', description: 'string', encryptionKey: 'object' });
    this.role = new ManagedPolicyRole(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: props.description,
    });
    const logGroup = new logs.LogGroup(this, 'Logs', {
      encryptionKey: props.encryptionKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    this.stateMachine = new sfn.StateMachine(this, 'Resource', {
      definitionBody: sfn.DefinitionBody.fromChainable(props.definition),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: props.description,
      role: this.role,
      timeout: props.timeout ?? Duration.hours(24),
      tracingEnabled: true,
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      encryptionConfiguration: new sfn.CustomerManagedEncryptionConfiguration(props.encryptionKey),
    });
    acknowledgeWildcardResource(
      this.role.grantsPolicy,
      '*',
      [
        'Step Functions log delivery (logs:CreateLogDelivery and related) and X-Ray tracing (xray:PutTraceSegments and related) have no resource-level permissions.',
        props.wildcardResourceReason,
      ]
        .filter(Boolean)
        .join(' '),
    );

    if (props.failureAlarmAction) {
      const failed = new cloudwatch.MathExpression({
        expression: 'failed + timedOut + aborted',
        usingMetrics: {
          failed: this.stateMachine.metricFailed({ statistic: 'Sum' }),
          timedOut: this.stateMachine.metricTimedOut({ statistic: 'Sum' }),
          aborted: this.stateMachine.metricAborted({ statistic: 'Sum' }),
        },
        period: Duration.minutes(5),
        label: 'failed executions',
      });
      this.failureAlarm = new cloudwatch.Alarm(this, 'Failures', {
        metric: failed,
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[WARNING] ${props.description}: an execution failed, timed out or was aborted`,
      });
      this.failureAlarm.addAlarmAction(props.failureAlarmAction);
    }
  }

  /** Lets the grantee start executions of this workflow (as the console does). */
  public grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  /** Console link to the state machine, for notes and notifications. */
  public get consoleUrl(): string {
    const stack = Stack.of(this);
    return `https://${stack.region}.console.aws.amazon.com/states/home?region=${stack.region}#/statemachines/view/${this.stateMachine.stateMachineArn}`;
  }
}
