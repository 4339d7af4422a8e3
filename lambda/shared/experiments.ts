// Pure logic of the A/B testing and champion–challenger patterns: sticky variant assignment, the
// prediction-log record, the outcome API (POST /models/{model}/outcomes) and the experiment analysis.
//
// Nothing in this module talks to AWS. It builds DynamoDB request inputs and reads DynamoDB items
// through structural types, so the handlers in lambda/invoke, lambda/record-outcome and
// lambda/analyze-experiment only wire the SDK, logging and metrics.
//
// Prediction log table (DynamoDB, partition key `predictionId`):
//   predictionId S, model S, variant S, modelVersion S, servedAt S (ISO-8601 UTC, ms precision),
//   expiresAt N (epoch seconds, TTL), callerHash S? (hex SHA-256 of the caller id), assignment S?
//   outcomeType S? ('binary' | 'continuous'), outcomeValue N?, outcomeAt S?   (written by the outcome API)
//   GSI byModel: partition `model`, sort `servedAt`, projection ALL.
import { createHash } from 'node:crypto';
import * as z from './zod';
import {
  ConfigError,
  decodeJsonBody,
  firstIssueField,
  formatIssues,
  INFERENCE_ID_PATTERN,
  RequestError,
  UpstreamError,
  VariantNameSchema,
  type AssignmentKind,
  type CacheStatus,
  type PredictionResult,
  type ResolvedRoute,
  type VariantAssignment,
} from './inference';
import {
  decide,
  minimumSampleSizeMeans,
  minimumSampleSizeProportions,
  StatsInputError,
  summarize,
  twoProportionZTest,
  welchTTest,
} from './stats';

// ---------------------------------------------------------------------------------------------
// Sticky assignment
// ---------------------------------------------------------------------------------------------

export interface VariantWeight {
  readonly name: string;
  readonly weight: number;
}

/** Hex SHA-256 of a caller id: what the prediction log stores instead of the id itself. */
export function hashCallerId(callerId: string): string {
  return createHash('sha256').update(callerId, 'utf8').digest('hex');
}

const TWO_POW_52 = 2 ** 52;

/**
 * Uniform number in [0, 1) derived from the first 52 bits of SHA-256(`${salt}:${callerId}`).
 * 52 bits fit exactly in a double's mantissa, so every value is representable and < 1.
 */
export function assignmentPoint(callerId: string, salt: string): number {
  const digest = createHash('sha256').update(`${salt}:${callerId}`, 'utf8').digest();
  // 48 bits from the first six bytes, then the high nibble of the seventh.
  const high48 = digest.readUIntBE(0, 6);
  const next4 = (digest[6] as number) >> 4;
  return (high48 * 16 + next4) / TWO_POW_52;
}

/**
 * Deterministically assigns a caller to a variant: the same caller id and salt always give the
 * same variant, and over many callers the split follows the normalised weights (taken in the
 * order given). Throws an Error naming `weights` when they are empty, negative, not finite or do
 * not sum to a positive finite number.
 */
export function assignVariant(callerId: string, weights: ReadonlyArray<VariantWeight>, salt: string): string {
  const total = validateWeights(weights);
  const target = assignmentPoint(callerId, salt) * total;
  let cumulative = 0;
  let lastPositive: string | undefined;
  for (const { name, weight } of weights) {
    if (weight <= 0) {
      continue;
    }
    cumulative += weight;
    lastPositive = name;
    if (target < cumulative) {
      return name;
    }
  }
  // Only reachable through rounding in the cumulative sum: the point belongs to the last arm.
  return lastPositive as string;
}

function validateWeights(weights: ReadonlyArray<VariantWeight>): number {
  if (!Array.isArray(weights) || weights.length === 0) {
    throw new Error('weights: must list at least one variant');
  }
  let total = 0;
  weights.forEach((entry, index) => {
    if (typeof entry?.name !== 'string' || entry.name.length === 0) {
      throw new Error(`weights[${index}].name: must be a non-empty string`);
    }
    if (typeof entry.weight !== 'number' || !Number.isFinite(entry.weight) || entry.weight < 0) {
      throw new Error(`weights[${index}].weight: must be a finite number >= 0; got ${String(entry.weight)}`);
    }
    total += entry.weight;
  });
  if (!(total > 0) || !Number.isFinite(total)) {
    throw new Error(`weights: must sum to a positive finite number; got ${total}`);
  }
  return total;
}

/**
 * The invoke handler's {@link VariantAssigner}: the caller's targetVariant wins (`targeted`);
 * otherwise a request with a callerId on a sticky route is pinned by {@link assignVariant}
 * (`sticky`); otherwise SageMaker splits the traffic (`weighted`).
 */
export function assignRoute(request: { readonly targetVariant?: string; readonly callerId?: string }, route: ResolvedRoute): VariantAssignment {
  const targetVariant = request.targetVariant ?? route.targetVariant;
  if (targetVariant !== undefined) {
    return { assignment: 'targeted', targetVariant };
  }
  if (request.callerId !== undefined && route.sticky !== undefined) {
    const weights = Object.entries(route.variants).map(([name, variant]) => ({ name, weight: variant.weight }));
    if (weights.every((entry): entry is VariantWeight => entry.weight !== undefined)) {
      return { assignment: 'sticky', targetVariant: assignVariant(request.callerId, weights, route.sticky.salt) };
    }
  }
  return { assignment: 'weighted' };
}

