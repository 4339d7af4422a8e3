// The coordinator of federated learning (seed pattern 12): one function, called by the federation's Step
// Functions workflow once per state, that starts a run, starts each round's training in the client silos,
// checks on it, aggregates the clients' updates into the next global model and packages the final one.
// The math is lambda/shared/federated.ts (validation of the results, FedAvg, median, trimmed mean,
// DP-FedAvg, the quorum and the convergence rule); this file does the I/O around it.
//
// Vectors never travel through Step Functions: the global model, the clients' updates and the round records
// live in S3 and every result is small (< 4 KB). In STATE_BUCKET, under `<STATE_PREFIX><runId>/`, with N a
// round number zero-padded to 4 digits:
//   run.json                     the validated federation spec, the initial model's URI and size, the start time
//   round-N/global.json          the global model going into round N: { round, parameters: number[] }
//   round-N/round.json           the round's state: its start and deadline, per client { status, jobName, ... }
//   round-N/clients/<client>.json  a client's validated result (ClientResult of lambda/shared/federated.ts)
//   round-N/aggregate.json       the round record: aggregator, contributing and ignored clients, weights, trim,
//                                privacy, failed clients and why, the metric and its history, the decision
//   model/model.tar.gz           the final global model (model.json in a tar.gz)
// Each client is a silo in its own account and region. The coordinator assumes the client's role there
// (STS AssumeRole, session `fl-<runId>`, one hour) and, with that role: reads the silo's settings from the
// SSM String parameter `settingsParameter` (JSON: { exchangeBucket, keyArn, trainingRoleArn, dataUri }),
// puts the global model in `s3://<exchangeBucket>/global/<runId>/round-N/model.json` (SSE-KMS with keyArn),
// and runs a SageMaker training job in the silo (the client's trainingImage, else training.image; channels
// `train` = dataUri and `global` = that prefix; network isolation, inter-container encryption, output and
// volume encrypted with keyArn). The job is named
// `fl-<hash of the federation and run>-r<N>-<client>`, so a retried call finds the job it started. The
// training container writes `update.json` = { sampleCount, update: number[], metrics?: { name: value } } into
// its model.tar.gz, which SageMaker puts at `s3://<exchangeBucket>/updates/<runId>/round-N/<job>/output/`.
// Only that update leaves the silo; its data never does.
//
// Input (each with `runId`, the execution's name: 1-80 letters, digits, hyphens or underscores; `round`: 1-9999; unknown fields are refused):
//   { action: "start", runId, federation: <spec, see FederationSpecInput>, initialModelUri: "s3://<STATE_BUCKET>/<STATE_PREFIX>..." }
//       validates the spec (every problem, by path), reads the initial model ({ parameters: number[] }), writes
//       round-0001/global.json and run.json. Again with the same spec and model: the same answer; another: an error.
//       -> { runId, round: 1, parameters: <length>, clients: <count> }
//   { action: "startRound", runId, round }
//       starts every client's training in parallel; a client that cannot be started (its role, settings, bucket
//       or SageMaker refuses) fails this round with the reason and does not hold up the others. A job that
//       already exists (a retried call) counts as started; clients that round.json already records are left as
//       they are. -> { runId, round, training, failed, pending }  (pending = training)
//   { action: "checkRound", runId, round }
//       looks at each client still training: a completed job's update is read and validated (an update of the
//       wrong length, not there or not valid fails the client, naming what is wrong); a failed or stopped job
//       fails it with SageMaker's reason; past the round's deadline (its start + roundTimeoutSeconds) a job
//       still running is stopped and the client fails as `timed out after <n> s`. A client that cannot be
//       reached (STS or SageMaker throttled or down after the SDK's retries) stays training until the deadline.
//       -> { runId, round, pending, completed, failed }
//   { action: "aggregate", runId, round }
//       checks the quorum (minClients contributing), aggregates the results as the spec says, applies the update
//       with serverLearningRate, averages the clients' metrics (sample-weighted) and decides on convergence over
//       the metric's history. Writes round-(N+1)/global.json and round-N/aggregate.json; again for a round
//       already aggregated: the recorded answer (the DP noise is drawn once).
//       -> { runId, round, nextRound, converged, reason: "max-rounds" | "no-improvement" | null, metric,
//            bestRound, bestValue, contributing: string[], failed: [{ clientId, reason }] (the first 10) }
//   { action: "package", runId, round }  (the last round aggregated)
//       writes model/model.tar.gz holding model.json = { federation, runId, rounds, parameters, aggregator,
//       privacy: { noiseMultiplier, clipNorm } | null, metric: { name, direction, history, bestRound, bestValue } }.
//       -> { modelDataUrl, rounds, metric (the last round's value), bestValue, aggregator, noiseMultiplier: number | null }
// Errors (the `error` Step Functions sees):
//   FederatedInputError  a bad event or spec (its message names every field and what is wrong), a run that was
//                        not started or was started with another spec, a round whose state is missing (not
//                        started, not aggregated), a metric no contributing client reported: not retried
//   RoundFailedError     fewer than minClients contributed; the message names every client that did not and why
//   anything else        the coordinator's S3 (or KMS) failing after the SDK's retries, with the SDK's error name:
//                        retry the call with the same input; every action is safe to repeat
// A client's problems are never errors of the call: they are recorded in round.json and aggregate.json.
//
// Permissions: s3:GetObject and s3:PutObject on STATE_BUCKET/STATE_PREFIX*; kms:GenerateDataKey and
// kms:Decrypt on KMS_KEY_ID; sts:AssumeRole on each client's roleArn. Each client's role, in its account:
// ssm:GetParameter on the settings parameter; s3:PutObject on <exchangeBucket>/global/*, s3:GetObject on
// <exchangeBucket>/updates/*; kms:GenerateDataKey, kms:Decrypt through S3 on keyArn (the training role, which
// SageMaker runs the job as, has kms:CreateGrant on it for the volume); sagemaker:CreateTrainingJob,
// sagemaker:AddTags, sagemaker:DescribeTrainingJob and sagemaker:StopTrainingJob on training-job/fl-*;
// iam:PassRole on trainingRoleArn to sagemaker.amazonaws.com.
// Give the function a few minutes (a round's calls run in parallel) and memory for a few copies of the model.
// Environment: STATE_BUCKET, STATE_PREFIX (ending in '/'), KMS_KEY_ID; POWERTOOLS_SERVICE_NAME,
// POWERTOOLS_METRICS_NAMESPACE (EMF, by aggregate: RoundsAggregated, ClientsContributing, ClientsFailed,
// GlobalMetric); AWS_ENDPOINT_URL_S3, _SAGEMAKER, _STS, _SSM, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK.
import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTrainingJobCommand, DescribeTrainingJobCommand, SageMakerClient, StopTrainingJobCommand } from '@aws-sdk/client-sagemaker';
import type { DescribeTrainingJobCommandOutput, TrainingInstanceType } from '@aws-sdk/client-sagemaker';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import type { Context } from 'aws-lambda';
import { ConfigError } from '../shared/errors';
import {
  aggregate,
  aggregateMetrics,
  applyUpdate,
  checkRoundQuorum,
  ClientResultSchema,
  ConvergenceOptionsSchema,
  cryptoRandom,
  decideConvergence,
  FederatedInputError,
  parseAggregationSpec,
  parseClientResults,
  RoundFailedError,
  seededRandom,
  type AggregationSpec,
  type AggregatorKind,
  type ClientFailure,
  type ClientResult,
  type ConvergenceDecision,
  type FederatedProblem,
  type MetricDirection,
  type PrivacyRecord,
} from '../shared/federated';
import { findTarFile, readTarGz, TarError, writeTarGz } from '../shared/tar';
import * as z from '../shared/zod';

export { FederatedInputError, RoundFailedError } from '../shared/federated';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'federated-round';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const s3 = new S3Client({});
/** One STS client per client region: AssumeRole is called in the client's region. */
const stsClients = new Map<string, STSClient>();

