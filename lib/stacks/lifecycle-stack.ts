import { CfnOutput, Duration, RemovalPolicy, Size, Stack, StackProps } from 'aws-cdk-lib';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import type { LifecycleConfig } from '../../config/lifecycle-schema';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { SecureBucket } from '../core/secure-bucket';
import { BatchInference } from '../lifecycle/batch-inference';
import { DATA_VALIDATION_STATE_TAG, type DatasetFormat } from '../lifecycle/data-validation';
import { FederatedAggregator, FederatedCoordinator } from '../lifecycle/federated-coordinator';
import { IncrementalTraining } from '../lifecycle/incremental-training';
import { ModelDeployment } from '../lifecycle/model-deployment';
import { ModelApprovalPolicy, ModelPackageGroup } from '../lifecycle/model-package-group';
import { ModelRetirement } from '../lifecycle/model-retirement';
import { TrainingPipeline, type JobResources } from '../lifecycle/training-pipeline';
import type { ModelConfig } from '../../config/schema';
import type { ModelEndpoint } from '../serving/model-endpoint';
import type { FoundationStack } from './foundation-stack';

export interface LifecycleStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
}

/** The lifecycle workflows of one model family. */
export interface ModelLifecycle {
  readonly modelName: string;
  readonly registry: ModelPackageGroup;
  readonly training: TrainingPipeline;
  readonly deployment: ModelDeployment;
  readonly retirement: ModelRetirement;
  readonly batchInference?: BatchInference;
  /** The coordinator of the family's federated training, with `lifecycle.federated`. */
  readonly federated?: FederatedCoordinator;
  /** Incremental training from the family's streamed labelled events, with `lifecycle.incrementalTraining`. */
  readonly incremental?: IncrementalTraining;
}

/**
 * What the model families' lifecycles share: the training-data bucket, whose dataset markers start
 * training runs, and the run-artifacts bucket. Each family's registry, pipeline, deployment,
 * retirement and batch inference live in its own stack ({@link buildModelLifecycle}); the buckets
 * stay here, with the ids of earlier releases, so that their data never moves.
 */
export class LifecycleStack extends Stack {
  /** Training datasets, one per prefix: `<family>/datasets/<version>/`, completed by a `_SUCCESS` marker. */
  public readonly trainingDataBucket: s3.Bucket;
  /** Training runs (`<family>/runs/<run id>/`: splits, model, evaluation) and batch inference (`<family>/batch-input|batch-output/`). */
  public readonly artifactsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: LifecycleStackProps) {
    super(scope, id, props);
    const { config, foundation } = props;
    const removalPolicy = config.retainData ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    this.trainingDataBucket = new SecureBucket(this, 'TrainingData', {
      encryptionKey: foundation.dataKey,
      serverAccessLogsBucket: foundation.accessLogsBucket,
      removalPolicy,
      eventBridgeEnabled: true,
    }).bucket;
    // Its own bucket rather than the foundation's: the families' grants name prefixes in it.
    this.artifactsBucket = new SecureBucket(this, 'RunArtifacts', { encryptionKey: foundation.dataKey, serverAccessLogsBucket: foundation.accessLogsBucket, removalPolicy }).bucket;
    // The data validator's resume state is needed while a run can still retry a call, never after a week.
    this.artifactsBucket.addLifecycleRule({
      id: 'expire-validation-resume-state',
      tagFilters: { [DATA_VALIDATION_STATE_TAG.key]: DATA_VALIDATION_STATE_TAG.value },
      expiration: Duration.days(7),
      noncurrentVersionExpiration: Duration.days(1),
    });
  }
}

export interface ModelLifecycleProps {
  readonly config: PlatformConfig;
  readonly model: ModelConfig & { lifecycle: LifecycleConfig };
  readonly foundation: FoundationStack;
  readonly buckets: LifecycleStack;
  readonly endpoint: ModelEndpoint;
  /** The inference API's state table, where a batch run with `precomputed` loads its answers. */
  readonly stateTable?: dynamodb.ITable;
}