// ---------------------------------------------------------------------------------------------
// DynamoDB structural types
// ---------------------------------------------------------------------------------------------

/** The attribute values this module writes. Assignable to the SDK's AttributeValue. */
export type WritableAttributeValue = { S: string } | { N: string };
export type WritableItem = Record<string, WritableAttributeValue>;

/** What this module reads from DynamoDB items (the SDK's AttributeValue is assignable to it). */
export interface ReadableAttributeValue {
  readonly S?: string;
  readonly N?: string;
}
export type ReadableItem = Readonly<Record<string, ReadableAttributeValue>>;

function readS(item: ReadableItem, key: string): string | undefined {
  const value = item[key]?.S;
  return typeof value === 'string' ? value : undefined;
}

function readN(item: ReadableItem, key: string): number | undefined {
  const value = item[key]?.N;
  if (typeof value !== 'string') {
    return undefined;
  }
  const number = Number(value);
  return Number.isFinite(number) ? number : undefined;
}

// ---------------------------------------------------------------------------------------------
// Prediction log record (written by the invoke handler)
// ---------------------------------------------------------------------------------------------

export const DEFAULT_PREDICTION_LOG_TTL_DAYS = 90;
const MAX_PREDICTION_LOG_TTL_DAYS = 36_500;
const SECONDS_PER_DAY = 86_400;

/**
 * Reads PREDICTION_LOG_TTL_DAYS: unset or empty -> {@link DEFAULT_PREDICTION_LOG_TTL_DAYS};
 * otherwise a whole number of days from 1 to 36500, else {@link ConfigError} naming the variable.
 */
export function parsePredictionLogTtlDays(raw: string | undefined, name = 'PREDICTION_LOG_TTL_DAYS'): number {
  if (raw === undefined || raw.trim().length === 0) {
    return DEFAULT_PREDICTION_LOG_TTL_DAYS;
  }
  const days = Number(raw.trim());
  if (!Number.isInteger(days) || days < 1 || days > MAX_PREDICTION_LOG_TTL_DAYS) {
    throw new ConfigError(`${name}: must be a whole number of days from 1 to ${MAX_PREDICTION_LOG_TTL_DAYS}; got ${JSON.stringify(raw)}`);
  }
  return days;
}

export interface PredictionLogRecord {
  readonly predictionId: string;
  readonly model: string;
  readonly variant: string;
  readonly modelVersion: string;
  /** ISO-8601 UTC with milliseconds (Date#toISOString), so it sorts and compares as a string. */
  readonly servedAt: string;
  /** Epoch seconds after which DynamoDB TTL may delete the record. */
  readonly expiresAt: number;
  readonly callerHash?: string;
  readonly assignment?: AssignmentKind;
  /** For a cached model: whether the prediction cache answered (`hit`) or the model did. */
  readonly cache?: CacheStatus;
}

export interface PredictionLogInput {
  readonly result: Pick<PredictionResult, 'predictionId' | 'model' | 'variant' | 'modelVersion'>;
  readonly servedAt: Date;
  readonly ttlDays: number;
  /** Raw caller id; only its hash is kept. */
  readonly callerId?: string;
  readonly assignment?: AssignmentKind;
  readonly cache?: CacheStatus;
}

/** The prediction-log record of a served prediction. Never contains the caller id or the payload. */
export function predictionLogRecord(input: PredictionLogInput): PredictionLogRecord {
  const servedMs = input.servedAt.getTime();
  if (!Number.isFinite(servedMs)) {
    throw new Error('servedAt: must be a valid date');
  }
  if (!Number.isFinite(input.ttlDays) || input.ttlDays <= 0) {
    throw new Error(`ttlDays: must be a positive number; got ${input.ttlDays}`);
  }
  const { predictionId, model, variant, modelVersion } = input.result;
  return {
    predictionId,
    model,
    variant,
    modelVersion,
    servedAt: input.servedAt.toISOString(),
    expiresAt: Math.floor(servedMs / 1000) + Math.round(input.ttlDays * SECONDS_PER_DAY),
    ...(input.callerId === undefined ? {} : { callerHash: hashCallerId(input.callerId) }),
    ...(input.assignment === undefined ? {} : { assignment: input.assignment }),
    ...(input.cache === undefined ? {} : { cache: input.cache }),
  };
}

/** The record as a DynamoDB item. */
export function predictionLogItem(record: PredictionLogRecord): WritableItem {
  const item: WritableItem = {
    predictionId: { S: record.predictionId },
    model: { S: record.model },
    variant: { S: record.variant },
    modelVersion: { S: record.modelVersion },
    servedAt: { S: record.servedAt },
    expiresAt: { N: String(record.expiresAt) },
  };
  if (record.callerHash !== undefined) {
    item.callerHash = { S: record.callerHash };
  }
  if (record.assignment !== undefined) {
    item.assignment = { S: record.assignment };
  }
  if (record.cache !== undefined) {
    item.cache = { S: record.cache };
  }
  return item;
}

/**
 * PutItem input for the record. The condition keeps the first record when a caller reuses an
 * inference id, so a repeated id can never wipe an outcome that was already recorded.
 */
export function predictionLogPut(tableName: string, record: PredictionLogRecord): {
  TableName: string;
  Item: WritableItem;
  ConditionExpression: string;
} {
  return { TableName: tableName, Item: predictionLogItem(record), ConditionExpression: 'attribute_not_exists(predictionId)' };
}