/** The highest round number: rounds are zero-padded to 4 digits in the keys. */
export const MAX_ROUNDS = 9999;
/** At most this many clients in a federation (the results stay small). */
export const MAX_CLIENTS = 100;
/** At most this many failed clients in a result; aggregate.json has them all. */
export const MAX_RETURNED_FAILURES = 10;
/** A reason in a result is cut to this many characters, so that a result stays under 4 KB with 100 clients. */
const MAX_RETURNED_REASON = 150;
/** A reason in RoundFailedError's message is cut to this many (a Step Functions error cause holds 32 768). */
const MAX_ERROR_REASON = 200;
/** A reason in the round's state is cut to this many. */
const MAX_STORED_REASON = 1000;
/** A client's model.tar.gz may unpack to at most this much. */
const MAX_UPDATE_ARCHIVE_BYTES = 256 * 1024 * 1024;
const SESSION_SECONDS = 3600;
const HYPERPARAMETER_ROUND = 'federated_round';
const HYPERPARAMETER_RUN = 'federated_run';

// ---------------------------------------------------------------------------------------------------
// Events and results
// ---------------------------------------------------------------------------------------------------

/** One client silo of a federation. */
export interface FederationClientSpec {
  /** 1-16 lowercase letters, digits or hyphens, unique in the federation; part of the training job's name. */
  readonly name: string;
  /** The silo's AWS account (12 digits). */
  readonly account: string;
  /** The silo's region, e.g. eu-west-1: its training jobs, bucket, key and settings are there. */
  readonly region: string;
  /** The role the coordinator assumes in the silo: `arn:aws:iam::<account>:role/<name>`. */
  readonly roleArn: string;
  /** The SSM String parameter (in the silo's account and region) holding the silo's settings JSON. */
  readonly settingsParameter: string;
  /** The training image for this silo (SageMaker pulls it in the silo's region); default: `training.image`. */
  readonly trainingImage?: string;
}

/** The federation spec as `start` takes it (defaults filled in by {@link parseFederationSpec}). */
export interface FederationSpecInput {
  readonly name: string;
  readonly clients: readonly FederationClientSpec[];
  readonly training: {
    readonly image: string;
    readonly instanceType: string;
    readonly instanceCount?: number;
    readonly volumeSizeGb?: number;
    readonly maxRuntimeSeconds: number;
    readonly hyperparameters?: Readonly<Record<string, string>>;
  };
  readonly aggregation: AggregationSpec & { readonly serverLearningRate?: number };
  readonly minClients: number;
  readonly roundTimeoutSeconds: number;
  readonly metric: { readonly name: string; readonly direction: MetricDirection };
  readonly convergence: { readonly maxRounds: number; readonly patience?: number; readonly minDelta?: number };
  /** Seeds the DP noise (round r uses seed + r), for tests and replays; absent: the platform's cryptographic generator. */
  readonly seed?: number;
}

/** A validated federation spec, as run.json holds it. */
export interface FederationSpec extends FederationSpecInput {
  readonly training: FederationSpecInput['training'] & { readonly instanceCount: number; readonly volumeSizeGb: number; readonly hyperparameters: Readonly<Record<string, string>> };
  readonly aggregation: AggregationSpec & { readonly serverLearningRate: number };
}

export interface StartEvent {
  readonly action: 'start';
  readonly runId: string;
  readonly federation: FederationSpecInput;
  /** `s3://<STATE_BUCKET>/<STATE_PREFIX>...`: a JSON object { parameters: number[] }. */
  readonly initialModelUri: string;
}

export interface RoundEvent<A extends 'startRound' | 'checkRound' | 'aggregate' | 'package'> {
  readonly action: A;
  readonly runId: string;
  readonly round: number;
}

export type FederatedRoundEvent = StartEvent | RoundEvent<'startRound'> | RoundEvent<'checkRound'> | RoundEvent<'aggregate'> | RoundEvent<'package'>;
export type FederatedRoundAction = FederatedRoundEvent['action'];

export interface StartResult {
  readonly runId: string;
  readonly round: 1;
  /** The number of model parameters. */
  readonly parameters: number;
  readonly clients: number;
}

export interface RoundStartResult {
  readonly runId: string;
  readonly round: number;
  /** Clients whose training job runs (or already completed, on a retry: counted in neither). */
  readonly training: number;
  readonly failed: number;
  /** The same as training: the clients checkRound waits for. */
  readonly pending: number;
}

export interface RoundProgress {
  readonly runId: string;
  readonly round: number;
  /** Clients still training: 0 when the round can be aggregated. */
  readonly pending: number;
  readonly completed: number;
  readonly failed: number;
}

export interface AggregateResult {
  readonly runId: string;
  readonly round: number;
  readonly nextRound: number;
  /** Whether to stop (decideConvergence's `stop`). */
  readonly converged: boolean;
  readonly reason: 'max-rounds' | 'no-improvement' | null;
  /** The round's global metric: the sample-weighted mean of the contributing clients' values. */
  readonly metric: number;
  readonly bestRound: number;
  readonly bestValue: number;
  /** The clients whose updates were aggregated. */
  readonly contributing: readonly string[];
  /** The first {@link MAX_RETURNED_FAILURES} clients that did not contribute, and why. */
  readonly failed: readonly ClientFailure[];
}

export interface PackageResult {
  /** `s3://<STATE_BUCKET>/<STATE_PREFIX><runId>/model/model.tar.gz`. */
  readonly modelDataUrl: string;
  readonly rounds: number;
  /** The last round's global metric. */
  readonly metric: number;
  readonly bestValue: number;
  readonly aggregator: AggregatorKind;
  readonly noiseMultiplier: number | null;
}

/** The result of each action. */
export interface FederatedRoundResults {
  readonly start: StartResult;
  readonly startRound: RoundStartResult;
  readonly checkRound: RoundProgress;
  readonly aggregate: AggregateResult;
  readonly package: PackageResult;
}

export type FederatedRoundResult = FederatedRoundResults[FederatedRoundAction];

/** The handler's type, per action. */
export type FederatedRoundHandler = <E extends FederatedRoundEvent>(event: E, context?: Context) => Promise<FederatedRoundResults[E['action']]>;

// ---------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : text.length === 0 ? String(segment) : `.${String(segment)}`;
  return text.length === 0 ? '(root)' : text;
}

/** zod issues as problems under `root`: unknown keys one by one, a missing field as 'is required'. */
function problemsOf(issues: readonly z.core.$ZodIssue[], root: readonly PropertyKey[]): FederatedProblem[] {
  return issues.flatMap((issue): FederatedProblem[] => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: formatPath([...root, ...issue.path, key]), message: 'unknown field' }));
    if (issue.code === 'invalid_key') return [{ path: formatPath([...root, ...issue.path]), message: `is not a valid key: ${issue.issues.map((inner) => inner.message).join(', ')}` }];
    const message = issue.code === 'invalid_type' && / received undefined$/.test(issue.message) ? 'is required' : issue.message;
    return [{ path: formatPath([...root, ...issue.path]), message }];
  });
}

/** An error message that says 'is required' when the value is missing. */
const expecting = (message: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : message) });

const text = (message: string, pattern: RegExp, maxLength = 256) => z.string(expecting(message)).check(z.maxLength(maxLength, message), z.regex(pattern, message));
const whole = (minimum: number, maximum = Number.MAX_SAFE_INTEGER) => {
  const message = maximum === Number.MAX_SAFE_INTEGER ? `must be a whole number ≥ ${minimum}` : `must be a whole number from ${minimum} to ${maximum}`;
  return z.number(expecting(message)).check(z.int(message), z.minimum(minimum, message), z.maximum(maximum, message));
};

const NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
const ACCOUNT = /^\d{12}$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const ROLE_ARN = /^arn:aws(?:-[a-z]+)*:iam::(\d{12}):role\/[\w+=,.@/-]{1,512}$/;
const PARAMETER_NAME = /^(?:\/[A-Za-z0-9_.-]+)+$|^[A-Za-z0-9_.-]+$/;
const RUN_ID = /^[A-Za-z0-9_-]{1,80}$/;
/** The actions, in the order a run calls them. */
export const ACTIONS = ['start', 'startRound', 'checkRound', 'aggregate', 'package'] as const;

const ClientSpecSchema = z.strictObject(
  {
    name: text('must be 1-16 lowercase letters, digits or hyphens, starting and ending with a letter or digit', NAME, 16),
    account: text('must be a 12-digit AWS account id', ACCOUNT, 12),
    region: text('must be an AWS region such as eu-west-1', REGION, 32),
    roleArn: text('must be an IAM role ARN: arn:aws:iam::<account>:role/<name>', ROLE_ARN, 2048),
    settingsParameter: text('must be an SSM parameter name such as /churn-federated-access/exchange', PARAMETER_NAME, 2048),
    trainingImage: z.optional(text('must be a container image URI', /^\S+$/, 255)),
  },
  expecting('must be an object with name, account, region, roleArn and settingsParameter'),
);

