// The federated-learning coordinator (lambda/federated-round), its source and its esbuild bundle, against
// moto: the coordinator in one account, client silos in other accounts and regions. moto maps the
// credentials of an STS AssumeRole to the role's account, so the test creates each silo's exchange bucket
// and settings parameter as that client (its assumed role, in its region), and plays each client's
// training container by putting the job's model.tar.gz where SageMaker would (moto's training jobs
// complete at once). A local stand-in speaking SageMaker's JSON 1.1 protocol plays jobs that are still
// running, throttled calls and jobs that already exist; a proxy in front of moto's S3 plays an S3 that
// goes away.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeTrainingJobCommand } from '@aws-sdk/client-sagemaker';
import type { AggregateResult, FederatedRoundHandler, FederationClientSpec, FederationSpecInput } from '../../lambda/federated-round';
import { findTarFile, readTarGz, writeTarGz, type TarFile } from '../../lambda/shared/tar';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, POWERTOOLS_METRICS_ENV_KEYS, quietly, useHandlerEnv } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { startDroppingProxy, type DroppingProxy } from '../support/dropping-proxy';
import { MotoSilos, siloSettings, updateFiles, type SiloClients, type Update } from '../support/federated-silos';

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('federated-round');

const STATE_BUCKET = 'ml-federation-state';
const STATE_PREFIX = 'federated/churn/';
const COORDINATOR_KEY = 'arn:aws:kms:us-east-1:123456789012:key/0f0e0d0c-1111-2222-3333-444455556666';
const INITIAL_MODEL_KEY = `${STATE_PREFIX}initial/model.json`;
const INITIAL_MODEL_URI = `s3://${STATE_BUCKET}/${INITIAL_MODEL_KEY}`;
const INITIAL_PARAMETERS = [0.5, -1, 2, 0];
const SETTINGS_PARAMETER = '/churn-federated-access/exchange';

const setEnv = useHandlerEnv(
  [...POWERTOOLS_METRICS_ENV_KEYS, 'AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL_SAGEMAKER', 'AWS_ENDPOINT_URL_STS', 'AWS_ENDPOINT_URL_SSM', 'STATE_BUCKET', 'STATE_PREFIX', 'KMS_KEY_ID'],
  { POWERTOOLS_SERVICE_NAME: 'federated-round-test', POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Federated', STATE_BUCKET, STATE_PREFIX, KMS_KEY_ID: COORDINATOR_KEY },
);

const client = (name: string, account: string, region: string): FederationClientSpec => ({
  name,
  account,
  region,
  roleArn: `arn:aws:iam::${account}:role/churn-federated-access`,
  settingsParameter: SETTINGS_PARAMETER,
});
const NORTH = client('north', '111111111111', 'us-east-1');
/** south pulls its image from its own region. */
const SOUTH: FederationClientSpec = { ...client('south', '222222222222', 'eu-west-1'), trainingImage: '222222222222.dkr.ecr.eu-west-1.amazonaws.com/churn-fl:1' };
const WEST = client('west', '333333333333', 'eu-central-1');


function federation(overrides: Partial<FederationSpecInput> = {}): FederationSpecInput {
  return {
    name: 'churn',
    clients: [NORTH, SOUTH],
    training: { image: '111122223333.dkr.ecr.us-east-1.amazonaws.com/churn-fl:1', instanceType: 'ml.m5.xlarge', maxRuntimeSeconds: 3600, hyperparameters: { epochs: '2' } },
    aggregation: { aggregator: 'fedavg', serverLearningRate: 0.5 },
    minClients: 2,
    roundTimeoutSeconds: 600,
    metric: { name: 'accuracy', direction: 'higher-is-better' },
    convergence: { maxRounds: 2 },
    ...overrides,
  };
}


/** FedAvg and the server step, computed here: w_i = n_i/Σn, global + η·Σ w_i·u_i. */
function expectedGlobal(global: readonly number[], updates: readonly Update[], eta: number): number[] {
  const total = updates.reduce((sum, update) => sum + update.sampleCount, 0);
  return global.map((value, c) => value + eta * updates.reduce((sum, update) => sum + (update.sampleCount / total) * update.update[c]!, 0));
}

function expectedMetric(updates: readonly Update[], name: string): number {
  const reporting = updates.filter((update) => update.metrics?.[name] !== undefined && update.sampleCount > 0);
  const total = reporting.reduce((sum, update) => sum + update.sampleCount, 0);
  return reporting.reduce((sum, update) => sum + update.sampleCount * update.metrics![name]!, 0) / total;
}

function expectCloseTo(actual: readonly number[], expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 12));
}

async function rejects(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected the handler to throw');
}

let moto: MotoServer;
let proxy: DroppingProxy;
let coordinator: S3Client;
let silos: MotoSilos;

const withClient = <T>(silo: FederationClientSpec, fn: (clients: SiloClients) => Promise<T>): Promise<T> => silos.withClient(silo, fn);
const prepareSilo = (silo: FederationClientSpec, settings?: unknown): Promise<void> => silos.prepare(silo, settings);

async function coordinatorJson<T = Record<string, unknown>>(key: string): Promise<T> {
  const response = await coordinator.send(new GetObjectCommand({ Bucket: STATE_BUCKET, Key: `${STATE_PREFIX}${key}` }));
  return JSON.parse(await response.Body!.transformToString('utf-8')) as T;
}

async function putCoordinatorJson(key: string, value: unknown): Promise<void> {
  await coordinator.send(new PutObjectCommand({ Bucket: STATE_BUCKET, Key: `${STATE_PREFIX}${key}`, Body: JSON.stringify(value) }));
}

const roundKey = (runId: string, round: number, name: string) => `${runId}/round-${String(round).padStart(4, '0')}/${name}`;

interface RoundStateJson {
  startedAt: string;
  deadline: string;
  clients: Record<string, { status: string; jobName?: string; reason?: string; lastError?: string; outputUri?: string }>;
}

const roundState = (runId: string, round: number) => coordinatorJson<RoundStateJson>(roundKey(runId, round, 'round.json'));