// ---------------------------------------------------------------------------------------------
// Outcome API: POST /models/{model}/outcomes
// ---------------------------------------------------------------------------------------------

/** Outcome bodies are tiny; anything larger is refused before parsing. */
export const MAX_OUTCOME_BODY_BYTES = 16 * 1024;

export const OUTCOME_TYPES = ['binary', 'continuous'] as const;
export type OutcomeType = (typeof OUTCOME_TYPES)[number];

const BinaryOutcomeSchema = z.strictObject({
  type: z.literal('binary'),
  value: z.pipe(
    z.union([z.literal(0), z.literal(1), z.boolean()], { error: 'must be 0, 1, true or false' }),
    z.transform((value: 0 | 1 | boolean): 0 | 1 => (value === true || value === 1 ? 1 : 0)),
  ),
});

const ContinuousOutcomeSchema = z.strictObject({
  type: z.literal('continuous'),
  value: z.number({ error: 'must be a finite number' }),
});

/** HTTP body of POST /models/{model}/outcomes. Binary values are normalised to 0 / 1. */
export const OutcomeRequestSchema = z.strictObject({
  predictionId: z
    .string({ error: 'Invalid prediction id: expected a string' })
    .check(z.regex(INFERENCE_ID_PATTERN, 'Invalid prediction id: expected 1-64 characters from A-Z a-z 0-9 - _ .')),
  outcome: z.discriminatedUnion('type', [BinaryOutcomeSchema, ContinuousOutcomeSchema], {
    error: (issue) => (issue.code === 'invalid_union' ? `must be one of ${OUTCOME_TYPES.map((type) => `'${type}'`).join(', ')}` : undefined),
  }),
});

export type OutcomeRequest = z.output<typeof OutcomeRequestSchema>;
export type Outcome = OutcomeRequest['outcome'];

/**
 * Validates the raw API Gateway body of an outcome request. Throws {@link RequestError} (400, or
 * 413 above {@link MAX_OUTCOME_BODY_BYTES}) whose message starts with the offending field.
 */
export function parseOutcomeRequest(rawBody: string | null | undefined, isBase64Encoded = false): OutcomeRequest {
  const json = decodeJsonBody(rawBody, isBase64Encoded, {
    maxBytes: MAX_OUTCOME_BODY_BYTES,
    missing: 'body: is required (a JSON object with "predictionId" and "outcome" fields)',
    tooLarge: `body: exceeds the ${MAX_OUTCOME_BODY_BYTES / 1024} KiB limit for an outcome`,
  });
  const result = OutcomeRequestSchema.safeParse(json);
  if (!result.success) {
    throw new RequestError(400, formatIssues(result.error.issues), firstIssueField(result.error.issues));
  }
  return result.data;
}

/** A prediction-log item as read back from DynamoDB. */
export interface StoredPrediction {
  readonly predictionId: string;
  readonly model: string;
  readonly variant: string;
  readonly modelVersion?: string;
  readonly servedAt?: string;
  readonly outcome?: Outcome;
  readonly outcomeAt?: string;
}

/** Reads a prediction-log item; undefined when it lacks the key attributes. */
export function readStoredPrediction(item: ReadableItem | undefined): StoredPrediction | undefined {
  if (item === undefined) {
    return undefined;
  }
  const predictionId = readS(item, 'predictionId');
  const model = readS(item, 'model');
  if (predictionId === undefined || model === undefined) {
    return undefined;
  }
  const outcome = readOutcome(item);
  const modelVersion = readS(item, 'modelVersion');
  const servedAt = readS(item, 'servedAt');
  const outcomeAt = readS(item, 'outcomeAt');
  return {
    predictionId,
    model,
    variant: readS(item, 'variant') ?? 'unknown',
    ...(modelVersion === undefined ? {} : { modelVersion }),
    ...(servedAt === undefined ? {} : { servedAt }),
    ...(outcome === undefined ? {} : { outcome }),
    ...(outcomeAt === undefined ? {} : { outcomeAt }),
  };
}

function readOutcome(item: ReadableItem): Outcome | undefined {
  const type = readS(item, 'outcomeType');
  const value = readN(item, 'outcomeValue');
  if (value === undefined) {
    return undefined;
  }
  if (type === 'binary' && (value === 0 || value === 1)) {
    return { type, value };
  }
  if (type === 'continuous') {
    return { type, value };
  }
  return undefined;
}

/** Names used in the outcome UpdateItem (all attribute names go through placeholders). */
const OUTCOME_NAMES = {
  '#predictionId': 'predictionId',
  '#model': 'model',
  '#outcomeType': 'outcomeType',
  '#outcomeValue': 'outcomeValue',
  '#outcomeAt': 'outcomeAt',
} as const;

/**
 * UpdateItem input that records the outcome only if the prediction exists, belongs to `model` and
 * has no outcome yet. On success ALL_NEW returns the whole record; when the condition fails ALL_OLD
 * returns the existing item (if any) so {@link explainOutcomeConflict} can tell the cases apart
 * without a second read.
 */