const HyperparametersSchema = z
  .record(z.string().check(z.minLength(1, 'must be 1-256 characters'), z.maxLength(256, 'must be 1-256 characters')), z.string({ error: 'must be a string' }).check(z.maxLength(2500, 'must be at most 2500 characters')), {
    error: 'must be an object of strings',
  })
  .check(
    z.superRefine((values, context) => {
      const keys = Object.keys(values);
      if (keys.length > 98) context.addIssue({ code: 'custom', message: `holds ${keys.length} hyperparameters; SageMaker takes 100, and the coordinator sets two`, input: values });
      for (const reserved of [HYPERPARAMETER_ROUND, HYPERPARAMETER_RUN]) {
        if (reserved in values) context.addIssue({ code: 'custom', path: [reserved], message: 'is set by the coordinator for each round', input: values });
      }
    }),
  );

const TrainingSchema = z.strictObject(
  {
    image: text('must be a container image URI', /^\S+$/, 255),
    instanceType: text('must be a SageMaker training instance type such as ml.m5.xlarge', /^ml\.[a-z0-9-]+\.[a-z0-9]+$/, 64),
    instanceCount: z.optional(whole(1, 100)),
    volumeSizeGb: z.optional(whole(1, 16384)),
    maxRuntimeSeconds: whole(60, 2_419_200),
    hyperparameters: z.optional(HyperparametersSchema),
  },
  expecting('must be an object with image, instanceType and maxRuntimeSeconds'),
);

const FederationSchema = z.strictObject(
  {
    name: text('must be 1-32 lowercase letters, digits or hyphens, starting and ending with a letter or digit', NAME, 32),
    clients: z.array(ClientSpecSchema, expecting('must be an array of clients')).check(z.minLength(1, 'must list at least one client'), z.maxLength(MAX_CLIENTS, `must list at most ${MAX_CLIENTS} clients`)),
    training: TrainingSchema,
    aggregation: z.unknown(),
    minClients: whole(1),
    roundTimeoutSeconds: whole(60, 604_800),
    metric: z.strictObject(
      {
        name: text('must be a metric name (1-64 characters)', /^\S(?:.*\S)?$/, 64),
        direction: z.enum(['higher-is-better', 'lower-is-better'], expecting('must be higher-is-better or lower-is-better')),
      },
      expecting('must be an object with name and direction'),
    ),
    convergence: z.omit(ConvergenceOptionsSchema, { direction: true }),
    seed: z.optional(whole(0, 2 ** 31 - 1)),
  },
  expecting('must be a federation spec object'),
);

function readField(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>)[key] : undefined;
}

/** Problems across fields, on the raw value so that they are reported with the per-field ones. */
function crossFieldProblems(value: unknown, root: string): FederatedProblem[] {
  const problems: FederatedProblem[] = [];
  const clients = readField(value, 'clients');
  if (Array.isArray(clients)) {
    const first = new Map<string, number>();
    clients.forEach((client, index) => {
      const name = readField(client, 'name');
      if (typeof name === 'string') {
        const earlier = first.get(name);
        if (earlier !== undefined) problems.push({ path: `${root}.clients[${index}].name`, message: `repeats ${root}.clients[${earlier}].name ('${name}'): client names must be unique` });
        else first.set(name, index);
      }
      const account = readField(client, 'account');
      const roleArn = readField(client, 'roleArn');
      const roleAccount = typeof roleArn === 'string' ? ROLE_ARN.exec(roleArn)?.[1] : undefined;
      if (typeof account === 'string' && ACCOUNT.test(account) && roleAccount !== undefined && roleAccount !== account) {
        problems.push({ path: `${root}.clients[${index}].roleArn`, message: `is in account ${roleAccount}, not the client's account ${account}` });
      }
    });
    const minClients = readField(value, 'minClients');
    if (typeof minClients === 'number' && Number.isInteger(minClients) && clients.length > 0 && minClients > clients.length) {
      problems.push({ path: `${root}.minClients`, message: `is ${minClients}, more than the ${clients.length} client${clients.length === 1 ? '' : 's'} listed` });
    }
  }
  const maxRounds = readField(readField(value, 'convergence'), 'maxRounds');
  if (typeof maxRounds === 'number' && maxRounds > MAX_ROUNDS) problems.push({ path: `${root}.convergence.maxRounds`, message: `must be at most ${MAX_ROUNDS}` });
  return problems;
}

function aggregationProblems(value: unknown, root: string): { problems: FederatedProblem[]; spec?: FederationSpec['aggregation'] } {
  const path = `${root}.aggregation`;
  if (value === undefined) return { problems: [] }; // the schema names it
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problems: [{ path, message: 'must be an object with aggregator' }] };
  const { serverLearningRate = 1, ...rest } = value as Record<string, unknown>;
  const problems: FederatedProblem[] = [];
  if (typeof serverLearningRate !== 'number' || !Number.isFinite(serverLearningRate) || serverLearningRate <= 0) {
    problems.push({ path: `${path}.serverLearningRate`, message: 'must be a finite number > 0' });
  }
  try {
    const spec = parseAggregationSpec(rest);
    return { problems, ...(problems.length === 0 ? { spec: { ...spec, serverLearningRate: serverLearningRate as number } } : {}) };
  } catch (error) {
    if (!(error instanceof FederatedInputError)) throw error;
    return { problems: [...error.problems.map((problem) => ({ path: problem.path === '(root)' ? path : `${path}.${problem.path}`, message: problem.message })), ...problems] };
  }
}

function federationProblems(value: unknown, root: string): { problems: FederatedProblem[]; spec?: FederationSpec } {
  const parsed = FederationSchema.safeParse(value);
  const problems = parsed.success ? [] : problemsOf(parsed.error.issues, [root]);
  problems.push(...crossFieldProblems(value, root));
  const aggregation = typeof value === 'object' && value !== null ? aggregationProblems(readField(value, 'aggregation'), root) : { problems: [] };
  problems.push(...aggregation.problems);
  if (problems.length > 0 || !parsed.success || aggregation.spec === undefined) return { problems };
  const { data } = parsed;
  const spec: FederationSpec = {
    name: data.name,
    clients: data.clients.map((client) => ({
      name: client.name,
      account: client.account,
      region: client.region,
      roleArn: client.roleArn,
      settingsParameter: client.settingsParameter,
      ...(client.trainingImage === undefined ? {} : { trainingImage: client.trainingImage }),
    })),
    training: {
      image: data.training.image,
      instanceType: data.training.instanceType,
      instanceCount: data.training.instanceCount ?? 1,
      volumeSizeGb: data.training.volumeSizeGb ?? 30,
      maxRuntimeSeconds: data.training.maxRuntimeSeconds,
      hyperparameters: data.training.hyperparameters ?? {},
    },
    aggregation: aggregation.spec,
    minClients: data.minClients,
    roundTimeoutSeconds: data.roundTimeoutSeconds,
    metric: { name: data.metric.name, direction: data.metric.direction },
    convergence: {
      maxRounds: data.convergence.maxRounds,
      ...(data.convergence.patience === undefined ? {} : { patience: data.convergence.patience }),
      ...(data.convergence.minDelta === undefined ? {} : { minDelta: data.convergence.minDelta }),
    },
    ...(data.seed === undefined ? {} : { seed: data.seed }),
  };
  return { problems: [], spec };
}

/**
 * Validates a federation spec and fills in the defaults (instanceCount 1, volumeSizeGb 30, hyperparameters {},
 * serverLearningRate 1). Throws {@link FederatedInputError} naming every problem by its path under `root`
 * (`federation.clients[1].roleArn: is in account 222222222222, not the client's account 111111111111`).
 */
export function parseFederationSpec(value: unknown, root = 'federation'): FederationSpec {
  const { problems, spec } = federationProblems(value, root);
  if (problems.length > 0 || spec === undefined) throw new FederatedInputError(problems);
  return spec;
}

const RunIdSchema = text('must be 1-80 letters, digits, hyphens or underscores', RUN_ID, 80);
const RoundSchema = whole(1, MAX_ROUNDS);

