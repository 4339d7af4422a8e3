import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as schedulerTargets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { MlFunction } from '../core/ml-function';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { workflowLambdaTask } from '../core/private/lambda-task';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkPropType, invalidProps } from '../core/private/props';
import type { ModelEndpoint } from '../serving/model-endpoint';
import type { OutcomeType } from './ab-test-analysis';
import type { ExperimentWorkflowOptions } from './experiment-options';
import type { PredictionLog } from './prediction-log';

// Online allocation (seed pattern 17, online learning): a multi-armed bandit over an endpoint's production
// variants that learns from the prediction log's outcomes which variant performs best and moves traffic to it
// with UpdateEndpointWeightsAndCapacities, a step at a time, watched by the rollback alarms. The decision is the
// bandit-allocation function's (lambda/shared/bandit.ts); the workflow applies it.

/** The namespace of the allocation function's EMF metrics (ArmWeight, OutcomesRead, Updates*). */
export const ONLINE_ALLOCATION_METRICS_NAMESPACE = 'MlPlatform/OnlineAllocation';

/** How the bandit chooses the weights. */
export enum BanditStrategy {
  /** Thompson sampling: each variant gets the posterior probability that it is the best one (Beta for binary outcomes, Normal-Inverse-Gamma for continuous ones). */
  THOMPSON = 'thompson',
  /** UCB1: the variant with the highest upper confidence bound is the target (greedy, under the step limit). */
  UCB = 'ucb',
}

export interface OnlineAllocationProps extends ExperimentWorkflowOptions {
  /** The endpoint whose production variants are the arms (two to ten). */
  readonly endpoint: ModelEndpoint;
  /**
   * Where the API logs predictions and their outcomes, read by model and time; the bandit's state
   * (`bandit#<model>`) and one item per decision (`bandit#<model>#<time>`) are kept in it too.
   */
  readonly predictionLog: PredictionLog;
  /** What the outcomes are: `binary` (converted or not) or `continuous` (revenue, a rating). */
  readonly outcomeType: OutcomeType;
  /** @default BanditStrategy.THOMPSON */
  readonly strategy?: BanditStrategy;
  /** Whether larger outcomes are better. @default true */
  readonly higherIsBetter?: boolean;
  /** Least share of the traffic each variant keeps, so that none stops learning. @default 0.05 */
  readonly minShare?: number;
  /** Largest change of a variant's weight in one decision. @default 0.1 */
  readonly maxStep?: number;
  /** Fewest outcomes every variant needs before the weights move at all. @default 30 */
  readonly minObservations?: number;
  /** Outcomes arrive within this of their prediction; younger predictions are read by a later run. @default Duration.hours(1) */
  readonly outcomeDelay?: Duration;
  /** How far back the first run reads. @default Duration.days(1) */
  readonly firstWindow?: Duration;
  /** How often a decision is made. @default rate(1 hour) */
  readonly schedule?: scheduler.ScheduleExpression;
  /** How long new weights bake before the rollback alarms are read. @default Duration.minutes(15) */
  readonly bakeTime?: Duration;
  /** Any of these in ALARM after the bake puts the previous weights back. @default - the endpoint's alarms */
  readonly rollbackAlarms?: cloudwatch.IAlarm[];
  /** Run the function in this VPC; it reaches DynamoDB and S3 through the VPC's gateway endpoints. */
  readonly vpc?: ec2.IVpc;
}

const onGrid = (value: number) => Math.abs(value * 1e6 - Math.round(value * 1e6)) <= 1e-6;

/**
 * A multi-armed bandit over an endpoint's production variants (seed pattern 17): on a schedule, the workflow
 * reads the endpoint, has the allocation function fold the outcomes logged since the last run into each
 * variant's posterior and decide new weights (Thompson sampling or UCB, with a minimum share per variant, a
 * maximum change per step and a minimum of observations), applies them with
 * `UpdateEndpointWeightsAndCapacities`, bakes, and puts the previous weights back if a rollback alarm fires.
 * The posterior is stored in the prediction log, and every decision is recorded there with its outcome.
 */