export function outcomeUpdate(tableName: string, model: string, request: OutcomeRequest, recordedAt: Date) {
  return {
    TableName: tableName,
    Key: { predictionId: { S: request.predictionId } },
    UpdateExpression: 'SET #outcomeType = :outcomeType, #outcomeValue = :outcomeValue, #outcomeAt = :outcomeAt',
    ConditionExpression: 'attribute_exists(#predictionId) AND #model = :model AND attribute_not_exists(#outcomeType)',
    ExpressionAttributeNames: { ...OUTCOME_NAMES },
    ExpressionAttributeValues: {
      ':model': { S: model },
      ':outcomeType': { S: request.outcome.type },
      ':outcomeValue': { N: String(request.outcome.value) },
      ':outcomeAt': { S: recordedAt.toISOString() },
    } satisfies WritableItem,
    ReturnValues: 'ALL_NEW' as const,
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD' as const,
  };
}

/** Body of a successful outcome response. */
export interface OutcomeResponseBody {
  readonly predictionId: string;
  readonly model: string;
  readonly variant: string;
  readonly outcome: Outcome;
}

export function unknownPrediction(predictionId: string, model: string): RequestError {
  return new RequestError(404, `predictionId: no prediction '${predictionId}' for model '${model}'`, 'predictionId');
}

/**
 * Explains a failed outcome condition from the item DynamoDB returned (ALL_OLD). Returns the stored
 * prediction when it already holds the same outcome (an idempotent repeat); throws
 * {@link RequestError} 404 when there is no such prediction for the model (absent, or logged under
 * another model: the message is the same, so model membership does not leak) and 409 when a
 * different outcome is already recorded.
 */
export function explainOutcomeConflict(oldItem: ReadableItem | undefined, model: string, request: OutcomeRequest): StoredPrediction {
  const stored = readStoredPrediction(oldItem);
  if (stored === undefined || stored.model !== model) {
    throw unknownPrediction(request.predictionId, model);
  }
  if (stored.outcome !== undefined && sameOutcome(stored.outcome, request.outcome)) {
    return stored;
  }
  const recorded =
    stored.outcome === undefined ? 'an unreadable outcome' : `outcome ${JSON.stringify(stored.outcome)}`;
  throw new RequestError(
    409,
    `outcome: prediction '${request.predictionId}' already has ${recorded}${stored.outcomeAt === undefined ? '' : ` recorded at ${stored.outcomeAt}`}; a recorded outcome cannot be changed`,
    'outcome',
  );
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  return a.type === b.type && a.value === b.value;
}

export function outcomeResponseBody(stored: StoredPrediction, fallback: OutcomeRequest): OutcomeResponseBody {
  return {
    predictionId: stored.predictionId,
    model: stored.model,
    variant: stored.variant,
    outcome: stored.outcome ?? fallback.outcome,
  };
}

// ---------------------------------------------------------------------------------------------
// DynamoDB error classification
// ---------------------------------------------------------------------------------------------

const DYNAMODB_THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'Throttling',
  'TooManyRequestsException',
]);

const DYNAMODB_UNAVAILABLE = new Set([
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'InternalFailure',
  'TransactionConflictException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
]);

const NETWORK_CODE = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|ECONNABORTED|ETIMEDOUT|ESOCKETTIMEDOUT|UND_ERR_[A-Z_]+)\b/;

/** True when the SDK error is DynamoDB's ConditionalCheckFailedException. */
export function isConditionalCheckFailed(error: unknown): error is { name: string; Item?: Record<string, ReadableAttributeValue> } {
  return errorName(error) === 'ConditionalCheckFailedException';
}

/**
 * Maps a retryable DynamoDB failure to an {@link UpstreamError}: 429 for throttling, 503 for
 * service or network unavailability. Returns undefined for anything else (access denied, a
 * missing table, validation errors): those are configuration bugs and deserve a logged 500.
 */
export function classifyDynamoDbError(error: unknown): UpstreamError | undefined {
  const name = errorName(error);
  if (name !== undefined && DYNAMODB_THROTTLING.has(name)) {
    return new UpstreamError(429, 'Throttled', 'the prediction log is throttling requests; retry with backoff', { cause: error });
  }
  const status = readStatus(error);
  if ((name !== undefined && DYNAMODB_UNAVAILABLE.has(name)) || (status !== undefined && status >= 500) || isNetworkError(error)) {
    return new UpstreamError(503, 'ServiceUnavailable', 'the prediction log is temporarily unavailable; retry later', { cause: error });
  }
  return undefined;
}

function errorName(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) {
    return undefined;
  }
  try {
    const name = (error as { name?: unknown }).name;
    return typeof name === 'string' ? name : undefined;
  } catch {
    return undefined;
  }
}

function readStatus(error: unknown): number | undefined {
  try {
    const status = (error as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata?.httpStatusCode;
    return typeof status === 'number' ? status : undefined;
  } catch {
    return undefined;
  }
}

function isNetworkError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 3) {
    return false;
  }
  try {
    const { code, message, cause, errors } = error as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === 'string' && NETWORK_CODE.test(code)) {
      return true;
    }
    if (typeof message === 'string' && NETWORK_CODE.test(message.slice(0, 1_000))) {
      return true;
    }
    if (cause !== undefined && cause !== error && isNetworkError(cause, depth + 1)) {
      return true;
    }
    return Array.isArray(errors) && errors.slice(0, 10).some((member) => isNetworkError(member, depth + 1));
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Experiment analysis (the analyze-experiment step of the state machine)
// ---------------------------------------------------------------------------------------------