const StartEventSchema = z.strictObject({
  action: z.literal('start'),
  runId: RunIdSchema,
  federation: z.unknown(),
  initialModelUri: z.string(expecting('must be an s3:// URI')),
});

const RoundEventSchema = z.strictObject({
  action: z.enum(['startRound', 'checkRound', 'aggregate', 'package']),
  runId: RunIdSchema,
  round: RoundSchema,
});

type ParsedEvent = { action: 'start'; runId: string; federation: FederationSpec; initialModelUri: string } | RoundEvent<Exclude<FederatedRoundAction, 'start'>>;

function parseEvent(event: unknown): ParsedEvent {
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new FederatedInputError([{ path: '(root)', message: 'must be an object with action and runId' }]);
  const action = readField(event, 'action');
  if (action === undefined) throw new FederatedInputError([{ path: 'action', message: `is required: one of ${ACTIONS.join(', ')}` }]);
  if (typeof action !== 'string' || !(ACTIONS as readonly string[]).includes(action)) {
    throw new FederatedInputError([{ path: 'action', message: `must be one of ${ACTIONS.join(', ')}; got ${JSON.stringify(action)}` }]);
  }
  if (action === 'start') {
    const parsed = StartEventSchema.safeParse(event);
    const problems = parsed.success ? [] : problemsOf(parsed.error.issues, []);
    const federation = readField(event, 'federation');
    const checked = federation === undefined ? { problems: [] } : federationProblems(federation, 'federation');
    problems.push(...checked.problems);
    if (problems.length > 0 || !parsed.success || checked.spec === undefined) throw new FederatedInputError(problems);
    return { action: 'start', runId: parsed.data.runId, federation: checked.spec, initialModelUri: parsed.data.initialModelUri };
  }
  const parsed = RoundEventSchema.safeParse(event);
  if (!parsed.success) throw new FederatedInputError(problemsOf(parsed.error.issues, []));
  return parsed.data;
}

/** The silo's settings, from its SSM parameter. */
interface SiloSettings {
  readonly exchangeBucket: string;
  readonly keyArn: string;
  readonly trainingRoleArn: string;
  readonly dataUri: string;
}

const SiloSettingsSchema = z.object(
  {
    exchangeBucket: text('must be an S3 bucket name', /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 63),
    keyArn: text('must be a KMS key ARN: arn:aws:kms:<region>:<account>:key/<id>', /^arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/, 2048),
    trainingRoleArn: text('must be an IAM role ARN: arn:aws:iam::<account>:role/<name>', ROLE_ARN, 2048),
    dataUri: text('must be an s3:// URI of the training data: s3://bucket/prefix/', /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/\S*$/, 1024),
  },
  { error: 'must be a JSON object with exchangeBucket, keyArn, trainingRoleArn and dataUri' },
);

function parseSiloSettings(value: unknown, client: FederationClientSpec): SiloSettings {
  const parsed = SiloSettingsSchema.safeParse(value);
  const problems = parsed.success ? [] : problemsOf(parsed.error.issues, []);
  const keyRegion = /^arn:[^:]+:kms:([^:]+):/.exec(String(readField(value, 'keyArn')))?.[1];
  if (keyRegion !== undefined && keyRegion !== client.region) problems.push({ path: 'keyArn', message: `is in ${keyRegion}; the key must be in the client's region ${client.region}` });
  const roleAccount = ROLE_ARN.exec(String(readField(value, 'trainingRoleArn')))?.[1];
  if (roleAccount !== undefined && roleAccount !== client.account) problems.push({ path: 'trainingRoleArn', message: `is in account ${roleAccount}; the training role must be in the client's account ${client.account}` });
  if (problems.length > 0 || !parsed.success) throw new ClientFailureError(`settings ${client.settingsParameter}: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`);
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------------
// The coordinator's state in S3
// ---------------------------------------------------------------------------------------------------

interface Settings {
  readonly bucket: string;
  readonly prefix: string;
  readonly kmsKeyId: string;
}

function loadSettings(): Settings {
  const bucket = process.env.STATE_BUCKET ?? '';
  const prefix = process.env.STATE_PREFIX ?? '';
  const kmsKeyId = process.env.KMS_KEY_ID ?? '';
  const problems = [
    ...(bucket.length === 0 ? ['STATE_BUCKET: is not set'] : []),
    ...(prefix.length > 0 && !prefix.endsWith('/') ? [`STATE_PREFIX: must end with '/'; got '${prefix}'`] : []),
    ...(kmsKeyId.length === 0 ? ['KMS_KEY_ID: is not set'] : []),
  ];
  if (problems.length > 0) throw new ConfigError(problems.join('; '));
  return { bucket, prefix, kmsKeyId };
}

const pad = (round: number): string => String(round).padStart(4, '0');

/** What a run's record says. */
interface RunRecord {
  readonly version: 1;
  readonly runId: string;
  readonly federation: FederationSpec;
  readonly initialModelUri: string;
  /** The model's number of parameters. */
  readonly parameters: number;
  readonly startedAt: string;
}

type ClientStatus = 'training' | 'completed' | 'failed';

interface ClientRoundState {
  readonly status: ClientStatus;
  readonly jobName?: string;
  /** Where the job's output goes: s3://<exchangeBucket>/updates/<runId>/round-N/. */
  readonly outputUri?: string;
  readonly reason?: string;
  /** The last error reaching the client while it trains (it is checked again). */
  readonly lastError?: string;
  readonly sampleCount?: number;
  readonly updatedAt: string;
}

interface RoundState {
  readonly version: 1;
  readonly runId: string;
  readonly round: number;
  readonly startedAt: string;
  readonly deadline: string;
  readonly clients: Readonly<Record<string, ClientRoundState>>;
}

/** round-N/aggregate.json. */
interface RoundRecord {
  readonly version: 1;
  readonly runId: string;
  readonly round: number;
  readonly aggregatedAt: string;
  readonly aggregator: AggregatorKind;
  readonly clientIds: readonly string[];
  readonly ignoredClientIds: readonly string[];
  readonly weights: readonly number[] | null;
  readonly trim: { readonly trimFraction: number; readonly trimmed: number } | null;
  readonly privacy: PrivacyRecord | null;
  readonly serverLearningRate: number;
  readonly failed: readonly ClientFailure[];
  readonly metric: { readonly name: string; readonly direction: MetricDirection; readonly value: number; readonly clients: number; readonly samples: number };
  readonly metrics: Readonly<Record<string, { readonly mean: number; readonly clients: number; readonly samples: number }>>;
  readonly history: readonly number[];
  readonly convergence: ConvergenceDecision;
  readonly globalModelUri: string;
  readonly result: AggregateResult;
}

const UpdateValuesSchema = ClientResultSchema.shape.update;

const DateSchema = z.string().check(z.refine((value) => !Number.isNaN(Date.parse(value)), 'must be a date'));

const GlobalModelSchema = z.object({ round: whole(1, MAX_ROUNDS + 1), parameters: UpdateValuesSchema });

const RoundStateSchema = z.object({
  version: z.literal(1),
  runId: z.string(),
  round: whole(1, MAX_ROUNDS),
  startedAt: DateSchema,
  deadline: DateSchema,
  clients: z.record(
    z.string(),
    z.object({
      status: z.enum(['training', 'completed', 'failed']),
      jobName: z.optional(z.string()),
      outputUri: z.optional(z.string()),
      reason: z.optional(z.string()),
      lastError: z.optional(z.string()),
      sampleCount: z.optional(z.number()),
      updatedAt: z.string(),
    }),
  ),
});

/** The fields of a round record that are read back (the rest is kept as written). */
const RoundRecordSchema = z.looseObject({
  version: z.literal(1),
  round: whole(1, MAX_ROUNDS),
  aggregatedAt: DateSchema,
  aggregator: z.enum(['fedavg', 'median', 'trimmed-mean']),
  history: z.array(z.number()),
  convergence: z.looseObject({ bestRound: z.optional(z.number()), bestValue: z.optional(z.number()) }),
  result: z.looseObject({ runId: z.string(), round: z.number() }),
});

const RunRecordSchema = z.object({ version: z.literal(1), runId: z.string(), federation: z.unknown(), initialModelUri: z.string(), parameters: whole(1), startedAt: DateSchema });

/** The JSON with sorted keys: the same value always gives the same text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
      .map((key) => `${JSON.stringify(key)}:${canonical((value as Record<string, unknown>)[key])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const errorName = (error: unknown): string | undefined => (error as { name?: string } | null)?.name;

/** `Name: message` of an SDK or other error. */
function describeError(error: unknown): string {
  const name = errorName(error) ?? 'Error';
  const message = (error as { message?: string } | null)?.message ?? String(error);
  return message.length > 0 && message !== name ? `${name}: ${message}` : name;
}

const cut = (reason: string, length: number): string => (reason.length <= length ? reason : `${reason.slice(0, length - 1)}…`);

/** The coordinator's view of one run in STATE_BUCKET. */
class RunStore {
  private readonly encryption: { ServerSideEncryption: 'aws:kms'; SSEKMSKeyId: string };

  constructor(
    readonly settings: Settings,
    readonly runId: string,
  ) {
    this.encryption = { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: settings.kmsKeyId };
  }

  get base(): string {
    return `${this.settings.prefix}${this.runId}/`;
  }

  runKey(): string {
    return `${this.base}run.json`;
  }

  roundKey(round: number, name: string): string {
    return `${this.base}round-${pad(round)}/${name}`;
  }

  uri(key: string): string {
    return `s3://${this.settings.bucket}/${key}`;
  }

  /** The object's text, or undefined when there is none. Any other S3 error propagates (the workflow retries). */
  async readText(key: string, bucket = this.settings.bucket): Promise<string | undefined> {
    try {
      const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      return (await response.Body?.transformToString('utf-8')) ?? '';
    } catch (error) {
      if (errorName(error) === 'NoSuchKey') return undefined;
      throw error;
    }
  }

  async readJson(key: string): Promise<unknown> {
    const body = await this.readText(key);
    if (body === undefined) return undefined;
    try {
      return JSON.parse(body) as unknown;
    } catch {
      throw new FederatedInputError([{ path: 'runId', message: `the run's state ${this.uri(key)} is not JSON` }]);
    }
  }

  /** Reads and checks a state object; undefined when there is none, FederatedInputError when it is not valid. */
  async readState<S extends z.ZodMiniType>(key: string, schema: S): Promise<z.output<S> | undefined> {
    const value = await this.readJson(key);
    if (value === undefined) return undefined;
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      throw new FederatedInputError([{ path: 'runId', message: `the run's state ${this.uri(key)} is not valid (${problemsOf(parsed.error.issues, []).map((problem) => `${problem.path}: ${problem.message}`).join('; ')})` }]);
    }
    return parsed.data as z.output<S>;
  }

  async write(key: string, body: string | Uint8Array, contentType: string, options: { ifNoneMatch?: boolean } = {}): Promise<void> {
    await s3.send(
      new PutObjectCommand({
        Bucket: this.settings.bucket,
        Key: key,
        Body: body,
        ContentType: contentType,
        ...this.encryption,
        ...(options.ifNoneMatch ? { IfNoneMatch: '*' } : {}),
      }),
    );
  }

  writeJson(key: string, value: unknown, options?: { ifNoneMatch?: boolean }): Promise<void> {
    return this.write(key, JSON.stringify(value), 'application/json', options);
  }

  async run(): Promise<RunRecord & { federation: FederationSpec }> {
    const record = await this.readState(this.runKey(), RunRecordSchema);
    if (record === undefined) throw new FederatedInputError([{ path: 'runId', message: `no run '${this.runId}' (${this.uri(this.runKey())} does not exist): start it first` }]);
    return { ...record, federation: parseFederationSpec(record.federation, 'run.json federation') } as RunRecord;
  }

  async globalModel(round: number): Promise<{ round: number; parameters: number[] }> {
    const key = this.roundKey(round, 'global.json');
    const model = await this.readState(key, GlobalModelSchema);
    if (model === undefined) {
      throw new FederatedInputError([{ path: 'round', message: `round ${round} has no global model (${this.uri(key)})${round > 1 ? `: aggregate round ${round - 1} first` : ''}` }]);
    }
    return model;
  }

  async roundState(round: number): Promise<RoundState | undefined> {
    return this.readState(this.roundKey(round, 'round.json'), RoundStateSchema) as Promise<RoundState | undefined>;
  }

  async requireRoundState(round: number): Promise<RoundState> {
    const state = await this.roundState(round);
    if (state === undefined) throw new FederatedInputError([{ path: 'round', message: `round ${round} has not been started (${this.uri(this.roundKey(round, 'round.json'))} does not exist): call startRound first` }]);
    return state;
  }

  async roundRecord(round: number): Promise<RoundRecord | undefined> {
    return this.readState(this.roundKey(round, 'aggregate.json'), RoundRecordSchema) as Promise<RoundRecord | undefined>;
  }

  async requireRoundRecord(round: number): Promise<RoundRecord> {
    const record = await this.roundRecord(round);
    if (record === undefined) throw new FederatedInputError([{ path: 'round', message: `round ${round} has not been aggregated (${this.uri(this.roundKey(round, 'aggregate.json'))} does not exist)` }]);
    return record;
  }
}

