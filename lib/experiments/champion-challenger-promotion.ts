import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { checkPropType, invalidProps, isType, requiredPropProblems } from '../core/private/props';
import { grantPublishTo } from '../core/alarm-topic';
import { inputOverDefaults, validateExecutionInput, type InputField } from '../core/input-validation';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { MlWorkflow } from '../core/ml-workflow';
import type { ModelEndpoint } from '../serving/model-endpoint';
import type { PredictionLog } from './prediction-log';
import { guardrailDefaults, guardrailProblems, type ExperimentWorkflowOptions, type VariantGuardrailOptions } from './experiment-options';
import { FailureNotice } from '../core/private/failure-notice';
import { GUARDRAIL_INPUT_FIELDS, guardrailCheck } from './private/variant-guardrails';


/** One traffic step: the weights the champion and the challenger get. */
export interface TrafficStep {
  readonly championWeight: number;
  readonly challengerWeight: number;
}

export interface ChampionChallengerPromotionProps extends ExperimentWorkflowOptions, VariantGuardrailOptions {
  /** The endpoint whose champion and challenger variants are compared and shifted. */
  readonly endpoint: ModelEndpoint;
  /**
   * Default champion variant; an execution input may name another.
   * @default 'champion'
   */
  readonly championVariant?: string;
  /**
   * Default challenger variant; an execution input may name another.
   * @default 'challenger'
   */
  readonly challengerVariant?: string;
  /**
   * Percentages of traffic the challenger gets, step by step; the last must be 100.
   * @default [10, 25, 50, 100]
   */
  readonly trafficSteps?: number[];
  /**
   * How long each step (and the first observation of the current split) bakes before it is judged.
   * @default Duration.minutes(15)
   */
  readonly bakeTime?: Duration;
  /**
   * Alarms watched while each step bakes; any of them in ALARM rolls traffic back.
   * @default - the endpoint's alarms, when it has them
   */
  readonly rollbackAlarms?: cloudwatch.IAlarm[];
  /**
   * The prediction log: read for the latest A/B decision (`analysis#<model>`) and written with the
   * new champion (`champion#<model>`).
   * @default - no A/B gate and no champion record
   */
  readonly predictionLog?: PredictionLog;
}

/**
 * Champion–challenger promotion as a Step Functions workflow that operators start from the console:
 *
 * 1. validates the input, then refuses to start when the latest A/B analysis says the champion wins;
 * 2. observes the current split for one bake period and compares the challenger with the champion
 *    on 5xx error rate and model latency, p99 by default (`guardrailCheck`);
 * 3. shifts traffic step by step with `UpdateEndpointWeightsAndCapacities`, waits for the endpoint,
 *    bakes, and checks the rollback alarms and the guardrails again;
 * 4. rolls all traffic back to the champion when an alarm fires or a guardrail breaks, or finishes
 *    by recording the challenger as the new champion.
 *
 * Every AWS call is a direct service integration (no Lambda), with retries on throttling and a catch
 * that notifies and fails. The input schema is in `examples/inputs/promote-challenger.json`.
 */