/**
 * Bad analysis input. `name` is the error type Step Functions sees, so a Catch can match
 * `AnalysisInputError`; the message starts with the offending field.
 */
export class AnalysisInputError extends Error {
  override readonly name = 'AnalysisInputError';

  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

const IsoInstantSchema = z.pipe(
  z.string({ error: 'must be an ISO-8601 date-time string' }),
  z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time with a time zone, e.g. 2024-05-01T00:00:00Z' }),
);

const unitInterval = (what: string) =>
  z
    .number({ error: `must be a number strictly between 0 and 1 (${what})` })
    .check(z.gt(0, `must be a number strictly between 0 and 1 (${what})`), z.lt(1, `must be a number strictly between 0 and 1 (${what})`));

/** Input of the analysis Lambda (the state machine's task input). */
export const AnalysisInputSchema = z
  .strictObject({
    model: z.string({ error: 'must be a string' }).check(z.minLength(1, 'must be a non-empty string'), z.maxLength(256, 'must be at most 256 characters')),
    /** Control / champion. */
    variantA: VariantNameSchema,
    /** Treatment / challenger. */
    variantB: VariantNameSchema,
    outcomeType: z.enum(OUTCOME_TYPES, { error: `must be one of ${OUTCOME_TYPES.map((type) => `'${type}'`).join(', ')}` }),
    /** Inclusive start of the servedAt window. */
    windowStart: IsoInstantSchema,
    /** Exclusive end of the servedAt window. */
    windowEnd: IsoInstantSchema,
    alpha: z._default(unitInterval('two-sided significance level'), 0.05),
    power: z._default(unitInterval('probability of detecting a real effect'), 0.8),
    /** Absolute effect to detect: a rate difference for binary outcomes, a difference in means for continuous ones. */
    minimumDetectableEffect: z.number({ error: 'must be a finite number greater than 0' }).check(z.positive('must be a finite number greater than 0')),
    /** Binary only: expected rate of arm A, fixed in advance. Default: arm A's observed rate. */
    baselineRate: z.optional(unitInterval('expected success rate of variantA')),
    /** Continuous only: expected standard deviation of the outcome, fixed in advance. Default: the observed pooled one. */
    standardDeviation: z.optional(z.number({ error: 'must be a finite number greater than 0' }).check(z.positive('must be a finite number greater than 0'))),
    /** Whether larger outcome values are better (conversion: yes; latency, error: no). Default true. */
    higherIsBetter: z._default(z.boolean({ error: 'must be a boolean' }), true),
  })
  .check(
    z.superRefine((input, ctx) => {
      if (input.variantA === input.variantB) {
        ctx.addIssue({ code: 'custom', path: ['variantB'], message: 'must differ from variantA' });
      }
      if (input.outcomeType === 'continuous' && input.baselineRate !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['baselineRate'], message: "only applies when outcomeType is 'binary' (use standardDeviation)" });
      }
      if (input.outcomeType === 'binary' && input.standardDeviation !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['standardDeviation'], message: "only applies when outcomeType is 'continuous' (use baselineRate)" });
      }
      if (input.outcomeType === 'binary' && !(input.minimumDetectableEffect < 1)) {
        ctx.addIssue({ code: 'custom', path: ['minimumDetectableEffect'], message: 'must be below 1 for binary outcomes (it is an absolute difference in rates)' });
      }
      const start = Date.parse(input.windowStart);
      const end = Date.parse(input.windowEnd);
      if (Number.isFinite(start) && Number.isFinite(end) && !(end > start)) {
        ctx.addIssue({ code: 'custom', path: ['windowEnd'], message: 'must be after windowStart' });
      }
    }),
  );

export type AnalysisInput = z.output<typeof AnalysisInputSchema>;

/**
 * Validates the analysis input. Throws {@link AnalysisInputError} whose message starts with the
 * offending field (also when the sample size cannot be computed from baselineRate /
 * standardDeviation and minimumDetectableEffect).
 */
export function parseAnalysisInput(raw: unknown): AnalysisInput {
  const result = AnalysisInputSchema.safeParse(raw);
  if (!result.success) {
    throw new AnalysisInputError(formatIssues(result.error.issues, 'input'), firstIssueField(result.error.issues, 'input'));
  }
  const input = result.data;
  // Fail fast on a sample-size question that has no answer, naming the field.
  try {
    if (input.baselineRate !== undefined) {
      sampleSizeProportions(input.baselineRate, input);
    }
    if (input.standardDeviation !== undefined) {
      minimumSampleSizeMeans({ ...sampleSizeOptions(input), standardDeviation: input.standardDeviation });
    }
  } catch (error) {
    if (error instanceof StatsInputError) {
      throw new AnalysisInputError(error.message, error.field);
    }
    throw error;
  }
  return input;
}

/** The servedAt bounds for a key condition `servedAt BETWEEN :from AND :to` covering [windowStart, windowEnd). */
export function servedAtRange(input: Pick<AnalysisInput, 'windowStart' | 'windowEnd'>): { readonly from: string; readonly to: string } {
  // servedAt has millisecond precision (Date#toISOString), so [start, end) is [start, end - 1 ms].
  return {
    from: new Date(Date.parse(input.windowStart)).toISOString(),
    to: new Date(Date.parse(input.windowEnd) - 1).toISOString(),
  };
}