function checkRoundInRun(round: number, federation: FederationSpec): void {
  if (round > federation.convergence.maxRounds) {
    throw new FederatedInputError([{ path: 'round', message: `is ${round}; the federation runs at most ${federation.convergence.maxRounds} rounds (convergence.maxRounds)` }]);
  }
}

// ---------------------------------------------------------------------------------------------------
// The client silos
// ---------------------------------------------------------------------------------------------------

/** A client that cannot take part in the round, with why. */
class ClientFailureError extends Error {
  override readonly name = 'ClientFailureError';
}

/** A call to a silo that failed: the step (`sts:AssumeRole`, `sagemaker:CreateTrainingJob`, ...) and the error. */
class StepError extends Error {
  override readonly name = 'StepError';

  constructor(
    readonly step: string,
    override readonly cause: unknown,
  ) {
    super(`${step}: ${describeError(cause)}`);
  }
}

async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw new StepError(name, error);
  }
}

function stsClient(region: string): STSClient {
  let client = stsClients.get(region);
  if (client === undefined) {
    client = new STSClient({ region });
    stsClients.set(region, client);
  }
  return client;
}

/** Training job name: `fl-<hash>-r<NNNN>-<client>`, ≤ 36 characters, the same for every call of a round. */
export function trainingJobName(federation: string, runId: string, round: number, client: string): string {
  const hash = createHash('sha256').update(`${federation}\u0000${runId}`).digest('hex').slice(0, 10);
  return `fl-${hash}-r${pad(round)}-${client}`;
}

/** One client silo for one call: its role's credentials and SDK clients, in its region. */
class Silo {
  private credentials: Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken: string; expiration?: Date }> | undefined;
  private clients: { s3?: S3Client; ssm?: SSMClient; sagemaker?: SageMakerClient } = {};

  constructor(
    readonly client: FederationClientSpec,
    readonly runId: string,
  ) {}

  /** Assumes the client's role (once per call). */
  assume(): Promise<unknown> {
    this.credentials ??= step('sts:AssumeRole', async () => {
      const response = await stsClient(this.client.region).send(
        new AssumeRoleCommand({ RoleArn: this.client.roleArn, RoleSessionName: `fl-${this.runId}`.slice(0, 64), DurationSeconds: SESSION_SECONDS }),
      );
      const credentials = response.Credentials;
      if (credentials?.AccessKeyId === undefined || credentials.SecretAccessKey === undefined || credentials.SessionToken === undefined) {
        throw new Error(`AssumeRole ${this.client.roleArn} returned no credentials`);
      }
      return {
        accessKeyId: credentials.AccessKeyId,
        secretAccessKey: credentials.SecretAccessKey,
        sessionToken: credentials.SessionToken,
        ...(credentials.Expiration === undefined ? {} : { expiration: credentials.Expiration }),
      };
    });
    return this.credentials;
  }

  private config() {
    const credentials = this.credentials;
    if (credentials === undefined) throw new Error('assume the role first');
    return { region: this.client.region, credentials: () => credentials };
  }

  get s3(): S3Client {
    return (this.clients.s3 ??= new S3Client(this.config()));
  }

  get ssm(): SSMClient {
    return (this.clients.ssm ??= new SSMClient(this.config()));
  }

  get sagemaker(): SageMakerClient {
    return (this.clients.sagemaker ??= new SageMakerClient(this.config()));
  }

  async settings(): Promise<SiloSettings> {
    const name = this.client.settingsParameter;
    const response = await step(`ssm:GetParameter ${name}`, () => this.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true })));
    const value = response.Parameter?.Value ?? '';
    let json: unknown;
    try {
      json = JSON.parse(value);
    } catch {
      throw new ClientFailureError(`settings ${name}: is not JSON (an object with exchangeBucket, keyArn, trainingRoleArn and dataUri)`);
    }
    return parseSiloSettings(json, this.client);
  }

  destroy(): void {
    this.clients.s3?.destroy();
    this.clients.ssm?.destroy();
    this.clients.sagemaker?.destroy();
  }
}

