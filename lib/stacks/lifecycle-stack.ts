import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
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
import { ModelDeployment } from '../lifecycle/model-deployment';
import { ModelApprovalPolicy, ModelPackageGroup } from '../lifecycle/model-package-group';
import { ModelRetirement } from '../lifecycle/model-retirement';
import { TrainingPipeline, type JobResources } from '../lifecycle/training-pipeline';
import type { FoundationStack } from './foundation-stack';
import type { ServingStack } from './serving-stack';

export interface LifecycleStackProps extends StackProps {
  readonly config: PlatformConfig;
  readonly foundation: FoundationStack;
  readonly serving: ServingStack;
}

/** The lifecycle workflows of one model family. */
export interface ModelLifecycle {
  readonly modelName: string;
  readonly registry: ModelPackageGroup;
  readonly training: TrainingPipeline;
  readonly deployment: ModelDeployment;
  readonly retirement: ModelRetirement;
  readonly batchInference?: BatchInference;
}

/**
 * The model lifecycle of each model with a `lifecycle` config: its registry (model package group),
 * training pipeline, deployment on approval, retirement, and batch inference; plus the training-data
 * bucket whose dataset markers start training runs.
 */
export class LifecycleStack extends Stack {
  public readonly lifecycles: ModelLifecycle[] = [];
  /** Training datasets, one per prefix: `<family>/datasets/<version>/`, completed by a `_SUCCESS` marker. */
  public readonly trainingDataBucket: s3.Bucket;
  /** Training runs (`<family>/runs/<run id>/`: splits, model, evaluation) and batch inference (`<family>/batch-input|batch-output/`). */
  public readonly artifactsBucket: s3.Bucket;

  constructor(scope: Construct, id: string, props: LifecycleStackProps) {
    super(scope, id, props);
    const { config, foundation, serving } = props;
    const retain = config.retainData;
    this.trainingDataBucket = new SecureBucket(this, 'TrainingData', {
      encryptionKey: foundation.dataKey,
      serverAccessLogsBucket: foundation.accessLogsBucket,
      retain,
      eventBridgeEnabled: true,
    }).bucket;
    const common = {
      notificationTopic: foundation.alarmTopic.topic,
      encryptionKey: foundation.dataKey,
      logRetention: config.logRetentionDays as logs.RetentionDays,
      logRemovalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      failureAlarmAction: foundation.alarmTopic.alarmAction,
    };
    // Its own bucket rather than the foundation's: the grants name prefixes in it, which stay in this stack.
    this.artifactsBucket = new SecureBucket(this, 'RunArtifacts', { encryptionKey: foundation.dataKey, serverAccessLogsBucket: foundation.accessLogsBucket, retain }).bucket;
    const artifacts = this.artifactsBucket;

    config.models.forEach((model, index) => {
      const lifecycle = model.lifecycle;
      if (!lifecycle) return;
      const endpoint = serving.endpoints[index];
      const registry = new ModelPackageGroup(this, `Registry-${model.name}`, {
        modelFamily: model.name,
        description: model.description,
        approvalPolicy: lifecycle.approval === 'automatic' ? ModelApprovalPolicy.AUTOMATIC : ModelApprovalPolicy.MANUAL,
        removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      });
      const training = new TrainingPipeline(this, `Training-${model.name}`, {
        ...common,
        modelPackageGroup: registry,
        dataBucket: this.trainingDataBucket,
        artifactsBucket: artifacts,
        preprocessing: jobResources(lifecycle.preprocessing),
        training: { ...jobResources(lifecycle.training), hyperparameters: lifecycle.training.hyperparameters, metricDefinitions: lifecycle.training.metricDefinitions },
        transferLearning: lifecycle.transferLearning,
        evaluation: jobResources(lifecycle.evaluation),
        gate: { metric: lifecycle.evaluation.metric, threshold: lifecycle.evaluation.threshold, direction: lifecycle.evaluation.direction },
        vpc: foundation.vpc,
        schedule: lifecycle.retrainSchedule ? events.Schedule.expression(lifecycle.retrainSchedule) : undefined,
        trainOnDataArrival: lifecycle.trainOnDataArrival,
      });
      const deployment = new ModelDeployment(this, `Deployment-${model.name}`, {
        ...common,
        modelPackageGroup: registry,
        endpoint,
        targetVariant: lifecycle.deployment.targetVariant,
        deployOnApproval: lifecycle.deployment.deployOnApproval,
      });
      const retirement = new ModelRetirement(this, `Retirement-${model.name}`, { ...common, modelPackageGroup: registry, endpoint, artifactsBucket: artifacts, retainArtifacts: retain });
      const batch = lifecycle.batchInference;
      const batchInference =
        batch &&
        new BatchInference(this, `BatchInference-${model.name}`, {
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
        });
      // The deployed versions read the artifacts the pipeline wrote and pull the inference image.
      const runs = artifacts.arnForObjects(`${model.name}/runs/*`);
      iam.Grant.addToPrincipal({ grantee: deployment.modelRole, actions: ['s3:GetObject'], resourceArns: [runs] });
      foundation.dataKey.grantDecrypt(deployment.modelRole);
      deployment.modelRole.grantPullImage(lifecycle.training.image);
      acknowledgeWildcardResource(deployment.modelRole.role.grantsPolicy, runs, `Deployed versions' artifacts lie under the training run that produced them (${model.name}/runs/<run id>/); read-only.`);
      // What operators need to start the workflows from the console or approve a version.
      new CfnOutput(this, `RegistryName-${model.name}`, { value: registry.modelPackageGroupName, description: `Model package group of ${model.name}: approve versions here` });
      for (const [name, workflow] of [
        ['Training', training.workflow],
        ['Deployment', deployment.workflow],
        ['Retirement', retirement.workflow],
        ...(batchInference ? [['BatchInference', batchInference.workflow] as const] : []),
      ] as const) {
        new CfnOutput(this, `${name}Workflow-${model.name}`, { value: workflow.stateMachine.stateMachineArn, description: `${name} workflow of ${model.name}` });
      }
      this.lifecycles.push({ modelName: model.name, registry, training, deployment, retirement, batchInference });
    });
  }
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