/**
 * Query input for one page of the window on the `byModel` GSI (partition `model`, sort `servedAt`).
 * Only the two arms' items are returned and only the attributes the aggregation reads.
 */
export function predictionWindowQuery<Key = Record<string, ReadableAttributeValue>>(
  tableName: string,
  input: Pick<AnalysisInput, 'model' | 'variantA' | 'variantB' | 'windowStart' | 'windowEnd'>,
  /** exclusiveStartKey: the previous page's LastEvaluatedKey, passed through untouched. */
  options: { readonly indexName?: string; readonly limit?: number; readonly exclusiveStartKey?: Key } = {},
) {
  const { from, to } = servedAtRange(input);
  return {
    TableName: tableName,
    IndexName: options.indexName ?? 'byModel',
    KeyConditionExpression: '#model = :model AND #servedAt BETWEEN :from AND :to',
    FilterExpression: '#variant IN (:variantA, :variantB)',
    ProjectionExpression: '#variant, #outcomeType, #outcomeValue',
    ExpressionAttributeNames: {
      '#model': 'model',
      '#servedAt': 'servedAt',
      '#variant': 'variant',
      '#outcomeType': 'outcomeType',
      '#outcomeValue': 'outcomeValue',
    },
    ExpressionAttributeValues: {
      ':model': { S: input.model },
      ':from': { S: from },
      ':to': { S: to },
      ':variantA': { S: input.variantA },
      ':variantB': { S: input.variantB },
    } satisfies WritableItem,
    ...(options.limit === undefined ? {} : { Limit: options.limit }),
    ...(options.exclusiveStartKey === undefined ? {} : { ExclusiveStartKey: options.exclusiveStartKey }),
  };
}

export interface ArmAggregate {
  readonly variant: string;
  /** Predictions served by the arm in the window. */
  readonly predictions: number;
  /** Of those, the ones with an outcome of the analysed type. */
  readonly outcomes: number;
  /** Binary only: outcomes equal to 1. */
  readonly successes?: number;
  /** Mean outcome (the success rate for binary outcomes); 0 when the arm has no outcomes. */
  readonly mean: number;
  /** Sample variance of the outcomes (divisor n - 1); 0 with fewer than 2 outcomes. */
  readonly variance: number;
  /** Outcomes recorded with the other outcome type, or unreadable: not analysed. */
  readonly ignoredOutcomes: number;
}

export interface ExperimentAggregates {
  readonly outcomeType: OutcomeType;
  readonly arms: readonly [ArmAggregate, ArmAggregate];
  /** Items of other variants (the query filters them out, so normally 0). */
  readonly otherVariantItems: number;
}

/** Accumulates prediction-log items page by page; {@link aggregateOutcomes} for a whole array. */
export class OutcomeAggregator {
  private readonly arms: Map<string, { predictions: number; values: number[]; successes: number; ignored: number }>;
  private otherVariantItems = 0;

  constructor(private readonly options: { readonly variantA: string; readonly variantB: string; readonly outcomeType: OutcomeType }) {
    if (options.variantA === options.variantB) {
      throw new Error('variantB: must differ from variantA');
    }
    this.arms = new Map([
      [options.variantA, { predictions: 0, values: [], successes: 0, ignored: 0 }],
      [options.variantB, { predictions: 0, values: [], successes: 0, ignored: 0 }],
    ]);
  }

  add(item: ReadableItem): void {
    const variant = readS(item, 'variant');
    const arm = variant === undefined ? undefined : this.arms.get(variant);
    if (arm === undefined) {
      this.otherVariantItems += 1;
      return;
    }
    arm.predictions += 1;
    const hasOutcome = item.outcomeType !== undefined || item.outcomeValue !== undefined;
    if (!hasOutcome) {
      return;
    }
    const outcome = readOutcome(item);
    if (outcome === undefined || outcome.type !== this.options.outcomeType) {
      arm.ignored += 1;
      return;
    }
    arm.values.push(outcome.value);
    if (outcome.value === 1 && outcome.type === 'binary') {
      arm.successes += 1;
    }
  }

  addAll(items: Iterable<ReadableItem>): void {
    for (const item of items) {
      this.add(item);
    }
  }

  result(): ExperimentAggregates {
    const arm = (variant: string): ArmAggregate => {
      const state = this.arms.get(variant) as { predictions: number; values: number[]; successes: number; ignored: number };
      const summary = state.values.length === 0 ? { n: 0, mean: 0, variance: 0 } : this.options.outcomeType === 'binary' ? binarySummary(state.successes, state.values.length) : summarize(state.values);
      return {
        variant,
        predictions: state.predictions,
        outcomes: summary.n,
        ...(this.options.outcomeType === 'binary' ? { successes: state.successes } : {}),
        mean: summary.mean,
        variance: summary.variance,
        ignoredOutcomes: state.ignored,
      };
    };
    return {
      outcomeType: this.options.outcomeType,
      arms: [arm(this.options.variantA), arm(this.options.variantB)],
      otherVariantItems: this.otherVariantItems,
    };
  }
}

/** Exact rate and sample variance of n 0/1 outcomes with k ones (summarize's running mean would drift by an ulp or two). */
function binarySummary(successes: number, n: number): { n: number; mean: number; variance: number } {
  const rate = successes / n;
  return { n, mean: rate, variance: n > 1 ? (successes * (1 - rate)) / (n - 1) : 0 };
}