export class ChampionChallengerPromotion extends Construct {
  public readonly workflow: MlWorkflow;
  /** The defaults an execution input is merged over. */
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: ChampionChallengerPromotionProps) {
    super(scope, id);
    const shape = requiredPropProblems(props, { endpoint: 'construct', notificationTopic: 'object', encryptionKey: 'object' });
    if (isType(props, 'object')) shape.push(...checkPropType(props.trafficSteps, 'trafficSteps', 'array', { optional: true }));
    if (shape.length > 0) throw invalidProps(`${this.node.path} (ChampionChallengerPromotion)`, shape);
    const endpoint = props.endpoint;
    const steps = props.trafficSteps ?? [10, 25, 50, 100];
    const bakeSeconds = (props.bakeTime ?? Duration.minutes(15)).toSeconds();
    this.validate(props, steps, bakeSeconds);

    const alarms = props.rollbackAlarms ?? [...(endpoint.alarms?.bySeverity.critical ?? []), ...(endpoint.alarms?.bySeverity.warning ?? [])];
    this.defaults = {
      championVariant: props.championVariant ?? 'champion',
      challengerVariant: props.challengerVariant ?? 'challenger',
      trafficSteps: steps.map((challengerWeight) => ({ championWeight: 100 - challengerWeight, challengerWeight })),
      bakeSeconds,
      // One datapoint per window: a period as long as the bake, in whole minutes.
      metricPeriodSeconds: Math.max(60, Math.ceil(bakeSeconds / 60) * 60),
      ...guardrailDefaults(props),
      alarmNames: alarms.map((alarm) => alarm.alarmName),
    };

    const endpointName = endpoint.endpointName;
    const errors = new FailureNotice(this, props.notificationTopic, 'Champion-challenger promotion failed', 'Promotion failed');
    const configure = (task: sfn.TaskStateBase) => errors.protect(task);

    // Rollback: all traffic back to the champion, notify, fail with the reason.
    const rolledBack = new sfn.Fail(this, 'Rolled back', { error: 'RolledBack', causePath: '$.verdict.reason' });
    const rollback = this.shiftTraffic('Roll back to champion', endpointName, { championWeight: 1, challengerWeight: 0 }, endpoint);
    configure(rollback);
    rollback.next(errors.notify('Notify rollback', 'Challenger rolled back', '$.verdict').next(rolledBack));

    // Rejection before any traffic moves.
    const rejected = new sfn.Fail(this, 'Promotion rejected', { error: 'PromotionRejected', causePath: '$.verdict.reason' });
    const reject = errors.notify('Notify rejection', 'Challenger not promoted', '$.verdict').next(rejected);

    // Finish: record the new champion and notify.
    const promoted = new sfn.Succeed(this, 'Challenger promoted');
    const announce = new sfn.Pass(this, 'Promotion verdict', {
      parameters: {
        result: 'promoted',
        'reason.$': "States.Format('{} now serves all traffic of endpoint {} after {} steps', $.config.challengerVariant, $.endpointName, $.loop.count)",
      },
      resultPath: '$.verdict',
    });
    let finish: sfn.IChainable = announce.next(errors.notify('Notify promotion', 'Challenger promoted', '$.verdict')).next(promoted);
    if (props.predictionLog) {
      const record = props.predictionLog.putWorkflowStateTask(this, 'Record new champion', 'champion', endpoint.modelName, {
        variant: '$.config.challengerVariant',
        previousChampion: '$.config.championVariant',
        promotedAt: '$$.State.EnteredTime',
        execution: '$$.Execution.Id',
      });
      configure(record);
      finish = record.next(finish);
    }

    // The traffic loop.
    const advance = new sfn.Pass(this, 'Advance to next step', {
      parameters: { 'index.$': 'States.MathAdd($.loop.index, 1)', 'count.$': '$.loop.count' },
      resultPath: '$.loop',
    });
    const pickStep = new sfn.Pass(this, 'Pick traffic step', {
      parameters: { 'weights.$': 'States.ArrayGetItem($.config.trafficSteps, $.loop.index)' },
      resultPath: '$.step',
    });
    const shift = this.shiftTraffic('Shift traffic', endpointName, undefined, endpoint);
    configure(shift);
    const waitInService = this.waitUntilInService('Step', endpointName, endpoint, configure, rollback);
    const bakeStart = new sfn.Pass(this, 'Start bake', { parameters: { 'start.$': '$$.State.EnteredTime' }, resultPath: '$.window' });
    const bake = new sfn.Wait(this, 'Bake', { time: sfn.WaitTime.secondsPath('$.config.bakeSeconds') });
    const bakeVerdict = guardrailCheck(this, 'Bake guardrails', {
      endpointName,
      baselineVariantPath: '$.config.championVariant',
      candidateVariantPath: '$.config.challengerVariant',
      pass: advance.next(new sfn.Choice(this, 'More steps?').when(sfn.Condition.numberLessThanJsonPath('$.loop.index', '$.loop.count'), pickStep).otherwise(finish)),
      fail: rollback,
      // After a shift the challenger must have served traffic; silence is not a pass.
      insufficientData: rollback,
      configureTask: configure,
    });
    const alarmsChecked = this.checkAlarms(rollback, configure, bakeVerdict);
    pickStep.next(shift).next(waitInService).next(bakeStart).next(bake).next(alarmsChecked);

    // Before any shift: the A/B gate, then one observation of the current split.
    const observeStart = new sfn.Pass(this, 'Start observation', { parameters: { 'start.$': '$$.State.EnteredTime' }, resultPath: '$.window' });
    const observe = new sfn.Wait(this, 'Observe current split', { time: sfn.WaitTime.secondsPath('$.config.bakeSeconds') });
    const initialVerdict = guardrailCheck(this, 'Initial guardrails', {
      endpointName,
      baselineVariantPath: '$.config.championVariant',
      candidateVariantPath: '$.config.challengerVariant',
      pass: pickStep,
      fail: reject,
      // A challenger without traffic yet is judged after the first, smallest step instead.
      insufficientData: pickStep,
      configureTask: configure,
    });
    let gate: sfn.IChainable = observeStart.next(observe).next(initialVerdict);
    if (props.predictionLog) {
      const readAnalysis = props.predictionLog.getWorkflowStateTask(this, 'Read latest AB test decision', 'analysis', endpoint.modelName, '$.abTest');
      configure(readAnalysis);
      const abRejected = new sfn.Pass(this, 'AB test favours champion', {
        parameters: { result: 'fail', 'reason.$': "States.Format('the latest A/B analysis ({}) found the champion significantly better', $.abTest.Item.analyzedAt.S)" },
        resultPath: '$.verdict',
      }).next(reject);
      gate = readAnalysis.next(
        new sfn.Choice(this, 'AB test verdict?')
          .when(sfn.Condition.and(sfn.Condition.isPresent('$.abTest.Item.decision.S'), sfn.Condition.stringEquals('$.abTest.Item.decision.S', 'a-wins')), abRejected)
          .otherwise(gate),
      );
    }

    const initLoop = new sfn.Pass(this, 'Count steps', {
      parameters: { index: 0, 'count.$': 'States.ArrayLength($.config.trafficSteps)' },
      resultPath: '$.loop',
    });
    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        { path: '$.config.championVariant', type: 'string' },
        { path: '$.config.challengerVariant', type: 'string' },
        { path: '$.config.bakeSeconds', type: 'number', check: { condition: sfn.Condition.numberGreaterThanEquals('$.config.bakeSeconds', 1), expectation: 'at least 1' } },
        ...GUARDRAIL_INPUT_FIELDS,
      ],
      initLoop.next(new sfn.Choice(this, 'Any steps?').when(sfn.Condition.numberGreaterThan('$.loop.count', 0), gate).otherwise(
        new sfn.Fail(this, 'No traffic steps', { error: 'InvalidInput', cause: 'trafficSteps: must be a non-empty array of { championWeight, challengerWeight }' }),
      )),
    );
    const definition = inputOverDefaults(this, this.defaults, { parameters: { endpointName } }).next(new sfn.Choice(this, 'Steps given?').when(sfn.Condition.isPresent('$.config.trafficSteps'), validated).otherwise(
        new sfn.Fail(this, 'Missing traffic steps', { error: 'InvalidInput', cause: 'trafficSteps: must be a non-empty array of { championWeight, challengerWeight }' }),
      ));

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Champion-challenger promotion for model ${endpoint.modelName}`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      // Observation plus every bake, with room for endpoint updates.
      timeout: Duration.seconds(bakeSeconds * (steps.length + 1)).plus(Duration.hours(2)),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: 'cloudwatch:GetMetricData and cloudwatch:DescribeAlarms (for the rollback alarms named in the input) have no resource-level permissions.',
    });
    grantPublishTo(props.notificationTopic, this.workflow.role);
    acknowledgeWildcardResource(
      this.workflow.role.grantsPolicy,
      this.alarmArns(),
      'The rollback alarms are named in each execution input, so DescribeAlarms is granted on the alarms of this account and region; it only reads alarm states.',
    );
    props.predictionLog?.grantWorkflowState(this.workflow.role);
  }

  private shiftTraffic(id: string, endpointName: string, fixed: TrafficStep | undefined, endpoint: ModelEndpoint): tasks.CallAwsService {
    const weight = (variantPath: string, fixedWeight: number | undefined, weightPath: string) => ({
      'VariantName.$': variantPath,
      ...(fixedWeight === undefined ? { 'DesiredWeight.$': weightPath } : { DesiredWeight: fixedWeight }),
    });
    return tasks.CallAwsService.jsonPath(this, id, {
      service: 'sagemaker',
      action: 'updateEndpointWeightsAndCapacities',
      iamResources: [endpoint.endpointArn],
      iamAction: 'sagemaker:UpdateEndpointWeightsAndCapacities',
      parameters: {
        EndpointName: endpointName,
        DesiredWeightsAndCapacities: [
          weight('$.config.championVariant', fixed?.championWeight, '$.step.weights.championWeight'),
          weight('$.config.challengerVariant', fixed?.challengerWeight, '$.step.weights.challengerWeight'),
        ],
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
  }

  private waitUntilInService(
    id: string,
    endpointName: string,
    endpoint: ModelEndpoint,
    configure: (task: sfn.TaskStateBase) => void,
    onFailure: sfn.IChainable,
  ): sfn.IChainable {
    const describe = tasks.CallAwsService.jsonPath(this, `${id}: describe endpoint`, {
      service: 'sagemaker',
      action: 'describeEndpoint',
      iamResources: [endpoint.endpointArn],
      iamAction: 'sagemaker:DescribeEndpoint',
      parameters: { EndpointName: endpointName },
      resultSelector: { 'status.$': '$.EndpointStatus' },
      resultPath: '$.endpointStatus',
    });
    configure(describe);
    const pause = new sfn.Wait(this, `${id}: endpoint updating`, { time: sfn.WaitTime.duration(Duration.seconds(30)) });
    const broken = new sfn.Pass(this, `${id}: endpoint failed`, {
      parameters: { result: 'fail', 'reason.$': "States.Format('endpoint status became {} while shifting traffic', $.endpointStatus.status)" },
      resultPath: '$.verdict',
    }).next(onFailure);
    const done = new sfn.Pass(this, `${id}: endpoint in service`);
    const choice = new sfn.Choice(this, `${id}: endpoint in service?`)
      .when(sfn.Condition.stringEquals('$.endpointStatus.status', 'InService'), done)
      .when(sfn.Condition.or(sfn.Condition.stringEquals('$.endpointStatus.status', 'Failed'), sfn.Condition.stringEquals('$.endpointStatus.status', 'OutOfService')), broken)
      .otherwise(pause.next(describe));
    describe.next(choice);
    return sfn.Chain.custom(describe, [done], describe);
  }

  private checkAlarms(rollback: sfn.IChainable, configure: (task: sfn.TaskStateBase) => void, next: sfn.IChainable): sfn.IChainable {
    const describe = tasks.CallAwsService.jsonPath(this, 'Read rollback alarms', {
      service: 'cloudwatch',
      action: 'describeAlarms',
      iamResources: [this.alarmArns()],
      // All watched alarms with their states; whether any is in ALARM is decided below. (A
      // StateValue filter or a JSONPath filter would return nothing to select when all is well.)
      parameters: { 'AlarmNames.$': '$.config.alarmNames' },
      resultSelector: { 'names.$': '$.MetricAlarms[*].AlarmName', 'states.$': '$.MetricAlarms[*].StateValue' },
      resultPath: '$.alarms',
    });
    configure(describe);
    const countFiring = new sfn.Pass(this, 'Any alarm in ALARM', {
      parameters: { 'names.$': '$.alarms.names', 'states.$': '$.alarms.states', "firing.$": "States.ArrayContains($.alarms.states, 'ALARM')" },
      resultPath: '$.alarms',
    });
    const firing = new sfn.Pass(this, 'Alarm fired', {
      parameters: {
        result: 'fail',
        'reason.$': "States.Format('a rollback alarm is in ALARM while baking; alarms {} are in states {}', States.JsonToString($.alarms.names), States.JsonToString($.alarms.states))",
      },
      resultPath: '$.verdict',
    }).next(rollback);
    const count = new sfn.Pass(this, 'Count rollback alarms', { parameters: { 'watched.$': 'States.ArrayLength($.config.alarmNames)' }, resultPath: '$.alarms' });
    // With no alarm names, DescribeAlarms would list every alarm in the account: skip it instead.
    return count.next(
      new sfn.Choice(this, 'Alarms to watch?')
        .when(
          sfn.Condition.numberGreaterThan('$.alarms.watched', 0),
          describe.next(countFiring).next(new sfn.Choice(this, 'Roll back?').when(sfn.Condition.booleanEquals('$.alarms.firing', true), firing).otherwise(next)),
        )
        .otherwise(next),
    );
  }

  /** Every alarm of this account and region, the scope of DescribeAlarms. */
  private alarmArns(): string {
    const stack = Stack.of(this);
    return `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*`;
  }

  private validate(props: ChampionChallengerPromotionProps, steps: number[], bakeSeconds: number): void {
    const where = `${this.node.path} (ChampionChallengerPromotion)`;
    const problems: string[] = [];
    if (steps.length === 0 || steps[steps.length - 1] !== 100) {
      problems.push(`trafficSteps: must end at 100 (all traffic on the challenger); got [${steps.join(', ')}]`);
    }
    steps.forEach((step, index) => {
      if (!(step > 0 && step <= 100) || (index > 0 && step <= steps[index - 1])) {
        problems.push(`trafficSteps[${index}]: must be above the previous step and at most 100; got ${step}`);
      }
    });
    problems.push(...guardrailProblems(props));
    if (bakeSeconds < 60) problems.push(`bakeTime: must be at least 1 minute; got ${bakeSeconds} s`);
    const variants = props.endpoint.variants.filter((variant) => variant.kind === 'production').map((variant) => variant.name);
    for (const [name, value] of [
      ['championVariant', props.championVariant ?? 'champion'],
      ['challengerVariant', props.challengerVariant ?? 'challenger'],
    ] as const) {
      if (!variants.includes(value)) problems.push(`${name}: '${value}' is not a production variant of the endpoint (${variants.join(', ')})`);
    }
    if (problems.length > 0) throw new Error(`${where}: invalid props:\n  - ${problems.join('\n  - ')}`);
  }
}