async function withSilo<T>(client: FederationClientSpec, runId: string, fn: (silo: Silo) => Promise<T>): Promise<T> {
  const silo = new Silo(client, runId);
  try {
    return await fn(silo);
  } finally {
    silo.destroy();
  }
}

const reasonOf = (error: unknown): string => cut(error instanceof StepError || error instanceof ClientFailureError ? error.message : `unexpected error: ${describeError(error)}`, MAX_STORED_REASON);

/** Runs fn for every client at once; a client whose fn throws gets `onError`'s state, never failing the others. */
async function forEachClient<T>(clients: readonly FederationClientSpec[], fn: (client: FederationClientSpec) => Promise<T>, onError: (client: FederationClientSpec, error: unknown) => T): Promise<T[]> {
  const settled = await Promise.allSettled(clients.map((client) => fn(client)));
  return settled.map((outcome, index) => (outcome.status === 'fulfilled' ? outcome.value : onError(clients[index]!, outcome.reason)));
}

// ---------------------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------------------

async function start(store: RunStore, event: Extract<ParsedEvent, { action: 'start' }>): Promise<StartResult> {
  const { federation, initialModelUri, runId } = event;
  const { bucket, prefix } = store.settings;
  const under = `s3://${bucket}/${prefix}`;
  if (!initialModelUri.startsWith(under) || initialModelUri.length === under.length || initialModelUri.endsWith('/')) {
    throw new FederatedInputError([{ path: 'initialModelUri', message: `must be an object under ${under} (the coordinator's bucket and prefix); got '${initialModelUri}'` }]);
  }
  const sameRun = (record: RunRecord): StartResult => {
    if (canonical(record.federation) !== canonical(federation) || record.initialModelUri !== initialModelUri) {
      throw new FederatedInputError([
        {
          path: canonical(record.federation) !== canonical(federation) ? 'federation' : 'initialModelUri',
          message: `run '${runId}' was started at ${record.startedAt} with another ${canonical(record.federation) !== canonical(federation) ? 'federation spec' : `initial model (${record.initialModelUri})`}: a run's spec cannot change; use a new runId`,
        },
      ]);
    }
    return { runId, round: 1, parameters: record.parameters, clients: record.federation.clients.length };
  };
  const existing = await store.readState(store.runKey(), RunRecordSchema);
  if (existing !== undefined) {
    logger.info('run already started: a retried start', { runId });
    return sameRun(existing as RunRecord);
  }

  const key = initialModelUri.slice(`s3://${bucket}/`.length);
  let body: string | undefined;
  try {
    body = await store.readText(key);
  } catch (error) {
    if (errorName(error) === 'AccessDenied' || errorName(error) === 'NoSuchBucket') {
      throw new FederatedInputError([{ path: 'initialModelUri', message: `cannot read ${initialModelUri} (${describeError(error)})` }]);
    }
    throw error;
  }
  if (body === undefined) throw new FederatedInputError([{ path: 'initialModelUri', message: `${initialModelUri} does not exist` }]);
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw new FederatedInputError([{ path: 'initialModelUri', message: `${initialModelUri} is not JSON: it must be an object { "parameters": number[] }` }]);
  }
  const model = z.object({ parameters: UpdateValuesSchema }, { error: 'must be a JSON object with parameters' }).safeParse(json);
  if (!model.success) {
    throw new FederatedInputError(problemsOf(model.error.issues, []).map((problem) => ({ path: 'initialModelUri', message: `${initialModelUri}: ${problem.path}: ${problem.message}` })));
  }
  const parameters = model.data.parameters;
  const record: RunRecord = { version: 1, runId, federation, initialModelUri, parameters: parameters.length, startedAt: new Date().toISOString() };
  // The global model first, the run record last: a run record means the run is ready for round 1.
  await store.writeJson(store.roundKey(1, 'global.json'), { round: 1, parameters });
  try {
    await store.writeJson(store.runKey(), record, { ifNoneMatch: true });
  } catch (error) {
    // Another call started the run in the meantime: the same run, or another spec under the same id.
    if (errorName(error) !== 'PreconditionFailed' && errorName(error) !== 'ConditionalRequestConflict') throw error;
    const winner = await store.readState(store.runKey(), RunRecordSchema);
    if (winner === undefined) throw error;
    return sameRun(winner as RunRecord);
  }
  logger.info('run started', { runId, federation: federation.name, clients: federation.clients.length, parameters: parameters.length });
  return { runId, round: 1, parameters: parameters.length, clients: federation.clients.length };
}

function globalPrefix(runId: string, round: number): string {
  return `global/${runId}/round-${pad(round)}/`;
}

async function startClient(run: RunRecord, round: number, body: string, client: FederationClientSpec): Promise<ClientRoundState> {
  const { federation, runId } = run;
  const jobName = trainingJobName(federation.name, runId, round, client.name);
  return withSilo(client, runId, async (silo) => {
    await silo.assume();
    const settings = await silo.settings();
    const prefix = globalPrefix(runId, round);
    await step(`s3:PutObject s3://${settings.exchangeBucket}/${prefix}model.json`, () =>
      silo.s3.send(
        new PutObjectCommand({ Bucket: settings.exchangeBucket, Key: `${prefix}model.json`, Body: body, ContentType: 'application/json', ServerSideEncryption: 'aws:kms', SSEKMSKeyId: settings.keyArn }),
      ),
    );
    const outputUri = `s3://${settings.exchangeBucket}/updates/${runId}/round-${pad(round)}/`;
    const { training } = federation;
    try {
      await silo.sagemaker.send(
        new CreateTrainingJobCommand({
          TrainingJobName: jobName,
          AlgorithmSpecification: { TrainingImage: client.trainingImage ?? training.image, TrainingInputMode: 'File' },
          RoleArn: settings.trainingRoleArn,
          InputDataConfig: [
            { ChannelName: 'train', DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: settings.dataUri, S3DataDistributionType: 'FullyReplicated' } } },
            {
              ChannelName: 'global',
              ContentType: 'application/json',
              DataSource: { S3DataSource: { S3DataType: 'S3Prefix', S3Uri: `s3://${settings.exchangeBucket}/${prefix}`, S3DataDistributionType: 'FullyReplicated' } },
            },
          ],
          OutputDataConfig: { S3OutputPath: outputUri, KmsKeyId: settings.keyArn },
          ResourceConfig: { InstanceType: training.instanceType as TrainingInstanceType, InstanceCount: training.instanceCount, VolumeSizeInGB: training.volumeSizeGb, VolumeKmsKeyId: settings.keyArn },
          StoppingCondition: { MaxRuntimeInSeconds: training.maxRuntimeSeconds },
          HyperParameters: { ...training.hyperparameters, [HYPERPARAMETER_ROUND]: String(round), [HYPERPARAMETER_RUN]: runId },
          EnableNetworkIsolation: true,
          EnableInterContainerTrafficEncryption: true,
          Tags: [
            { Key: 'ml-federation', Value: federation.name },
            { Key: 'ml-federation-run', Value: runId },
          ],
        }),
      );
    } catch (error) {
      // The job exists: an earlier attempt of this call created it.
      if (errorName(error) !== 'ResourceInUse') throw new StepError('sagemaker:CreateTrainingJob', error);
      logger.info('training job already exists: a retried startRound', { runId, round, client: client.name, jobName });
    }
    return { status: 'training', jobName, outputUri, updatedAt: new Date().toISOString() } satisfies ClientRoundState;
  });
}

function counts(state: RoundState): Record<ClientStatus, number> {
  const tally: Record<ClientStatus, number> = { training: 0, completed: 0, failed: 0 };
  for (const client of Object.values(state.clients)) tally[client.status] += 1;
  return tally;
}

