import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface TerminalQueueProps {
  readonly encryptionKey: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  /** What the queue is the last stop of, for its compliance note, e.g. `the dead-letter queue of the drift detector`. */
  readonly holds: string;
}

/**
 * A queue where messages that could not be processed end: KMS-encrypted, TLS-only, kept 14 days (the
 * longest SQS allows), and with no dead-letter queue of its own, which cdk-nag is told why.
 */
export function terminalQueue(scope: Construct, id: string, props: TerminalQueueProps): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.KMS,
    encryptionMasterKey: props.encryptionKey,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
    removalPolicy: props.removalPolicy,
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is itself ${props.holds}; a queue behind it would only move the same messages.`,
  });
  return queue;
}