/** Plays the client's training container for its job of the round (the job round.json names). */
async function deliver(silo: FederationClientSpec, runId: string, round: number, files: readonly TarFile[]): Promise<string> {
  const { jobName } = (await roundState(runId, round)).clients[silo.name]!;
  return silos.deliver(silo, jobName!, files);
}

beforeAll(async () => {
  moto = await startMoto();
  proxy = await startDroppingProxy(moto.endpoint);
  setEnv(motoEnv());
  coordinator = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
  silos = new MotoSilos(moto.endpoint);
}, 30_000);

afterAll(async () => {
  coordinator?.destroy();
  silos?.destroy();
  await proxy?.close();
  await moto?.stop();
});

async function resetWorld(silos: readonly FederationClientSpec[] = [NORTH, SOUTH]): Promise<void> {
  proxy.allow = Number.POSITIVE_INFINITY;
  await moto.reset();
  await coordinator.send(new CreateBucketCommand({ Bucket: STATE_BUCKET }));
  await coordinator.send(new PutObjectCommand({ Bucket: STATE_BUCKET, Key: INITIAL_MODEL_KEY, Body: JSON.stringify({ parameters: INITIAL_PARAMETERS, note: 'from the notebook' }) }));
  for (const silo of silos) await prepareSilo(silo);
}

const motoEnv = () => ({ AWS_ENDPOINT_URL_S3: proxy.endpoint, AWS_ENDPOINT_URL_SAGEMAKER: moto.endpoint, AWS_ENDPOINT_URL_STS: moto.endpoint, AWS_ENDPOINT_URL_SSM: moto.endpoint });

const ROUND_UPDATES: Record<number, Record<string, Update>> = {
  1: {
    north: { sampleCount: 300, update: [0.1, 0.2, -0.3, 0.4], metrics: { accuracy: 0.7, loss: 0.61 } },
    south: { sampleCount: 100, update: [-0.2, 0.6, 0.1, 0], metrics: { accuracy: 0.8, loss: 0.52 } },
  },
  2: {
    north: { sampleCount: 310, update: [0.05, -0.1, 0.2, 0.01], metrics: { accuracy: 0.75 } },
    south: { sampleCount: 90, update: [0.3, 0.1, -0.05, -0.2], metrics: { accuracy: 0.84 } },
  },
};