export class OnlineAllocation extends Construct {
  public readonly function: lambda.Function;
  public readonly workflow: MlWorkflow;
  /** The `service` dimension of the function's metrics. */
  public readonly serviceName: string;
  /** The production variants, the bandit's arms. */
  public readonly variantNames: readonly string[];
  /** [WARNING] new weights were rolled back: a rollback alarm fired while they baked; with `failureAlarmAction`. */
  public readonly rollbackAlarm?: cloudwatch.Alarm;
  /** The defaults of each decision, as the console's input may override them. */
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: OnlineAllocationProps) {
    super(scope, id);
    const problems = validate(props);
    if (problems.length > 0) throw invalidProps(`${this.node.path} (OnlineAllocation)`, problems);
    const stack = Stack.of(this);
    const endpoint = props.endpoint;
    const model = endpoint.modelName;
    this.variantNames = endpoint.variants.filter((variant) => variant.kind === 'production').map((variant) => variant.name);
    this.serviceName = `online-allocation-${model}`;

    const allocator = new MlFunction(this, 'Allocator', {
      handler: 'bandit-allocation',
      description: `Decides the traffic weights of ${model}'s variants from their outcomes (multi-armed bandit)`,
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'a workflow, which retries and catches its errors',
      calls: 'DynamoDB',
      timeout: Duration.minutes(5),
      memorySize: 512,
      // One decision at a time; a second lets an operator's run overlap the scheduled one (the state's version keeps them apart).
      reservedConcurrency: 2,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      vpc: props.vpc,
      environment: {
        PREDICTION_LOG_TABLE: props.predictionLog.table.tableName,
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: ONLINE_ALLOCATION_METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    });
    this.function = allocator.function;
    props.predictionLog.grantQueryByModel(allocator.role);
    props.predictionLog.grantBanditState(allocator.role, model);

    const minShare = props.minShare ?? 0.05;
    const maxStep = props.maxStep ?? 0.1;
    const minObservations = props.minObservations ?? 30;
    this.defaults = {
      outcomeType: props.outcomeType,
      settings: {
        strategy: props.strategy ?? BanditStrategy.THOMPSON,
        higherIsBetter: props.higherIsBetter ?? true,
        draws: 10_000,
        exploration: 1,
        guardRails: { minShare, maxStep, minObservations },
      },
      outcomeDelaySeconds: (props.outcomeDelay ?? Duration.hours(1)).toSeconds(),
      firstWindowHours: (props.firstWindow ?? Duration.days(1)).toHours(),
    };

    // --- The workflow ---------------------------------------------------------------------------------
    const errors = new FailureNotice(this, props.notificationTopic, `Model ${model}: online allocation failed`, 'Allocation failed');
    const describe = (stateId: string, resultPath: string) =>
      errors.protect(
        tasks.CallAwsService.jsonPath(this, stateId, {
          service: 'sagemaker',
          action: 'describeEndpoint',
          iamResources: [endpoint.endpointArn],
          iamAction: 'sagemaker:DescribeEndpoint',
          parameters: { EndpointName: endpoint.endpointName },
          resultSelector: { 'status.$': '$.EndpointStatus', 'variants.$': '$.ProductionVariants' },
          resultPath,
        }),
      );
    // The function is safe to call again with the same decision time; a lost race for the state is retried, bad input
    // or a broken environment is not.
    const invoke = (stateId: string, comment: string, payload: Record<string, unknown>, resultPath: string, fields: readonly string[]) =>
      workflowLambdaTask(this, stateId, { comment, lambdaFunction: this.function, payload, resultPath, fields, permanentErrors: ['BanditInputError', 'ConfigError'], catchTo: errors.entry });
    const record = (stateId: string, status: 'deployed' | 'rolled-back' | 'skipped', detail: string) =>
      invoke(stateId, `Records the decision as ${status}.`, { action: 'record', model, 'decisionKey.$': '$.decision.decisionKey', status, 'detail.$': detail }, sfn.JsonPath.DISCARD, ['status']);
    const update = (stateId: string, weightsPath: string) =>
      errors.protect(
        tasks.CallAwsService.jsonPath(this, stateId, {
          service: 'sagemaker',
          action: 'updateEndpointWeightsAndCapacities',
          iamResources: [endpoint.endpointArn],
          iamAction: 'sagemaker:UpdateEndpointWeightsAndCapacities',
          parameters: { EndpointName: endpoint.endpointName, 'DesiredWeightsAndCapacities.$': weightsPath },
          resultPath: sfn.JsonPath.DISCARD,
        }),
      );
    const untilInService = (prefix: string, next: sfn.IChainable): sfn.IChainable => {
      const check = describe(`${prefix}: describe endpoint`, '$.endpoint');
      const pause = new sfn.Wait(this, `${prefix}: endpoint updating`, { time: sfn.WaitTime.duration(Duration.seconds(30)) });
      const broken = new sfn.Fail(this, `${prefix}: endpoint failed`, { error: 'EndpointUpdateFailed', causePath: "States.Format('endpoint status became {} while its weights changed', $.endpoint.status)" });
      return check.next(
        new sfn.Choice(this, `${prefix}: endpoint in service?`)
          .when(sfn.Condition.stringEquals('$.endpoint.status', 'InService'), next)
          .when(sfn.Condition.or(sfn.Condition.stringEquals('$.endpoint.status', 'Failed'), sfn.Condition.stringEquals('$.endpoint.status', 'OutOfService')), broken)
          .otherwise(pause.next(check)),
      );
    };

    const alarms = props.rollbackAlarms ?? [...(endpoint.alarms?.bySeverity.critical ?? []), ...(endpoint.alarms?.bySeverity.warning ?? [])];
    const alarmNames = alarms.map((alarm) => alarm.alarmName);

    const deployed = record('Record deployed', 'deployed', "States.Format('weights {} baked {} s with no rollback alarm', States.JsonToString($.decision.desiredWeights), $.config.bakeSeconds)").next(
      new sfn.Succeed(this, 'Weights moved'),
    );
    let afterBake: sfn.IChainable = deployed;
    if (alarmNames.length > 0) {
      const rolledBack = record('Record rolled back', 'rolled-back', "States.Format('alarms {} were in states {} after the bake', States.JsonToString($.alarms.names), States.JsonToString($.alarms.states))");
      const rollbackNotice = new sfn.Pass(this, 'Rollback verdict', {
        parameters: {
          result: 'rolled-back',
          model,
          'weights.$': '$.decision.desiredWeights',
          'restored.$': '$.decision.previousWeights',
          'alarms.$': '$.alarms.names',
          'states.$': '$.alarms.states',
          'decision.$': '$.decision.decisionKey',
          'console.$': executionConsoleUrlExpression(this),
        },
        resultPath: '$.verdict',
      });
      const rollback = update('Restore previous weights', '$.decision.previousWeights');
      rollback.next(
        untilInService(
          'Restore',
          rolledBack.next(rollbackNotice).next(errors.notify('Notify rollback', `Model ${model}: online allocation rolled back`, '$.verdict')).next(
            new sfn.Fail(this, 'Allocation rolled back', { error: 'AllocationRolledBack', cause: 'a rollback alarm fired while the new weights baked; the previous weights are back' }),
          ),
        ),
      );
      const readAlarms = errors.protect(
        tasks.CallAwsService.jsonPath(this, 'Read rollback alarms', {
          service: 'cloudwatch',
          action: 'describeAlarms',
          iamResources: alarms.map((alarm) => alarm.alarmArn),
          parameters: { AlarmNames: alarmNames },
          resultSelector: { 'names.$': '$.MetricAlarms[*].AlarmName', 'states.$': '$.MetricAlarms[*].StateValue' },
          resultPath: '$.alarms',
        }),
      );
      const firing = new sfn.Pass(this, 'Any alarm in ALARM', {
        parameters: { 'names.$': '$.alarms.names', 'states.$': '$.alarms.states', 'firing.$': "States.ArrayContains($.alarms.states, 'ALARM')" },
        resultPath: '$.alarms',
      });
      afterBake = readAlarms.next(firing).next(new sfn.Choice(this, 'Roll back?').when(sfn.Condition.booleanEquals('$.alarms.firing', true), rollback).otherwise(deployed));
    }
    const bakeTime = props.bakeTime ?? Duration.minutes(15);
    const bake = new sfn.Wait(this, 'Bake', { time: sfn.WaitTime.secondsPath('$.config.bakeSeconds') });
    const apply = update('Apply weights', '$.decision.desiredWeights');
    apply.next(untilInService('Apply', bake.next(afterBake)));

    const decide = invoke(
      'Decide allocation',
      "Folds the outcomes logged since the last decision into each variant's posterior and decides the weights.",
      {
        action: 'decide',
        model,
        endpointName: endpoint.endpointName,
        'variants.$': '$.endpoint.variants',
        'outcomeType.$': '$.config.outcomeType',
        'settings.$': '$.config.settings',
        'outcomeDelaySeconds.$': '$.config.outcomeDelaySeconds',
        'firstWindowHours.$': '$.config.firstWindowHours',
        'now.$': '$$.State.EnteredTime',
      },
      '$.decision',
      ['change', 'reason', 'desiredWeights', 'previousWeights', 'observations', 'outcomesRead', 'complete', 'decisionKey'],
    );
    const skipped = record('Record unchanged', 'skipped', "States.Format('no change: {}', $.decision.reason)").next(new sfn.Succeed(this, 'Weights unchanged'));
    decide.next(new sfn.Choice(this, 'Weights change?').when(sfn.Condition.booleanEquals('$.decision.change', true), apply).otherwise(skipped));

    const defaults = new sfn.Pass(this, 'Load defaults', { parameters: { ...this.defaults, bakeSeconds: bakeTime.toSeconds() }, resultPath: '$.defaults' });
    // An operator's input may override any default, e.g. { "settings": { ..., "guardRails": { "maxStep": 0.05, ... } } }.
    const merge = new sfn.Pass(this, 'Merge input over defaults', { parameters: { 'config.$': 'States.JsonMerge($.defaults, $$.Execution.Input, false)' } });
    const first = describe('Describe endpoint', '$.endpoint');
    const definition = defaults
      .next(merge)
      .next(first)
      .next(
        new sfn.Choice(this, 'Endpoint in service?')
          .when(sfn.Condition.stringEquals('$.endpoint.status', 'InService'), decide)
          // Another update (a deployment, a promotion) is under way: the next run decides.
          .otherwise(new sfn.Succeed(this, 'Endpoint busy', { comment: 'The endpoint is being updated; the next scheduled run decides.' })),
      );

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Online allocation of ${model}'s traffic between its variants`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: Duration.hours(2).plus(bakeTime),
      failureAlarmAction: props.failureAlarmAction,
    });
    acknowledgeWildcardResource(this.workflow.role.grantsPolicy, `${this.function.functionArn}:*`, 'The Lambda task may invoke the allocation function by version or alias (<function ARN>:*); the grant names that one function only.');

    const schedulerRole = new ManagedPolicyRole(this, 'SchedulerRole', {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': stack.account } } }),
      description: `Starts the online allocation of ${model}`,
    });
    new scheduler.Schedule(this, 'Schedule', {
      description: `Decides the traffic weights of ${model}'s variants from their outcomes`,
      schedule: props.schedule ?? scheduler.ScheduleExpression.rate(Duration.hours(1)),
      target: new schedulerTargets.StepFunctionsStartExecution(this.workflow.stateMachine, { role: schedulerRole, input: scheduler.ScheduleTargetInput.fromObject({ trigger: 'schedule' }) }),
    });

    if (props.failureAlarmAction) {
      this.rollbackAlarm = new cloudwatch.Alarm(this, 'RolledBack', {
        metric: this.metricUpdatesRolledBack({ period: Duration.hours(1) }),
        threshold: 0,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: `[WARNING] the online allocation of ${model} rolled new weights back: a rollback alarm fired while they baked`,
      });
      this.rollbackAlarm.addAlarmAction(props.failureAlarmAction);
    }
  }

  /** A variant's weight after each decision. */
  public metricArmWeight(variant: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: ONLINE_ALLOCATION_METRICS_NAMESPACE, metricName: 'ArmWeight', dimensionsMap: { service: this.serviceName, variant }, statistic: 'Average', period: Duration.hours(1), label: variant, ...props });
  }

  /** Outcomes folded into the posteriors. */
  public metricOutcomesRead(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('OutcomesRead', props);
  }

  /** Decisions that moved the weights. */
  public metricUpdatesTriggered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesTriggered', props);
  }

  /** Decisions that left the weights (not enough outcomes, or the same weights). */
  public metricUpdatesRefused(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesRefused', props);
  }

  /** New weights that baked without an alarm. */
  public metricUpdatesDeployed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesDeployed', props);
  }

  /** New weights put back after a rollback alarm. */
  public metricUpdatesRolledBack(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metric('UpdatesRolledBack', props);
  }

  private metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({ namespace: ONLINE_ALLOCATION_METRICS_NAMESPACE, metricName, dimensionsMap: { service: this.serviceName }, statistic: 'Sum', period: Duration.hours(1), ...props });
  }
}