/**
 * The lifecycle of one model family, in `scope` (its stack): registry (model package group), training
 * pipeline, deployment on approval, retirement, batch inference, and the outputs operators start
 * them from. Construct ids are those of the earlier one-stack layout.
 */
export function buildModelLifecycle(scope: Construct, props: ModelLifecycleProps): ModelLifecycle {
  const { config, model, foundation, buckets, endpoint, stateTable } = props;
  const lifecycle = model.lifecycle;
  const retain = config.retainData;
  const common = {
    notificationTopic: foundation.alarmTopic.topic,
    encryptionKey: foundation.dataKey,
    logRetention: config.logRetentionDays as logs.RetentionDays,
    logRemovalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    failureAlarmAction: foundation.alarmTopic.alarmAction,
  };
  const artifacts = buckets.artifactsBucket;
  const registry = new ModelPackageGroup(scope, `Registry-${model.name}`, {
    modelFamily: model.name,
    modelPackageGroupName: lifecycle.modelPackageGroupName,
    description: model.description,
    approvalPolicy: lifecycle.approval === 'automatic' ? ModelApprovalPolicy.AUTOMATIC : ModelApprovalPolicy.MANUAL,
    removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
  });
  const training = new TrainingPipeline(scope, `Training-${model.name}`, {
    ...common,
    modelPackageGroup: registry,
    dataBucket: buckets.trainingDataBucket,
    artifactsBucket: artifacts,
    preprocessing: jobResources(lifecycle.preprocessing),
    training: { ...jobResources(lifecycle.training), hyperparameters: lifecycle.training.hyperparameters, metricDefinitions: lifecycle.training.metricDefinitions },
    transferLearning: lifecycle.transferLearning,
    evaluation: jobResources(lifecycle.evaluation),
    gate: { metric: lifecycle.evaluation.metric, threshold: lifecycle.evaluation.threshold, direction: lifecycle.evaluation.direction },
    vpc: foundation.vpc,
    schedule: lifecycle.retrainSchedule ? events.Schedule.expression(lifecycle.retrainSchedule) : undefined,
    trainOnDataArrival: lifecycle.trainOnDataArrival,
    dataValidation: lifecycle.dataValidation && { format: lifecycle.dataValidation.format as DatasetFormat, constraintsKey: lifecycle.dataValidation.constraintsKey },
  });
  const deployment = new ModelDeployment(scope, `Deployment-${model.name}`, {
    ...common,
    modelPackageGroup: registry,
    endpoint,
    targetVariant: lifecycle.deployment.targetVariant,
    deployOnApproval: lifecycle.deployment.deployOnApproval,
  });
  const retirement = new ModelRetirement(scope, `Retirement-${model.name}`, { ...common, modelPackageGroup: registry, endpoint, artifactsBucket: artifacts, retainArtifacts: retain });
  const batch = lifecycle.batchInference;
  const batchInference =
    batch &&
    new BatchInference(scope, `BatchInference-${model.name}`, {
      ...common,
      modelPackageGroup: registry,
      bucket: artifacts,
      inferenceImages: [lifecycle.training.image],
      instanceType: batch.instanceType,
      instanceCount: batch.instanceCount,
      contentType: batch.contentType,
      inputFilter: batch.inputFilter,
      outputFilter: batch.outputFilter,
      joinInputToOutput: batch.joinInputToOutput,
      schedule: batch.schedule ? scheduler.ScheduleExpression.expression(batch.schedule) : undefined,
      vpc: foundation.vpc,
      precomputed: batch.precomputed && {
        table: requireStateTable(stateTable, model.name),
        featureGroupName: batch.precomputed.featureGroup,
        recordIdField: batch.precomputed.recordIdField,
        ttl: Duration.hours(batch.precomputed.ttlHours),
      },
    });
  const fl = lifecycle.federated;
  const federated =
    fl &&
    new FederatedCoordinator(scope, `Federated-${model.name}`, {
      ...common,
      name: model.name,
      clients: fl.clients.map((client) => ({ name: client.name, account: client.account, region: client.region, trainingImage: client.trainingImage })),
      accessRoleName: fl.accessRoleName,
      training: {
        image: fl.training.image,
        instanceType: fl.training.instanceType,
        instanceCount: fl.training.instanceCount,
        volumeSizeGb: fl.training.volumeSizeGb,
        maxRuntime: Duration.minutes(fl.training.maxRuntimeMinutes),
        hyperparameters: fl.training.hyperparameters,
      },
      aggregation: {
        aggregator: fl.aggregation.aggregator as FederatedAggregator,
        trimFraction: fl.aggregation.trimFraction,
        privacy: fl.aggregation.privacy,
        serverLearningRate: fl.aggregation.serverLearningRate,
      },
      minClients: fl.minClients,
      metric: fl.metric,
      maxRounds: fl.maxRounds,
      patience: fl.patience,
      minDelta: fl.minDelta,
      roundTimeout: Duration.minutes(fl.roundTimeoutMinutes),
      pollInterval: Duration.minutes(fl.pollIntervalMinutes),
      modelPackageGroup: registry,
      inferenceImage: fl.inferenceImage ?? fl.training.image,
      stateBucket: artifacts,
      statePrefix: `${model.name}/federated/`,
    });
  const it = lifecycle.incrementalTraining;
  const incremental =
    it &&
    new IncrementalTraining(scope, `Incremental-${model.name}`, {
      ...common,
      trainingPipeline: training,
      minRecords: it.minRecords,
      cooldown: Duration.minutes(it.cooldownMinutes),
      schedule: scheduler.ScheduleExpression.expression(it.checkSchedule),
      hyperparameters: it.hyperparameters,
      bufferingInterval: Duration.seconds(it.bufferingSeconds),
      bufferingSize: Size.mebibytes(it.bufferingMiB),
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      vpc: foundation.vpc,
    });
  // The deployed versions read the artifacts the pipeline wrote and pull the inference image.
  const runs = artifacts.arnForObjects(`${model.name}/runs/*`);
  iam.Grant.addToPrincipal({ grantee: deployment.modelRole, actions: ['s3:GetObject'], resourceArns: [runs] });
  foundation.dataKey.grantDecrypt(deployment.modelRole);
  deployment.modelRole.grantPullImage(lifecycle.training.image);
  acknowledgeWildcardResource(deployment.modelRole.role.grantsPolicy, runs, `Deployed versions' artifacts lie under the training run that produced them (${model.name}/runs/<run id>/); read-only.`);
  // What operators need to start the workflows from the console or approve a version.
  new CfnOutput(scope, `RegistryName-${model.name}`, { value: registry.modelPackageGroupName, description: `Model package group of ${model.name}: approve versions here` });
  for (const [name, workflow] of [
    ['Training', training.workflow],
    ['Deployment', deployment.workflow],
    ['Retirement', retirement.workflow],
    ...(batchInference ? [['BatchInference', batchInference.workflow] as const] : []),
    ...(federated ? [['Federated', federated.workflow] as const] : []),
    ...(incremental ? [['Incremental', incremental.workflow] as const] : []),
  ] as const) {
    new CfnOutput(scope, `${name}Workflow-${model.name}`, { value: workflow.stateMachine.stateMachineArn, description: `${name} workflow of ${model.name}` });
  }
  if (incremental) {
    new CfnOutput(scope, `EventStream-${model.name}`, { value: incremental.deliveryStreamName, description: `Delivery stream of ${model.name}'s labelled events (firehose put-record)` });
  }
  return { modelName: model.name, registry, training, deployment, retirement, batchInference, federated, incremental };
}

function jobResources(job: LifecycleConfig['preprocessing']): JobResources {
  return {
    image: job.image,
    instanceType: job.instanceType,
    instanceCount: job.instanceCount,
    volumeSizeGb: job.volumeSizeGb,
    maxRuntime: Duration.minutes(job.maxRuntimeMinutes),
    entrypoint: job.entrypoint,
    environment: job.environment,
  };
}

function requireStateTable(table: dynamodb.ITable | undefined, family: string): dynamodb.ITable {
  if (table === undefined) throw new Error(`models[${family}].lifecycle.batchInference.precomputed: needs the inference API's state table (api.precomputedPredictions: true)`);
  return table;
}
