import { ProcessingInstanceType, TrainingInstanceType } from '../core/private/aws-enums';
import { Duration, Tags, Token, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { checkPropType, invalidProps } from '../core/private/props';
import { grantPublishTo } from '../core/alarm-topic';
import { inputOverDefaults, RUN_ID_EXPRESSION, validateExecutionInput, type InputField } from '../core/input-validation';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { MlWorkflow } from '../core/ml-workflow';
import { executionConsoleUrlExpression, FailureNotice } from '../core/private/failure-notice';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { parseEcrImageUri, SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import type { MlWorkflowOptions } from '../core/workflow-options';
import { DatasetFormat, DataValidation } from './data-validation';
import type { ModelPackageGroup } from './model-package-group';
import { grantRunJobs, sageMakerJobState } from './private/sagemaker-job';

/** Where a job runs and for how long. */
export interface JobResources {
  /** ECR image URI of the container, pinned by tag or digest. */
  readonly image: string;
  /**
   * ML instance type, e.g. `ml.m5.xlarge`: checked against the SDK's `ProcessingInstanceType` for the
   * preprocessing and evaluation jobs, and `TrainingInstanceType` for the training job.
   */
  readonly instanceType: string;
  /**
   * @default 1
   */
  readonly instanceCount?: number;
  /**
   * Size of each instance's ML storage volume.
   * @default 30
   */
  readonly volumeSizeGb?: number;
  /**
   * Longest the job may run.
   * @default Duration.hours(2)
   */
  readonly maxRuntime?: Duration;
  /**
   * Container entrypoint (processing jobs), e.g. `['python3', '/opt/ml/code/preprocess.py']`.
   * @default - the image's own entrypoint
   */
  readonly entrypoint?: string[];
  /**
   * Environment variables of the container.
   * @default - none
   */
  readonly environment?: Record<string, string>;
}

export interface TrainingStepOptions extends JobResources {
  /**
   * Hyperparameters when training from scratch; an execution input's `hyperparameters` replaces them.
   * @default - none
   */
  readonly hyperparameters?: Record<string, string>;
  /**
   * Regular expressions over the training log that SageMaker publishes as training metrics.
   * @default - none
   */
  readonly metricDefinitions?: Array<{ readonly name: string; readonly regex: string }>;
}

/** Fine-tuning from a pretrained model instead of training from scratch. */
export interface TransferLearningOptions {
  /** The pretrained model artifact, e.g. a Hugging Face or JumpStart `model.tar.gz` or prefix. */
  readonly baseModelS3Uri: string;
  /**
   * Hyperparameters of fine-tuning, merged over the training hyperparameters (learning rate, epochs, frozen layers...).
   * @default - the training hyperparameters
   */
  readonly hyperparameters?: Record<string, string>;
  /**
   * Name of the input channel that carries the base model to the training container.
   * @default 'model'
   */
  readonly channelName?: string;
}

/** The quality gate between evaluation and registration. */
export interface EvaluationGate {
  /**
   * Dotted path of the metric in the evaluation report the evaluation job writes to
   * `/opt/ml/processing/evaluation/evaluation.json`, in SageMaker's model-quality format, e.g.
   * `binary_classification_metrics.auc.value`.
   */
  readonly metric: string;
  /** The value the metric must reach; an execution input's `threshold` replaces it. */
  readonly threshold: number;
  /**
   * Whether higher is better (accuracy, AUC) or lower is better (RMSE, log loss).
   * @default 'higher-is-better'
   */
  readonly direction?: 'higher-is-better' | 'lower-is-better';
}

/** What the registered model version declares it serves. */
export interface InferenceSpecification {
  /**
   * Inference image; the training image when unset (as for SageMaker's built-in algorithms).
   * @default - the training image
   */
  readonly image?: string;
  /**
   * @default ['text/csv', 'application/json']
   */
  readonly contentTypes?: string[];
  /**
   * @default ['application/json']
   */
  readonly responseTypes?: string[];
}

export interface TrainingPipelineProps extends MlWorkflowOptions {
  /** Where each run registers the version it trained. */
  readonly modelPackageGroup: ModelPackageGroup;
  /** Bucket of the training datasets: one dataset per prefix, `<family>/datasets/<version>/`. */
  readonly dataBucket: s3.IBucket;
  /** Bucket of the run outputs: `<family>/runs/<run id>/{preprocessed,model,evaluation}/`. */
  readonly artifactsBucket: s3.IBucket;
  /** Splits the raw dataset into `train`, `validation` and `test` under `/opt/ml/processing/output/`. */
  readonly preprocessing: JobResources;
  readonly training: TrainingStepOptions;
  /**
   * Fine-tune from a pretrained model. Each execution can still choose with `useTransferLearning`.
   * @default - train from scratch
   */
  readonly transferLearning?: TransferLearningOptions;
  /** Reads the model from `/opt/ml/processing/model` and the test split from `/opt/ml/processing/test`. */
  readonly evaluation: JobResources;
  readonly gate: EvaluationGate;
  /**
   * @default - the training image, CSV and JSON in, JSON out
   */
  readonly inference?: InferenceSpecification;
  /**
   * Execution role of the jobs.
   * @default - a new least-privilege SageMakerExecutionRole
   */
  readonly role?: SageMakerExecutionRole;
  /**
   * Run the jobs in this VPC (isolated subnets), with network isolation and encrypted traffic between instances.
   * @default - SageMaker's own network, with network isolation
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Retrain on this schedule, on `scheduledDataPrefix`.
   * @default - no schedule
   */
  readonly schedule?: events.Schedule;
  /**
   * The dataset scheduled runs train on.
   * @default `<family>/datasets/current/`
   */
  readonly scheduledDataPrefix?: string;
  /**
   * Start a run when a dataset is complete: when an object named `_SUCCESS` lands at
   * `<family>/datasets/<version>/_SUCCESS` in the data bucket (which must send events to EventBridge).
   * @default false
   */
  readonly trainOnDataArrival?: boolean;
  /**
   * Validate each run's dataset before preprocessing (lambda/validate-data): a dataset that fails a
   * constraint stops the run with a report in S3 and a notice naming each violated constraint; rows that
   * fail a row-level check are quarantined beside the report.
   * @default - datasets are not validated
   */
  readonly dataValidation?: TrainingDataValidationOptions;
}

/** How a training pipeline validates its datasets. */
export interface TrainingDataValidationOptions {
  /** The format of the dataset's objects. @default DatasetFormat.CSV (with a header line) */
  readonly format?: DatasetFormat;
  /**
   * The constraints document in the data bucket, under `<family>/constraints/` (versioned with the data: the
   * bucket keeps every version, and each report names the one that judged the run). An execution input's
   * `constraintsKey` may name another document there.
   * @default `<family>/constraints/constraints.json`
   */
  readonly constraintsKey?: string;
}

/** The instance types SageMaker accepts for each kind of job, from the SDK's own enums. */
const PROCESSING_INSTANCE_TYPES: readonly string[] = Object.values(ProcessingInstanceType);
const TRAINING_INSTANCE_TYPES: readonly string[] = Object.values(TrainingInstanceType);

/** Objects listed per page when versioning the dataset: keeps each page's ETags within States.Hash's 10 000-character input. */
const DATA_PAGE_SIZE = 150;

/**
 * The training pipeline of one model family as a Step Functions workflow (seed patterns 7, 13 and 15):
 *
 * 1. validates the execution input, names the run, and versions the dataset: a SHA-256 over the ETags
 *    of every object under the data prefix, so each model version names the exact data it learnt from;
 * 2. preprocesses (processing job), trains (training job) from scratch or fine-tunes a pretrained
 *    model passed as an input channel, and evaluates (processing job writing `evaluation.json`),
 *    each run to completion (`.sync`) with a timeout, retries on throttling and capacity errors, and
 *    a catch that notifies the topic with the execution's console link;
 * 3. gates on the evaluation metric against the threshold (and, when the input names a `championModelUri`, against
 *    that model scored on the same test split by the same evaluation image), and registers the model as a version of
 *    the model package group with its metrics and lineage (training job, data version, code
 *    version, execution), or reports the rejection;
 * 4. notifies the topic of the outcome.
 *
 * Start it from the console with `examples/inputs/train-model.json`, on a schedule, or when a
 * dataset's `_SUCCESS` marker arrives.
 */
export class TrainingPipeline extends Construct {
  public readonly workflow: MlWorkflow;
  public readonly role: SageMakerExecutionRole;
  public readonly modelFamily: string;
  /** The defaults an execution input is merged over. */
  public readonly defaults: Record<string, unknown>;
  /** The data-validation service of the pipeline, with `dataValidation`. */
  public readonly dataValidation?: DataValidation;
  /** Where each run registers the version it trained. */
  public readonly modelPackageGroup: ModelPackageGroup;
  /** The bucket of the training datasets (`<family>/datasets/<version>/`). */
  public readonly dataBucket: s3.IBucket;
  /** The bucket of the run outputs (`<family>/runs/<run id>/`). */
  public readonly artifactsBucket: s3.IBucket;
  /** The longest a run may take (the workflow's timeout). */
  public readonly runTimeout: Duration;
  /** The format the pipeline validates its datasets in, with `dataValidation`. */
  public readonly datasetFormat?: DatasetFormat;

  constructor(scope: Construct, id: string, props: TrainingPipelineProps) {
    super(scope, id);
    const shape = checkPropType(props, 'props', 'object');
    if (shape.length === 0) {
      shape.push(
        ...checkPropType(props.modelPackageGroup, 'modelPackageGroup', 'construct'),
        ...checkPropType(props.dataBucket, 'dataBucket', 'object'),
        ...checkPropType(props.artifactsBucket, 'artifactsBucket', 'object'),
        ...checkPropType(props.notificationTopic, 'notificationTopic', 'object'),
        ...checkPropType(props.encryptionKey, 'encryptionKey', 'object'),
        ...checkPropType(props.gate, 'gate', 'object'),
      );
      for (const name of ['preprocessing', 'training', 'evaluation'] as const) {
        const resources: Partial<JobResources> | undefined = props[name];
        const problems = checkPropType(resources, name, 'object');
        if (problems.length === 0) problems.push(...checkPropType(resources?.image, `${name}.image`, 'string'), ...checkPropType(resources?.instanceType, `${name}.instanceType`, 'string'));
        shape.push(...problems);
      }
    }
    if (shape.length > 0) throw invalidProps(`${this.node.path} (TrainingPipeline)`, shape);
    const family = props.modelPackageGroup.modelFamily;
    this.modelFamily = family;
    this.validate(props);
    this.modelPackageGroup = props.modelPackageGroup;
    this.dataBucket = props.dataBucket;
    this.artifactsBucket = props.artifactsBucket;
    this.datasetFormat = props.dataValidation ? (props.dataValidation.format ?? DatasetFormat.CSV) : undefined;
    const key = props.encryptionKey;
    this.role = props.role ?? new SageMakerExecutionRole(this, 'JobRole', { description: `Jobs of the ${family} training pipeline`, allowVpcAccess: props.vpc !== undefined });
    const jobRole = this.role.role;
    for (const image of [props.preprocessing.image, props.training.image, props.evaluation.image]) this.role.grantPullImage(image);

    // What the jobs may touch: the datasets (read), this family's run outputs (read and write), the key.
    const datasets = props.dataBucket.arnForObjects(`${family}/datasets/*`);
    const runs = props.artifactsBucket.arnForObjects(`${family}/runs/*`);
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:GetObject'], resourceArns: [datasets, runs] });
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:PutObject', 's3:AbortMultipartUpload'], resourceArns: [runs] });
    iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:ListBucket'], resourceArns: [props.dataBucket.bucketArn, props.artifactsBucket.bucketArn] });
    key.grant(jobRole, 'kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt', 'kms:CreateGrant', 'kms:DescribeKey');
    acknowledgeWildcardResource(jobRole.grantsPolicy, datasets, `The jobs read the dataset prefix each run names, under this family's datasets/ prefix; read-only.`);
    acknowledgeWildcardResource(jobRole.grantsPolicy, runs, `Each run reads and writes its outputs under ${family}/runs/<run id>/, a prefix named at run time.`);
    if (props.transferLearning) {
      const base = parseS3Uri(props.transferLearning.baseModelS3Uri);
      const baseBucket = s3.Bucket.fromBucketName(this, 'BaseModelBucket', base.bucket);
      const objects = base.key.endsWith('/') || base.key === '' ? `${base.key}*` : base.key;
      iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:GetObject'], resourceArns: [baseBucket.arnForObjects(objects)] });
      iam.Grant.addToPrincipal({ grantee: jobRole, actions: ['s3:ListBucket'], resourceArns: [baseBucket.bucketArn] });
      if (objects.endsWith('*')) {
        acknowledgeWildcardResource(jobRole.grantsPolicy, baseBucket.arnForObjects(objects), 'The pretrained model is a prefix of files (weights, tokenizer, config); the grant is read-only on that prefix.');
      }
    }

    let vpcConfig: Record<string, unknown> | undefined;
    if (props.vpc) {
      const securityGroup = new ec2.SecurityGroup(this, 'JobSecurityGroup', { vpc: props.vpc, description: `Jobs of the ${family} training pipeline`, allowAllOutbound: true });
      // Distributed training exchanges gradients between the instances of one job.
      securityGroup.addIngressRule(securityGroup, ec2.Port.allTraffic(), 'Traffic between the instances of one distributed job');
      const selfIngress = securityGroup.node.children.find((child) => child instanceof ec2.CfnSecurityGroupIngress);
      if (selfIngress) {
        const reason = 'The only source is this security group itself: the instances of one distributed training job exchange data on ports the framework picks; nothing outside the group can connect.';
        Validations.of(selfIngress).acknowledge({ id: 'HIPAA.Security-EC2RestrictedCommonPorts', reason }, { id: 'NIST.800.53.R5-EC2RestrictedCommonPorts', reason });
      }
      vpcConfig = { SecurityGroupIds: [securityGroup.securityGroupId], Subnets: props.vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_ISOLATED }).subnetIds };
    }

    const gate = props.gate;
    const trainingHyperparameters = props.training.hyperparameters ?? {};
    this.defaults = {
      dataPrefix: props.scheduledDataPrefix ?? `${family}/datasets/current/`,
      threshold: gate.threshold,
      hyperparameters: trainingHyperparameters,
      useTransferLearning: props.transferLearning !== undefined,
      fineTuneHyperparameters: { ...trainingHyperparameters, ...(props.transferLearning?.hyperparameters ?? {}) },
      ...(props.transferLearning ? { baseModelUri: props.transferLearning.baseModelS3Uri } : {}),
      codeVersion: imageVersion(props.training.image),
      ...(props.dataValidation ? { constraintsKey: props.dataValidation.constraintsKey ?? `${family}/constraints/constraints.json` } : {}),
    };

    const errors = new FailureNotice(this, props.notificationTopic, `Training pipeline ${family} failed`, 'Pipeline failed');
    const artifacts = props.artifactsBucket.bucketName;
    const runPrefix = (part: string) => `States.Format('s3://${artifacts}/${family}/runs/{}/${part}', $.run.id)`;
    // A retried state creates its job again: the retry count keeps the name unique.
    const jobName = (kind: string) => `States.Format('${family}-${kind}-{}-{}', $.run.id, $$.State.RetryCount)`;
    const tags = [
      { Key: 'ml:model-family', Value: family },
      { 'Key': 'ml:run-id', 'Value.$': '$.run.id' },
      { 'Key': 'ml:data-version', 'Value.$': '$.data.version' },
      { 'Key': 'ml:code-version', 'Value.$': '$.config.codeVersion' },
    ];
    const network = (isolated: boolean) => ({ EnableNetworkIsolation: isolated, EnableInterContainerTrafficEncryption: true, ...(vpcConfig ? { VpcConfig: vpcConfig } : {}) });

    // --- 1. Dataset version -------------------------------------------------------------------
    const listPage = (stateId: string, continued: boolean) =>
      errors.protect(
        tasks.CallAwsService.jsonPath(this, stateId, {
          service: 's3',
          action: 'listObjectsV2',
          iamResources: [props.dataBucket.bucketArn],
          iamAction: 's3:ListBucket',
          parameters: {
            Bucket: props.dataBucket.bucketName,
            'Prefix.$': '$.config.dataPrefix',
            MaxKeys: DATA_PAGE_SIZE,
            ...(continued ? { 'ContinuationToken.$': '$.page.NextContinuationToken' } : {}),
          },
          resultPath: '$.page',
        }),
      );
    const firstPage = listPage('List dataset', false);
    const nextPage = listPage('List more of dataset', true);
    const hashPage = new sfn.Pass(this, 'Fold page into data version', {
      parameters: {
        'version.$': "States.Hash(States.Format('{}{}', $.data.version, States.JsonToString($.page.Contents[*].ETag)), 'SHA-256')",
        'objects.$': 'States.MathAdd($.data.objects, $.page.KeyCount)',
      },
      resultPath: '$.data',
    });
    const emptyDataset = new sfn.Fail(this, 'Dataset is empty', { error: 'InvalidInput', causePath: "States.Format('dataPrefix: no objects under s3://{}/{}', $.page.Name, $.page.Prefix)" });
    const datasetVersioned = new sfn.Pass(this, 'Dataset versioned');
    firstPage.next(new sfn.Choice(this, 'Dataset has objects?').when(sfn.Condition.numberEquals('$.page.KeyCount', 0), emptyDataset).otherwise(hashPage));
    nextPage.next(hashPage);
    hashPage.next(new sfn.Choice(this, 'More of dataset?').when(sfn.Condition.booleanEquals('$.page.IsTruncated', true), nextPage).otherwise(datasetVersioned));

    // --- 2. Preprocess, train, evaluate -----------------------------------------------------------
    const processingResources = (resources: JobResources) => ({
      ClusterConfig: {
        InstanceType: resources.instanceType,
        InstanceCount: resources.instanceCount ?? 1,
        VolumeSizeInGB: resources.volumeSizeGb ?? 30,
        VolumeKmsKeyId: key.keyArn,
      },
    });
    const appSpec = (resources: JobResources) => ({ ImageUri: resources.image, ...(resources.entrypoint ? { ContainerEntrypoint: resources.entrypoint } : {}) });
    const s3Input = (name: string, uriExpression: string, localPath: string) => ({
      InputName: name,
      S3Input: { 'S3Uri.$': uriExpression, LocalPath: localPath, S3DataType: 'S3Prefix', S3InputMode: 'File', S3DataDistributionType: 'FullyReplicated' },
    });
    const s3Output = (name: string, part: string, localPath: string) => ({
      OutputName: name,
      S3Output: { 'S3Uri.$': runPrefix(part), LocalPath: localPath, S3UploadMode: 'EndOfJob' },
    });
    const preprocess = errors.protect(
      sageMakerJobState(this, 'Preprocess', {
        kind: 'processing',
        comment: 'Splits the dataset into train, validation and test.',
        timeout: (props.preprocessing.maxRuntime ?? Duration.hours(2)).plus(Duration.minutes(30)),
        parameters: {
          'ProcessingJobName.$': jobName('prep'),
          RoleArn: jobRole.roleArn,
          AppSpecification: appSpec(props.preprocessing),
          ProcessingResources: processingResources(props.preprocessing),
          StoppingCondition: { MaxRuntimeInSeconds: (props.preprocessing.maxRuntime ?? Duration.hours(2)).toSeconds() },
          NetworkConfig: network(true),
          Environment: props.preprocessing.environment ?? {},
          ProcessingInputs: [s3Input('dataset', `States.Format('s3://${props.dataBucket.bucketName}/{}', $.config.dataPrefix)`, '/opt/ml/processing/input')],
          ProcessingOutputConfig: {
            KmsKeyId: key.keyArn,
            Outputs: [
              s3Output('train', 'preprocessed/train', '/opt/ml/processing/output/train'),
              s3Output('validation', 'preprocessed/validation', '/opt/ml/processing/output/validation'),
              s3Output('test', 'preprocessed/test', '/opt/ml/processing/output/test'),
            ],
          },
          Tags: tags,
        },
        resultSelector: { 'jobName.$': '$.ProcessingJobName' },
        resultPath: '$.preprocessing',
      }),
      { capacity: true },
    );

    const channel = (name: string, uriExpression: string, contentType?: string) => ({
      ChannelName: name,
      ...(contentType ? { ContentType: contentType } : {}),
      DataSource: { S3DataSource: { 'S3Uri.$': uriExpression, S3DataType: 'S3Prefix', S3DataDistributionType: 'FullyReplicated' } },
    });
    const trainingRuntime = props.training.maxRuntime ?? Duration.hours(2);
    const trainingJob = (stateId: string, fineTune: boolean) =>
      errors.protect(
        sageMakerJobState(this, stateId, {
          kind: 'training',
          comment: fineTune ? 'Fine-tunes the pretrained model passed in the model channel.' : 'Trains from scratch.',
          timeout: trainingRuntime.plus(Duration.hours(1)),
          parameters: {
            'TrainingJobName.$': jobName('train'),
            RoleArn: jobRole.roleArn,
            AlgorithmSpecification: {
              TrainingImage: props.training.image,
              TrainingInputMode: 'File',
              ...(props.training.metricDefinitions ? { MetricDefinitions: props.training.metricDefinitions.map((metric) => ({ Name: metric.name, Regex: metric.regex })) } : {}),
            },
            'HyperParameters.$': fineTune ? '$.config.fineTuneHyperparameters' : '$.config.hyperparameters',
            InputDataConfig: [
              channel('train', runPrefix('preprocessed/train/')),
              channel('validation', runPrefix('preprocessed/validation/')),
              ...(fineTune ? [channel(props.transferLearning?.channelName ?? 'model', '$.config.baseModelUri')] : []),
            ],
            OutputDataConfig: { 'S3OutputPath.$': runPrefix('model'), KmsKeyId: key.keyArn },
            ResourceConfig: {
              InstanceType: props.training.instanceType,
              InstanceCount: props.training.instanceCount ?? 1,
              VolumeSizeInGB: props.training.volumeSizeGb ?? 30,
              VolumeKmsKeyId: key.keyArn,
            },
            StoppingCondition: { MaxRuntimeInSeconds: trainingRuntime.toSeconds() },
            ...network(true),
            Environment: props.training.environment ?? {},
            Tags: tags,
          },
          resultSelector: { 'jobName.$': '$.TrainingJobName', 'jobArn.$': '$.TrainingJobArn', 'modelArtifacts.$': '$.ModelArtifacts.S3ModelArtifacts' },
          resultPath: '$.training',
        }),
        { capacity: true },
      );
    const train = trainingJob('Train from scratch', false);
    const fineTune = trainingJob('Fine-tune base model', true);

    const evaluate = errors.protect(
      sageMakerJobState(this, 'Evaluate', {
        kind: 'processing',
        comment: 'Scores the model on the test split and writes evaluation.json.',
        timeout: (props.evaluation.maxRuntime ?? Duration.hours(2)).plus(Duration.minutes(30)),
        parameters: {
          'ProcessingJobName.$': jobName('eval'),
          RoleArn: jobRole.roleArn,
          AppSpecification: appSpec(props.evaluation),
          ProcessingResources: processingResources(props.evaluation),
          StoppingCondition: { MaxRuntimeInSeconds: (props.evaluation.maxRuntime ?? Duration.hours(2)).toSeconds() },
          NetworkConfig: network(true),
          Environment: props.evaluation.environment ?? {},
          ProcessingInputs: [
            { InputName: 'model', S3Input: { 'S3Uri.$': '$.training.modelArtifacts', LocalPath: '/opt/ml/processing/model', S3DataType: 'S3Prefix', S3InputMode: 'File', S3DataDistributionType: 'FullyReplicated' } },
            s3Input('test', runPrefix('preprocessed/test/'), '/opt/ml/processing/test'),
          ],
          ProcessingOutputConfig: { KmsKeyId: key.keyArn, Outputs: [s3Output('evaluation', 'evaluation', '/opt/ml/processing/evaluation')] },
          Tags: tags,
        },
        resultSelector: { 'jobName.$': '$.ProcessingJobName' },
        resultPath: '$.evaluationJob',
      }),
      { capacity: true },
    );

    // An incremental run names the approved version it warm-starts from: that champion is scored on the same test
    // split, by the same evaluation image, so that the gate compares the two models on the most recent data.
    const evaluateChampion = errors.protect(
      sageMakerJobState(this, 'Evaluate champion', {
        kind: 'processing',
        comment: 'Scores the champion (championModelUri) on the same test split and writes its evaluation.json.',
        timeout: (props.evaluation.maxRuntime ?? Duration.hours(2)).plus(Duration.minutes(30)),
        parameters: {
          'ProcessingJobName.$': jobName('champ'),
          RoleArn: jobRole.roleArn,
          AppSpecification: appSpec(props.evaluation),
          ProcessingResources: processingResources(props.evaluation),
          StoppingCondition: { MaxRuntimeInSeconds: (props.evaluation.maxRuntime ?? Duration.hours(2)).toSeconds() },
          NetworkConfig: network(true),
          Environment: props.evaluation.environment ?? {},
          ProcessingInputs: [
            { InputName: 'model', S3Input: { 'S3Uri.$': '$.config.championModelUri', LocalPath: '/opt/ml/processing/model', S3DataType: 'S3Prefix', S3InputMode: 'File', S3DataDistributionType: 'FullyReplicated' } },
            s3Input('test', runPrefix('preprocessed/test/'), '/opt/ml/processing/test'),
          ],
          ProcessingOutputConfig: { KmsKeyId: key.keyArn, Outputs: [s3Output('evaluation', 'champion-evaluation', '/opt/ml/processing/evaluation')] },
          Tags: tags,
        },
        resultSelector: { 'jobName.$': '$.ProcessingJobName' },
        resultPath: '$.championEvaluationJob',
      }),
      { capacity: true },
    );

    // --- 3. Gate and register --------------------------------------------------------------------
    const readReport = errors.protect(
      tasks.CallAwsService.jsonPath(this, 'Read evaluation report', {
        service: 's3',
        action: 'getObject',
        iamResources: [props.artifactsBucket.arnForObjects(`${family}/runs/*`)],
        iamAction: 's3:GetObject',
        parameters: { Bucket: artifacts, 'Key.$': `States.Format('${family}/runs/{}/evaluation/evaluation.json', $.run.id)` },
        resultSelector: { 'report.$': 'States.StringToJson($.Body)' },
        resultPath: '$.evaluation',
      }),
    );
    const readChampionReport = errors.protect(
      tasks.CallAwsService.jsonPath(this, 'Read champion evaluation report', {
        service: 's3',
        action: 'getObject',
        iamResources: [props.artifactsBucket.arnForObjects(`${family}/runs/*`)],
        iamAction: 's3:GetObject',
        parameters: { Bucket: artifacts, 'Key.$': `States.Format('${family}/runs/{}/champion-evaluation/evaluation.json', $.run.id)` },
        resultSelector: { 'report.$': 'States.StringToJson($.Body)' },
        resultPath: '$.championEvaluation',
      }),
    );
    const metricPath = `$.evaluation.report.${gate.metric}`;
    const championMetricPath = `$.championEvaluation.report.${gate.metric}`;
    const metricMissing = new sfn.Fail(this, 'Evaluation report lacks the metric', {
      error: 'EvaluationReportInvalid',
      cause: `evaluation.json: ${gate.metric} must be present and a number`,
    });
    const passes =
      (gate.direction ?? 'higher-is-better') === 'higher-is-better'
        ? sfn.Condition.numberGreaterThanEqualsJsonPath(metricPath, '$.config.threshold')
        : sfn.Condition.numberLessThanEqualsJsonPath(metricPath, '$.config.threshold');

    const beatsChampion =
      (gate.direction ?? 'higher-is-better') === 'higher-is-better'
        ? sfn.Condition.numberGreaterThanEqualsJsonPath(metricPath, championMetricPath)
        : sfn.Condition.numberLessThanEqualsJsonPath(metricPath, championMetricPath);

    const inference = props.inference ?? {};
    const inferenceImage = inference.image ?? props.training.image;
    const register = errors.protect(
      tasks.CallAwsService.jsonPath(this, 'Register model version', {
        service: 'sagemaker',
        action: 'createModelPackage',
        iamResources: [props.modelPackageGroup.modelPackageGroupArn, props.modelPackageGroup.modelPackageArns],
        iamAction: 'sagemaker:CreateModelPackage',
        additionalIamStatements: [
          new iam.PolicyStatement({ actions: ['sagemaker:AddTags'], resources: [props.modelPackageGroup.modelPackageArns] }),
        ],
        parameters: {
          ModelPackageGroupName: props.modelPackageGroup.modelPackageGroupName,
          'ModelPackageDescription.$': `States.Format('${family} trained by run {} on data version {}', $.run.id, $.data.version)`,
          ModelApprovalStatus: props.modelPackageGroup.approvalPolicy,
          InferenceSpecification: {
            Containers: [{ Image: inferenceImage, 'ModelDataUrl.$': '$.training.modelArtifacts' }],
            SupportedContentTypes: inference.contentTypes ?? ['text/csv', 'application/json'],
            SupportedResponseMIMETypes: inference.responseTypes ?? ['application/json'],
          },
          ModelMetrics: { ModelQuality: { Statistics: { ContentType: 'application/json', 'S3Uri.$': runPrefix('evaluation/evaluation.json') } } },
          MetadataProperties: { 'CommitId.$': '$.config.codeVersion', 'GeneratedBy.$': '$$.Execution.Id' },
          CustomerMetadataProperties: {
            'TrainingJobName.$': '$.training.jobName',
            'TrainingJobArn.$': '$.training.jobArn',
            'DataPrefix.$': `States.Format('s3://${props.dataBucket.bucketName}/{}', $.config.dataPrefix)`,
            'DataVersion.$': '$.data.version',
            'DataObjects.$': "States.Format('{}', $.data.objects)",
            'CodeVersion.$': '$.config.codeVersion',
            'RunId.$': '$.run.id',
            'PipelineExecution.$': '$$.Execution.Id',
            'TransferLearning.$': "States.Format('{}', $.config.useTransferLearning)",
            ...(props.dataValidation ? { 'DataValidationReport.$': '$.validation.reportUri' } : {}),
            EvaluationMetric: gate.metric,
            'EvaluationValue.$': `States.Format('{}', ${metricPath})`,
          },
          Tags: tags,
        },
        resultSelector: { 'arn.$': '$.ModelPackageArn' },
        resultPath: '$.modelPackage',
      }),
    );
    const registered = new sfn.Pass(this, 'Registered verdict', {
      parameters: {
        result: 'registered',
        'modelPackageArn.$': '$.modelPackage.arn',
        approvalStatus: props.modelPackageGroup.approvalPolicy,
        metric: gate.metric,
        'value.$': metricPath,
        'threshold.$': '$.config.threshold',
        'trainingJob.$': '$.training.jobName',
        'dataVersion.$': '$.data.version',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const rejected = new sfn.Pass(this, 'Rejected verdict', {
      parameters: {
        result: 'rejected',
        'reason.$': `States.Format('${gate.metric} = {} does not meet the threshold {} (${gate.direction ?? 'higher-is-better'}); the model was not registered', ${metricPath}, $.config.threshold)`,
        'trainingJob.$': '$.training.jobName',
        'dataVersion.$': '$.data.version',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const worseThanChampion = new sfn.Pass(this, 'Worse than champion verdict', {
      parameters: {
        result: 'rejected',
        'reason.$': `States.Format('${gate.metric} = {} is worse than the champion ({}) on the same test split (${gate.direction ?? 'higher-is-better'}); the model was not registered', ${metricPath}, ${championMetricPath})`,
        'champion.$': '$.config.championModelUri',
        'championValue.$': championMetricPath,
        'trainingJob.$': '$.training.jobName',
        'dataVersion.$': '$.data.version',
        'console.$': executionConsoleUrlExpression(this),
      },
      resultPath: '$.verdict',
    });
    const done = new sfn.Pass(this, 'Output verdict', { inputPath: '$.verdict' });
    registered.next(errors.notify('Notify registration', `Model ${family}: new version registered`, '$.verdict')).next(done);
    const notifyRejection = errors.notify('Notify rejection', `Model ${family}: trained model rejected`, '$.verdict');
    rejected.next(notifyRejection).next(done);
    worseThanChampion.next(notifyRejection);
    register.next(registered);
    const metricMissingCondition = sfn.Condition.or(sfn.Condition.isNotPresent(metricPath), sfn.Condition.not(sfn.Condition.isNumeric(metricPath)));
    const gateChoice = new sfn.Choice(this, 'Metric meets threshold?').when(metricMissingCondition, metricMissing).when(passes, register).otherwise(rejected);
    const championMetricMissing = new sfn.Fail(this, 'Champion evaluation lacks the metric', {
      error: 'EvaluationReportInvalid',
      cause: `champion-evaluation/evaluation.json: ${gate.metric} must be present and a number`,
    });
    const championGate = new sfn.Choice(this, 'Meets threshold and champion?')
      .when(metricMissingCondition, metricMissing)
      .when(sfn.Condition.or(sfn.Condition.isNotPresent(championMetricPath), sfn.Condition.not(sfn.Condition.isNumeric(championMetricPath))), championMetricMissing)
      .when(sfn.Condition.not(passes), rejected)
      .when(beatsChampion, register)
      .otherwise(worseThanChampion);
    readReport.next(
      new sfn.Choice(this, 'Compare with champion?')
        .when(sfn.Condition.isPresent('$.config.championModelUri'), evaluateChampion.next(readChampionReport).next(championGate))
        .otherwise(gateChoice),
    );

    const useTransfer = new sfn.Choice(this, 'Fine-tune?')
      .when(sfn.Condition.and(sfn.Condition.booleanEquals('$.config.useTransferLearning', true), sfn.Condition.isPresent('$.config.baseModelUri')), fineTune)
      .when(sfn.Condition.booleanEquals('$.config.useTransferLearning', true), new sfn.Fail(this, 'No base model', { error: 'InvalidInput', cause: 'baseModelUri: must be given (in the input or the pipeline config) when useTransferLearning is true' }))
      .otherwise(train);
    train.next(evaluate);
    fineTune.next(evaluate);
    evaluate.next(readReport);
    if (props.dataValidation) {
      this.dataValidation = new DataValidation(this, 'DataValidation', {
        dataBucket: props.dataBucket,
        datasetsPrefix: `${family}/datasets/`,
        constraintsPrefix: `${family}/constraints/`,
        reportsBucket: props.artifactsBucket,
        reportsPrefix: `${family}/runs/`,
        encryptionKey: key,
        name: family,
        vpc: props.vpc,
        logRetention: props.logRetention,
        logRemovalPolicy: props.logRemovalPolicy,
        alarmAction: props.failureAlarmAction,
      });
      // A dataset that fails: the notice names every violated constraint (the first ten; all in the report).
      const invalid = new sfn.Pass(this, 'Invalid dataset verdict', {
        parameters: {
          result: 'invalid-dataset',
          'reason.$': `States.Format('the dataset under s3://${props.dataBucket.bucketName}/{} fails {} constraint(s) of {}; {} of {} rows quarantined; report: {}', $.config.dataPrefix, $.validation.violationCount, $.config.constraintsKey, $.validation.quarantined, $.validation.rows, $.validation.reportUri)`,
          'violations.$': '$.validation.violations',
          'report.$': '$.validation.reportUri',
          'dataVersion.$': '$.data.version',
          'console.$': executionConsoleUrlExpression(this),
        },
        resultPath: '$.verdict',
      });
      invalid
        .next(errors.notify('Notify invalid dataset', `Training pipeline ${family}: dataset failed validation`, '$.verdict'))
        .next(new sfn.Fail(this, 'Dataset failed validation', { error: 'DataValidationFailed', causePath: '$.verdict.reason' }));
      datasetVersioned.next(
        this.dataValidation.steps(this, {
          datasetUri: `States.Format('s3://${props.dataBucket.bucketName}/{}', $.config.dataPrefix)`,
          constraintsUri: `States.Format('s3://${props.dataBucket.bucketName}/{}', $.config.constraintsKey)`,
          reportUri: runPrefix('validation/'),
          format: props.dataValidation.format ?? DatasetFormat.CSV,
          resultPath: '$.validation',
          passed: preprocess,
          failed: invalid,
          errored: errors.entry,
        }),
      );
    } else {
      datasetVersioned.next(preprocess);
    }
    preprocess.next(useTransfer);

    // --- 0. Input ---------------------------------------------------------------------------------
    const fromMarker = new sfn.Pass(this, 'Dataset from marker', {
      parameters: {
        'segments.$': "States.StringSplit($.config.dataReadyKey, '/')",
        'count.$': "States.ArrayLength(States.StringSplit($.config.dataReadyKey, '/'))",
      },
      resultPath: '$.marker',
    });
    const markerPrefix = new sfn.Pass(this, 'Dataset prefix from marker', {
      parameters: {
        'dataPrefix.$':
          "States.Format('{}/{}/{}/', States.ArrayGetItem($.marker.segments, 0), States.ArrayGetItem($.marker.segments, 1), States.ArrayGetItem($.marker.segments, 2))",
      },
      resultPath: '$.marker.override',
    });
    const applyMarker = new sfn.Pass(this, 'Use marker dataset', {
      parameters: { 'config.$': 'States.JsonMerge($.config, $.marker.override, false)', 'run.$': '$.run', 'data.$': '$.data' },
    });
    const badMarker = new sfn.Fail(this, 'Invalid dataReadyKey', {
      error: 'InvalidInput',
      cause: `dataReadyKey: must be ${family}/datasets/<version>/_SUCCESS`,
    });
    const validated = validateExecutionInput(
      this,
      'Validate input',
      <InputField[]>[
        {
          path: '$.config.modelFamily',
          type: 'string',
          check: { condition: sfn.Condition.stringEquals('$.config.modelFamily', family), expectation: `'${family}', the family this pipeline trains` },
        },
        {
          path: '$.config.dataPrefix',
          type: 'string',
          // The validator reads a prefix as a folder: it must end in '/'.
          check: props.dataValidation
            ? { condition: sfn.Condition.stringMatches('$.config.dataPrefix', `${family}/datasets/*/`), expectation: `a prefix under ${family}/datasets/, ending in /` }
            : { condition: sfn.Condition.stringMatches('$.config.dataPrefix', `${family}/datasets/*`), expectation: `a prefix under ${family}/datasets/` },
        },
        {
          path: '$.config.dataReadyKey',
          type: 'string',
          optional: true,
          check: { condition: sfn.Condition.stringMatches('$.config.dataReadyKey', `${family}/datasets/*/_SUCCESS`), expectation: `${family}/datasets/<version>/_SUCCESS` },
        },
        { path: '$.config.threshold', type: 'number' },
        { path: '$.config.useTransferLearning', type: 'boolean' },
        { path: '$.config.baseModelUri', type: 'string', optional: true, check: { condition: sfn.Condition.stringMatches('$.config.baseModelUri', 's3://*'), expectation: 'an s3:// URI' } },
        {
          path: '$.config.championModelUri',
          type: 'string',
          optional: true,
          check: { condition: sfn.Condition.stringMatches('$.config.championModelUri', 's3://*'), expectation: 'an s3:// URI of the approved version the run is compared with' },
        },
        { path: '$.config.codeVersion', type: 'string' },
        ...(props.dataValidation
          ? [
              {
                path: '$.config.constraintsKey',
                type: 'string',
                check: { condition: sfn.Condition.stringMatches('$.config.constraintsKey', `${family}/constraints/*`), expectation: `a key under ${family}/constraints/` },
              } as InputField,
            ]
          : []),
      ],
      new sfn.Choice(this, 'Started by a dataset marker?')
        .when(
          sfn.Condition.isPresent('$.config.dataReadyKey'),
          fromMarker.next(
            new sfn.Choice(this, 'Marker has dataset layout?')
              .when(sfn.Condition.numberEquals('$.marker.count', 4), markerPrefix.next(applyMarker).next(firstPage))
              .otherwise(badMarker),
          ),
        )
        .otherwise(firstPage),
    );
    const definition = inputOverDefaults(this, this.defaults, { parameters: { run: { 'id.$': RUN_ID_EXPRESSION }, data: { version: 'sha256', objects: 0 } } }).next(validated);

    // Preprocessing, training and two evaluations (the champion's too, in an incremental run), with room for retries.
    this.runTimeout = (props.preprocessing.maxRuntime ?? Duration.hours(2))
      .plus(trainingRuntime)
      .plus(props.evaluation.maxRuntime ?? Duration.hours(2))
      .plus(props.evaluation.maxRuntime ?? Duration.hours(2))
      .plus(Duration.hours(6));
    this.workflow = new MlWorkflow(this, 'Workflow', {
      definition,
      description: `Training pipeline of model ${family}: preprocess, train, evaluate, gate, register`,
      encryptionKey: key,
      logRetention: props.logRetention,
      logRemovalPolicy: props.logRemovalPolicy,
      timeout: this.runTimeout,
      failureAlarmAction: props.failureAlarmAction,
    });
    const workflowRole = this.workflow.role;
    grantPublishTo(props.notificationTopic, workflowRole);
    grantRunJobs(workflowRole, 'processing', `${family}-`, jobRole);
    grantRunJobs(workflowRole, 'training', `${family}-train-`, jobRole);
    key.grant(workflowRole, 'kms:Decrypt');
    props.artifactsBucket.encryptionKey?.grantDecrypt(workflowRole);
    acknowledgeWildcardResource(workflowRole.grantsPolicy, props.artifactsBucket.arnForObjects(`${family}/runs/*`), 'The workflow reads the evaluation report of the run it names at run time, under this family\'s runs/ prefix; read-only.');
    this.dataValidation?.acknowledgeInvokeGrant(this.workflow);
    acknowledgeWildcardResource(workflowRole.grantsPolicy, props.modelPackageGroup.modelPackageArns, 'Model versions get their ARNs (…/<group>/<version>) when registered; the grant covers this group\'s versions only.');
    Tags.of(this).add('ml:model-family', family);

    // The rules start runs through one role whose grant lands in a managed policy, not an inline one.
    const triggerRole = props.schedule || props.trainOnDataArrival
      ? new ManagedPolicyRole(this, 'TriggerRole', { assumedBy: new iam.ServicePrincipal('events.amazonaws.com'), description: `Starts runs of the ${family} training pipeline` })
      : undefined;
    if (props.schedule) {
      new events.Rule(this, 'Schedule', {
        description: `Retrains ${family} on ${this.defaults.dataPrefix}`,
        schedule: props.schedule,
        targets: [new targets.SfnStateMachine(this.workflow.stateMachine, { role: triggerRole, input: events.RuleTargetInput.fromObject({ modelFamily: family, trigger: { source: 'schedule' } }) })],
      });
    }
    if (props.trainOnDataArrival) {
      new events.Rule(this, 'DataArrival', {
        description: `Trains ${family} when a dataset's _SUCCESS marker lands`,
        eventPattern: TrainingPipeline.dataArrivalPattern(props.dataBucket.bucketName, family),
        targets: [
          new targets.SfnStateMachine(this.workflow.stateMachine, {
            role: triggerRole,
            input: events.RuleTargetInput.fromObject({ modelFamily: family, dataReadyKey: events.EventField.fromPath('$.detail.object.key'), trigger: { source: 'data-arrival' } }),
          }),
        ],
      });
    }
  }

  /** The EventBridge pattern of a dataset marker `<family>/datasets/<version>/_SUCCESS` landing in the bucket. */
  public static dataArrivalPattern(bucketName: string, family: string): events.EventPattern {
    return {
      source: ['aws.s3'],
      detailType: ['Object Created'],
      detail: { bucket: { name: [bucketName] }, object: { key: [{ wildcard: `${family}/datasets/*/_SUCCESS` }] } },
    };
  }

  /** Lets the grantee start runs (as the console, a schedule or a retraining trigger does). */
  public grantStartExecution(grantee: iam.IGrantable): iam.Grant {
    return this.workflow.grantStartExecution(grantee);
  }

  private validate(props: TrainingPipelineProps): void {
    const where = `${this.node.path} (TrainingPipeline)`;
    const problems: string[] = [];
    for (const [name, resources, kind, instanceTypes] of [
      ['preprocessing', props.preprocessing, 'processing', PROCESSING_INSTANCE_TYPES],
      ['training', props.training, 'training', TRAINING_INSTANCE_TYPES],
      ['evaluation', props.evaluation, 'processing', PROCESSING_INSTANCE_TYPES],
    ] as const) {
      if (!Token.isUnresolved(resources.image) && !parseEcrImageUri(resources.image)) problems.push(`${name}.image: must be an ECR image URI pinned by tag or digest; got '${resources.image}'`);
      if (!Token.isUnresolved(resources.instanceType) && !instanceTypes.includes(resources.instanceType)) {
        problems.push(`${name}.instanceType: '${resources.instanceType}' is not a SageMaker ${kind} instance type (for example ml.m5.xlarge)`);
      }
      if ((resources.instanceCount ?? 1) < 1 || !Number.isInteger(resources.instanceCount ?? 1)) problems.push(`${name}.instanceCount: must be a whole number of at least 1; got ${resources.instanceCount}`);
      const volume = resources.volumeSizeGb ?? 30;
      if (!Number.isInteger(volume) || volume < 1 || volume > 16384) problems.push(`${name}.volumeSizeGb: must be a whole number from 1 to 16384; got ${volume}`);
      const runtime = (resources.maxRuntime ?? Duration.hours(2)).toSeconds();
      if (runtime < 60 || runtime > 28 * 24 * 3600) problems.push(`${name}.maxRuntime: must be between 1 minute and 28 days; got ${runtime} s`);
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(props.gate.metric)) {
      problems.push(`gate.metric: must be a dotted path of names such as binary_classification_metrics.auc.value; got '${props.gate.metric}'`);
    }
    if (!Number.isFinite(props.gate.threshold)) problems.push(`gate.threshold: must be a finite number; got ${props.gate.threshold}`);
    if (props.transferLearning) {
      try {
        parseS3Uri(props.transferLearning.baseModelS3Uri);
      } catch (error) {
        problems.push(`transferLearning.baseModelS3Uri: ${(error as Error).message}`);
      }
    }
    const validation = props.dataValidation;
    if (validation !== undefined) {
      const family = props.modelPackageGroup.modelFamily;
      if (validation.format !== undefined && !(Object.values(DatasetFormat) as string[]).includes(validation.format)) problems.push(`dataValidation.format: must be a DatasetFormat (csv or jsonl); got ${JSON.stringify(validation.format)}`);
      const constraintsKey: unknown = validation.constraintsKey;
      if (constraintsKey !== undefined && (typeof constraintsKey !== 'string' || !constraintsKey.startsWith(`${family}/constraints/`) || constraintsKey.endsWith('/'))) {
        problems.push(`dataValidation.constraintsKey: must be an object key under ${family}/constraints/; got ${JSON.stringify(constraintsKey)}`);
      }
    }
    if (props.inference?.image && !parseEcrImageUri(props.inference.image)) problems.push(`inference.image: must be an ECR image URI pinned by tag or digest; got '${props.inference.image}'`);
    if (props.scheduledDataPrefix !== undefined && !props.scheduledDataPrefix.startsWith(`${props.modelPackageGroup.modelFamily}/datasets/`)) {
      problems.push(`scheduledDataPrefix: must be under ${props.modelPackageGroup.modelFamily}/datasets/; got '${props.scheduledDataPrefix}'`);
    }
    if (problems.length > 0) throw invalidProps(where, problems);
  }
}

/** Splits `s3://bucket/key` into its parts; throws a message naming what is wrong. */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/(.*)$/.exec(uri);
  if (!match) throw new Error(`must be an s3://bucket/key URI; got '${uri}'`);
  return { bucket: match[1], key: match[2] };
}

/** The code version a run records when the input names none: the training image's repository and tag or digest. */
function imageVersion(image: string): string {
  return image.slice(image.lastIndexOf('/') + 1);
}