describe.each([
  ['source', HANDLER_SOURCE],
  ['bundle', HANDLER_BUNDLE],
])('federated-round (%s) against moto', (_label, path) => {
  let handler: FederatedRoundHandler;

  beforeAll(() => {
    setEnv(motoEnv());
    handler = loadFreshHandler<FederatedRoundHandler>(path);
  });

  beforeEach(() => resetWorld());

  it('runs two rounds across two accounts and regions to a packaged model equal to FedAvg computed independently', async () => {
    const runId = 'churn-2026-01-a';
    const { lines: startLines, result: started } = await captureOutput(() => handler({ action: 'start', runId, federation: federation(), initialModelUri: INITIAL_MODEL_URI }));
    expect(started).toEqual({ runId, round: 1, parameters: 4, clients: 2 });
    expect(logEntries(startLines, 'INFO')).toContainEqual(expect.objectContaining({ message: 'run started', runId }));
    const run = await coordinatorJson(`${runId}/run.json`);
    expect(run).toMatchObject({ runId, initialModelUri: INITIAL_MODEL_URI, parameters: 4, federation: { training: { instanceCount: 1, volumeSizeGb: 30 }, aggregation: { serverLearningRate: 0.5 } } });
    expect(await coordinatorJson(roundKey(runId, 1, 'global.json'))).toEqual({ round: 1, parameters: INITIAL_PARAMETERS });
    expect(await coordinator.send(new HeadObjectCommand({ Bucket: STATE_BUCKET, Key: `${STATE_PREFIX}${runId}/run.json` }))).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: COORDINATOR_KEY });

    let global = INITIAL_PARAMETERS;
    const history: number[] = [];
    for (const round of [1, 2]) {
      const { result: startedRound } = await captureOutput(() => handler({ action: 'startRound', runId, round }));
      expect(startedRound).toEqual({ runId, round, training: 2, failed: 0, pending: 2 });

      const state = await roundState(runId, round);
      expect(Date.parse(state.deadline) - Date.parse(state.startedAt)).toBe(600_000);
      for (const silo of [NORTH, SOUTH]) {
        const { jobName } = state.clients[silo.name]!;
        expect(jobName).toMatch(new RegExp(`^fl-[0-9a-f]{10}-r000${round}-${silo.name}$`));
        const settings = siloSettings(silo);
        await withClient(silo, async ({ s3, sagemaker }) => {
          // The job as moto recorded it in the client's own account and region.
          const job = await sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: jobName! }));
          expect(job.TrainingJobArn).toBe(`arn:aws:sagemaker:${silo.region}:${silo.account}:training-job/${jobName}`);
          expect(job).toMatchObject({
            AlgorithmSpecification: { TrainingImage: silo.trainingImage ?? federation().training.image, TrainingInputMode: 'File' },
            RoleArn: settings.trainingRoleArn,
            OutputDataConfig: { S3OutputPath: `s3://${settings.exchangeBucket}/updates/${runId}/round-000${round}/`, KmsKeyId: settings.keyArn },
            ResourceConfig: { InstanceType: 'ml.m5.xlarge', InstanceCount: 1, VolumeSizeInGB: 30, VolumeKmsKeyId: settings.keyArn },
            StoppingCondition: { MaxRuntimeInSeconds: 3600 },
            HyperParameters: { epochs: '2', federated_round: String(round), federated_run: runId },
            EnableNetworkIsolation: true,
            EnableInterContainerTrafficEncryption: true,
          });
          expect(job.InputDataConfig).toEqual([
            { ChannelName: 'train', DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: settings.dataUri, S3DataDistributionType: 'FullyReplicated' } } },
            {
              ChannelName: 'global',
              ContentType: 'application/json',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: `s3://${settings.exchangeBucket}/global/${runId}/round-000${round}/`, S3DataDistributionType: 'FullyReplicated' } },
            },
          ]);
          // The global model, in the client's exchange bucket under its key.
          const key = `global/${runId}/round-000${round}/model.json`;
          const model = await s3.send(new GetObjectCommand({ Bucket: settings.exchangeBucket, Key: key }));
          expect(JSON.parse(await model.Body!.transformToString('utf-8'))).toEqual({ round, parameters: global });
          expect(await s3.send(new HeadObjectCommand({ Bucket: settings.exchangeBucket, Key: key }))).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: settings.keyArn });
        });
      }
      // Each job ran in its client's region, not the coordinator's.
      await withClient({ ...SOUTH, region: 'us-east-1' }, async ({ sagemaker }) => {
        await expect(sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: state.clients.south!.jobName! }))).rejects.toThrow(/Could not find training job/);
      });

      for (const silo of [NORTH, SOUTH]) {
        const artifact = await deliver(silo, runId, round, updateFiles(ROUND_UPDATES[round]![silo.name]!));
        expect(artifact).toBe(`${state.clients[silo.name]!.outputUri}${state.clients[silo.name]!.jobName}/output/model.tar.gz`);
      }
      const { result: checked } = await captureOutput(() => handler({ action: 'checkRound', runId, round }));
      expect(checked).toEqual({ runId, round, pending: 0, completed: 2, failed: 0 });
      expect(await coordinatorJson(roundKey(runId, round, 'clients/south.json'))).toEqual({ clientId: 'south', ...ROUND_UPDATES[round]!.south });

      const { result: aggregated, lines } = await captureOutput(() => handler({ action: 'aggregate', runId, round }));
      const updates = [ROUND_UPDATES[round]!.north!, ROUND_UPDATES[round]!.south!];
      const metric = expectedMetric(updates, 'accuracy');
      history.push(metric);
      expect(aggregated).toEqual({
        runId,
        round,
        nextRound: round + 1,
        converged: round === 2,
        reason: round === 2 ? 'max-rounds' : null,
        metric: expect.closeTo(metric, 12),
        bestRound: round,
        bestValue: expect.closeTo(metric, 12),
        contributing: ['north', 'south'],
        failed: [],
      });
      const next = await coordinatorJson<{ round: number; parameters: number[] }>(roundKey(runId, round + 1, 'global.json'));
      const expected = expectedGlobal(global, updates, 0.5);
      expect(next.round).toBe(round + 1);
      expectCloseTo(next.parameters, expected);
      global = next.parameters;

      const record = await coordinatorJson<Record<string, unknown> & { weights: number[]; history: number[] }>(roundKey(runId, round, 'aggregate.json'));
      expect(record).toMatchObject({ aggregator: 'fedavg', clientIds: ['north', 'south'], ignoredClientIds: [], trim: null, privacy: null, failed: [], serverLearningRate: 0.5 });
      expectCloseTo(record.weights, updates.map((update) => update.sampleCount / 400));
      expectCloseTo(record.history, history);

      const emf = emfDocuments(lines);
      expect(emf).toEqual([expect.objectContaining({ RoundsAggregated: 1, ClientsContributing: 2, ClientsFailed: 0, GlobalMetric: expect.closeTo(metric, 12), service: 'federated-round-test' })]);
      expect(emf[0]!._aws).toMatchObject({ CloudWatchMetrics: [{ Namespace: 'MlPlatform/Federated', Dimensions: [['service']] }] });
    }

    const { result: packaged } = await captureOutput(() => handler({ action: 'package', runId, round: 2 }));
    expect(packaged).toEqual({
      modelDataUrl: `s3://${STATE_BUCKET}/${STATE_PREFIX}${runId}/model/model.tar.gz`,
      rounds: 2,
      metric: expect.closeTo(history[1]!, 12),
      bestValue: expect.closeTo(history[1]!, 12),
      aggregator: 'fedavg',
      noiseMultiplier: null,
    });
    const key = `${STATE_PREFIX}${runId}/model/model.tar.gz`;
    const artifact = await coordinator.send(new GetObjectCommand({ Bucket: STATE_BUCKET, Key: key }));
    expect(artifact).toMatchObject({ ServerSideEncryption: 'aws:kms', SSEKMSKeyId: COORDINATOR_KEY });
    const model = JSON.parse(Buffer.from(findTarFile(readTarGz(await artifact.Body!.transformToByteArray()), 'model.json')!.data).toString('utf8'));
    expect(model).toEqual({
      federation: 'churn',
      runId,
      rounds: 2,
      parameters: global,
      aggregator: 'fedavg',
      privacy: null,
      metric: { name: 'accuracy', direction: 'higher-is-better', history: expect.any(Array), bestRound: 2, bestValue: expect.closeTo(history[1]!, 12) },
    });
    expectCloseTo(model.metric.history, history);
  });
});

