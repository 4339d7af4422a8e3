import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ShadowComparison } from '../../../lib/experiments/shadow-comparison';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { experimentStack, IMAGE } from './fixtures';
import { createEndpoint, numbersIn, startTraffic, topicWithQueue, type VariantTraffic } from './moto-world';

/** The shadow comparison workflow, synthesized by CDK and run in moto's Step Functions engine. */
const instance = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };
const { stack, key, topic, endpoint } = experimentStack({
  variants: [{ name: 'production', model: { version: '1.0.0', image: IMAGE }, capacity: instance }],
  shadowVariants: [{ name: 'shadow', samplingPercentage: 50, model: { version: '2.0.0', image: IMAGE }, capacity: instance }],
});
const bucket = new s3.Bucket(stack, 'Verdicts', { encryptionKey: key });
new ShadowComparison(stack, 'Shadow', { endpoint, verdictBucket: bucket, notificationTopic: topic, encryptionKey: key });
const template = Template.fromStack(stack).toJSON();
const endpointName = `placeholder-${stack.getLogicalId(endpoint.endpoint)}-EndpointName`;
const bucketName = placeholderRef(stack.getLogicalId(bucket.node.defaultChild as s3.CfnBucket));

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

async function compare(shadow: VariantTraffic, input: Record<string, unknown> = {}) {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  await createEndpoint(moto, endpointName, [{ name: 'production', weight: 1 }], { name: 'shadow', weight: 0.5 });
  await new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: bucketName }));
  const { topicArn, read } = await topicWithQueue(moto, 'shadow-verdicts');
  const definition = renderForMoto(template, /^ShadowWorkflow/, { [placeholderArn(stack.getLogicalId(topic.node.defaultChild as any))]: topicArn });
  const stop = startTraffic(moto, endpointName, { production: { invocations: 50, errorRate: 0.001, latency: 30_000 }, shadow });
  try {
    const result = await runExecution(moto, definition, { observationSeconds: 2, metricPeriodSeconds: 60, latencyStatistic: 'Maximum', minInvocations: 5, ...input });
    return { result, notifications: await read() };
  } finally {
    await stop();
  }
}

async function verdictObject(executionOutput: any): Promise<any> {
  const s3Client = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
  // The object is named after the execution, so list the model's prefix: exactly one verdict per run.
  const listed = await s3Client.send(new ListObjectsV2Command({ Bucket: bucketName, Prefix: 'experiments/shadow/churn/' }));
  expect(listed.Contents).toHaveLength(1);
  const object = await s3Client.send(new GetObjectCommand({ Bucket: bucketName, Key: listed.Contents![0].Key! }));
  const body = JSON.parse(await object.Body!.transformToString());
  expect(body.verdict).toBe(executionOutput.verdict);
  return body;
}

describe('shadow comparison, run in moto', () => {
  test('finds a shadow as good as production promote-ready and records the verdict in S3, SNS and CloudWatch', async () => {
    const { result, notifications } = await compare({ invocations: 25, errorRate: 0.0005, latency: 28_000 });
    expect({ status: result.status, cause: result.cause }).toEqual({ status: 'SUCCEEDED', cause: undefined });
    expect(result.output).toMatchObject({ verdict: 'promote-ready', promoteReady: 1, model: 'churn', productionVariant: 'production', shadowVariant: 'shadow' });
    const stored = await verdictObject(result.output);
    expect(stored.metrics.candidateLatency).toBe(28_000);
    expect(notifications.join()).toContain('promote-ready');
    const metric = await new CloudWatchClient(sdkTestConfig(moto.endpoint)).send(
      new GetMetricStatisticsCommand({
        Namespace: 'MlPlatform/Experiments',
        MetricName: 'ShadowPromoteReady',
        Dimensions: [{ Name: 'Model', Value: 'churn' }],
        StartTime: new Date(Date.now() - 600_000),
        EndTime: new Date(Date.now() + 60_000),
        Period: 60,
        Statistics: ['Maximum'],
      }),
    );
    expect(metric.Datapoints?.map((point) => point.Maximum)).toEqual([1]);
  });

  test('says why a slower shadow is not ready', async () => {
    const { result } = await compare({ invocations: 25, errorRate: 0, latency: 1_500_000 });
    expect(result.status).toBe('SUCCEEDED');
    expect(result.output).toMatchObject({ verdict: 'not-ready', promoteReady: 0 });
    expect(numbersIn(result.output.reason, /^candidate Maximum model latency (\S+) us is above the limit (\S+) us and above the baseline (\S+) us$/)).toEqual([1_500_000, 1_000_000, 30_000]);
    await verdictObject(result.output);
  });

  test('reports insufficient data when the shadow received too few requests', async () => {
    const { result } = await compare({ invocations: 1, errorRate: 0, latency: 28_000 }, { minInvocations: 1000 });
    expect(result.output).toMatchObject({ verdict: 'insufficient-data', promoteReady: 0 });
    expect(result.output.reason).toMatch(/^the candidate served \S+ requests in the window; at least 1000 are needed to judge it$/);
  });

  test('rejects bad input at the first states with the field named', async () => {
    const { result } = await compare({ invocations: 25, errorRate: 0, latency: 28_000 }, { observationSeconds: 'soon' });
    expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'config.observationSeconds: must be a number and at least 1' });
  });
});
