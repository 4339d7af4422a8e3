import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, GetQueueAttributesCommand, PurgeQueueCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sdkTestConfig, type MotoServer } from './moto';

/** A sample event, as EventBridge delivers it to a rule. */
export interface SampleEvent {
  readonly source: string;
  readonly detailType: string;
  readonly detail: Record<string, unknown>;
}

/**
 * Tells which sample events an EventBridge pattern (as synthesized in a template) matches, through
 * moto's EventBridge over the SDK wire protocol: a rule with the pattern on the default bus sends to
 * an SQS queue, each event is put in turn, and the queue says whether it arrived. (moto has no
 * TestEventPattern; its rules do match patterns.)
 */
export async function matchesOf(moto: MotoServer, pattern: unknown, events: readonly SampleEvent[]): Promise<boolean[]> {
  const config = sdkTestConfig(moto.endpoint);
  const eventBridge = new EventBridgeClient(config);
  const sqs = new SQSClient(config);
  const name = `pattern-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  await eventBridge.send(new PutRuleCommand({ Name: name, EventPattern: JSON.stringify(pattern), State: 'ENABLED' }));
  await eventBridge.send(new PutTargetsCommand({ Rule: name, Targets: [{ Id: 'queue', Arn: Attributes!.QueueArn }] }));
  const results: boolean[] = [];
  for (const event of events) {
    await eventBridge.send(new PutEventsCommand({ Entries: [{ Source: event.source, DetailType: event.detailType, Detail: JSON.stringify(event.detail) }] }));
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
    results.push((received.Messages ?? []).length > 0);
    await sqs.send(new PurgeQueueCommand({ QueueUrl }));
  }
  return results;
}