describe('federated-round (bundle): failing clients, quorum, retries and bad input', () => {
  let handler: FederatedRoundHandler;
  const call: FederatedRoundHandler = (event) => quietly(() => handler(event));

  beforeAll(() => {
    setEnv(motoEnv());
    handler = loadFreshHandler<FederatedRoundHandler>(HANDLER_BUNDLE);
  });

  it('fails the clients whose settings, update archive or update length are wrong, records why, and aggregates the rest', async () => {
    await resetWorld([NORTH, SOUTH]);
    const east = { ...client('east', '444444444444', 'ap-southeast-2') };
    await prepareSilo(WEST, { ...siloSettings(WEST), keyArn: 'alias/not-an-arn', dataUri: 'https://example.com/data' });
    await prepareSilo(east);
    const runId = 'churn-failures';
    await call({ action: 'start', runId, federation: federation({ clients: [NORTH, SOUTH, WEST, east], minClients: 1 }), initialModelUri: INITIAL_MODEL_URI });

    expect(await call({ action: 'startRound', runId, round: 1 })).toEqual({ runId, round: 1, training: 3, failed: 1, pending: 3 });
    const started = await roundState(runId, 1);
    expect(started.clients.west).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^settings \/churn-federated-access\/exchange: keyArn: must be a KMS key ARN.*; dataUri: must be an s3:\/\/ URI/) });

    await deliver(NORTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.north!));
    await deliver(SOUTH, runId, 1, [{ name: 'model/weights.bin', data: new Uint8Array([1, 2, 3]) }]);
    await deliver(east, runId, 1, updateFiles({ sampleCount: 50, update: [1, 2, 3] }));
    expect(await call({ action: 'checkRound', runId, round: 1 })).toEqual({ runId, round: 1, pending: 0, completed: 1, failed: 3 });

    const aggregated = (await call({ action: 'aggregate', runId, round: 1 })) as AggregateResult;
    expect(JSON.stringify(aggregated).length).toBeLessThan(4096);
    const southReason = `training job ${started.clients.south!.jobName}: model.tar.gz holds no update.json (files: model/weights.bin)`;
    const eastReason = `training job ${started.clients.east!.jobName}: update.json: update has 3 values; the global model has 4`;
    // The result cuts a long reason to 150 characters; the round record keeps it whole.
    expect(started.clients.west!.reason!.length).toBeGreaterThan(150);
    expect(aggregated).toMatchObject({ contributing: ['north'], metric: 0.7, failed: [{ clientId: 'south', reason: southReason }, { clientId: 'west', reason: `${started.clients.west!.reason!.slice(0, 149)}…` }, { clientId: 'east', reason: eastReason }] });
    const record = await coordinatorJson<{ failed: unknown[]; clientIds: string[] }>(roundKey(runId, 1, 'aggregate.json'));
    expect(record.clientIds).toEqual(['north']);
    expect(record.failed).toEqual([
      { clientId: 'south', reason: southReason },
      { clientId: 'west', reason: started.clients.west!.reason },
      { clientId: 'east', reason: eastReason },
    ]);
    expectCloseTo((await coordinatorJson<{ parameters: number[] }>(roundKey(runId, 2, 'global.json'))).parameters, expectedGlobal(INITIAL_PARAMETERS, [ROUND_UPDATES[1]!.north!], 0.5));
  });

  it('names each problem of an update that is not valid: not JSON, values that are not finite, a missing sample count', async () => {
    await resetWorld([NORTH, SOUTH]);
    await prepareSilo(WEST);
    const runId = 'churn-bad-updates';
    await call({ action: 'start', runId, federation: federation({ clients: [NORTH, SOUTH, WEST], minClients: 1 }), initialModelUri: INITIAL_MODEL_URI });
    await call({ action: 'startRound', runId, round: 1 });
    await deliver(NORTH, runId, 1, [{ name: 'update.json', data: '{"sampleCount": 3, "update": [1, 2' }]);
    await deliver(SOUTH, runId, 1, [{ name: 'update.json', data: '{"update": [1, "x", 3, 4], "metrics": {"accuracy": "high"}}' }]);
    await withClient(WEST, async ({ s3, sagemaker }) => {
      const { jobName } = (await roundState(runId, 1)).clients.west!;
      const job = await sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: jobName! }));
      const [, bucket, key] = /^s3:\/\/([^/]+)\/(.+)$/.exec(job.ModelArtifacts!.S3ModelArtifacts!)!;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'not a gzip archive' }));
    });

    expect(await call({ action: 'checkRound', runId, round: 1 })).toMatchObject({ pending: 0, completed: 0, failed: 3 });
    const { clients } = await roundState(runId, 1);
    expect(clients.north!.reason).toMatch(/: update\.json is not JSON/);
    expect(clients.south!.reason).toMatch(/: update\.json: sampleCount: must be a whole number ≥ 0; update\[1\]: must be a finite number; metrics\.accuracy: .*$/);
    expect(clients.west!.reason).toMatch(/: model\.tar\.gz: not a gzip archive/);
  });

  it('fails the round with RoundFailedError naming each client that did not contribute when the quorum is not met', async () => {
    await resetWorld([NORTH, SOUTH]);
    // west's settings name a bucket that does not exist in its account.
    await prepareSilo(WEST, { ...siloSettings(WEST), exchangeBucket: 'west-no-such-bucket' });
    const runId = 'churn-no-quorum';
    await call({ action: 'start', runId, federation: federation({ clients: [NORTH, SOUTH, WEST], minClients: 2 }), initialModelUri: INITIAL_MODEL_URI });
    expect(await call({ action: 'startRound', runId, round: 1 })).toMatchObject({ training: 2, failed: 1 });
    await deliver(NORTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.north!));
    await deliver(SOUTH, runId, 1, updateFiles({ ...ROUND_UPDATES[1]!.south!, update: [1, 2, 3, 4, 5] }));
    await call({ action: 'checkRound', runId, round: 1 });

    const error = await rejects(call({ action: 'aggregate', runId, round: 1 }));
    expect(error.name).toBe('RoundFailedError');
    expect(error.message).toMatch(/^round 1: 1 client contributed, fewer than the 2 required \(north\); failed: south \(training job fl-\S+: update\.json: update has 5 values; the global model has 4\), west \(s3:PutObject s3:\/\/west-no-such-bucket\/global\/churn-no-quorum\/round-0001\/model\.json: NoSuchBucket/);
    await expect(coordinator.send(new HeadObjectCommand({ Bucket: STATE_BUCKET, Key: `${STATE_PREFIX}${roundKey(runId, 2, 'global.json')}` }))).rejects.toThrow();
  });

  it('is safe to retry: start, startRound, checkRound and aggregate again give the same answers, start the same jobs once and count the round once', async () => {
    await resetWorld();
    const runId = 'churn-retries';
    const start = { action: 'start', runId, federation: federation(), initialModelUri: INITIAL_MODEL_URI } as const;
    const first = await call(start);
    const runJson = await coordinatorJson(`${runId}/run.json`);
    expect(await call(start)).toEqual(first);
    expect(await coordinatorJson(`${runId}/run.json`)).toEqual(runJson);
    const changed = await rejects(call({ ...start, federation: federation({ minClients: 1 }) }));
    expect(changed).toMatchObject({ name: 'FederatedInputError', message: expect.stringMatching(/^federation: run 'churn-retries' was started at \S+ with another federation spec: a run's spec cannot change; use a new runId$/) });

    const startedRound = await call({ action: 'startRound', runId, round: 1 });
    const state = await roundState(runId, 1);
    const created = await withClient(NORTH, ({ sagemaker }) => sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: state.clients.north!.jobName! })));
    expect(await call({ action: 'startRound', runId, round: 1 })).toEqual(startedRound);
    expect(await roundState(runId, 1)).toEqual(state);
    const after = await withClient(NORTH, ({ sagemaker }) => sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: state.clients.north!.jobName! })));
    // moto replaces a job created again under the same name: the same creation time means it was not.
    expect(after.CreationTime).toEqual(created.CreationTime);

    await deliver(NORTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.north!));
    await deliver(SOUTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.south!));
    const checked = await call({ action: 'checkRound', runId, round: 1 });
    expect(await call({ action: 'checkRound', runId, round: 1 })).toEqual(checked);
    expect(checked).toEqual({ runId, round: 1, pending: 0, completed: 2, failed: 0 });

    const once = await captureOutput(() => handler({ action: 'aggregate', runId, round: 1 }));
    const record = await coordinatorJson(roundKey(runId, 1, 'aggregate.json'));
    const again = await captureOutput(() => handler({ action: 'aggregate', runId, round: 1 }));
    expect(again.result).toEqual(once.result);
    expect(await coordinatorJson(roundKey(runId, 1, 'aggregate.json'))).toEqual(record);
    expect(emfDocuments(once.lines)).toHaveLength(1);
    expect(emfDocuments(again.lines)).toHaveLength(0);
    const packaged = await call({ action: 'package', runId, round: 1 });
    expect(await call({ action: 'package', runId, round: 1 })).toEqual(packaged);
  });

  it('throws when the coordinator S3 goes away, so that the workflow retries, and the retry succeeds', async () => {
    await resetWorld();
    const runId = 'churn-s3-away';
    await call({ action: 'start', runId, federation: federation(), initialModelUri: INITIAL_MODEL_URI });
    await call({ action: 'startRound', runId, round: 1 });
    await deliver(NORTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.north!));
    await deliver(SOUTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.south!));
    await call({ action: 'checkRound', runId, round: 1 });

    // Reads fail (the run, the round, the results), then the write of the next global model, then the
    // write of the round record after the global model was written.
    for (const allow of [0, 3, 5, 6, 7]) {
      proxy.allow = allow;
      proxy.requests.length = 0;
      const error = await rejects(call({ action: 'aggregate', runId, round: 1 }));
      expect(error.name).not.toMatch(/FederatedInputError|RoundFailedError/);
      expect(proxy.requests).toHaveLength(allow + 1);
    }
    expect(proxy.requests.at(-1)).toMatch(/^PUT \/ml-federation-state\/federated\/churn\/churn-s3-away\/round-0001\/aggregate\.json/);
    await expect(coordinator.send(new HeadObjectCommand({ Bucket: STATE_BUCKET, Key: `${STATE_PREFIX}${roundKey(runId, 1, 'aggregate.json')}` }))).rejects.toThrow();
    proxy.allow = Number.POSITIVE_INFINITY;
    const result = (await call({ action: 'aggregate', runId, round: 1 })) as AggregateResult;
    expect(result).toMatchObject({ round: 1, nextRound: 2, contributing: ['north', 'south'], converged: false });
    expectCloseTo((await coordinatorJson<{ parameters: number[] }>(roundKey(runId, 2, 'global.json'))).parameters, expectedGlobal(INITIAL_PARAMETERS, Object.values(ROUND_UPDATES[1]!), 0.5));

    proxy.allow = 1;
    expect((await rejects(call({ action: 'start', runId: 'churn-s3-away-2', federation: federation(), initialModelUri: INITIAL_MODEL_URI }))).name).not.toBe('FederatedInputError');
    proxy.allow = Number.POSITIVE_INFINITY;
    expect(await call({ action: 'start', runId: 'churn-s3-away-2', federation: federation(), initialModelUri: INITIAL_MODEL_URI })).toMatchObject({ round: 1 });
  });

  it('adds seeded DP noise reproducibly, records the privacy parameters and packages them', async () => {
    await resetWorld();
    const spec = federation({ aggregation: { aggregator: 'fedavg', privacy: { clipNorm: 0.5, noiseMultiplier: 0.8 } }, convergence: { maxRounds: 1 }, seed: 42 });
    const results: number[][] = [];
    for (const runId of ['churn-dp-a', 'churn-dp-b']) {
      await call({ action: 'start', runId, federation: spec, initialModelUri: INITIAL_MODEL_URI });
      await call({ action: 'startRound', runId, round: 1 });
      await deliver(NORTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.north!));
      await deliver(SOUTH, runId, 1, updateFiles(ROUND_UPDATES[1]!.south!));
      await call({ action: 'checkRound', runId, round: 1 });
      expect(await call({ action: 'aggregate', runId, round: 1 })).toMatchObject({ converged: true, reason: 'max-rounds' });
      const record = await coordinatorJson<{ privacy: unknown; weights: number[] }>(roundKey(runId, 1, 'aggregate.json'));
      expect(record.privacy).toEqual({ mechanism: 'gaussian', noiseMultiplier: 0.8, clipNorm: 0.5, clients: 2, noiseStandardDeviation: 0.2, weighting: 'uniform', randomSource: 'xoshiro128** (seeded with SplitMix64)' });
      expect(record.weights).toEqual([0.5, 0.5]);
      results.push((await coordinatorJson<{ parameters: number[] }>(roundKey(runId, 2, 'global.json'))).parameters);
      expect(await call({ action: 'package', runId, round: 1 })).toMatchObject({ aggregator: 'fedavg', noiseMultiplier: 0.8 });
    }
    expect(results[1]).toEqual(results[0]);
    // Noise was added: the result is not the mean of the clipped updates.
    expect(results[0]).not.toEqual(expectedGlobal(INITIAL_PARAMETERS, Object.values(ROUND_UPDATES[1]!), 1));
  });

  it('names every problem of a bad event or federation spec', async () => {
    await resetWorld();
    const bad = async (event: unknown) => {
      const error = await rejects(quietly(() => (handler as (event: unknown) => Promise<unknown>)(event)));
      expect(error.name).toBe('FederatedInputError');
      return error.message;
    };
    expect(await bad({ action: 'train', runId: 'x' })).toBe('action: must be one of start, startRound, checkRound, aggregate, package; got "train"');
    expect(await bad({ runId: 'x' })).toBe('action: is required: one of start, startRound, checkRound, aggregate, package');
    expect(await bad({ action: 'startRound', runId: 'not ok!', round: 0, extra: true })).toBe('runId: must be 1-80 letters, digits, hyphens or underscores; round: must be a whole number from 1 to 9999; extra: unknown field');
    expect(await bad({ action: 'checkRound', round: 1.5 })).toBe('runId: is required; round: must be a whole number from 1 to 9999');
    expect(await bad({ action: 'start', runId: 'r1', initialModelUri: INITIAL_MODEL_URI })).toBe('federation: is required');

    const spec = federation({
      name: 'Churn',
      clients: [NORTH, { ...SOUTH, roleArn: 'arn:aws:iam::999999999999:role/x' }, { ...NORTH, region: 'Europe', account: '12' }],
      training: { image: 'img', instanceType: 'm5.xlarge', maxRuntimeSeconds: 10, hyperparameters: { federated_round: '3' } },
      aggregation: { aggregator: 'trimmed-mean', serverLearningRate: -1 } as FederationSpecInput['aggregation'],
      minClients: 4,
      convergence: { maxRounds: 0 },
    });
    const message = await bad({ action: 'start', runId: 'r1', federation: { ...spec, metric: undefined, extra: 1 }, initialModelUri: INITIAL_MODEL_URI });
    expect(message.split('; ')).toEqual([
      'federation.name: must be 1-32 lowercase letters, digits or hyphens, starting and ending with a letter or digit',
      'federation.clients[2].account: must be a 12-digit AWS account id',
      'federation.clients[2].region: must be an AWS region such as eu-west-1',
      'federation.training.instanceType: must be a SageMaker training instance type such as ml.m5.xlarge',
      'federation.training.maxRuntimeSeconds: must be a whole number from 60 to 2419200',
      'federation.training.hyperparameters.federated_round: is set by the coordinator for each round',
      'federation.metric: is required',
      'federation.convergence.maxRounds: must be a whole number ≥ 1',
      'federation.extra: unknown field',
      'federation.clients[1].roleArn: is in account 999999999999, not the client\'s account 222222222222',
      "federation.clients[2].name: repeats federation.clients[0].name ('north'): client names must be unique",
      'federation.minClients: is 4, more than the 3 clients listed',
      "federation.aggregation.trimFraction: is required with the 'trimmed-mean' aggregator",
      'federation.aggregation.serverLearningRate: must be a finite number > 0',
    ]);

    expect(await bad({ action: 'start', runId: 'r1', federation: federation(), initialModelUri: 's3://another-bucket/model.json' })).toBe(
      `initialModelUri: must be an object under s3://${STATE_BUCKET}/${STATE_PREFIX} (the coordinator's bucket and prefix); got 's3://another-bucket/model.json'`,
    );
    expect(await bad({ action: 'start', runId: 'r1', federation: federation(), initialModelUri: `s3://${STATE_BUCKET}/${STATE_PREFIX}missing.json` })).toBe(
      `initialModelUri: s3://${STATE_BUCKET}/${STATE_PREFIX}missing.json does not exist`,
    );
    await putCoordinatorJson('initial/bad.json', { parameters: [1, null, 'x'] });
    expect(await bad({ action: 'start', runId: 'r1', federation: federation(), initialModelUri: `s3://${STATE_BUCKET}/${STATE_PREFIX}initial/bad.json` })).toBe(
      `initialModelUri: s3://${STATE_BUCKET}/${STATE_PREFIX}initial/bad.json: parameters[1]: must be a finite number; initialModelUri: s3://${STATE_BUCKET}/${STATE_PREFIX}initial/bad.json: parameters[2]: must be a finite number`,
    );
    expect(await bad({ action: 'startRound', runId: 'never-started', round: 1 })).toBe(`runId: no run 'never-started' (s3://${STATE_BUCKET}/${STATE_PREFIX}never-started/run.json does not exist): start it first`);

    await call({ action: 'start', runId: 'r2', federation: federation({ metric: { name: 'auc', direction: 'higher-is-better' } }), initialModelUri: INITIAL_MODEL_URI });
    expect(await bad({ action: 'checkRound', runId: 'r2', round: 1 })).toMatch(/^round: round 1 has not been started \(.*round-0001\/round\.json does not exist\): call startRound first$/);
    expect(await bad({ action: 'startRound', runId: 'r2', round: 2 })).toBe(`round: round 2 has no global model (s3://${STATE_BUCKET}/${STATE_PREFIX}r2/round-0002/global.json): aggregate round 1 first`);
    expect(await bad({ action: 'startRound', runId: 'r2', round: 3 })).toBe('round: is 3; the federation runs at most 2 rounds (convergence.maxRounds)');
    expect(await bad({ action: 'package', runId: 'r2', round: 1 })).toMatch(/^round: round 1 has not been aggregated/);
    await call({ action: 'startRound', runId: 'r2', round: 1 });
    await deliver(NORTH, 'r2', 1, updateFiles(ROUND_UPDATES[1]!.north!));
    await deliver(SOUTH, 'r2', 1, updateFiles(ROUND_UPDATES[1]!.south!));
    await call({ action: 'checkRound', runId: 'r2', round: 1 });
    expect(await bad({ action: 'aggregate', runId: 'r2', round: 1 })).toBe(
      "federation.metric.name: no contributing client reported 'auc' in round 1 (contributing: north, south): update.json's metrics must include it",
    );
  });
});

