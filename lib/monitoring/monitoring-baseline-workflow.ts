import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { validateExecutionInput, type InputField } from '../core/input-validation';
import { MlWorkflow } from '../core/ml-workflow';
import { acknowledgeWildcardResource } from '../core/private/nag';
import type { ModelMonitor, MonitorKind } from './model-monitor';
import { assertRequiredProps } from '../core/private/props';

export interface MonitoringBaselineWorkflowProps {
  /** The monitor whose baselines are suggested, at the keys its schedules read. */
  readonly monitor: ModelMonitor;
  /** Key that encrypts the workflow's state and logs. */
  readonly encryptionKey: kms.IKey;
  /**
   * Notified when an execution fails, times out or is aborted.
   * @default - no alarm
   */
  readonly failureAlarmAction?: cloudwatch.IAlarmAction;
  /**
   * Longest one baselining job may run.
   * @default Duration.hours(2)
   */
  readonly jobTimeout?: Duration;
  /**
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/** Local paths of the baselining containers, as Model Monitor's and Clarify's images expect them. */
const PATHS = {
  dataset: '/opt/ml/processing/input/baseline_dataset_input',
  clarifyData: '/opt/ml/processing/input/data',
  clarifyConfig: '/opt/ml/processing/input/config',
  output: '/opt/ml/processing/output',
};

/** Short names of the kinds in processing job names. */
const JOB_PREFIX: Record<MonitorKind, string> = { dataQuality: 'baseline-dq', modelQuality: 'baseline-mq', bias: 'baseline-bias', explainability: 'baseline-shap' };

/**
 * Suggests the baselines of a ModelMonitor, startable from the console: for each monitor that is on,
 * a SageMaker processing job (Model Monitor's analyzer or Clarify, `.sync`) reads the given training
 * dataset and writes `statistics.json` / `constraints.json` (Clarify: `analysis.json`) exactly where
 * the schedule reads them; Clarify's analysis configurations are written first. The jobs run with the
 * monitor's role, key, instance type and network settings.
 *
 * Input: `{ "datasetKey": "<monitor prefix>/datasets/<file>.csv" }`, plus `"validationKey"` (a CSV of
 * the validation set with the model's predictions and the true label) when model quality is on. Each
 * field is validated first; a bad one ends the execution with `InvalidInput` naming it.
 */
export class MonitoringBaselineWorkflow extends Construct {
  public readonly workflow: MlWorkflow;
  public readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: MonitoringBaselineWorkflowProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'MonitoringBaselineWorkflow', props, { monitor: 'construct', encryptionKey: 'object' });
    const monitor = props.monitor;
    const where = `${this.node.path} (MonitoringBaselineWorkflow)`;
    if (monitor.monitors.length === 0) throw new Error(`${where}: monitor: has no monitors to baseline`);
    const jobTimeout = props.jobTimeout ?? Duration.hours(2);
    const bucket = monitor.bucket;
    const datasets = `${monitor.datasetsPrefix}/`;

    const fields: InputField[] = [
      {
        path: '$.datasetKey',
        type: 'string',
        check: { condition: sfn.Condition.stringMatches('$.datasetKey', `${datasets}*.csv`), expectation: `a CSV key under ${datasets}` },
      },
    ];
    if (monitor.has('modelQuality')) {
      fields.push({
        path: '$.validationKey',
        type: 'string',
        check: { condition: sfn.Condition.stringMatches('$.validationKey', `${datasets}*.csv`), expectation: `a CSV key under ${datasets} (validation set with predictions and labels)` },
      });
    }

