// Incremental training in an application team's own stack: labelled events streamed through Firehose become
// validated windows, and each window fine-tunes the approved version of the model, which is registered only if it
// beats that version on the window. The README shows the function; the tests type-check and synthesize it. In your
// project, import from 'cdk-ml-patterns'.
import { Duration, Size } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { IncrementalTraining, type TrainingPipeline } from '../lib';

export function fraudIncrementalTraining(scope: Construct, pipeline: TrainingPipeline, producer: iam.IGrantable, topic: sns.ITopic, key: kms.IKey): IncrementalTraining {
  const incremental = new IncrementalTraining(scope, 'FraudIncremental', {
    trainingPipeline: pipeline, // validates CSV datasets against fraud/constraints/constraints.json
    minRecords: 50_000, // a window trains once it holds 50 000 validated records
    cooldown: Duration.hours(6), // and never sooner than six hours after the last update ended
    schedule: scheduler.ScheduleExpression.rate(Duration.minutes(10)),
    hyperparameters: { num_round: '25', eta: '0.05' }, // a gentle update of the champion, not a retraining
    bufferingInterval: Duration.minutes(5),
    bufferingSize: Size.mebibytes(16),
    notificationTopic: topic,
    encryptionKey: key,
  });
  // The case-management service puts { ...the features it scored, "is_fraud": 0 | 1 } once a case is closed.
  incremental.grantPutRecords(producer);
  return incremental;
}