interface StandInJob {
  statuses: string[];
  created: number;
  stopped: boolean;
}

/**
 * SageMaker's CreateTrainingJob, DescribeTrainingJob and StopTrainingJob over JSON 1.1, scripted: each job
 * reports the statuses listed for its client in turn (the last repeats); a name created twice is refused
 * with ResourceInUse, as SageMaker does; errors can be queued per operation and job.
 */
class SageMakerStandIn {
  readonly jobs = new Map<string, StandInJob>();
  readonly calls: Array<{ target: string; name: string; region: string; body: Record<string, unknown> }> = [];
  statuses: Record<string, string[]> = {};
  errors: Array<{ target: string; client: string; status: number; type: string; message: string }> = [];
  private server = createServer((req, res) => this.answer(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  reset(): void {
    this.jobs.clear();
    this.calls.length = 0;
    this.statuses = {};
    this.errors = [];
  }

  targets(name: string): string[] {
    return this.calls.filter((call) => call.name === name).map((call) => call.target);
  }

  private answer(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '').replace(/^SageMaker\./, '');
      const input = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { TrainingJobName: string };
      const name = input.TrainingJobName;
      const region = /Credential=[^/]+\/\d+\/([^/]+)\/sagemaker\//.exec(String(req.headers.authorization))?.[1] ?? '?';
      this.calls.push({ target, name, region, body: input });
      const reply = (status: number, payload: unknown, errorType?: string) =>
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', ...(errorType ? { 'x-amzn-errortype': errorType } : {}) }).end(JSON.stringify(payload));
      const client = name.split('-').at(-1)!;
      const error = this.errors.findIndex((queued) => queued.target === target && queued.client === client);
      if (error >= 0) {
        const [queued] = this.errors.splice(error, 1);
        reply(queued!.status, { __type: queued!.type, message: queued!.message }, queued!.type);
        return;
      }
      const job = this.jobs.get(name);
      if (target === 'CreateTrainingJob') {
        if (job !== undefined) {
          job.created += 1;
          reply(400, { __type: 'ResourceInUse', message: `Training job names must be unique within an AWS account and region, and a training job with this name already exists (${name})` }, 'ResourceInUse');
          return;
        }
        this.jobs.set(name, { statuses: [...(this.statuses[client] ?? ['InProgress'])], created: 1, stopped: false });
        reply(200, { TrainingJobArn: `arn:aws:sagemaker:${region}:111111111111:training-job/${name}` });
      } else if (target === 'DescribeTrainingJob') {
        if (job === undefined) {
          reply(400, { __type: 'ValidationException', message: `Requested resource not found: ${name}` }, 'ValidationException');
          return;
        }
        const status = job.stopped ? 'Stopping' : job.statuses.length > 1 ? job.statuses.shift()! : job.statuses[0]!;
        reply(200, {
          TrainingJobName: name,
          TrainingJobArn: `arn:aws:sagemaker:${region}:111111111111:training-job/${name}`,
          TrainingJobStatus: status,
          SecondaryStatus: status === 'InProgress' ? 'Training' : status,
          ...(status === 'Failed' ? { FailureReason: 'AlgorithmError: ExecuteUserScriptError: exit code 1' } : {}),
          CreationTime: 1_700_000_000,
        });
      } else if (target === 'StopTrainingJob') {
        if (job !== undefined) job.stopped = true;
        reply(200, {});
      } else {
        reply(400, { __type: 'UnknownOperationException', message: target }, 'UnknownOperationException');
      }
    });
  }
}