    const runId = new sfn.Pass(this, 'Name the run', { parameters: { 'id.$': 'States.UUID()' }, resultPath: '$.run' });
    const branches = new sfn.Parallel(this, 'Suggest baselines', { resultPath: sfn.JsonPath.DISCARD });
    let configWrites: sfn.IChainable | undefined;
    for (const deployed of monitor.monitors) {
      const baseline = deployed.baseline;
      if (baseline.analysisConfigKey && baseline.analysisConfig) {
        const write = new tasks.CallAwsService(this, `Write ${deployed.kind} analysis configuration`, {
          service: 's3',
          action: 'putObject',
          parameters: { Bucket: bucket.bucketName, Key: baseline.analysisConfigKey, Body: Stack.of(this).toJsonString(baseline.analysisConfig), ContentType: 'application/json' },
          iamResources: [bucket.arnForObjects(baseline.analysisConfigKey)],
          resultPath: sfn.JsonPath.DISCARD,
        });
        configWrites = configWrites ? sfn.Chain.start(configWrites).next(write) : write;
      }
      branches.branch(this.job(deployed.kind, monitor, jobTimeout));
    }
    const done = new sfn.Pass(this, 'Baselines written', {
      parameters: Object.fromEntries(monitor.monitors.map((m) => [m.kind, { constraints: monitor.s3Uri(m.baseline.constraintsKey), statistics: m.baseline.statisticsKey && monitor.s3Uri(m.baseline.statisticsKey) }])),
    });
    const work = sfn.Chain.start(runId);
    const chain = (configWrites ? work.next(configWrites) : work).next(branches).next(done);

    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition: validateExecutionInput(this, 'Validate input', fields, chain),
      description: `Suggests the Model Monitor baselines of ${monitor.endpoint.modelName}`,
      encryptionKey: props.encryptionKey,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: jobTimeout.plus(Duration.hours(1)),
      failureAlarmAction: props.failureAlarmAction,
      wildcardResourceReason: 'SageMaker processing jobs are named per run (baseline-<kind>-<uuid>).',
    });
    this.stateMachine = this.workflow.stateMachine;
    this.grant(monitor);
  }

  private job(kind: MonitorKind, monitor: ModelMonitor, timeout: Duration): sfn.IChainable {
    const deployed = monitor.monitor(kind);
    const baseline = deployed.baseline;
    const bucketName = monitor.bucket.bucketName;
    const clarify = kind === 'bias' || kind === 'explainability';
    const datasetField = kind === 'modelQuality' ? '$.validationKey' : '$.datasetKey';
    const s3Input = (localPath: string, uri: Record<string, string>, inputName: string) => ({
      InputName: inputName,
      S3Input: { ...uri, LocalPath: localPath, S3DataType: 'S3Prefix', S3InputMode: 'File', S3DataDistributionType: 'FullyReplicated' },
    });
    const dataset = { 'S3Uri.$': `States.Format('s3://{}/{}', '${bucketName}', ${datasetField})` };
    const inputs = clarify
      ? [
          s3Input(PATHS.clarifyData, dataset, 'dataset'),
          s3Input(PATHS.clarifyConfig, { S3Uri: monitor.s3Uri(baseline.analysisConfigKey!) }, 'analysis_config'),
        ]
      : [s3Input(PATHS.dataset, dataset, 'baseline_dataset_input')];
    const environment: Record<string, string> = clarify
      ? {}
      : {
          dataset_format: JSON.stringify({ csv: { header: true, output_columns_position: 'START' } }),
          dataset_source: PATHS.dataset,
          output_path: PATHS.output,
          publish_cloudwatch_metrics: 'Disabled',
        };
    const quality = monitor.options.modelQuality;
    if (kind === 'modelQuality' && quality) {
      Object.assign(environment, {
        analysis_type: 'MODEL_QUALITY',
        problem_type: quality.problemType,
        ground_truth_attribute: quality.groundTruthAttribute ?? 'label',
        ...(quality.inferenceAttribute !== undefined ? { inference_attribute: quality.inferenceAttribute } : {}),
        ...(quality.probabilityAttribute !== undefined ? { probability_attribute: quality.probabilityAttribute } : {}),
        ...(quality.probabilityThreshold !== undefined ? { probability_threshold_attribute: String(quality.probabilityThreshold) } : {}),
      });
    }
    const network = monitor.networkConfig;
    const state = new sfn.CustomState(this, `Suggest ${kind} baseline`, {
      stateJson: {
        Type: 'Task',
        Resource: `arn:${Stack.of(this).partition}:states:::sagemaker:createProcessingJob.sync`,
        Parameters: {
          'ProcessingJobName.$': `States.Format('${JOB_PREFIX[kind]}-{}', $.run.id)`,
          RoleArn: monitor.role.role.roleArn,
          AppSpecification: { ImageUri: clarify ? monitor.clarifyImage : monitor.modelMonitorImage },
          Environment: Object.keys(environment).length > 0 ? environment : undefined,
          ProcessingInputs: inputs,
          ProcessingOutputConfig: {
            KmsKeyId: monitor.encryptionKey.keyArn,
            Outputs: [{ OutputName: 'baseline', S3Output: { S3Uri: monitor.s3Uri(baseline.outputPrefix), LocalPath: PATHS.output, S3UploadMode: 'EndOfJob' } }],
          },
          ProcessingResources: {
            ClusterConfig: { InstanceCount: 1, InstanceType: monitor.instanceType, VolumeSizeInGB: monitor.volumeSizeInGb, VolumeKmsKeyId: monitor.encryptionKey.keyArn },
          },
          NetworkConfig: {
            EnableInterContainerTrafficEncryption: network.enableInterContainerTrafficEncryption,
            EnableNetworkIsolation: network.enableNetworkIsolation,
            VpcConfig: network.vpcConfig && { SecurityGroupIds: network.vpcConfig.securityGroupIds, Subnets: network.vpcConfig.subnets },
          },
          StoppingCondition: { MaxRuntimeInSeconds: timeout.toSeconds() },
        },
        ResultSelector: { 'job.$': '$.ProcessingJobName', 'status.$': '$.ProcessingJobStatus' },
        ResultPath: '$.result',
      },
    });
    return state;
  }

  private grant(monitor: ModelMonitor): void {
    const stack = Stack.of(this);
    const role = this.workflow.role;
    const jobs = `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:processing-job/baseline-*`;
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['sagemaker:CreateProcessingJob', 'sagemaker:DescribeProcessingJob', 'sagemaker:StopProcessingJob', 'sagemaker:AddTags'],
        resources: [jobs],
      }),
    );
    acknowledgeWildcardResource(role.grantsPolicy, jobs, 'Each run names its baselining jobs baseline-<kind>-<uuid>; the grant stops at that prefix.');
    // `.sync` watches the job through a rule Step Functions manages in the account.
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        resources: [`arn:${stack.partition}:events:${stack.region}:${stack.account}:rule/StepFunctionsGetEventsForSageMakerProcessingJobsRule`],
      }),
    );
    role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['iam:PassRole'],
        resources: [monitor.role.role.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'sagemaker.amazonaws.com' } },
      }),
    );
    monitor.bucket.encryptionKey?.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');

    // The jobs themselves (the monitor's role) read the datasets and write the baselines.
    const datasets = monitor.bucket.arnForObjects(`${monitor.datasetsPrefix}/*`);
    const baselines = monitor.bucket.arnForObjects(`${monitor.prefix}/baselines/*`);
    iam.Grant.addToPrincipal({ grantee: monitor.role, actions: ['s3:GetObject'], resourceArns: [datasets] });
    iam.Grant.addToPrincipal({ grantee: monitor.role, actions: ['s3:PutObject'], resourceArns: [baselines] });
    const policy = monitor.role.role.grantsPolicy;
    acknowledgeWildcardResource(policy, datasets, 'Baselining jobs read the training dataset an operator names at run time, under the datasets prefix only; read-only.');
    acknowledgeWildcardResource(policy, baselines, 'Baselining jobs write statistics.json, constraints.json or analysis.json under the baselines prefix; put-only.');
  }
}
