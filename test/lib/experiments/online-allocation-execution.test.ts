// The online allocation workflow in moto's Step Functions engine, against moto's SageMaker (the endpoint and its
// weights), CloudWatch (the rollback alarms), DynamoDB (the prediction log) and SNS. moto's Lambda cannot run the
// allocation function without Docker, so each test first runs the function as it ships (the esbuild bundle,
// assets/lambda/bandit-allocation) against the predictions in moto's table, with the payloads the workflow sends,
// and queues what it returned as the Lambda's results. The workflow then runs to new weights, to a rollback, or to
// no change.
import { CloudWatchClient, PutMetricAlarmCommand, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeEndpointCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { Template } from 'aws-cdk-lib/assertions';
import type { BanditAllocationHandler, DecideResult } from '../../../lambda/bandit-allocation';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { handlerModulePaths, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv } from '../../support/handler-harness';
import { queueLambdaResults, sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { binaryPredictions, createPredictionLogTable, seedPredictions } from '../../support/prediction-log-table';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { onlineAllocation } from './fixtures';
import { createEndpoint, endpointWeights, topicWithQueue } from './moto-world';

const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:bandit-allocation-churn';
/** When the workflow's decision runs ($$.State.EnteredTime); fixed, so the function can be run beforehand. */
const NOW = '2026-12-06T12:00:00.000Z';
const HOUR = 3_600_000;

const world = onlineAllocation();
const template = Template.fromStack(world.stack).toJSON();
const logicalId = (construct: any) => world.stack.getLogicalId(construct.node?.defaultChild ?? construct);
const endpointName = `placeholder-${logicalId(world.endpoint.endpoint)}-EndpointName`;
const tableName = placeholderRef(logicalId(world.log.table));
const alarmNames = [...world.endpoint.alarms!.bySeverity.critical, ...world.endpoint.alarms!.bySeverity.warning].map((alarm) => placeholderRef(logicalId(alarm)));

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_DYNAMODB', 'PREDICTION_LOG_TABLE'], {
  POWERTOOLS_SERVICE_NAME: 'online-allocation-churn',
  POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/OnlineAllocation',
  PREDICTION_LOG_TABLE: tableName,
});

/** The workflow as moto runs it: the test's topic and function, and the fixed decision time. */
function definitionFor(topicArn: string): string {
  const parsed = JSON.parse(renderForMoto(template, /^BanditWorkflow/, { [placeholderArn(logicalId(world.topic))]: topicArn, [placeholderArn(logicalId(world.allocation.function))]: FUNCTION_ARN }));
  const payload = parsed.States['Decide allocation'].Parameters.Payload;
  expect(payload['now.$']).toBe('$$.State.EnteredTime');
  delete payload['now.$'];
  payload.now = NOW;
  return JSON.stringify(parsed);
}

/** The payloads the Lambda tasks were called with, in order. */
const payloads = (events: readonly HistoryEvent[]) =>
  events.filter((event) => event.taskScheduledEventDetails?.resourceType === 'lambda').map((event) => JSON.parse(event.taskScheduledEventDetails!.parameters!).Payload);

let moto: MotoServer;
let sagemaker: SageMakerClient;
let dynamodb: DynamoDBClient;
let cloudwatch: CloudWatchClient;
let handler: BanditAllocationHandler;
let notices: { topicArn: string; read: () => Promise<string[]> };

beforeAll(async () => {
  moto = await startMoto({ extended: true });
  setEnv({ AWS_ENDPOINT_URL_DYNAMODB: moto.endpoint });
  sagemaker = new SageMakerClient(sdkTestConfig(moto.endpoint));
  dynamodb = new DynamoDBClient(sdkTestConfig(moto.endpoint));
  cloudwatch = new CloudWatchClient(sdkTestConfig(moto.endpoint));
  handler = loadFreshHandler<BanditAllocationHandler>(handlerModulePaths('bandit-allocation').bundle);
}, 60_000);

afterAll(async () => {
  sagemaker?.destroy();
  dynamodb?.destroy();
  cloudwatch?.destroy();
  await moto?.stop();
});

// moto's Step Functions cannot start a second execution once one has run: every test starts from a reset moto.
beforeEach(async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  notices = await topicWithQueue(moto, 'allocation-notices');
  await createEndpoint(moto, endpointName, [
    { name: 'champion', weight: 90 },
    { name: 'challenger', weight: 10 },
  ]);
  for (const name of alarmNames) {
    await cloudwatch.send(new PutMetricAlarmCommand({ AlarmName: name, MetricName: 'Invocation5XXErrors', Namespace: 'AWS/SageMaker', Statistic: 'Sum', Period: 300, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: 'GreaterThanThreshold' }));
  }
  await createPredictionLogTable(dynamodb, tableName);
});

/** Outcomes of the last day (older than the hour outcomes take): the challenger converts twice as often. */
async function seedOutcomes(perVariant: number): Promise<void> {
  const now = Date.parse(NOW);
  await seedPredictions(dynamodb, tableName, [
    ...binaryPredictions('churn', 'champion', now - 20 * HOUR, now - 2 * HOUR, { ones: Math.round(perVariant * 0.3), zeros: perVariant - Math.round(perVariant * 0.3) }),
    ...binaryPredictions('churn', 'challenger', now - 20 * HOUR, now - 2 * HOUR, { ones: Math.round(perVariant * 0.6), zeros: perVariant - Math.round(perVariant * 0.6) }),
  ]);
}