describe('federated-round (bundle) with SageMaker jobs that run on, fail, throttle or already exist', () => {
  let handler: FederatedRoundHandler;
  let sagemaker: SageMakerStandIn;
  const call: FederatedRoundHandler = (event) => quietly(() => handler(event));

  beforeAll(async () => {
    sagemaker = new SageMakerStandIn();
    const url = await sagemaker.start();
    setEnv({ ...motoEnv(), AWS_ENDPOINT_URL_SAGEMAKER: url });
    handler = loadFreshHandler<FederatedRoundHandler>(HANDLER_BUNDLE);
  });

  afterAll(() => sagemaker?.stop());

  beforeEach(async () => {
    sagemaker.reset();
    await resetWorld();
  });

  /** Puts the client's model.tar.gz where its job's output goes (the stand-in's jobs have no artifacts of their own). */
  async function deliverTo(silo: FederationClientSpec, runId: string, update: Update): Promise<void> {
    const { jobName, outputUri } = (await roundState(runId, 1)).clients[silo.name]!;
    const [, bucket, prefix] = /^s3:\/\/([^/]+)\/(.*)$/.exec(outputUri!)!;
    await withClient(silo, ({ s3 }) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}${jobName}/output/model.tar.gz`, Body: writeTarGz(updateFiles(update)) })));
  }

  it('keeps clients training while their jobs run, then stops the jobs past the round deadline and fails the clients as timed out', async () => {
    const runId = 'churn-deadline';
    await call({ action: 'start', runId, federation: federation({ roundTimeoutSeconds: 60 }), initialModelUri: INITIAL_MODEL_URI });
    expect(await call({ action: 'startRound', runId, round: 1 })).toMatchObject({ training: 2, pending: 2 });
    const { clients } = await roundState(runId, 1);
    expect(sagemaker.calls.filter((entry) => entry.target === 'CreateTrainingJob').map((entry) => [entry.name, entry.region])).toEqual(
      expect.arrayContaining([
        [clients.north!.jobName, 'us-east-1'],
        [clients.south!.jobName, 'eu-west-1'],
      ]),
    );

    const settings = siloSettings(SOUTH);
    expect(sagemaker.calls.find((entry) => entry.target === 'CreateTrainingJob' && entry.name === clients.south!.jobName)!.body).toEqual({
      TrainingJobName: clients.south!.jobName,
      AlgorithmSpecification: { TrainingImage: SOUTH.trainingImage, TrainingInputMode: 'File' },
      RoleArn: settings.trainingRoleArn,
      InputDataConfig: [
        { ChannelName: 'train', DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: settings.dataUri, S3DataDistributionType: 'FullyReplicated' } } },
        { ChannelName: 'global', ContentType: 'application/json', DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: `s3://${settings.exchangeBucket}/global/${runId}/round-0001/`, S3DataDistributionType: 'FullyReplicated' } } },
      ],
      OutputDataConfig: { S3OutputPath: `s3://${settings.exchangeBucket}/updates/${runId}/round-0001/`, KmsKeyId: settings.keyArn },
      ResourceConfig: { InstanceType: 'ml.m5.xlarge', InstanceCount: 1, VolumeSizeInGB: 30, VolumeKmsKeyId: settings.keyArn },
      StoppingCondition: { MaxRuntimeInSeconds: 3600 },
      HyperParameters: { epochs: '2', federated_round: '1', federated_run: runId },
      EnableNetworkIsolation: true,
      EnableInterContainerTrafficEncryption: true,
      Tags: [
        { Key: 'ml-federation', Value: 'churn' },
        { Key: 'ml-federation-run', Value: runId },
      ],
    });

    expect(await call({ action: 'checkRound', runId, round: 1 })).toEqual({ runId, round: 1, pending: 2, completed: 0, failed: 0 });
    expect(sagemaker.targets(clients.north!.jobName!)).toEqual(['CreateTrainingJob', 'DescribeTrainingJob']);

    // The round started more than its timeout ago.
    const state = await roundState(runId, 1);
    await putCoordinatorJson(roundKey(runId, 1, 'round.json'), { ...state, startedAt: new Date(Date.now() - 120_000).toISOString(), deadline: new Date(Date.now() - 60_000).toISOString() });
    // south cannot be reached past the deadline: it fails all the same, with the last error.
    sagemaker.errors = [{ target: 'DescribeTrainingJob', client: 'south', status: 503, type: 'ServiceUnavailable', message: 'Service is unavailable' }];
    expect(await call({ action: 'checkRound', runId, round: 1 })).toEqual({ runId, round: 1, pending: 0, completed: 0, failed: 2 });
    const [north, south] = [clients.north!.jobName!, clients.south!.jobName!];
    const timedOut = await roundState(runId, 1);
    expect(sagemaker.targets(north)).toEqual(['CreateTrainingJob', 'DescribeTrainingJob', 'DescribeTrainingJob', 'StopTrainingJob']);
    expect(timedOut.clients.north).toMatchObject({ status: 'failed', reason: `timed out after 60 s (training job ${north} was InProgress; stopped)` });
    expect(sagemaker.targets(south)).toEqual(['CreateTrainingJob', 'DescribeTrainingJob', 'DescribeTrainingJob']);
    expect(timedOut.clients.south).toMatchObject({ status: 'failed', reason: `timed out after 60 s (the last check failed: sagemaker:DescribeTrainingJob ${south}: ServiceUnavailable: Service is unavailable)` });
    const error = await rejects(call({ action: 'aggregate', runId, round: 1 }));
    expect(error.name).toBe('RoundFailedError');
    expect(error.message).toContain('failed: north (timed out after 60 s');
  });

  it('leaves a client training when SageMaker throttles its check, and completes it on the next check', async () => {
    const runId = 'churn-throttled';
    sagemaker.statuses = { north: ['Completed'], south: ['InProgress', 'Failed'] };
    await call({ action: 'start', runId, federation: federation({ minClients: 1 }), initialModelUri: INITIAL_MODEL_URI });
    await call({ action: 'startRound', runId, round: 1 });
    await deliverTo(NORTH, runId, ROUND_UPDATES[1]!.north!);
    sagemaker.errors = [{ target: 'DescribeTrainingJob', client: 'north', status: 400, type: 'ThrottlingException', message: 'Rate exceeded' }];

    expect(await call({ action: 'checkRound', runId, round: 1 })).toEqual({ runId, round: 1, pending: 2, completed: 0, failed: 0 });
    const { clients } = await roundState(runId, 1);
    expect(clients.north).toMatchObject({ status: 'training', lastError: `sagemaker:DescribeTrainingJob ${clients.north!.jobName}: ThrottlingException: Rate exceeded` });

    expect(await call({ action: 'checkRound', runId, round: 1 })).toEqual({ runId, round: 1, pending: 0, completed: 1, failed: 1 });
    const checked = await roundState(runId, 1);
    expect(checked.clients.north).toMatchObject({ status: 'completed' });
    expect(checked.clients.south).toMatchObject({ status: 'failed', reason: `training job ${clients.south!.jobName} failed: AlgorithmError: ExecuteUserScriptError: exit code 1` });
    expect(await coordinatorJson(roundKey(runId, 1, 'clients/north.json'))).toEqual({ clientId: 'north', ...ROUND_UPDATES[1]!.north });
  });

  it('counts a job that already exists as started when round.json was not written, and fails a client whose job SageMaker refuses', async () => {
    const runId = 'churn-exists';
    await call({ action: 'start', runId, federation: federation({ minClients: 1 }), initialModelUri: INITIAL_MODEL_URI });
    sagemaker.errors = [{ target: 'CreateTrainingJob', client: 'south', status: 400, type: 'ResourceLimitExceeded', message: 'The account-level service limit for ml.m5.xlarge for training job usage is 0 Instances' }];
    expect(await call({ action: 'startRound', runId, round: 1 })).toEqual({ runId, round: 1, training: 1, failed: 1, pending: 1 });
    const first = await roundState(runId, 1);
    expect(first.clients.south).toMatchObject({ status: 'failed', reason: 'sagemaker:CreateTrainingJob: ResourceLimitExceeded: The account-level service limit for ml.m5.xlarge for training job usage is 0 Instances' });

    // The call is retried as if it had stopped before writing round.json.
    await coordinator.send(new DeleteObjectCommand({ Bucket: STATE_BUCKET, Key: `${STATE_PREFIX}${roundKey(runId, 1, 'round.json')}` }));
    expect(await call({ action: 'startRound', runId, round: 1 })).toEqual({ runId, round: 1, training: 2, failed: 0, pending: 2 });
    const retried = await roundState(runId, 1);
    expect(retried.clients.north!.jobName).toBe(first.clients.north!.jobName);
    expect(sagemaker.jobs.get(first.clients.north!.jobName!)).toMatchObject({ created: 2 });
    expect(sagemaker.jobs.size).toBe(2);
  });
});