async function startRound(store: RunStore, round: number): Promise<RoundStartResult> {
  const run = await store.run();
  checkRoundInRun(round, run.federation);
  const existing = await store.roundState(round);
  const toStart = run.federation.clients.filter((client) => existing?.clients[client.name] === undefined);
  let state: RoundState;
  if (existing !== undefined && toStart.length === 0) {
    logger.info('round already started: a retried startRound', { runId: run.runId, round });
    state = existing;
  } else {
    const model = await store.globalModel(round);
    const startedAt = existing?.startedAt ?? new Date().toISOString();
    const body = JSON.stringify({ round, parameters: model.parameters });
    const started = await forEachClient(
      toStart,
      (client) => startClient(run, round, body, client),
      (_client, error): ClientRoundState => ({ status: 'failed', reason: reasonOf(error), updatedAt: new Date().toISOString() }),
    );
    const clients: Record<string, ClientRoundState> = { ...existing?.clients };
    toStart.forEach((client, index) => {
      const outcome = started[index]!;
      clients[client.name] = outcome;
      if (outcome.status === 'failed') logger.warn('client not started', { runId: run.runId, round, client: client.name, reason: outcome.reason });
    });
    state = {
      version: 1,
      runId: run.runId,
      round,
      startedAt,
      deadline: new Date(Date.parse(startedAt) + run.federation.roundTimeoutSeconds * 1000).toISOString(),
      clients,
    };
    await store.writeJson(store.roundKey(round, 'round.json'), state);
  }
  const tally = counts(state);
  logger.info('round started', { runId: run.runId, round, ...tally });
  return { runId: run.runId, round, training: tally.training, failed: tally.failed, pending: tally.training };
}

/** The client's result, from update.json in its model.tar.gz; a ClientFailureError says what is missing or wrong. */
function readUpdate(archive: Uint8Array, client: string, parameters: number): ClientResult {
  let entries;
  try {
    entries = readTarGz(archive, { maxBytes: MAX_UPDATE_ARCHIVE_BYTES });
  } catch (error) {
    if (error instanceof TarError) throw new ClientFailureError(`model.tar.gz: ${error.message}`);
    throw error;
  }
  const file = findTarFile(entries, 'update.json');
  if (file === undefined) {
    const names = entries.filter((entry) => entry.type === 'file').map((entry) => entry.name);
    throw new ClientFailureError(`model.tar.gz holds no update.json (${names.length === 0 ? 'no files' : `files: ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', …' : ''}`})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(file.data));
  } catch {
    throw new ClientFailureError('update.json is not JSON: it must be an object { sampleCount, update: number[], metrics? }');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ClientFailureError('update.json must be an object { sampleCount, update: number[], metrics? }');
  const raw = json as Record<string, unknown>;
  let result: ClientResult;
  try {
    [result] = parseClientResults([{ clientId: client, sampleCount: raw.sampleCount, update: raw.update, ...(raw.metrics === undefined ? {} : { metrics: raw.metrics }) }], 'update.json') as [ClientResult];
  } catch (error) {
    if (!(error instanceof FederatedInputError)) throw error;
    throw new ClientFailureError(`update.json: ${error.problems.map((problem) => `${problem.path.replace(/^update\.json\[0\]\.?/, '') || '(root)'}: ${problem.message}`).join('; ')}`);
  }
  if (result.update.length !== parameters) throw new ClientFailureError(`update.json: update has ${result.update.length} values; the global model has ${parameters}`);
  return result;
}

function parseS3Uri(uri: string): { bucket: string; key: string } | undefined {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return match === null ? undefined : { bucket: match[1]!, key: match[2]! };
}

async function checkClient(store: RunStore, run: RunRecord, round: number, client: FederationClientSpec, current: ClientRoundState, pastDeadline: boolean): Promise<ClientRoundState> {
  const now = () => new Date().toISOString();
  const timeout = `timed out after ${run.federation.roundTimeoutSeconds} s`;
  const jobName = current.jobName ?? trainingJobName(run.federation.name, run.runId, round, client.name);
  return withSilo(client, run.runId, async (silo) => {
    /** Not reached this time: checked again next time, unless the round is over. */
    const unreachable = (error: unknown): ClientRoundState => {
      const reason = reasonOf(error);
      if (pastDeadline) return { status: 'failed', jobName, reason: `${timeout} (the last check failed: ${reason})`, updatedAt: now() };
      logger.warn('client not reached; checking again next time', { runId: run.runId, round, client: client.name, reason });
      return { ...current, lastError: reason, updatedAt: now() };
    };
    let job: DescribeTrainingJobCommandOutput;
    try {
      await silo.assume();
      job = await step(`sagemaker:DescribeTrainingJob ${jobName}`, () => silo.sagemaker.send(new DescribeTrainingJobCommand({ TrainingJobName: jobName })));
    } catch (error) {
      return unreachable(error);
    }
    const status = job.TrainingJobStatus;
    const failed = (reason: string): ClientRoundState => ({ status: 'failed', jobName, reason: cut(reason, MAX_STORED_REASON), updatedAt: now() });
    switch (status) {
      case 'Completed': {
        const location = parseS3Uri(`${current.outputUri ?? ''}${jobName}/output/model.tar.gz`);
        if (location === undefined) return failed(`training job ${jobName} completed, but the round state holds no output location for it`);
        const { bucket, key } = location;
        let archive: Uint8Array;
        try {
          const response = await silo.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
          archive = (await response.Body?.transformToByteArray()) ?? new Uint8Array(0);
        } catch (error) {
          if (errorName(error) === 'NoSuchKey' || errorName(error) === 'NoSuchBucket') return failed(`training job ${jobName} completed but left no update: s3://${bucket}/${key} does not exist`);
          return unreachable(new StepError(`s3:GetObject s3://${bucket}/${key}`, error));
        }
        let result: ClientResult;
        try {
          result = readUpdate(archive, client.name, run.parameters);
        } catch (error) {
          if (error instanceof ClientFailureError) return failed(`training job ${jobName}: ${error.message}`);
          throw error;
        }
        await store.writeJson(store.roundKey(round, `clients/${client.name}.json`), result);
        return { status: 'completed', jobName, ...(current.outputUri === undefined ? {} : { outputUri: current.outputUri }), sampleCount: result.sampleCount, updatedAt: now() };
      }
      case 'Failed':
        return failed(`training job ${jobName} failed: ${job.FailureReason ?? 'SageMaker gave no reason'}`);
      case 'Stopped':
        return failed(`training job ${jobName} was stopped${job.FailureReason === undefined ? '' : `: ${job.FailureReason}`}`);
      case 'Deleting':
        return failed(`training job ${jobName} is being deleted`);
      default: {
        if (!pastDeadline) return { status: 'training', jobName, ...(current.outputUri === undefined ? {} : { outputUri: current.outputUri }), updatedAt: now() };
        if (status !== 'Stopping') {
          try {
            await silo.sagemaker.send(new StopTrainingJobCommand({ TrainingJobName: jobName }));
          } catch (error) {
            // The job is failed for this round whatever becomes of it; SageMaker's own limit stops it in the end.
            logger.warn('could not stop a training job past the deadline', { runId: run.runId, round, client: client.name, jobName, error: describeError(error) });
          }
        }
        return failed(`${timeout} (training job ${jobName} was ${status ?? 'in an unknown state'}; stopped)`);
      }
    }
  });
}

async function checkRound(store: RunStore, round: number): Promise<RoundProgress> {
  const run = await store.run();
  checkRoundInRun(round, run.federation);
  const state = await store.requireRoundState(round);
  const pastDeadline = Date.now() >= Date.parse(state.deadline);
  const training = run.federation.clients.filter((client) => state.clients[client.name]?.status === 'training');
  if (training.length > 0) {
    const checked = await forEachClient(
      training,
      (client) => checkClient(store, run, round, client, state.clients[client.name]!, pastDeadline),
      (_client, error): ClientRoundState => {
        // The coordinator's own S3 failing (writing a result): the call fails, and the workflow retries it.
        throw error;
      },
    );
    const clients: Record<string, ClientRoundState> = { ...state.clients };
    training.forEach((client, index) => {
      const outcome = checked[index]!;
      clients[client.name] = outcome;
      if (outcome.status === 'failed') logger.warn('client failed the round', { runId: run.runId, round, client: client.name, reason: outcome.reason });
      if (outcome.status === 'completed') logger.info('client update received', { runId: run.runId, round, client: client.name, sampleCount: outcome.sampleCount });
    });
    const next: RoundState = { ...state, clients };
    await store.writeJson(store.roundKey(round, 'round.json'), next);
    const tally = counts(next);
    logger.info('round checked', { runId: run.runId, round, ...tally, pastDeadline });
    return { runId: run.runId, round, pending: tally.training, completed: tally.completed, failed: tally.failed };
  }
  const tally = counts(state);
  return { runId: run.runId, round, pending: tally.training, completed: tally.completed, failed: tally.failed };
}