function validate(props: OnlineAllocationProps): string[] {
  const problems = checkPropType(props, 'props', 'object');
  if (problems.length > 0) return problems;
  for (const [name, type] of [['endpoint', 'construct'], ['predictionLog', 'construct'], ['encryptionKey', 'object'], ['notificationTopic', 'object']] as const) {
    problems.push(...checkPropType(props[name], name, type));
  }
  const outcome = checkPropType(props.outcomeType, 'outcomeType', 'string');
  if (outcome.length > 0) problems.push(...outcome);
  else if (props.outcomeType !== 'binary' && props.outcomeType !== 'continuous') problems.push(`outcomeType: must be binary or continuous; got ${JSON.stringify(props.outcomeType)}`);
  if (props.strategy !== undefined && !Object.values(BanditStrategy).includes(props.strategy)) problems.push(`strategy: must be one of ${Object.values(BanditStrategy).join(', ')}; got ${JSON.stringify(props.strategy)}`);
  const share = (name: 'minShare' | 'maxStep', min: number, max: number, minInclusive: boolean) => {
    const value = props[name];
    if (value === undefined) return;
    if (typeof value !== 'number' || !(minInclusive ? value >= min : value > min) || value > max || !onGrid(value)) {
      problems.push(`${name}: must be a share ${minInclusive ? 'from' : 'above'} ${min} to ${max}, in millionths; got ${JSON.stringify(value)}`);
    }
  };
  share('minShare', 0, 0.5, true);
  share('maxStep', 0, 1, false);
  if (props.minObservations !== undefined && !(Number.isInteger(props.minObservations) && props.minObservations >= 1)) problems.push(`minObservations: must be a whole number ≥ 1; got ${JSON.stringify(props.minObservations)}`);
  const variants = Construct.isConstruct(props.endpoint) ? (props.endpoint.variants ?? []).filter((variant) => variant.kind === 'production').length : 0;
  if (Construct.isConstruct(props.endpoint) && (variants < 2 || variants > 10)) problems.push(`endpoint: must have 2 to 10 production variants (the bandit's arms); ${props.endpoint.node.path} has ${variants}`);
  if (props.minShare !== undefined && variants >= 2 && props.minShare * variants > 1) problems.push(`minShare: ${props.minShare} for each of ${variants} variants is more than all the traffic`);
  const hours = props.firstWindow?.toHours({ integral: false });
  if (hours !== undefined && (hours < 1 || !Number.isInteger(hours))) problems.push(`firstWindow: must be a whole number of hours ≥ 1; got ${props.firstWindow!.toHumanString()}`);
  const bake = props.bakeTime?.toSeconds();
  if (bake !== undefined && (bake < 60 || bake > 86_400)) problems.push(`bakeTime: must be from 1 minute to 1 day; got ${props.bakeTime!.toHumanString()}`);
  return problems;
}
