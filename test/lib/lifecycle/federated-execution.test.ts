// The federated training workflow in moto's Step Functions engine, with two client silos in two accounts and
// regions. moto's Lambda cannot run the round function without Docker, so each test first runs the function as
// it ships (the esbuild bundle, assets/lambda/federated-round) against moto's S3, STS, SSM and SageMaker, with
// the very payloads the workflow sends, and queues what it returned (or the error it threw) as the Lambda's
// results; the silos' training containers are played by putting each job's model.tar.gz where SageMaker would.
// The workflow then runs from its start to the registered global model, or to its failure ends.
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateModelPackageGroupCommand, DescribeModelPackageCommand, ListModelPackagesCommand, SageMakerClient } from '@aws-sdk/client-sagemaker';
import type { HistoryEvent } from '@aws-sdk/client-sfn';
import { Template } from 'aws-cdk-lib/assertions';
import type { FederatedRoundHandler, FederationClientSpec, FederationSpecInput } from '../../../lambda/federated-round';
import { readTarGz, findTarFile } from '../../../lambda/shared/tar';
import { placeholderArn, placeholderRef } from '../../support/asl';
import { MotoSilos, updateFiles, type Update } from '../../support/federated-silos';
import { handlerModulePaths, loadFreshHandler, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv } from '../../support/handler-harness';
import { queueLambdaResults, sdkTestConfig, startMoto, type MotoServer } from '../../support/moto';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';
import { topicWithQueue } from '../experiments/moto-world';
import { federatedCoordinator } from './fixtures';

const STATE_BUCKET = 'model-artifacts';
const KEY_ARN = 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:federated-round-churn';
/** The execution's name the workflow passes as the run id; fixed, so the function can be run beforehand. */
const RUN_ID = 'churn-federated-2026-12-06';
const INITIAL_MODEL_KEY = 'churn/federated/initial/model.json';
const INITIAL_PARAMETERS = [0.25, -0.5, 1, 0];

const world = federatedCoordinator({ maxRounds: 2, patience: undefined, roundTimeout: undefined });
const template = Template.fromStack(world.stack).toJSON();
const logicalId = (construct: { node: { defaultChild?: unknown } }) => world.stack.getLogicalId(construct.node.defaultChild as any);
const groupName = world.group.modelPackageGroupName;

const setEnv = useHandlerEnv([...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SAGEMAKER', 'AWS_ENDPOINT_URL_STS', 'AWS_ENDPOINT_URL_SSM', 'STATE_BUCKET', 'STATE_PREFIX', 'KMS_KEY_ID'], {
  POWERTOOLS_SERVICE_NAME: 'federated-churn',
  POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Federated',
  STATE_BUCKET,
  STATE_PREFIX: 'churn/federated/',
  KMS_KEY_ID: KEY_ARN,
});

/**
 * The workflow as moto runs it: the test's bucket, topic, key and function, the fixed run id, and a second
 * where the workflow waits minutes between checks or backs off before a retry.
 */
function definitionFor(topicArn: string): string {
  const rendered = renderForMoto(template, /ChurnFederation/, {
    [placeholderRef(logicalId(world.artifactsBucket))]: STATE_BUCKET,
    [placeholderArn(logicalId(world.topic))]: topicArn,
    [placeholderArn(logicalId(world.key))]: KEY_ARN,
    [placeholderArn(logicalId(world.construct.function))]: FUNCTION_ARN,
  });
  const parsed = JSON.parse(rendered);
  const start = parsed.States['Start federation'].Parameters.Payload;
  expect(start['runId.$']).toBe('$$.Execution.Name');
  delete start['runId.$'];
  start.runId = RUN_ID;
  expect(parsed.States['Wait for training'].Seconds).toBe(300);
  parsed.States['Wait for training'].Seconds = 1;
  for (const state of Object.values<any>(parsed.States)) for (const retry of state.Retry ?? []) if (retry.IntervalSeconds !== undefined) retry.IntervalSeconds = 1;
  return JSON.stringify(parsed);
}

/** The federation spec the workflow sends with its first call. */
const spec = (): FederationSpecInput => JSON.parse(definitionFor('arn:aws:sns:us-east-1:123456789012:x')).States['Start federation'].Parameters.Payload.federation;

/** The payloads the Lambda tasks were called with, in order. */
const payloads = (events: readonly HistoryEvent[]) =>
  events.flatMap((event) => {
    const scheduled = event.lambdaFunctionScheduledEventDetails ?? (event.taskScheduledEventDetails?.resourceType === 'lambda' ? event.taskScheduledEventDetails : undefined);
    if (scheduled === undefined) return [];
    const input = JSON.parse(('input' in scheduled ? scheduled.input : (scheduled as { parameters?: string }).parameters) ?? 'null');
    return [input.Payload ?? input];
  });

