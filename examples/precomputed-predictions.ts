// Precomputed predictions in an application team's own stack: the nightly batch run scores every customer and
// loads the answers into the inference API's state table, where the API serves them by entity. The README
// shows this function; the tests type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as sns from 'aws-cdk-lib/aws-sns';
import { BatchInference, InferenceStateTable, ModelPackageGroup } from '../lib';

export function nightlyChurnScores(registry: ModelPackageGroup, stateTable: InferenceStateTable, runs: s3.IBucket, key: kms.IKey, topic: sns.ITopic): BatchInference {
  return new BatchInference(registry, 'NightlyScores', {
    modelPackageGroup: registry,
    bucket: runs,
    notificationTopic: topic,
    encryptionKey: key,
    inferenceImages: ['123456789012.dkr.ecr.us-east-1.amazonaws.com/churn-scorer:1.4'],
    instanceType: 'ml.m5.xlarge',
    // JSON Lines in (one customer a line); each answer comes back joined into its record as SageMakerOutput.
    inputFilter: '$.features',
    precomputed: { table: stateTable.table, featureGroupName: 'customer-churn-features', recordIdField: 'customer_id', ttl: Duration.days(2) },
    schedule: scheduler.ScheduleExpression.cron({ hour: '2', minute: '0' }),
  });
}
