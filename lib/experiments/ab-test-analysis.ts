import { Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { grantPublishTo } from '../core/alarm-topic';
import { inputOverDefaults, validateExecutionInput, type InputField } from '../core/input-validation';
import { MlFunction } from '../core/ml-function';
import { MlWorkflow } from '../core/ml-workflow';
import { acknowledgeWildcardResource } from '../core/private/nag';
import type { ExperimentWorkflowOptions } from './experiment-options';
import { FailureNotice } from '../core/private/failure-notice';
import type { PredictionLog } from './prediction-log';
import { EXPERIMENTS_METRICS_NAMESPACE, grantPutExperimentMetrics, putExperimentMetrics } from './private/experiment-metrics';
import { assertRequiredProps } from '../core/private/props';

/** How the outcome of each prediction is measured. */
export type OutcomeType = 'binary' | 'continuous';

export interface AbTestAnalysisProps extends ExperimentWorkflowOptions {
  /** Model family whose experiment is analysed (the `model` of the logged predictions). */
  readonly modelName: string;
  /** The prediction log the inference API writes and the outcome API updates. */
  readonly predictionLog: PredictionLog;
  /**
   * Control arm (A), by default.
   * @default 'champion'
   */
  readonly variantA?: string;
  /**
   * Treatment arm (B), by default.
   * @default 'challenger'
   */
  readonly variantB?: string;
  /** Binary outcomes (conversion) use a two-proportion z-test; continuous ones (value) Welch's t-test. */
  readonly outcomeType: OutcomeType;
  /** Smallest absolute effect worth detecting: a difference in rates, or in means. */
  readonly minimumDetectableEffect: number;
  /**
   * Two-sided significance level.
   * @default 0.05
   */
  readonly alpha?: number;
  /**
   * Power of the fixed-horizon design.
   * @default 0.8
   */
  readonly power?: number;
  /**
   * Run the analysis function in this VPC.
   * @default - outside any VPC
   */
  readonly vpc?: ec2.IVpc;
}

/**
 * A/B analysis as a workflow operators start from the console over a time window: a Lambda function
 * reads both arms' predictions and outcomes from the prediction log, computes per-arm results and
 * the test (two-proportion z-test or Welch's t-test with confidence interval, the per-arm sample
 * size for the configured power) and decides `keep-running`, `a-wins`, `b-wins` or `no-difference`.
 * The workflow publishes the results as `MlPlatform/Experiments` metrics, records the decision as
 * `analysis#<model>` (which the champion-challenger promotion reads) and notifies the topic.
 */
export class AbTestAnalysis extends Construct {
  public readonly workflow: MlWorkflow;
  public readonly analyzer: lambda.Function;
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: AbTestAnalysisProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'AbTestAnalysis', props, { modelName: 'string', predictionLog: 'construct', outcomeType: 'string', minimumDetectableEffect: 'number', notificationTopic: 'object', encryptionKey: 'object' });
    this.validate(props);
    this.defaults = {
      model: props.modelName,
      variantA: props.variantA ?? 'champion',
      variantB: props.variantB ?? 'challenger',
      outcomeType: props.outcomeType,
      minimumDetectableEffect: props.minimumDetectableEffect,
      alpha: props.alpha ?? 0.05,
      power: props.power ?? 0.8,
    };

    this.analyzer = new MlFunction(this, 'Analyzer', {
      handler: 'analyze-experiment',
      description: `Reads ${props.modelName}'s prediction log and tests its A/B experiment`,
      encryptionKey: props.encryptionKey,
      invokedSynchronouslyBy: 'the A/B analysis workflow, which retries and catches its errors',
      calls: 'DynamoDB',
      timeout: Duration.minutes(5),
      memorySize: 1024,
      reservedConcurrency: 2,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      vpc: props.vpc,
      environment: {
        PREDICTION_LOG_TABLE: props.predictionLog.table.tableName,
        POWERTOOLS_SERVICE_NAME: 'experiment-analysis',
        POWERTOOLS_LOG_LEVEL: 'INFO',
      },
    }).function;
    props.predictionLog.grantQueryByModel(this.analyzer);

    const errors = new FailureNotice(this, props.notificationTopic, `A/B analysis of ${props.modelName} failed`, 'Analysis failed');
    const invalid = new sfn.Fail(this, 'Invalid analysis input', { error: 'InvalidInput', causePath: '$.error.Cause' });

    const analyze = new tasks.LambdaInvoke(this, 'Analyze experiment', {
      lambdaFunction: this.analyzer,
      // The function receives the merged, validated input; its answer lands beside it in $.analysis.
      payload: sfn.TaskInput.fromJsonPathAt('$.config'),
      resultSelector: { 'result.$': '$.Payload' },
      resultPath: '$.invocation',
      retryOnServiceExceptions: true,
    });
    errors.retry(analyze);
    analyze.addCatch(invalid, { errors: ['AnalysisInputError'], resultPath: '$.error' });
    analyze.addCatch(errors.entry, { errors: ['States.ALL'], resultPath: '$.error' });

    const armMetrics = [0, 1].flatMap((arm) => [
      { name: 'ArmMean', valuePath: `$.analysis.arms[${arm}].mean`, dimensionPaths: { Variant: `$.analysis.arms[${arm}].variant` } },
      { name: 'ArmOutcomes', valuePath: `$.analysis.arms[${arm}].outcomes`, unit: 'Count', dimensionPaths: { Variant: `$.analysis.arms[${arm}].variant` } },
    ]);
    const withTest = putExperimentMetrics(this, 'Publish results and test', props.modelName, [
      ...armMetrics,
      { name: 'PValue', valuePath: '$.analysis.test.pValue' },
      { name: 'Difference', valuePath: '$.analysis.test.difference' },
    ]);
    const armsOnly = putExperimentMetrics(this, 'Publish results', props.modelName, armMetrics);
    const record = props.predictionLog.putWorkflowStateTask(this, 'Record decision', 'analysis', props.modelName, {
      decision: '$.analysis.decision',
      reason: '$.analysis.reason',
      analyzedAt: '$.analysis.analyzedAt',
      variantA: '$.analysis.variantA',
      variantB: '$.analysis.variantB',
      execution: '$$.Execution.Id',
    });
    const notify = errors.notify('Notify decision', `A/B analysis of ${props.modelName}`, '$.analysis');
    for (const task of [withTest, armsOnly, record]) errors.protect(task);
    record.next(notify).next(new sfn.Succeed(this, 'Analysis recorded', { outputPath: '$.analysis' }));
    withTest.next(record);
    armsOnly.next(record);
    const keep = new sfn.Pass(this, 'Keep analysis', { parameters: { 'config.$': '$.config', 'analysis.$': '$.invocation.result' } });
    analyze.next(keep).next(new sfn.Choice(this, 'Test computed?').when(sfn.Condition.isNotNull('$.analysis.test'), withTest).otherwise(armsOnly));

    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        { path: '$.config.variantA', type: 'string' },
        { path: '$.config.variantB', type: 'string' },
        {
          path: '$.config.outcomeType',
          type: 'string',
          check: {
            condition: sfn.Condition.or(sfn.Condition.stringEquals('$.config.outcomeType', 'binary'), sfn.Condition.stringEquals('$.config.outcomeType', 'continuous')),
            expectation: "'binary' or 'continuous'",
          },
        },
        { path: '$.config.windowStart', type: 'timestamp' },
        { path: '$.config.windowEnd', type: 'timestamp' },
        {
          path: '$.config.minimumDetectableEffect',
          type: 'number',
          check: { condition: sfn.Condition.numberGreaterThan('$.config.minimumDetectableEffect', 0), expectation: '> 0' },
        },
        { path: '$.config.alpha', type: 'number' },
        { path: '$.config.power', type: 'number' },
      ],
      analyze,
    );
    const definition = inputOverDefaults(this, this.defaults, {
      // The model is fixed by the workflow; the input cannot point it at another model's predictions.
      configExpression: `States.JsonMerge(States.JsonMerge($.defaults, $$.Execution.Input, false), States.StringToJson('{"model":"${props.modelName}"}'), false)`,
    }).next(validated);

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `A/B test analysis for model ${props.modelName}`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: Duration.hours(1),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: `cloudwatch:PutMetricData has no resource-level permissions; it is limited to the ${EXPERIMENTS_METRICS_NAMESPACE} namespace by a condition.`,
    });
    grantPublishTo(props.notificationTopic, this.workflow.role);
    grantPutExperimentMetrics(this.workflow.role);
    acknowledgeWildcardResource(
      this.workflow.role.grantsPolicy,
      `${this.analyzer.functionArn}:*`,
      'The Lambda task may invoke the analysis function by version or alias (<function ARN>:*); the grant names that one function only.',
    );
    props.predictionLog.grantWorkflowState(this.workflow.role);
  }

  private validate(props: AbTestAnalysisProps): void {
    const where = `${this.node.path} (AbTestAnalysis)`;
    const problems: string[] = [];
    if (!(props.minimumDetectableEffect > 0) || (props.outcomeType === 'binary' && props.minimumDetectableEffect >= 1)) {
      problems.push(`minimumDetectableEffect: must be > 0${props.outcomeType === 'binary' ? ' and < 1 (a difference in rates)' : ''}; got ${props.minimumDetectableEffect}`);
    }
    for (const [name, value] of [
      ['alpha', props.alpha],
      ['power', props.power],
    ] as const) {
      if (value !== undefined && !(value > 0 && value < 1)) problems.push(`${name}: must be between 0 and 1; got ${value}`);
    }
    if ((props.variantA ?? 'champion') === (props.variantB ?? 'challenger')) problems.push(`variantB: must differ from variantA ('${props.variantA}')`);
    if (problems.length > 0) throw new Error(`${where}: invalid props:\n  - ${problems.join('\n  - ')}`);
  }
}