/** What the function answers for a handler that threw, as Lambda reports it. */
const functionError = (error: Error) => ({ errorType: error.name, errorMessage: error.message });

let moto: MotoServer;
let s3: S3Client;
let sagemaker: SageMakerClient;
let silos: MotoSilos;
let handler: FederatedRoundHandler;
let notices: { topicArn: string; read: () => Promise<string[]> };

beforeAll(async () => {
  moto = await startMoto({ extended: true });
  setEnv({ AWS_ENDPOINT_URL_S3: moto.endpoint, AWS_ENDPOINT_URL_SAGEMAKER: moto.endpoint, AWS_ENDPOINT_URL_STS: moto.endpoint, AWS_ENDPOINT_URL_SSM: moto.endpoint });
  s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
  sagemaker = new SageMakerClient(sdkTestConfig(moto.endpoint));
  silos = new MotoSilos(moto.endpoint);
  handler = loadFreshHandler<FederatedRoundHandler>(handlerModulePaths('federated-round').bundle);
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  sagemaker?.destroy();
  silos?.destroy();
  await moto?.stop();
});

// moto's Step Functions cannot start a second execution once one has run: every test starts from a reset moto.
beforeEach(async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  notices = await topicWithQueue(moto, 'federation-notices');
  await s3.send(new CreateBucketCommand({ Bucket: STATE_BUCKET }));
  await s3.send(new PutObjectCommand({ Bucket: STATE_BUCKET, Key: INITIAL_MODEL_KEY, Body: JSON.stringify({ parameters: INITIAL_PARAMETERS }) }));
  await sagemaker.send(new CreateModelPackageGroupCommand({ ModelPackageGroupName: groupName }));
  for (const client of spec().clients) await silos.prepare(client as FederationClientSpec);
});

const UPDATES: Record<number, Record<string, Update>> = {
  1: { 'north-america': { sampleCount: 600, update: [0.1, 0.2, -0.1, 0], metrics: { auc: 0.71 } }, europe: { sampleCount: 200, update: [-0.1, 0.4, 0.3, 0.2], metrics: { auc: 0.75 } } },
  2: { 'north-america': { sampleCount: 600, update: [0.05, -0.1, 0, 0.1], metrics: { auc: 0.78 } }, europe: { sampleCount: 200, update: [0.05, 0.1, -0.2, 0], metrics: { auc: 0.8 } } },
};

/**
 * Runs the shipped function through the rounds as the workflow would, the silos delivering `deliver(round)`'s
 * files; returns each call's payload and result (or error), up to the first error.
 */
async function federateAsTheWorkflowWould(deliver: (round: number, client: string) => Update | undefined): Promise<Array<{ payload: Record<string, unknown>; result: unknown }>> {
  const calls: Array<{ payload: Record<string, unknown>; result: unknown }> = [];
  const call = async (payload: Record<string, unknown>) => {
    try {
      const result = await handler(payload as never);
      calls.push({ payload, result });
      return result as any;
    } catch (error) {
      calls.push({ payload, result: functionError(error as Error) });
      return undefined;
    }
  };
  await quietly(async () => {
    const started = await call({ action: 'start', runId: RUN_ID, federation: spec(), initialModelUri: `s3://${STATE_BUCKET}/${INITIAL_MODEL_KEY}` });
    if (started === undefined) return;
    for (let round = 1; ; round++) {
      const at = { runId: RUN_ID, round };
      if ((await call({ action: 'startRound', ...at })) === undefined) return;
      const state = JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: STATE_BUCKET, Key: `churn/federated/${RUN_ID}/round-000${round}/round.json` }))).Body!.transformToString());
      for (const client of spec().clients) {
        const update = deliver(round, client.name);
        const files = update === undefined ? [{ name: './training-log.txt', data: 'out of memory\n' }] : updateFiles(update);
        await silos.deliver(client as FederationClientSpec, state.clients[client.name].jobName, files);
      }
      if ((await call({ action: 'checkRound', ...at })) === undefined) return;
      const aggregated = await call({ action: 'aggregate', ...at });
      if (aggregated === undefined) return;
      if (aggregated.converged) {
        await call({ action: 'package', runId: RUN_ID, round });
        return;
      }
    }
  });
  return calls;
}

const start = (input: Record<string, unknown> = { initialModelKey: INITIAL_MODEL_KEY }) => runExecution(moto, definitionFor(notices.topicArn), input, 60_000);