function publishRoundMetrics(record: RoundRecord): void {
  try {
    metrics.addMetric('RoundsAggregated', MetricUnit.Count, 1);
    metrics.addMetric('ClientsContributing', MetricUnit.Count, record.clientIds.length);
    metrics.addMetric('ClientsFailed', MetricUnit.Count, record.failed.length);
    metrics.addMetric('GlobalMetric', MetricUnit.NoUnit, record.metric.value);
    metrics.publishStoredMetrics();
  } catch {
    // Metrics must never fail the round.
  }
}

async function aggregateRound(store: RunStore, round: number): Promise<AggregateResult> {
  const run = await store.run();
  const { federation } = run;
  checkRoundInRun(round, federation);
  const recorded = await store.roundRecord(round);
  if (recorded !== undefined) {
    logger.info('round already aggregated: the recorded result', { runId: run.runId, round });
    return recorded.result;
  }
  const state = await store.requireRoundState(round);
  const global = await store.globalModel(round);
  const names = federation.clients.map((client) => client.name);
  const completed = names.filter((name) => state.clients[name]?.status === 'completed');
  const results = await Promise.all(
    completed.map(async (name) => {
      const key = store.roundKey(round, `clients/${name}.json`);
      const value = await store.readJson(key);
      if (value === undefined) throw new FederatedInputError([{ path: 'round', message: `client '${name}' completed round ${round} but its result ${store.uri(key)} is missing` }]);
      return parseClientResults([value], `clients/${name}.json`)[0]!;
    }),
  );
  const failures: ClientFailure[] = names.flatMap((name): ClientFailure[] => {
    const client = state.clients[name];
    if (client?.status === 'failed') return [{ clientId: name, reason: client.reason ?? 'failed' }];
    if (client?.status === 'training') return [{ clientId: name, reason: `still training when round ${round} was aggregated` }];
    return [];
  });
  let quorum: ReturnType<typeof checkRoundQuorum>;
  try {
    quorum = checkRoundQuorum({ round, minClients: federation.minClients, results, failures, selected: names });
  } catch (error) {
    // RoundFailedError propagates (the workflow routes it to the failure notice), its reasons cut to fit an error's cause.
    if (!(error instanceof RoundFailedError)) throw error;
    const failed = error.failed.map((failure) => ({ clientId: failure.clientId, reason: cut(failure.reason, MAX_ERROR_REASON) }));
    throw new RoundFailedError(error.round, error.minClients, error.contributing, failed);
  }
  const { serverLearningRate, ...aggregation } = federation.aggregation;
  const random = aggregation.privacy === undefined ? undefined : federation.seed === undefined ? cryptoRandom() : seededRandom(federation.seed + round);
  const aggregated = aggregate(results, aggregation, random);
  const parameters = applyUpdate(global.parameters, aggregated.update, serverLearningRate);

  const metricName = federation.metric.name;
  const clientMetrics = aggregateMetrics(quorum.contributing);
  const metric = clientMetrics[metricName];
  if (metric === undefined) {
    throw new FederatedInputError([
      { path: 'federation.metric.name', message: `no contributing client reported '${metricName}' in round ${round} (contributing: ${aggregated.clientIds.join(', ')}): update.json's metrics must include it` },
    ]);
  }
  let previous: readonly number[] = [];
  if (round > 1) previous = (await store.requireRoundRecord(round - 1)).history;
  const history = [...previous, metric.mean];
  const decision = decideConvergence(history, { ...federation.convergence, direction: federation.metric.direction });
  const nextRound = round + 1;
  const globalKey = store.roundKey(nextRound, 'global.json');
  const result: AggregateResult = {
    runId: run.runId,
    round,
    nextRound,
    converged: decision.stop,
    reason: decision.reason ?? null,
    metric: metric.mean,
    bestRound: decision.bestRound!,
    bestValue: decision.bestValue!,
    contributing: aggregated.clientIds,
    failed: quorum.failed.slice(0, MAX_RETURNED_FAILURES).map((failure) => ({ clientId: failure.clientId, reason: cut(failure.reason, MAX_RETURNED_REASON) })),
  };
  const record: RoundRecord = {
    version: 1,
    runId: run.runId,
    round,
    aggregatedAt: new Date().toISOString(),
    aggregator: aggregated.aggregator,
    clientIds: aggregated.clientIds,
    ignoredClientIds: aggregated.ignoredClientIds,
    weights: aggregated.weights ?? null,
    trim: aggregated.trim ?? null,
    privacy: aggregated.privacy ?? null,
    serverLearningRate,
    failed: quorum.failed,
    metric: { name: metricName, direction: federation.metric.direction, value: metric.mean, clients: metric.clients, samples: metric.samples },
    metrics: clientMetrics,
    history,
    convergence: decision,
    globalModelUri: store.uri(globalKey),
    result,
  };
  // The next global model first, the record last: a record means the round is done.
  await store.writeJson(globalKey, { round: nextRound, parameters });
  await store.writeJson(store.roundKey(round, 'aggregate.json'), record);
  publishRoundMetrics(record);
  logger.info('round aggregated', {
    runId: run.runId,
    round,
    aggregator: record.aggregator,
    contributing: record.clientIds,
    failed: record.failed.length,
    metric: metric.mean,
    converged: decision.stop,
    reason: decision.reason ?? null,
  });
  return result;
}

async function packageModel(store: RunStore, round: number): Promise<PackageResult> {
  const run = await store.run();
  const { federation } = run;
  checkRoundInRun(round, federation);
  const record = await store.requireRoundRecord(round);
  const model = await store.globalModel(round + 1);
  const privacy = federation.aggregation.privacy;
  const document = {
    federation: federation.name,
    runId: run.runId,
    rounds: round,
    parameters: model.parameters,
    aggregator: federation.aggregation.aggregator,
    privacy: privacy === undefined ? null : { noiseMultiplier: privacy.noiseMultiplier, clipNorm: privacy.clipNorm },
    metric: { name: federation.metric.name, direction: federation.metric.direction, history: record.history, bestRound: record.convergence.bestRound ?? null, bestValue: record.convergence.bestValue ?? null },
  };
  // The round's time as the file's: packaging the same round again writes the same bytes.
  const archive = writeTarGz([{ name: 'model.json', data: JSON.stringify(document), mtime: Math.floor(Date.parse(record.aggregatedAt) / 1000) }]);
  const key = `${store.base}model/model.tar.gz`;
  await store.write(key, archive, 'application/gzip');
  const result: PackageResult = {
    modelDataUrl: store.uri(key),
    rounds: round,
    metric: record.history.at(-1)!,
    bestValue: record.convergence.bestValue ?? record.history.at(-1)!,
    aggregator: federation.aggregation.aggregator,
    noiseMultiplier: privacy?.noiseMultiplier ?? null,
  };
  logger.info('model packaged', { runId: run.runId, ...result });
  return result;
}

export async function handler(event: unknown, context?: Context): Promise<FederatedRoundResult> {
  if (context !== undefined) logger.addContext(context);
  let parsed: ParsedEvent;
  try {
    parsed = parseEvent(event);
  } catch (error) {
    logger.error('bad federated-round event', { error: (error as Error).message });
    throw error;
  }
  const where = { action: parsed.action, runId: parsed.runId, ...('round' in parsed ? { round: parsed.round } : {}) };
  try {
    const store = new RunStore(loadSettings(), parsed.runId);
    switch (parsed.action) {
      case 'start':
        return await start(store, parsed);
      case 'startRound':
        return await startRound(store, parsed.round);
      case 'checkRound':
        return await checkRound(store, parsed.round);
      case 'aggregate':
        return await aggregateRound(store, parsed.round);
      case 'package':
        return await packageModel(store, parsed.round);
    }
  } catch (error) {
    logger.error(`${parsed.action} failed`, { ...where, errorName: errorName(error), error: (error as Error).message });
    throw error;
  }
}