/** Per-arm counts, means and variances of prediction-log items for the two arms. */
export function aggregateOutcomes(
  items: Iterable<ReadableItem>,
  options: { readonly variantA: string; readonly variantB: string; readonly outcomeType: OutcomeType },
): ExperimentAggregates {
  const aggregator = new OutcomeAggregator(options);
  aggregator.addAll(items);
  return aggregator.result();
}

/** Fewest outcomes per arm for which a test is run (Welch's test needs two for a variance). */
export const MIN_OUTCOMES_PER_ARM = 2;

export interface AnalysisOptions {
  readonly outcomeType: OutcomeType;
  readonly alpha?: number;
  readonly power?: number;
  readonly minimumDetectableEffect: number;
  readonly baselineRate?: number;
  readonly standardDeviation?: number;
  readonly higherIsBetter?: boolean;
}

export type ExperimentTest =
  | ({ readonly kind: 'two-proportion-z-test' } & Omit<ReturnType<typeof twoProportionZTest>, 'confidenceInterval'> & {
        readonly confidenceInterval: readonly [number, number];
      })
  | ({ readonly kind: 'welch-t-test' } & Omit<ReturnType<typeof welchTTest>, 't' | 'confidenceInterval'> & {
        /** null when both arms have zero variance and different means (t is infinite). */
        readonly t: number | null;
        readonly confidenceInterval: readonly [number, number];
      });

export type SampleSizeBasis = 'baselineRate' | 'observedBaselineRate' | 'standardDeviation' | 'observedStandardDeviation';

export interface ExperimentAnalysis {
  readonly outcomeType: OutcomeType;
  readonly arms: readonly [ArmAggregate, ArmAggregate];
  /** null while an arm has fewer than {@link MIN_OUTCOMES_PER_ARM} outcomes. */
  readonly test: ExperimentTest | null;
  /** Per-arm horizon of the fixed-horizon design; null when it cannot be computed yet. */
  readonly requiredSampleSizePerArm: number | null;
  /** Where the horizon's rate / standard deviation came from (input fixed in advance, or observed so far). */
  readonly sampleSizeBasis: SampleSizeBasis | null;
  readonly decision: 'keep-running' | 'a-wins' | 'b-wins' | 'no-difference';
  /** Why the decision is what it is, in one sentence. */
  readonly reason: string;
}

function sampleSizeOptions(options: Pick<AnalysisOptions, 'alpha' | 'power' | 'minimumDetectableEffect'>) {
  return {
    minimumDetectableEffect: options.minimumDetectableEffect,
    ...(options.alpha === undefined ? {} : { alpha: options.alpha }),
    ...(options.power === undefined ? {} : { power: options.power }),
  };
}

/**
 * Per-arm sample size for a rate change of |minimumDetectableEffect| from the baseline, upwards
 * when baseline + effect stays below 1, otherwise downwards.
 */
function sampleSizeProportions(baselineRate: number, options: Pick<AnalysisOptions, 'alpha' | 'power' | 'minimumDetectableEffect'>): number {
  const effect = Math.abs(options.minimumDetectableEffect);
  const signed = baselineRate + effect < 1 ? effect : -effect;
  return minimumSampleSizeProportions({ ...sampleSizeOptions(options), minimumDetectableEffect: signed, baselineRate });
}

/**
 * Runs the test for the outcome type and applies the fixed-horizon decision rule of stats.ts.
 * Never throws for thin data: while an arm has fewer than {@link MIN_OUTCOMES_PER_ARM} outcomes,
 * or the horizon cannot be computed from the observations yet, the decision is 'keep-running' and
 * `reason` says why. Every number in the result is finite.
 */
export function analyzeExperiment(aggregates: ExperimentAggregates, options: AnalysisOptions): ExperimentAnalysis {
  if (aggregates.outcomeType !== options.outcomeType) {
    throw new Error(`outcomeType: the aggregates are for '${aggregates.outcomeType}' outcomes, not '${options.outcomeType}'`);
  }
  const [armA, armB] = aggregates.arms;
  const base = { outcomeType: options.outcomeType, arms: aggregates.arms };
  const alpha = options.alpha ?? 0.05;

  const horizon = requiredSampleSize(aggregates, options);

  const thin = [armA, armB].filter((arm) => arm.outcomes < MIN_OUTCOMES_PER_ARM);
  if (thin.length > 0) {
    return {
      ...base,
      test: null,
      ...horizon.value,
      decision: 'keep-running',
      reason: `${thin.map((arm) => `variant '${arm.variant}' has ${arm.outcomes} outcome${arm.outcomes === 1 ? '' : 's'}`).join(' and ')}; at least ${MIN_OUTCOMES_PER_ARM} per arm are needed for a test`,
    };
  }

  const test = runTest(armA, armB, options.outcomeType, alpha);
  if (horizon.value.requiredSampleSizePerArm === null) {
    return { ...base, test, ...horizon.value, decision: 'keep-running', reason: horizon.reason };
  }
  const required = horizon.value.requiredSampleSizePerArm;
  const decision = decide({
    result: test,
    nA: armA.outcomes,
    nB: armB.outcomes,
    requiredSampleSize: required,
    higherIsBetter: options.higherIsBetter ?? true,
  });
  return { ...base, test, ...horizon.value, decision, reason: explainDecision(decision, armA, armB, required, test.pValue, alpha) };
}

