import { CloudWatchClient, PutMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { CreateEndpointCommand, CreateEndpointConfigCommand, CreateModelCommand, DescribeEndpointCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { sdkTestConfig, type MotoServer } from '../../support/moto';

/** Shared moto fixtures of the experiment workflow tests. */

export interface VariantSpec {
  readonly name: string;
  readonly weight: number;
}

/** A SageMaker endpoint in moto with the given production (and optional shadow) variants. */
export async function createEndpoint(moto: MotoServer, endpointName: string, variants: VariantSpec[], shadow?: VariantSpec): Promise<void> {
  const sagemaker = new SageMakerClient(sdkTestConfig(moto.endpoint));
  const variant = (spec: VariantSpec) => ({ VariantName: spec.name, ModelName: `model-${spec.name}`, InitialInstanceCount: 1, InstanceType: 'ml.m5.large' as const, InitialVariantWeight: spec.weight });
  for (const spec of [...variants, ...(shadow ? [shadow] : [])]) {
    await sagemaker.send(new CreateModelCommand({ ModelName: `model-${spec.name}`, ExecutionRoleArn: 'arn:aws:iam::123456789012:role/sm', PrimaryContainer: { Image: 'x' } }));
  }
  await sagemaker.send(
    new CreateEndpointConfigCommand({
      EndpointConfigName: `${endpointName}-config`,
      ProductionVariants: variants.map(variant),
      ShadowProductionVariants: shadow ? [variant(shadow)] : undefined,
    }),
  );
  await sagemaker.send(new CreateEndpointCommand({ EndpointName: endpointName, EndpointConfigName: `${endpointName}-config` }));
}

/** The weight of each production variant, as moto reports it. */
export async function endpointWeights(moto: MotoServer, endpointName: string): Promise<Record<string, number | undefined>> {
  const described = await new SageMakerClient(sdkTestConfig(moto.endpoint)).send(new DescribeEndpointCommand({ EndpointName: endpointName }));
  return Object.fromEntries((described.ProductionVariants ?? []).map((variant) => [variant.VariantName!, variant.DesiredWeight ?? variant.CurrentWeight]));
}

/** An SNS topic with an SQS queue subscribed (raw delivery), to read what a workflow notified. */
export async function topicWithQueue(moto: MotoServer, name: string): Promise<{ topicArn: string; read: () => Promise<string[]> }> {
  const config = sdkTestConfig(moto.endpoint);
  const sns = new SNSClient(config);
  const sqs = new SQSClient(config);
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: Attributes!.QueueArn, Attributes: { RawMessageDelivery: 'true' } }));
  return {
    topicArn: TopicArn!,
    read: async () => {
      const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10 }));
      return (received.Messages ?? []).map((message) => message.Body ?? '');
    },
  };
}

export interface VariantTraffic {
  readonly invocations: number;
  /** Average of Invocation5XXErrors: the share of requests that failed. */
  readonly errorRate: number;
  /** ModelLatency in microseconds. */
  readonly latency: number;
}

/**
 * Live traffic, as SageMaker reports it: each variant's metrics every 200 ms with the current time,
 * so that every window an execution reads holds datapoints. Returns a function that stops it.
 */
export function startTraffic(moto: MotoServer, endpointName: string, traffic: Record<string, VariantTraffic>): () => Promise<void> {
  const cloudwatch = new CloudWatchClient(sdkTestConfig(moto.endpoint));
  let pending: Promise<unknown> = Promise.resolve();
  const publish = () => {
    const at = new Date();
    const data = Object.entries(traffic).flatMap(([variant, figures]) =>
      (
        [
          ['Invocations', figures.invocations],
          ['Invocation5XXErrors', figures.errorRate],
          ['ModelLatency', figures.latency],
        ] as const
      ).map(([name, value]) => ({
        MetricName: name,
        Value: value,
        Timestamp: at,
        Dimensions: [
          { Name: 'EndpointName', Value: endpointName },
          { Name: 'VariantName', Value: variant },
        ],
      })),
    );
    pending = cloudwatch.send(new PutMetricDataCommand({ Namespace: 'AWS/SageMaker', MetricData: data }));
  };
  publish();
  const timer = setInterval(publish, 200);
  return async () => {
    clearInterval(timer);
    await pending;
  };
}

/** The numbers a verdict reason reports (moto prints floats the way Python does, e.g. 40000.0). */
export function numbersIn(text: string | undefined, pattern: RegExp): number[] {
  const match = pattern.exec(text ?? '');
  if (!match) throw new Error(`'${text}' does not match ${pattern}`);
  return match.slice(1).map(Number);
}
