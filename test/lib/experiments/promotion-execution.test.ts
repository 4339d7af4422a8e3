import { createPredictionLogTable } from '../../support/prediction-log-table';
import { CloudWatchClient, PutMetricAlarmCommand, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient, GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { Template } from 'aws-cdk-lib/assertions';
import { ChampionChallengerPromotion } from '../../../lib/experiments/champion-challenger-promotion';
import { PredictionLog } from '../../../lib/experiments/prediction-log';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { experimentStack } from './fixtures';
import { createEndpoint, endpointWeights, numbersIn, startTraffic, topicWithQueue } from './moto-world';

/**
 * The promotion workflow, synthesized by CDK, run in moto's Step Functions engine against moto's
 * SageMaker, CloudWatch, DynamoDB and SNS. Every state it uses is a direct service integration, so
 * the whole workflow runs; only the p99 statistic is swapped for Maximum, because moto computes no
 * percentiles.
 */
const { stack, key, topic, endpoint } = experimentStack();
const log = new PredictionLog(stack, 'Log', { encryptionKey: key });
new ChampionChallengerPromotion(stack, 'Promotion', { endpoint, notificationTopic: topic, encryptionKey: key, predictionLog: log });
const template = Template.fromStack(stack).toJSON();
const logicalId = (construct: { node: { defaultChild?: unknown } } | any) => stack.getLogicalId(construct);
const endpointName = `placeholder-${logicalId(endpoint.endpoint)}-EndpointName`;
const tableName = placeholderRef(logicalId(log.table.node.defaultChild));
const alarmNames = [...endpoint.alarms!.bySeverity.critical, ...endpoint.alarms!.bySeverity.warning].map((alarm) => placeholderRef(logicalId(alarm.node.defaultChild)));

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

interface World {
  definition: string;
  notifications: () => Promise<string[]>;
}

/** Fresh moto state (moto needs a reset between executions), with the endpoint, alarms, table and topic the workflow uses. */
async function world(): Promise<World> {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const config = sdkTestConfig(moto.endpoint);
  await createEndpoint(moto, endpointName, [
    { name: 'champion', weight: 90 },
    { name: 'challenger', weight: 10 },
  ]);
  const cloudwatch = new CloudWatchClient(config);
  for (const name of alarmNames) {
    await cloudwatch.send(
      new PutMetricAlarmCommand({ AlarmName: name, MetricName: 'Invocation5XXErrors', Namespace: 'AWS/SageMaker', Statistic: 'Sum', Period: 300, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: 'GreaterThanThreshold' }),
    );
  }
  const dynamodb = new DynamoDBClient(config);
  await createPredictionLogTable(dynamodb, tableName);

  const { topicArn, read } = await topicWithQueue(moto, 'promotions');
  const definition = renderForMoto(template, /^PromotionWorkflow/, { [placeholderArn(logicalId(topic.node.defaultChild))]: topicArn });
  return { definition, notifications: read };
}

interface Traffic {
  challengerErrorRate: number;
  challengerLatency: number;
}

async function promote(definition: string, traffic: Traffic, input: Record<string, unknown> = {}) {
  const stop = startTraffic(moto, endpointName, {
    champion: { invocations: 90, errorRate: 0.002, latency: 40_000 },
    challenger: { invocations: 10, errorRate: traffic.challengerErrorRate, latency: traffic.challengerLatency },
  });
  try {
    return await runExecution(moto, definition, { ...FAST, ...input });
  } finally {
    await stop();
  }
}

const HEALTHY: Traffic = { challengerErrorRate: 0.001, challengerLatency: 38_000 };

// moto computes no percentiles, so the tests compare on Maximum; two-second bakes keep the run short.
const FAST = { bakeSeconds: 2, metricPeriodSeconds: 60, latencyStatistic: 'Maximum', minInvocations: 5 };

describe('champion-challenger promotion, run in moto', () => {
  test('promotes a healthy challenger step by step and records it as the new champion', async () => {
    const { definition, notifications } = await world();
    const result = await promote(definition, HEALTHY);
    expect({ status: result.status, error: result.error, cause: result.cause }).toEqual({ status: 'SUCCEEDED', error: undefined, cause: undefined });
    expect(result.states.filter((state) => state === 'Shift traffic')).toHaveLength(4);
    expect(result.states).toContain('Challenger promoted');
    expect(await endpointWeights(moto, endpointName)).toEqual({ champion: 0, challenger: 100 });
    const item = await new DynamoDBClient(sdkTestConfig(moto.endpoint)).send(new GetItemCommand({ TableName: tableName, Key: { predictionId: { S: 'champion#churn' } } }));
    expect(item.Item).toMatchObject({ variant: { S: 'challenger' }, previousChampion: { S: 'champion' } });
    expect(JSON.stringify(await notifications())).toContain('challenger now serves all traffic');
  });

  test('rolls all traffic back to the champion when a rollback alarm fires during a bake', async () => {
    const { definition, notifications } = await world();
    await new CloudWatchClient(sdkTestConfig(moto.endpoint)).send(new SetAlarmStateCommand({ AlarmName: alarmNames[1], StateValue: 'ALARM', StateReason: 'test' }));
    const result = await promote(definition, HEALTHY);
    expect(result).toMatchObject({ status: 'FAILED', error: 'RolledBack' });
    expect(result.cause).toContain('a rollback alarm is in ALARM while baking; alarms [');
    expect(result.cause).toContain('] are in states ["OK","ALARM","OK","OK","OK","OK"]');
    expect(result.states.filter((state) => state === 'Shift traffic')).toHaveLength(1);
    expect(await endpointWeights(moto, endpointName)).toEqual({ champion: 1, challenger: 0 });
    expect(JSON.stringify(await notifications())).toContain('rollback alarm');
  });

  test('rejects a challenger whose error rate breaks the guardrail, without moving any traffic', async () => {
    const { definition } = await world();
    const result = await promote(definition, { challengerErrorRate: 0.2, challengerLatency: 38_000 });
    expect(result).toMatchObject({ status: 'FAILED', error: 'PromotionRejected' });
    const [rate, limit, baseline] = numbersIn(result.cause, /^candidate 5xx error rate (\S+) is above the limit (\S+) and above the baseline (\S+)$/);
    expect(rate).toBeCloseTo(0.2, 9);
    expect(limit).toBe(0.01);
    expect(baseline).toBeCloseTo(0.002, 9);
    expect(result.states).not.toContain('Shift traffic');
    expect(await endpointWeights(moto, endpointName)).toEqual({ champion: 90, challenger: 10 });
  });

  test('rejects a challenger slower than both its latency limit and the champion', async () => {
    const { definition } = await world();
    const result = await promote(definition, { challengerErrorRate: 0, challengerLatency: 2_500_000 });
    expect(result).toMatchObject({ status: 'FAILED', error: 'PromotionRejected' });
    expect(numbersIn(result.cause, /^candidate Maximum model latency (\S+) us is above the limit (\S+) us and above the baseline (\S+) us$/)).toEqual([2_500_000, 1_000_000, 40_000]);
  });

  test('refuses to start when the latest A/B analysis found the champion better', async () => {
    const { definition } = await world();
    await new DynamoDBClient(sdkTestConfig(moto.endpoint)).send(
      new PutItemCommand({ TableName: tableName, Item: { predictionId: { S: 'analysis#churn' }, decision: { S: 'a-wins' }, analyzedAt: { S: '2026-11-20T10:00:00Z' } } }),
    );
    const result = await promote(definition, HEALTHY);
    expect(result).toMatchObject({ status: 'FAILED', error: 'PromotionRejected', cause: 'the latest A/B analysis (2026-11-20T10:00:00Z) found the champion significantly better' });
    expect(result.states).not.toContain('Shift traffic');
  });

  test('rejects bad input at the first states with the field named', async () => {
    const { definition } = await world();
    expect(await runExecution(moto, definition, { ...FAST, challengerVariant: 7 })).toMatchObject({
      status: 'FAILED',
      error: 'InvalidInput',
      cause: 'config.challengerVariant: must be a string',
    });
    await moto.reset();
    const again = await world();
    expect(await runExecution(moto, again.definition, { ...FAST, maxErrorRate: 3 })).toMatchObject({
      status: 'FAILED',
      error: 'InvalidInput',
      cause: 'config.maxErrorRate: must be a number and between 0 and 1',
    });
  });
});