type Horizon = { value: { requiredSampleSizePerArm: number | null; sampleSizeBasis: SampleSizeBasis | null }; reason: string };

function requiredSampleSize(aggregates: ExperimentAggregates, options: AnalysisOptions): Horizon {
  const horizon = computeRequiredSampleSize(aggregates, options);
  const required = horizon.value.requiredSampleSizePerArm;
  if (required !== null && !Number.isSafeInteger(required)) {
    // Only when the noise dwarfs minimumDetectableEffect: no experiment could ever reach it.
    return {
      value: { requiredSampleSizePerArm: null, sampleSizeBasis: null },
      reason: `the required sample size per arm (${required.toExponential(3)}) cannot be reached; minimumDetectableEffect is far too small for the noise`,
    };
  }
  return horizon;
}

function computeRequiredSampleSize(aggregates: ExperimentAggregates, options: AnalysisOptions): Horizon {
  const [armA, armB] = aggregates.arms;
  const none = (reason: string) => ({ value: { requiredSampleSizePerArm: null, sampleSizeBasis: null }, reason });
  try {
    if (options.outcomeType === 'binary') {
      if (options.baselineRate !== undefined) {
        return { value: { requiredSampleSizePerArm: sampleSizeProportions(options.baselineRate, options), sampleSizeBasis: 'baselineRate' }, reason: '' };
      }
      if (armA.outcomes === 0 || armA.mean <= 0 || armA.mean >= 1) {
        return none(
          `the sample size cannot be computed from variant '${armA.variant}''s observed rate (${armA.outcomes} outcomes, rate ${armA.mean}); pass baselineRate`,
        );
      }
      return { value: { requiredSampleSizePerArm: sampleSizeProportions(armA.mean, options), sampleSizeBasis: 'observedBaselineRate' }, reason: '' };
    }
    if (options.standardDeviation !== undefined) {
      return {
        value: {
          requiredSampleSizePerArm: minimumSampleSizeMeans({ ...sampleSizeOptions(options), standardDeviation: options.standardDeviation }),
          sampleSizeBasis: 'standardDeviation',
        },
        reason: '',
      };
    }
    const pooled = pooledStandardDeviation(armA, armB);
    if (pooled === undefined || !(pooled > 0)) {
      return none('the sample size cannot be computed: the observed outcomes have no spread yet; pass standardDeviation');
    }
    return {
      value: { requiredSampleSizePerArm: minimumSampleSizeMeans({ ...sampleSizeOptions(options), standardDeviation: pooled }), sampleSizeBasis: 'observedStandardDeviation' },
      reason: '',
    };
  } catch (error) {
    if (error instanceof StatsInputError) {
      return none(`the sample size cannot be computed: ${error.message}`);
    }
    throw error;
  }
}

function pooledStandardDeviation(armA: ArmAggregate, armB: ArmAggregate): number | undefined {
  const degrees = Math.max(armA.outcomes - 1, 0) + Math.max(armB.outcomes - 1, 0);
  if (degrees === 0) {
    return undefined;
  }
  const pooledVariance = (Math.max(armA.outcomes - 1, 0) * armA.variance + Math.max(armB.outcomes - 1, 0) * armB.variance) / degrees;
  return Math.sqrt(pooledVariance);
}

function runTest(armA: ArmAggregate, armB: ArmAggregate, outcomeType: OutcomeType, alpha: number): ExperimentTest {
  if (outcomeType === 'binary') {
    const result = twoProportionZTest({
      successesA: armA.successes ?? 0,
      trialsA: armA.outcomes,
      successesB: armB.successes ?? 0,
      trialsB: armB.outcomes,
      alpha,
    });
    return { kind: 'two-proportion-z-test', ...result, confidenceInterval: [result.confidenceInterval[0], result.confidenceInterval[1]] };
  }
  const result = welchTTest({
    meanA: armA.mean,
    varianceA: armA.variance,
    nA: armA.outcomes,
    meanB: armB.mean,
    varianceB: armB.variance,
    nB: armB.outcomes,
    alpha,
  });
  return {
    kind: 'welch-t-test',
    ...result,
    t: Number.isFinite(result.t) ? result.t : null,
    confidenceInterval: [result.confidenceInterval[0], result.confidenceInterval[1]],
  };
}

function explainDecision(
  decision: ExperimentAnalysis['decision'],
  armA: ArmAggregate,
  armB: ArmAggregate,
  required: number,
  pValue: number,
  alpha: number,
): string {
  const p = `p = ${formatNumber(pValue)}, alpha = ${alpha}`;
  switch (decision) {
    case 'keep-running':
      return `fixed horizon not reached: ${armA.outcomes} and ${armB.outcomes} outcomes of ${required} required per arm (${p}; not read before the horizon)`;
    case 'no-difference':
      return `horizon of ${required} outcomes per arm reached and the difference is not significant (${p})`;
    case 'a-wins':
      return `horizon of ${required} outcomes per arm reached and variant '${armA.variant}' is significantly better (${p})`;
    case 'b-wins':
      return `horizon of ${required} outcomes per arm reached and variant '${armB.variant}' is significantly better (${p})`;
  }
}

function formatNumber(value: number): string {
  return value === 0 || (Math.abs(value) >= 1e-4 && Math.abs(value) < 1e6) ? String(Number(value.toPrecision(4))) : value.toExponential(3);
}
