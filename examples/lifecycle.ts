// The model lifecycle in an application team's own stack: registry, training pipeline with transfer
// learning, deployment on approval, retirement and nightly batch inference. The README shows this
// function; the tests type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BatchInference, ModelApprovalPolicy, ModelDeployment, ModelEndpoint, ModelPackageGroup, ModelRetirement, TrainingPipeline } from '../lib';

export function modelLifecycle(endpoint: ModelEndpoint, datasets: s3.IBucket, runs: s3.IBucket, key: kms.IKey, topic: sns.ITopic) {
  const common = { notificationTopic: topic, encryptionKey: key };
  const registry = new ModelPackageGroup(endpoint, 'Registry', { modelFamily: endpoint.modelName, approvalPolicy: ModelApprovalPolicy.MANUAL });
  const sklearn = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3';
  const training = new TrainingPipeline(endpoint, 'Training', {
    ...common,
    modelPackageGroup: registry,
    dataBucket: datasets,
    artifactsBucket: runs,
    preprocessing: { image: sklearn, instanceType: 'ml.m5.large', entrypoint: ['python3', '/opt/ml/processing/code/preprocess.py'] },
    training: { image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1', instanceType: 'ml.m5.xlarge', hyperparameters: { objective: 'binary:logistic', num_round: '200' } },
    // The one switch between fine-tuning and training from scratch: XGBoost continues from the champion's model.
    transferLearning: { baseModelS3Uri: 's3://my-team-models/churn/1.0.0/model.tar.gz', hyperparameters: { num_round: '50' } },
    evaluation: { image: sklearn, instanceType: 'ml.m5.large', entrypoint: ['python3', '/opt/ml/processing/code/evaluate.py'] },
    gate: { metric: 'binary_classification_metrics.auc.value', threshold: 0.8 },
    schedule: events.Schedule.rate(Duration.days(7)),
    trainOnDataArrival: true,
  });
  const deployment = new ModelDeployment(endpoint, 'Deployment', { ...common, modelPackageGroup: registry, endpoint });
  deployment.modelRole.grantPullImage('683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1');
  runs.grantRead(deployment.modelRole, `${endpoint.modelName}/runs/*`);
  new ModelRetirement(endpoint, 'Retirement', { ...common, modelPackageGroup: registry, endpoint, artifactsBucket: runs, retainArtifacts: true });
  new BatchInference(endpoint, 'Batch', {
    ...common,
    modelPackageGroup: registry,
    bucket: runs,
    inferenceImages: ['683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1'],
    instanceType: 'ml.m5.xlarge',
    inputFilter: '$[1:]', // the model never sees the id column...
    outputFilter: '$[0,-1]', // ...which is joined back to each score
    schedule: scheduler.ScheduleExpression.cron({ hour: '2', minute: '0' }),
  });
  return { registry, training, deployment };
}