/** Runs the shipped function's decision as the workflow's first call would make it, and its record call. */
async function decideAsTheWorkflowWould(status: 'deployed' | 'rolled-back' | 'skipped'): Promise<{ decision: DecideResult; results: unknown[] }> {
  const { ProductionVariants } = await sagemaker.send(new DescribeEndpointCommand({ EndpointName: endpointName }));
  const defaults = world.allocation.defaults as any;
  return quietly(async () => {
    const decision = await handler({ action: 'decide', model: 'churn', endpointName, variants: ProductionVariants as never, outcomeType: defaults.outcomeType, settings: defaults.settings, outcomeDelaySeconds: defaults.outcomeDelaySeconds, firstWindowHours: defaults.firstWindowHours, now: NOW });
    const recorded = await handler({ action: 'record', model: 'churn', decisionKey: decision.decisionKey, status, detail: 'as the workflow records it' });
    return { decision, results: [decision, recorded] };
  });
}

const start = () => runExecution(moto, definitionFor(notices.topicArn), { bakeSeconds: 1 }, 90_000);

test('outcomes that favour the challenger move it up by at most a step, the weights bake with no alarm and are kept', async () => {
  await seedOutcomes(200);
  const { decision, results } = await decideAsTheWorkflowWould('deployed');
  expect(decision).toMatchObject({ change: true, outcomesRead: 400, observations: { champion: 200, challenger: 200 } });
  const desired = Object.fromEntries(decision.desiredWeights.map((weight) => [weight.VariantName, weight.DesiredWeight]));
  expect(desired.challenger).toBeCloseTo(0.2, 6);
  expect(desired.champion).toBeCloseTo(0.8, 6);
  await queueLambdaResults(moto, results);

  const execution = await start();

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states).toEqual(
    expect.arrayContaining(['Describe endpoint', 'Endpoint in service?', 'Decide allocation', 'Weights change?', 'Apply weights', 'Bake', 'Read rollback alarms', 'Any alarm in ALARM', 'Roll back?', 'Record deployed', 'Weights moved']),
  );
  expect(execution.states).not.toContain('Restore previous weights');
  const [decideSent, recordSent] = payloads(execution.events);
  expect(decideSent).toMatchObject({ action: 'decide', model: 'churn', endpointName, now: NOW, outcomeType: 'binary', outcomeDelaySeconds: 3600, firstWindowHours: 24 });
  expect(decideSent.variants.map((variant: any) => [variant.VariantName, variant.CurrentWeight])).toEqual([
    ['champion', 90],
    ['challenger', 10],
  ]);
  expect(recordSent).toMatchObject({ action: 'record', model: 'churn', decisionKey: decision.decisionKey, status: 'deployed' });
  expect(recordSent.detail).toContain('baked 1 s with no rollback alarm');
  const weights = await endpointWeights(moto, endpointName);
  expect(weights.challenger).toBeCloseTo(0.2, 6);
  expect(weights.champion).toBeCloseTo(0.8, 6);
  expect(await notices.read()).toEqual([]);
});

test('a rollback alarm in ALARM after the bake puts the previous weights back, records it and fails as AllocationRolledBack', async () => {
  await seedOutcomes(200);
  const { decision, results } = await decideAsTheWorkflowWould('rolled-back');
  expect(decision.change).toBe(true);
  await queueLambdaResults(moto, results);
  await cloudwatch.send(new SetAlarmStateCommand({ AlarmName: alarmNames[0], StateValue: 'ALARM', StateReason: 'the challenger fails requests' }));

  const execution = await start();

  expect(execution).toMatchObject({ status: 'FAILED', error: 'AllocationRolledBack' });
  expect(execution.states.slice(execution.states.indexOf('Roll back?'))).toEqual([
    'Roll back?',
    'Restore previous weights',
    'Restore: describe endpoint',
    'Restore: endpoint in service?',
    'Record rolled back',
    'Rollback verdict',
    'Notify rollback',
    'Allocation rolled back',
  ]);
  const weights = await endpointWeights(moto, endpointName);
  expect(weights.champion! / (weights.champion! + weights.challenger!)).toBeCloseTo(0.9, 6);
  expect(payloads(execution.events)[1]).toMatchObject({ action: 'record', status: 'rolled-back', decisionKey: decision.decisionKey });
  const [notice] = await notices.read();
  expect(JSON.parse(notice!)).toMatchObject({ result: 'rolled-back', model: 'churn', decision: decision.decisionKey, states: expect.arrayContaining(['ALARM']) });
});

test('too few outcomes leave the weights as they are, recorded as skipped', async () => {
  await seedOutcomes(10);
  const { decision, results } = await decideAsTheWorkflowWould('skipped');
  expect(decision).toMatchObject({ change: false, reason: 'min-observations' });
  await queueLambdaResults(moto, results);

  const execution = await start();

  expect(execution.status).toBe('SUCCEEDED');
  expect(execution.states.slice(execution.states.indexOf('Weights change?'))).toEqual(['Weights change?', 'Record unchanged', 'Weights unchanged']);
  expect(payloads(execution.events)[1]).toMatchObject({ action: 'record', status: 'skipped', detail: 'no change: min-observations' });
  expect(await endpointWeights(moto, endpointName)).toEqual({ champion: 90, challenger: 10 });
});
