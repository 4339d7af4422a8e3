import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlarmTopicProps {
  /** Key that encrypts messages at rest; its policy must let cloudwatch.amazonaws.com use it (see DataKey). */
  readonly encryptionKey: kms.IKey;
  /**
   * Email addresses subscribed to every alarm.
   * @default - no subscriptions
   */
  readonly emails?: string[];
}

/** The SNS topic that every alarm of the platform notifies: KMS-encrypted and TLS-only. */
export class AlarmTopic extends Construct {
  public readonly topic: sns.Topic;
  /** Alarm action that publishes to this topic. */
  public readonly alarmAction: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Resource', {
      displayName: 'ML platform alarms',
      masterKey: props.encryptionKey,
      enforceSSL: true,
    });
    for (const email of props.emails ?? []) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }
    this.alarmAction = new actions.SnsAction(this.topic);
  }
}

/**
 * Lets the grantee publish to a topic with exactly the actions it needs: `sns:Publish` on the topic
 * and, for an encrypted topic, `kms:GenerateDataKey` and `kms:Decrypt` on its key (where the topic's
 * own `grantPublish` would grant the `kms:GenerateDataKey*` family).
 */
export function grantPublishTo(topic: sns.ITopic, grantee: iam.IGrantable): iam.Grant {
  topic.masterKey?.grant(grantee, 'kms:GenerateDataKey', 'kms:Decrypt');
  return iam.Grant.addToPrincipal({ grantee, actions: ['sns:Publish'], resourceArns: [topic.topicArn] });
}