test('two rounds across two silos end with the global model registered, pending approval, with its lineage', async () => {
  const calls = await federateAsTheWorkflowWould((round, client) => UPDATES[round]![client]);
  expect(calls.map((entry) => entry.payload.action)).toEqual(['start', 'startRound', 'checkRound', 'aggregate', 'startRound', 'checkRound', 'aggregate', 'package']);
  await queueLambdaResults(moto, calls.map((entry) => entry.result));

  const execution = await start();

  expect(execution.status).toBe('SUCCEEDED');
  expect(payloads(execution.events)).toEqual(calls.map((entry) => entry.payload));
  const round = ['Start round', 'Wait for training', 'Check round', 'Round finished?', 'Aggregate round', 'Converged?'];
  expect(execution.states).toEqual([
    'Input names the initial model?',
    'Start federation',
    'First round',
    ...round,
    'Next round',
    ...round,
    'Package global model',
    'Register global model',
    'Registered verdict',
    'Notify registration',
    'Output verdict',
  ]);
  // The model the package step wrote: FedAvg of both rounds (weights 3/4 and 1/4), applied to the initial model.
  const fedavg = (updates: Record<string, Update>) => [0, 1, 2, 3].map((c) => 0.75 * updates['north-america']!.update[c]! + 0.25 * updates.europe!.update[c]!);
  const expected = INITIAL_PARAMETERS.map((value, c) => value + fedavg(UPDATES[1]!)[c]! + fedavg(UPDATES[2]!)[c]!);
  const [packaged] = calls.slice(-1).map((entry) => entry.result as { modelDataUrl: string });
  const [, key] = /^s3:\/\/[^/]+\/(.+)$/.exec(packaged!.modelDataUrl)!;
  const archive = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: STATE_BUCKET, Key: key }))).Body!.transformToByteArray());
  const model = JSON.parse(Buffer.from(findTarFile(readTarGz(archive), 'model.json')!.data).toString('utf8'));
  model.parameters.forEach((value: number, c: number) => expect(value).toBeCloseTo(expected[c]!, 12));

  const { ModelPackageSummaryList } = await sagemaker.send(new ListModelPackagesCommand({ ModelPackageGroupName: groupName }));
  expect(ModelPackageSummaryList).toHaveLength(1);
  const version = await sagemaker.send(new DescribeModelPackageCommand({ ModelPackageName: ModelPackageSummaryList![0]!.ModelPackageArn }));
  expect(version).toMatchObject({
    ModelApprovalStatus: 'PendingManualApproval',
    InferenceSpecification: { Containers: [{ ModelDataUrl: packaged!.modelDataUrl }] },
    CustomerMetadataProperties: { Federation: 'churn', FederatedRun: RUN_ID, Rounds: '2', Aggregator: 'fedavg', Metric: 'auc', StopReason: 'max-rounds', Clients: 'north-america,europe' },
  });
  expect(Number(version.CustomerMetadataProperties!.MetricValue)).toBeCloseTo(0.75 * 0.78 + 0.25 * 0.8, 12);
  const messages = (await notices.read()).map((message) => JSON.parse(message));
  expect(messages).toEqual([expect.objectContaining({ result: 'registered', rounds: 2, reason: 'max-rounds', metric: 'auc', failedClients: [] })]);
});

test('a silo that sends no update fails the round; without the quorum the run stops as RoundFailedError, naming it, and notifies', async () => {
  const calls = await federateAsTheWorkflowWould((round, client) => (client === 'europe' ? undefined : UPDATES[round]![client]));
  expect(calls.map((entry) => entry.payload.action)).toEqual(['start', 'startRound', 'checkRound', 'aggregate']);
  const failure = calls.at(-1)!.result as { errorType: string; errorMessage: string };
  expect(failure.errorType).toBe('RoundFailedError');
  expect(failure.errorMessage).toContain('europe');
  // Were the failed call retried, it would take this result and go on.
  await queueLambdaResults(moto, [...calls.map((entry) => entry.result), { converged: true }]);

  const execution = await start();

  expect(execution).toMatchObject({ status: 'FAILED', error: 'RoundFailedError' });
  expect(execution.cause).toContain(failure.errorMessage);
  expect(payloads(execution.events)).toHaveLength(4);
  expect(execution.states.slice(execution.states.indexOf('Aggregate round'))).toEqual(['Aggregate round', 'Describe failure', 'Notify failure', 'Federated run failed']);
  const [notice] = await notices.read();
  expect(JSON.parse(notice!)).toMatchObject({ error: 'RoundFailedError', cause: execution.cause, console: expect.stringContaining('#/v2/executions/details/') });
  const { ModelPackageSummaryList } = await sagemaker.send(new ListModelPackagesCommand({ ModelPackageGroupName: groupName }));
  expect(ModelPackageSummaryList).toEqual([]);
});

test('an input without the initial model, or one outside the federation prefix, stops at once without calling the function', async () => {
  for (const input of [{}, { initialModelKey: 'other/model.json' }]) {
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    const execution = await runExecution(moto, definitionFor('arn:aws:sns:us-east-1:123456789012:unused'), input, 30_000);
    expect(execution).toMatchObject({ status: 'FAILED', error: 'FederatedInputError' });
    expect(execution.cause).toContain('initialModelKey: must be the key of the initial global model');
    expect(payloads(execution.events)).toEqual([]);
  }
});
