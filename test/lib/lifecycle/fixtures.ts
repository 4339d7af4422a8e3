import { App, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DataKey } from '../../../lib/core/data-key';
import { SecureBucket } from '../../../lib/core/secure-bucket';
import { FederatedCoordinator, type FederatedCoordinatorProps } from '../../../lib/lifecycle/federated-coordinator';
import { IncrementalTraining, type IncrementalTrainingProps } from '../../../lib/lifecycle/incremental-training';
import { ModelApprovalPolicy, ModelPackageGroup } from '../../../lib/lifecycle/model-package-group';
import { TrainingPipeline, type TrainingPipelineProps } from '../../../lib/lifecycle/training-pipeline';
import { AlarmSeverity } from '../../../lib/serving/endpoint-alarms';
import { ModelEndpoint, type ModelEndpointProps } from '../../../lib/serving/model-endpoint';

export const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
export const SCRIPT_IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3';
const instance = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

/** A stack with a key, a topic, data and artifact buckets and a model package group, for lifecycle constructs. */
export function lifecycleStack(approvalPolicy = ModelApprovalPolicy.MANUAL) {
  const app = new App();
  const stack = new Stack(app, 'Lifecycle', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  const dataBucket = new SecureBucket(stack, 'Data', { encryptionKey: key, retain: false, eventBridgeEnabled: true }).bucket;
  const artifactsBucket = new SecureBucket(stack, 'Artifacts', { encryptionKey: key, retain: false }).bucket;
  const group = new ModelPackageGroup(stack, 'ChurnVersions', { modelFamily: 'churn', approvalPolicy, removalPolicy: RemovalPolicy.DESTROY });
  return { app, stack, key, topic, dataBucket, artifactsBucket, group };
}

/** Pipeline props with small jobs and an AUC gate. */
export function pipelineProps(world: ReturnType<typeof lifecycleStack>, overrides: Partial<TrainingPipelineProps> = {}): TrainingPipelineProps {
  return {
    modelPackageGroup: world.group,
    dataBucket: world.dataBucket,
    artifactsBucket: world.artifactsBucket,
    notificationTopic: world.topic,
    encryptionKey: world.key,
    preprocessing: { image: SCRIPT_IMAGE, instanceType: 'ml.m5.large', entrypoint: ['python3', '/opt/ml/code/preprocess.py'] },
    training: { image: IMAGE, instanceType: 'ml.m5.xlarge', maxRuntime: Duration.hours(1), hyperparameters: { objective: 'binary:logistic', num_round: '100' } },
    evaluation: { image: SCRIPT_IMAGE, instanceType: 'ml.m5.large', entrypoint: ['python3', '/opt/ml/code/evaluate.py'] },
    gate: { metric: 'binary_classification_metrics.auc.value', threshold: 0.8 },
    ...overrides,
  };
}

export function trainingPipeline(overrides: Partial<TrainingPipelineProps> = {}, approvalPolicy = ModelApprovalPolicy.MANUAL) {
  const world = lifecycleStack(approvalPolicy);
  const pipeline = new TrainingPipeline(world.stack, 'ChurnTraining', pipelineProps(world, overrides));
  return { ...world, pipeline };
}

/** An endpoint with two production variants and alarms in the lifecycle stack. */
export function endpointIn(world: ReturnType<typeof lifecycleStack>, endpointProps: Partial<ModelEndpointProps> = {}): ModelEndpoint {
  return new ModelEndpoint(world.stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: world.key,
    variants: [
      { name: 'champion', weight: 90, model: { version: '1.0.0', image: IMAGE }, capacity: instance },
      { name: 'challenger', weight: 10, model: { version: '1.1.0', image: IMAGE }, capacity: instance },
    ],
    alarms: { actions: { [AlarmSeverity.CRITICAL]: new actions.SnsAction(world.topic), [AlarmSeverity.WARNING]: new actions.SnsAction(world.topic) } },
    ...endpointProps,
  });
}

export const FEDERATED_IMAGE = '111122223333.dkr.ecr.us-east-1.amazonaws.com/churn-federated-train:1.0.0';
export const EU_IMAGE = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/churn-federated-train:1.0.0';

/** A federation's coordinator in the lifecycle stack: two silos in two accounts and regions, state under churn/federated/. */
export function federatedCoordinator(overrides: Partial<FederatedCoordinatorProps> = {}) {
  const world = lifecycleStack();
  const construct = new FederatedCoordinator(world.stack, 'ChurnFederation', {
    name: 'churn',
    clients: [
      { name: 'north-america', account: '444455556666', region: 'us-east-1' },
      { name: 'europe', account: '777788889999', region: 'eu-west-1', trainingImage: EU_IMAGE },
    ],
    accessRoleName: 'churn-federated-coordinator',
    training: { image: FEDERATED_IMAGE, instanceType: 'ml.m5.large', hyperparameters: { epochs: '2' } },
    metric: { name: 'auc', direction: 'higher-is-better' },
    maxRounds: 10,
    patience: 3,
    modelPackageGroup: world.group,
    inferenceImage: FEDERATED_IMAGE,
    stateBucket: world.artifactsBucket,
    statePrefix: 'churn/federated/',
    encryptionKey: world.key,
    notificationTopic: world.topic,
    failureAlarmAction: new actions.SnsAction(world.topic),
    ...overrides,
  });
  return { ...world, construct };
}

/** Incremental training of churn: a pipeline that validates CSV datasets, fed by the construct's delivery stream. */
export function incrementalTraining(overrides: Partial<IncrementalTrainingProps> = {}, pipelineOverrides: Partial<TrainingPipelineProps> = {}) {
  const world = trainingPipeline({ dataValidation: {}, ...pipelineOverrides });
  const construct = new IncrementalTraining(world.stack, 'ChurnIncremental', {
    trainingPipeline: world.pipeline,
    notificationTopic: world.topic,
    encryptionKey: world.key,
    failureAlarmAction: new actions.SnsAction(world.topic),
    removalPolicy: RemovalPolicy.DESTROY,
    ...overrides,
  });
  return { ...world, construct };
}
