import { Duration } from 'aws-cdk-lib';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { grantPublishTo } from '../core/alarm-topic';
import { inputOverDefaults, validateExecutionInput, type InputField } from '../core/input-validation';
import { MlWorkflow } from '../core/ml-workflow';
import { acknowledgeWildcardResource } from '../core/private/nag';
import type { ModelEndpoint } from '../serving/model-endpoint';
import { guardrailDefaults, guardrailProblems, type ExperimentWorkflowOptions, type VariantGuardrailOptions } from './experiment-options';
import { FailureNotice } from '../core/private/failure-notice';
import { grantPutExperimentMetrics, putExperimentMetrics } from './private/experiment-metrics';
import { GUARDRAIL_INPUT_FIELDS, guardrailCheck } from './private/variant-guardrails';
import { assertRequiredProps } from '../core/private/props';


export interface ShadowComparisonProps extends ExperimentWorkflowOptions, VariantGuardrailOptions {
  /** An endpoint with exactly one production variant and one shadow variant. */
  readonly endpoint: ModelEndpoint;
  /**
   * How long to observe both variants before judging, by default; an execution may override it.
   * @default Duration.hours(1)
   */
  readonly observationTime?: Duration;
  /** Bucket that receives each verdict as JSON, under `experiments/shadow/<model>/`. */
  readonly verdictBucket: s3.IBucket;
}

/**
 * Shadow mode's verdict, as a workflow operators start from the console: observe the production
 * and shadow variants for a window, compare the shadow with production on 5xx error rate and
 * latency (`guardrailCheck`), and write the verdict — `promote-ready`, or `not-ready` /
 * `insufficient-data` with the reason — to S3, to the topic and as the
 * `MlPlatform/Experiments ShadowPromoteReady` metric (1 or 0). Callers never see the shadow's
 * answers; SageMaker captures them when the endpoint has data capture.
 */
export class ShadowComparison extends Construct {
  public readonly workflow: MlWorkflow;
  public readonly defaults: Record<string, unknown>;

  constructor(scope: Construct, id: string, props: ShadowComparisonProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'ShadowComparison', props, { endpoint: 'construct', verdictBucket: 'object', notificationTopic: 'object', encryptionKey: 'object' });
    const endpoint = props.endpoint;
    const production = endpoint.variants.filter((variant) => variant.kind === 'production');
    const shadow = endpoint.variants.filter((variant) => variant.kind === 'shadow');
    if (production.length !== 1 || shadow.length !== 1) {
      throw new Error(
        `${this.node.path} (ShadowComparison): endpoint: must have one production and one shadow variant; has ${production.length} production and ${shadow.length} shadow`,
      );
    }
    const observationSeconds = (props.observationTime ?? Duration.hours(1)).toSeconds();
    const problems = guardrailProblems(props);
    if (observationSeconds < 60) problems.push(`observationTime: must be at least 1 minute; got ${observationSeconds} s`);
    if (problems.length > 0) throw new Error(`${this.node.path} (ShadowComparison): invalid props:\n  - ${problems.join('\n  - ')}`);
    this.defaults = {
      productionVariant: production[0].name,
      shadowVariant: shadow[0].name,
      observationSeconds,
      metricPeriodSeconds: Math.ceil(observationSeconds / 60) * 60,
      ...guardrailDefaults(props),
    };

    const errors = new FailureNotice(this, props.notificationTopic, 'Shadow comparison failed', 'Comparison failed');
    const configure = (task: sfn.TaskStateBase) => errors.protect(task);

    // Writing the verdict: S3 object, metric, notification.
    const key = `experiments/shadow/${endpoint.modelName}/`;
    const writeVerdict = tasks.CallAwsService.jsonPath(this, 'Write verdict', {
      service: 's3',
      action: 'putObject',
      iamResources: [props.verdictBucket.arnForObjects(`${key}*`)],
      iamAction: 's3:PutObject',
      parameters: {
        Bucket: props.verdictBucket.bucketName,
        'Key.$': `States.Format('${key}{}.json', $$.Execution.Name)`,
        ContentType: 'application/json',
        'Body.$': 'States.JsonToString($.report)',
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
    configure(writeVerdict);
    const putMetric = putExperimentMetrics(this, 'Publish verdict metric', endpoint.modelName, [
      { name: 'ShadowPromoteReady', valuePath: '$.report.promoteReady', unit: 'Count' },
    ]);
    errors.protect(putMetric);
    const notify = errors.notify('Notify verdict', `Shadow comparison verdict for ${endpoint.modelName}`, '$.report');
    const done = new sfn.Succeed(this, 'Verdict written', { outputPath: '$.report' });
    const publish = writeVerdict.next(putMetric).next(notify).next(done);

    // The report: the verdict, its reason, the variants and window, and the figures it rests on.
    const report = (stateId: string, verdict: string, promoteReady: number, figures: Record<string, string>) =>
      new sfn.Pass(this, stateId, {
        parameters: {
          verdict,
          promoteReady,
          'reason.$': '$.verdict.reason',
          model: endpoint.modelName,
          'productionVariant.$': '$.config.productionVariant',
          'shadowVariant.$': '$.config.shadowVariant',
          'windowStart.$': '$.window.start',
          'windowEnd.$': '$$.State.EnteredTime',
          ...figures,
        },
        resultPath: '$.report',
      }).next(publish);
    const compared = { 'metrics.$': '$.guardrails.metrics', 'limits.$': '$.config' };

    const check = guardrailCheck(this, 'Shadow guardrails', {
      endpointName: endpoint.endpointName,
      baselineVariantPath: '$.config.productionVariant',
      candidateVariantPath: '$.config.shadowVariant',
      pass: report('Report promote-ready', 'promote-ready', 1, compared),
      fail: report('Report not ready', 'not-ready', 0, compared),
      insufficientData: report('Report insufficient data', 'insufficient-data', 0, { 'counts.$': '$.guardrails.counts' }),
      configureTask: configure,
    });

    const observe = new sfn.Pass(this, 'Start observation', { parameters: { 'start.$': '$$.State.EnteredTime' }, resultPath: '$.window' })
      .next(new sfn.Wait(this, 'Observe both variants', { time: sfn.WaitTime.secondsPath('$.config.observationSeconds') }))
      .next(check);
    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        { path: '$.config.productionVariant', type: 'string' },
        { path: '$.config.shadowVariant', type: 'string' },
        { path: '$.config.observationSeconds', type: 'number', check: { condition: sfn.Condition.numberGreaterThanEquals('$.config.observationSeconds', 1), expectation: 'at least 1' } },
        ...GUARDRAIL_INPUT_FIELDS,
      ],
      observe,
    );
    const definition = inputOverDefaults(this, this.defaults).next(validated);

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Shadow comparison for model ${endpoint.modelName}`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: Duration.seconds(observationSeconds).plus(Duration.hours(1)),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason:
        'cloudwatch:GetMetricData and cloudwatch:PutMetricData have no resource-level permissions; PutMetricData is limited to the MlPlatform/Experiments namespace by a condition.',
    });
    grantPublishTo(props.notificationTopic, this.workflow.role);
    grantPutExperimentMetrics(this.workflow.role);
    props.verdictBucket.encryptionKey?.grant(this.workflow.role, 'kms:GenerateDataKey', 'kms:Encrypt');
    acknowledgeWildcardResource(
      this.workflow.role.grantsPolicy,
      props.verdictBucket.arnForObjects(`${key}*`),
      'Each verdict is a new object named after its execution; the grant is put-only and limited to this model\'s verdict prefix.',
    );
  }
}
