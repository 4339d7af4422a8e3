import { type RemovalPolicy, type ResourceEnvironment, type Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { assertRequiredProps } from './private/props';

export interface AlarmTopicProps {
  /** Key that encrypts messages at rest; its policy must let cloudwatch.amazonaws.com use it (see DataKey). */
  readonly encryptionKey: kms.IKey;
  /**
   * Email addresses subscribed to every alarm.
   * @default - no subscriptions
   */
  readonly emails?: string[];
}

/**
 * The SNS topic that every alarm of the platform notifies: KMS-encrypted and TLS-only.
 *
 * It is an `sns.ITopic` itself (every member is the underlying `topic`'s), so it can be passed wherever a
 * topic is taken: `notificationTopic: alarms` and `notificationTopic: alarms.topic` mean the same.
 */
export class AlarmTopic extends Construct implements sns.ITopic {
  public readonly topic: sns.Topic;
  /** Alarm action that publishes to this topic. */
  public readonly alarmAction: cloudwatch.IAlarmAction;

  constructor(scope: Construct, id: string, props: AlarmTopicProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'AlarmTopic', props, { encryptionKey: 'object' });
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

  // sns.ITopic, answered by the underlying topic.
  public get topicArn(): string {
    return this.topic.topicArn;
  }
  public get topicName(): string {
    return this.topic.topicName;
  }
  public get topicRef(): sns.TopicReference {
    return this.topic.topicRef;
  }
  public get masterKey(): kms.IKey | undefined {
    return this.topic.masterKey;
  }
  public get contentBasedDeduplication(): boolean {
    return this.topic.contentBasedDeduplication;
  }
  public get fifo(): boolean {
    return this.topic.fifo;
  }
  public get stack(): Stack {
    return this.topic.stack;
  }
  public get env(): ResourceEnvironment {
    return this.topic.env;
  }
  public applyRemovalPolicy(policy: RemovalPolicy): void {
    this.topic.applyRemovalPolicy(policy);
  }
  public addSubscription(subscription: sns.ITopicSubscription): sns.Subscription {
    return this.topic.addSubscription(subscription);
  }
  public addToResourcePolicy(statement: iam.PolicyStatement): iam.AddToResourcePolicyResult {
    return this.topic.addToResourcePolicy(statement);
  }
  public grantPublish(identity: iam.IGrantable): iam.Grant {
    return this.topic.grantPublish(identity);
  }
  public grantSubscribe(identity: iam.IGrantable): iam.Grant {
    return this.topic.grantSubscribe(identity);
  }
  public bindAsNotificationRuleTarget(scope: Construct): ReturnType<sns.ITopic['bindAsNotificationRuleTarget']> {
    return this.topic.bindAsNotificationRuleTarget(scope);
  }
  public metric(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metric(metricName, props);
  }
  public metricPublishSize(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricPublishSize(props);
  }
  public metricNumberOfMessagesPublished(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricNumberOfMessagesPublished(props);
  }
  public metricNumberOfNotificationsDelivered(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricNumberOfNotificationsDelivered(props);
  }
  public metricNumberOfNotificationsFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricNumberOfNotificationsFailed(props);
  }
  public metricNumberOfNotificationsFilteredOut(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricNumberOfNotificationsFilteredOut(props);
  }
  public metricNumberOfNotificationsFilteredOutNoMessageAttributes(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricNumberOfNotificationsFilteredOutNoMessageAttributes(props);
  }
  public metricNumberOfNotificationsFilteredOutInvalidAttributes(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricNumberOfNotificationsFilteredOutInvalidAttributes(props);
  }
  public metricSMSMonthToDateSpentUSD(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricSMSMonthToDateSpentUSD(props);
  }
  public metricSMSSuccessRate(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.topic.metricSMSSuccessRate(props);
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
