import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { RemovalPolicy } from 'aws-cdk-lib';

/** Options every workflow of the platform takes: where it reports, how it encrypts, how long it keeps logs. */
export interface MlWorkflowOptions {
  /** Topic told about every verdict, decision, rollback and failure. */
  readonly notificationTopic: sns.ITopic;
  /** Key that encrypts the workflow's logs and state. */
  readonly encryptionKey: kms.IKey;
  /**
   * Retention of the execution logs.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Removal policy of the execution logs.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
  /**
   * Notified when an execution itself fails (verdicts and rollbacks notify the topic instead).
   * @default - no alarm
   */
  readonly failureAlarmAction?: cloudwatch.IAlarmAction;
}
