// Online allocation of an endpoint's traffic between its production variants as a multi-armed bandit (seed
// pattern 17, online learning). One function, called by the allocation workflow (a Step Functions LambdaInvoke
// per state, the event as its Payload): `decide` reads the outcomes recorded since the last decision from the
// prediction log, folds them into the bandit's state and decides the next weights; the workflow applies them
// with UpdateEndpointWeightsAndCapacities and calls `record` with what became of them. The math is
// lambda/shared/bandit.ts (posteriors, Thompson sampling or UCB, the guard rails); this file does the I/O.
//
// In the prediction log's table (PREDICTION_LOG_TABLE), beside the predictions and the other workflows' per-model
// items (analysis#<model>, champion#<model>: lib/experiments/prediction-log.ts). Neither item has a `model` or
// `servedAt` attribute, so neither is in the byModel index the outcomes are read from, and neither expires.
//   bandit#<model>              the state: `state` (S) the JSON of the BanditState of lambda/shared/bandit.ts (its
//                               fields at the top level) plus documentVersion, model, endpointName, cursor (the
//                               servedAt up to which outcomes were read), lastDecisionAt, lastDecision
//                               { key, decisionId, result } and updatedAt; `stateVersion` (N) 1 when created, one
//                               more on every write; `updatedAt` (S). Read with ConsistentRead; written only with
//                               a PutItem conditional on the stateVersion read (attribute_not_exists(predictionId)
//                               when it is created).
//   bandit#<model>#<now>        one decision item per decision: `record` (S) the JSON of the audit record of
//                               decideAllocation, the window read, the outcomes read per arm, the arms added and
//                               removed, the previous and the new weights, `status: 'decided'` and, once `record`
//                               was called, `outcome` (the last MAX_PREVIOUS_OUTCOMES earlier ones in
//                               previousOutcomes); `recordedAt` (S) when the item was last written. A few KB.
//
// Input (unknown fields are refused; every problem is named by its path):
//   { action: "decide", model, endpointName, variants, outcomeType: "binary" | "continuous", settings?, prior?,
//     outcomeDelaySeconds, firstWindowHours, now, seed? }
//       variants        DescribeEndpoint's ProductionVariants as they are: each element's VariantName and
//                       CurrentWeight are read, its other fields ignored; 2 to MAX_ARMS of them.
//       settings        BanditSettings of lambda/shared/bandit.ts, each field optional (defaults: DEFAULT_SETTINGS).
//       prior           Beta { alpha, beta } (binary) or Normal-Inverse-Gamma { mean, kappa, alpha, beta }
//                       (continuous); default DEFAULT_BETA_PRIOR / DEFAULT_NORMAL_PRIOR. Settings and prior are
//                       taken from each event (the state keeps only the outcomes' sufficient statistics).
//       now             the workflow's $$.State.EnteredTime: the decision's time and its identity.
//       seed            the Thompson sampling seed; absent: derived from model and now (a retry draws the same).
//     1. The state item, or a new state (the variants, the prior, no outcomes) with cursor = now - firstWindowHours.
//     2. The arms are made the endpoint's variants: a new variant is added with the prior, an arm no longer on
//        the endpoint is dropped with its outcomes; both are listed in the decision record.
//     3. Outcomes of the predictions served in (cursor, now - outcomeDelaySeconds] are read from the
//        prediction log's byModel index page by page; a prediction counts when its variant is an arm and its
//        outcome (of outcomeType) is recorded. The cursor then moves to the window's end, so a prediction whose
//        outcome is recorded after the window was read is never counted: outcomeDelaySeconds must cover how
//        late outcomes arrive. Reading stops 10 s before the function's deadline; the cursor is then the last
//        servedAt read in full (the next call goes on from there) and the result says `complete: false`.
//     4. decideAllocation from the endpoint's CurrentWeights (normalised; all zero counts as equal), with the
//        guard rails: fewer than minObservations outcomes on any arm, or weights equal to the current ones,
//        leave the weights as they are (`change: false` and the reason).
//     5. The decision item, then the state item (conditional). The same `now` again (a retried call) returns the
//        recorded decision and counts nothing twice.
//       -> { model, endpointName, change, reason: null | "min-observations" | "unchanged",
//            desiredWeights: [{ VariantName, DesiredWeight }] (every variant: DesiredWeightsAndCapacities as it is),
//            previousWeights: [{ VariantName, DesiredWeight }], observations: { <variant>: outcomes so far },
//            outcomesRead, complete, decisionKey: "bandit#<model>#<now>" }
//   { action: "record", model, decisionKey, status: "deployed" | "rolled-back" | "skipped", detail? }
//       adds outcome { status, at, detail } to the decision item (a decisionKey bandit#<model>#<time>, as decide
//       returned it). The same status again changes nothing.
//       -> { model, decisionKey, status }
// Errors (the `error` Step Functions sees):
//   BanditInputError           a bad event (its message names every field and what is wrong), a state item that
//                              is not valid, a decisionKey of another model or a decision item that does not
//                              exist: not retried
//   BanditStateConflictError   the state item (or, in `record`, the decision item) changed between its read and
//                              its write (ConditionalCheckFailedException): another call won; retry the call with
//                              the same input
//   ConfigError                the function's environment is unusable
//   anything else              DynamoDB or KMS failing after the SDK's retries, with the SDK's error name: retry
//                              the call with the same input; both actions are safe to repeat
// EMF (POWERTOOLS_METRICS_NAMESPACE, dimension service): decide publishes OutcomesRead and UpdatesTriggered or
// UpdatesRefused, and ArmWeight (dimensions service and variant) per variant with its new weight; record
// publishes UpdatesDeployed or UpdatesRolledBack.
// Permissions: dynamodb:Query on the prediction log's byModel index; dynamodb:GetItem and dynamodb:PutItem on
// the table, for the partition keys bandit#<model> and bandit#<model>#* only (a ForAllValues:StringLike
// dynamodb:LeadingKeys condition, in a statement apart from the Query's); kms:Decrypt, kms:Encrypt and
// kms:GenerateDataKey on the table's key (DynamoDB encrypts the items with it on the function's behalf).
// Environment: PREDICTION_LOG_TABLE, PREDICTION_LOG_INDEX (default byModel), POWERTOOLS_SERVICE_NAME,
// POWERTOOLS_METRICS_NAMESPACE; BANDIT_QUERY_PAGE_SIZE (a Limit per Query page; default DynamoDB's 1 MB pages);
// AWS_ENDPOINT_URL_DYNAMODB, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK.
import { createHash, randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type AttributeValue,
  type PutItemCommandInput,
  type QueryCommandInput,
  type QueryCommandOutput,
} from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import {
  BanditInputError,
  createBanditState,
  decideAllocation,
  MAX_ARMS,
  observationsOf,
  parseBanditState,
  recordOutcomes,
  type AllocationDecision,
  type BanditState,
  type BinaryOutcomes,
  type ContinuousOutcomes,
  type CreateBanditStateInput,
  type BetaPrior,
  type NormalInverseGammaPrior,
} from '../shared/bandit';
import type { VariantWeight } from '../shared/endpoint-weights';
import { ConfigError } from '../shared/errors';
import { isConditionalCheckFailed, OUTCOME_TYPES, readStoredPrediction, type OutcomeType, type ReadableItem } from '../shared/experiments';
import { ROUTE_MODEL_NAME_PATTERN } from '../shared/routes';
import * as z from '../shared/zod';

export { BanditInputError } from '../shared/bandit';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'bandit-allocation';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const dynamodb = new DynamoDBClient({});

/** Reading stops this long before the function's deadline, leaving time to decide and write. */
export const DEADLINE_MARGIN_MS = 10_000;
/** The longest outcome delay accepted: 30 days. */
export const MAX_OUTCOME_DELAY_SECONDS = 30 * 86_400;
/** The longest first window: 366 days (the prediction log keeps 90 by default). */
export const MAX_FIRST_WINDOW_HOURS = 366 * 24;
/** The longest `detail` of a record call. */
export const MAX_DETAIL_LENGTH = 1000;
export const DECISION_STATUSES = ['deployed', 'rolled-back', 'skipped'] as const;
/** Earlier outcomes a decision item keeps: `record` called again and again stays well under DynamoDB's 400 KB. */
export const MAX_PREVIOUS_OUTCOMES = 20;
/** The partition keys' prefix: bandit#<model> (the state) and bandit#<model>#<time> (a decision). */
export const BANDIT_KEY_PREFIX = 'bandit#';
/** The format of the state item's `state` JSON (its own fields; the BanditState has its `version`). */
const STATE_DOCUMENT_VERSION = 1;
const DEFAULT_INDEX = 'byModel';

// ---------------------------------------------------------------------------------------------------
// Events and results
// ---------------------------------------------------------------------------------------------------

/** One element of DescribeEndpoint's ProductionVariants: VariantName and CurrentWeight are read, the rest ignored. */
export interface EndpointVariant {
  readonly VariantName: string;
  readonly CurrentWeight: number;
  readonly [field: string]: unknown;
}

/** The bandit's settings as an event gives them: every field optional (lambda/shared/bandit.ts DEFAULT_SETTINGS). */
export type BanditSettingsInput = NonNullable<CreateBanditStateInput['settings']>;

export interface DecideEvent {
  readonly action: 'decide';
  readonly model: string;
  readonly endpointName: string;
  readonly variants: readonly EndpointVariant[];
  readonly outcomeType: OutcomeType;
  readonly settings?: BanditSettingsInput;
  readonly prior?: BetaPrior | NormalInverseGammaPrior;
  /** Outcomes of a prediction are recorded within this many seconds; younger predictions are not read yet. */
  readonly outcomeDelaySeconds: number;
  /** How far back the first decision of a model reads. */
  readonly firstWindowHours: number;
  /** ISO-8601 date-time: $$.State.EnteredTime. */
  readonly now: string;
  readonly seed?: number;
}

export type DecisionStatus = (typeof DECISION_STATUSES)[number];

export interface RecordEvent {
  readonly action: 'record';
  readonly model: string;
  readonly decisionKey: string;
  readonly status: DecisionStatus;
  readonly detail?: string;
}

export type BanditAllocationEvent = DecideEvent | RecordEvent;
export type BanditAllocationAction = BanditAllocationEvent['action'];

/** Why the weights did not change. */
export type NoChangeReason = 'min-observations' | 'unchanged';

export interface DecideResult {
  readonly model: string;
  readonly endpointName: string;
  /** Whether any weight differs from the endpoint's current one. */
  readonly change: boolean;
  readonly reason: NoChangeReason | null;
  /** Every variant's new weight (units / WEIGHT_UNITS, summing to 1): UpdateEndpointWeightsAndCapacities' DesiredWeightsAndCapacities. */
  readonly desiredWeights: readonly VariantWeight[];
  /** The endpoint's CurrentWeights, normalised to sum to 1. */
  readonly previousWeights: readonly VariantWeight[];
  /** Outcomes per arm so far, this call's included. */
  readonly observations: Readonly<Record<string, number>>;
  /** Outcomes this call read and counted. */
  readonly outcomesRead: number;
  /** False when reading stopped before the deadline: the next call reads on from the cursor. */
  readonly complete: boolean;
  /** The decision item's partition key, bandit#<model>#<now>: for `record`. */
  readonly decisionKey: string;
}

export interface RecordResult {
  readonly model: string;
  readonly decisionKey: string;
  readonly status: DecisionStatus;
}

export interface BanditAllocationResults {
  readonly decide: DecideResult;
  readonly record: RecordResult;
}

export type BanditAllocationResult = BanditAllocationResults[BanditAllocationAction];

/** The handler's type, per action. */
export type BanditAllocationHandler = <E extends BanditAllocationEvent>(event: E, context?: Context) => Promise<BanditAllocationResults[E['action']]>;

/** Outcomes read for one arm in one call. */
export type ArmOutcomes = Omit<BinaryOutcomes, 'variant'> | Omit<ContinuousOutcomes, 'variant'>;

/** The `record` attribute of the decision item bandit#<model>#<now>, as JSON. */
export interface DecisionRecord {
  readonly version: 1;
  readonly status: 'decided';
  /** Identifies the call that wrote it; the state's lastDecision names the one that counted. */
  readonly decisionId: string;
  readonly model: string;
  readonly endpointName: string;
  readonly decidedAt: string;
  readonly seed: number;
  readonly window: {
    /** Exclusive. */
    readonly after: string;
    /** Inclusive: now - outcomeDelaySeconds. */
    readonly through: string;
    /** The new cursor: `through` when complete, else the last servedAt read in full. */
    readonly readThrough: string;
    readonly complete: boolean;
    readonly pages: number;
    readonly items: number;
  };
  readonly outcomesRead: Readonly<Record<string, ArmOutcomes>>;
  /** Items of the window not counted: no outcome yet, an outcome of the other type or unreadable, a variant that is not an arm. */
  readonly ignored: { readonly withoutOutcome: number; readonly otherOutcomes: number; readonly otherVariants: number };
  readonly armsAdded: readonly string[];
  /** Arms dropped because the endpoint no longer has them, with the outcomes they had. */
  readonly armsRemoved: readonly { readonly variant: string; readonly observations: number }[];
  readonly previousWeights: readonly VariantWeight[];
  readonly desiredWeights: readonly VariantWeight[];
  readonly change: boolean;
  readonly reason: NoChangeReason | null;
  readonly allocation: AllocationDecision;
  readonly result: DecideResult;
  readonly outcome?: DecisionOutcome;
  /** Earlier outcomes, when `record` was called again with another status: the last MAX_PREVIOUS_OUTCOMES. */
  readonly previousOutcomes?: readonly DecisionOutcome[];
}

export interface DecisionOutcome {
  readonly status: DecisionStatus;
  readonly at: string;
  readonly detail: string | null;
}

/** The state item changed between its read and its write (or the decision item, in `record`): another call won the race. */
export class BanditStateConflictError extends Error {
  public override readonly name = 'BanditStateConflictError';
}

// ---------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------

interface Problem {
  readonly path: string;
  readonly message: string;
}

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : text.length === 0 ? String(segment) : `.${String(segment)}`;
  return text.length === 0 ? '(root)' : text;
}

/** zod issues as problems: unknown keys one by one, a missing field as 'is required'. */
function problemsOf(issues: readonly z.core.$ZodIssue[]): Problem[] {
  return issues.flatMap((issue): Problem[] => {
    if (issue.code === 'unrecognized_keys') return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown field' }));
    const message = issue.code === 'invalid_type' && issue.input === undefined ? 'is required' : issue.message;
    return [{ path: formatPath(issue.path), message }];
  });
}

/** One error naming every problem, the first per path. */
function inputError(problems: readonly Problem[]): BanditInputError {
  const seen = new Set<string>();
  const unique = problems.filter((problem) => (seen.has(problem.path) ? false : (seen.add(problem.path), true)));
  return new BanditInputError(unique.map((problem) => `${problem.path}: ${problem.message}`).join('; '), unique);
}

const expecting = (message: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : message) });
const whole = (minimum: number, maximum: number) => {
  const message = `must be a whole number from ${minimum} to ${maximum}`;
  return z.number(expecting(message)).check(z.refine((value) => Number.isInteger(value), message), z.minimum(minimum, message), z.maximum(maximum, message));
};

const ModelSchema = z.string(expecting('must be a model name')).check(z.regex(ROUTE_MODEL_NAME_PATTERN, 'must be a model name: 2-32 lowercase letters, digits or hyphens'));
const EndpointNameSchema = z
  .string(expecting('must be a SageMaker endpoint name'))
  .check(z.regex(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/, 'must be a SageMaker endpoint name: 1-63 letters, digits or hyphens'));
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})$/;
const NOW_MESSAGE = 'must be an ISO-8601 date-time with a time zone, e.g. 2024-05-01T00:00:00Z';
const NowSchema = z.string(expecting(NOW_MESSAGE)).check(z.regex(ISO_INSTANT, NOW_MESSAGE), z.refine((value) => !Number.isNaN(Date.parse(value)), NOW_MESSAGE));

const VariantSchema = z.object(
  {
    // The name's rules are the state's (bandit.ts), checked when the state is built.
    VariantName: z.string(expecting('must be a variant name')),
    CurrentWeight: z.number(expecting('must be a number ≥ 0')).check(z.minimum(0, 'must be a number ≥ 0')),
  },
  expecting("must be a ProductionVariant: an object with VariantName and CurrentWeight"),
);

const DecideEventSchema = z.strictObject({
  action: z.literal('decide'),
  model: ModelSchema,
  endpointName: EndpointNameSchema,
  variants: z
    .array(VariantSchema, expecting("must be the endpoint's ProductionVariants (DescribeEndpoint)"))
    .check(z.minLength(2, 'must list at least 2 variants: a bandit needs two arms'), z.maxLength(MAX_ARMS, `must list at most ${MAX_ARMS} variants (SageMaker's limit per endpoint)`)),
  outcomeType: z.enum(OUTCOME_TYPES, expecting(`must be one of ${OUTCOME_TYPES.map((type) => `'${type}'`).join(', ')}`)),
  // Both checked against the variants when the state is built (bandit.ts), so every rule is its.
  settings: z.optional(z.unknown()),
  prior: z.optional(z.unknown()),
  outcomeDelaySeconds: whole(0, MAX_OUTCOME_DELAY_SECONDS),
  firstWindowHours: whole(1, MAX_FIRST_WINDOW_HOURS),
  now: NowSchema,
  seed: z.optional(whole(0, Number.MAX_SAFE_INTEGER)),
});

const RecordEventSchema = z.strictObject({
  action: z.literal('record'),
  model: ModelSchema,
  decisionKey: z.string(expecting('must be a decision key as decide returned it')),
  status: z.enum(DECISION_STATUSES, expecting(`must be one of ${DECISION_STATUSES.map((status) => `'${status}'`).join(', ')}`)),
  detail: z.optional(z.string({ error: 'must be a string' }).check(z.maxLength(MAX_DETAIL_LENGTH, `must be at most ${MAX_DETAIL_LENGTH} characters`))),
});

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

interface ParsedDecide {
  readonly action: 'decide';
  readonly model: string;
  readonly endpointName: string;
  readonly outcomeType: OutcomeType;
  /**
   * A state with no outcomes for the event's variants (their CurrentWeights normalised, all zero: equal),
   * settings and prior: what every decision starts from.
   */
  readonly template: BanditState;
  readonly outcomeDelaySeconds: number;
  readonly firstWindowHours: number;
  /** Normalised with toISOString. */
  readonly now: string;
  readonly seed: number;
}

type ParsedRecord = z.output<typeof RecordEventSchema>;

/** `state.arms[1].variant` as the event names it: `variants[1].VariantName`. */
function eventPath(text: string): string {
  return text
    .replace(/(?:state\.)?arms\[(\d+)\]\.variant\b/g, 'variants[$1].VariantName')
    .replace(/(?:state\.)?arms\[(\d+)\]\.weight\b/g, 'variants[$1].CurrentWeight')
    .replace(/^state\.arms\b/, 'variants')
    .replace(/^state\.(settings|prior|outcomeType)\b/, '$1')
    .replace(/^state$/, '(root)');
}

/** Builds the template state from the raw event, so that its problems are reported with the others. */
function templateProblems(event: Record<string, unknown>): { problems: Problem[]; template?: BanditState } {
  const { variants, outcomeType, settings, prior } = event;
  if (!Array.isArray(variants) || !(OUTCOME_TYPES as readonly unknown[]).includes(outcomeType)) return { problems: [] };
  const problems: Problem[] = [];
  if (settings !== undefined && !isRecord(settings)) problems.push({ path: 'settings', message: 'must be an object of bandit settings' });
  if (isRecord(settings) && settings.guardRails !== undefined && !isRecord(settings.guardRails)) problems.push({ path: 'settings.guardRails', message: 'must be an object with minShare, maxStep and minObservations' });
  if (problems.length > 0) return { problems };
  const weights = variants.map((variant: unknown) => (isRecord(variant) && typeof variant.CurrentWeight === 'number' && Number.isFinite(variant.CurrentWeight) && variant.CurrentWeight >= 0 ? variant.CurrentWeight : 1));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  const previous = weights.map((weight) => (total > 0 ? weight : 1));
  try {
    const template = createBanditState({
      outcomeType: outcomeType as OutcomeType,
      weights: variants.map((variant: unknown, index) => ({ VariantName: (isRecord(variant) ? variant.VariantName : undefined) as string, DesiredWeight: previous[index] as number })),
      ...(prior === undefined ? {} : { prior: prior as BetaPrior }),
      ...(settings === undefined ? {} : { settings: settings as BanditSettingsInput }),
    });
    return { problems: [], template };
  } catch (error) {
    if (!(error instanceof BanditInputError)) throw error;
    return { problems: error.issues.map((issue) => ({ path: eventPath(issue.path), message: eventPath(issue.message) })) };
  }
}

const ACTIONS = ['decide', 'record'] as const;

function parseEvent(event: unknown): ParsedDecide | ParsedRecord {
  if (!isRecord(event)) throw inputError([{ path: '(root)', message: `must be an object with action: one of ${ACTIONS.join(', ')}` }]);
  const { action } = event;
  if (action === undefined) throw inputError([{ path: 'action', message: `is required: one of ${ACTIONS.join(', ')}` }]);
  if (action === 'record') {
    const parsed = RecordEventSchema.safeParse(event);
    if (!parsed.success) throw inputError(problemsOf(parsed.error.issues));
    return parsed.data;
  }
  if (action !== 'decide') throw inputError([{ path: 'action', message: `must be one of ${ACTIONS.join(', ')}, not ${JSON.stringify(action)}` }]);
  const parsed = DecideEventSchema.safeParse(event);
  const problems = parsed.success ? [] : problemsOf(parsed.error.issues);
  const built = templateProblems(event);
  problems.push(...built.problems);
  if (problems.length > 0 || !parsed.success || built.template === undefined) throw inputError(problems);
  const { data } = parsed;
  const now = new Date(Date.parse(data.now)).toISOString();
  return {
    action: 'decide',
    model: data.model,
    endpointName: data.endpointName,
    outcomeType: data.outcomeType,
    template: built.template,
    outcomeDelaySeconds: data.outcomeDelaySeconds,
    firstWindowHours: data.firstWindowHours,
    now,
    seed: data.seed ?? derivedSeed(data.model, now),
  };
}

/** 48 bits of SHA-256 of the model and the time: the same call draws the same numbers. */
function derivedSeed(model: string, now: string): number {
  return createHash('sha256').update(`bandit-allocation\n${model}\n${now}`, 'utf8').digest().readUIntBE(0, 6);
}

// ---------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------

interface Settings {
  readonly table: string;
  readonly indexName: string;
  readonly pageSize?: number;
}

function loadSettings(): Settings {
  const read = (name: string) => process.env[name]?.trim() ?? '';
  const table = read('PREDICTION_LOG_TABLE');
  const indexName = read('PREDICTION_LOG_INDEX') || DEFAULT_INDEX;
  const rawPageSize = read('BANDIT_QUERY_PAGE_SIZE');
  const pageSize = rawPageSize.length === 0 ? undefined : Number(rawPageSize);
  const problems = [
    ...(table.length === 0 ? ['PREDICTION_LOG_TABLE: is not set'] : []),
    ...(read('POWERTOOLS_METRICS_NAMESPACE').length === 0 ? ['POWERTOOLS_METRICS_NAMESPACE: is not set'] : []),
    ...(pageSize !== undefined && !(Number.isInteger(pageSize) && pageSize >= 1) ? [`BANDIT_QUERY_PAGE_SIZE: must be a whole number greater than 0; got ${JSON.stringify(rawPageSize)}`] : []),
  ];
  if (problems.length > 0) throw new ConfigError(problems.join('; '));
  return { table, indexName, ...(pageSize === undefined ? {} : { pageSize }) };
}

// ---------------------------------------------------------------------------------------------------
// The items
// ---------------------------------------------------------------------------------------------------

const errorName = (error: unknown): string | undefined => (error as { name?: string } | null)?.name;

type Item = Record<string, AttributeValue>;

/** The state item as read: its JSON and the stateVersion the next write is conditional on. */
interface StateRead {
  readonly value: unknown;
  readonly version: number;
}

/** A decision item as read: its JSON and the text itself, which the next write is conditional on. */
interface DecisionRead {
  readonly value: unknown;
  readonly text: string;
}

/** The bandit's items of one model in the prediction log's table. */
class StateStore {
  constructor(
    readonly settings: Settings,
    readonly model: string,
  ) {}

  get stateKey(): string {
    return `${BANDIT_KEY_PREFIX}${this.model}`;
  }

  get decisionsPrefix(): string {
    return `${this.stateKey}#`;
  }

  decisionKey(now: string): string {
    return `${this.decisionsPrefix}${now}`;
  }

  /** How messages name an item. */
  where(key: string): string {
    return `item ${key} of table ${this.settings.table}`;
  }

  /** The state item, or undefined when there is none. DynamoDB's errors propagate (the workflow retries). */
  async readState(): Promise<StateRead | undefined> {
    const key = this.stateKey;
    const item = await this.get(key, ['state', 'stateVersion']);
    if (item === undefined) return undefined;
    const version = Number(item.stateVersion?.N);
    if (!Number.isSafeInteger(version) || version < 1) throw inputError([{ path: 'model', message: `${this.where(key)} is not a bandit state: stateVersion must be a number ≥ 1` }]);
    return { value: this.json(key, item.state, 'state').value, version };
  }

  /** A decision item, or undefined when there is none; `path` is the field an unreadable one is reported under. */
  async readDecision(key: string, path = 'model'): Promise<DecisionRead | undefined> {
    const item = await this.get(key, ['record']);
    if (item === undefined) return undefined;
    return this.json(key, item.record, 'record', path);
  }

  /** Writes the state, conditional on the stateVersion read (on there being none when `readVersion` is undefined); returns the new stateVersion. */
  async writeState(value: unknown, readVersion: number | undefined, updatedAt: string): Promise<number> {
    const version = (readVersion ?? 0) + 1;
    const item: Item = { predictionId: { S: this.stateKey }, state: { S: JSON.stringify(value) }, stateVersion: { N: String(version) }, updatedAt: { S: updatedAt } };
    await this.put(
      item,
      readVersion === undefined
        ? { ConditionExpression: 'attribute_not_exists(#predictionId)', ExpressionAttributeNames: { '#predictionId': 'predictionId' } }
        : { ConditionExpression: '#stateVersion = :read', ExpressionAttributeNames: { '#stateVersion': 'stateVersion' }, ExpressionAttributeValues: { ':read': { N: String(readVersion) } } },
    );
    return version;
  }

  /** Writes a decision item; with `readText`, only if its record is still that text. */
  async writeDecision(key: string, value: unknown, recordedAt: string, readText?: string): Promise<void> {
    const item: Item = { predictionId: { S: key }, record: { S: JSON.stringify(value) }, recordedAt: { S: recordedAt } };
    await this.put(item, readText === undefined ? {} : { ConditionExpression: '#record = :read', ExpressionAttributeNames: { '#record': 'record' }, ExpressionAttributeValues: { ':read': { S: readText } } });
  }

  private async get(key: string, attributes: readonly string[]): Promise<Item | undefined> {
    const names = Object.fromEntries(attributes.map((name) => [`#${name}`, name]));
    const response = await dynamodb.send(
      new GetItemCommand({ TableName: this.settings.table, Key: { predictionId: { S: key } }, ConsistentRead: true, ProjectionExpression: Object.keys(names).join(', '), ExpressionAttributeNames: names }),
    );
    return response.Item;
  }

  private json(key: string, attribute: AttributeValue | undefined, name: string, path = 'model'): { value: unknown; text: string } {
    const text = attribute?.S;
    if (text === undefined) throw inputError([{ path, message: `${this.where(key)} has no ${name} attribute (a string of JSON)` }]);
    try {
      return { value: JSON.parse(text) as unknown, text };
    } catch {
      throw inputError([{ path, message: `${this.where(key)}: its ${name} attribute is not JSON` }]);
    }
  }

  /** A PutItem; a lost condition is a BanditStateConflictError. */
  private async put(item: Item, condition: Pick<PutItemCommandInput, 'ConditionExpression' | 'ExpressionAttributeNames' | 'ExpressionAttributeValues'>): Promise<void> {
    try {
      await dynamodb.send(new PutItemCommand({ TableName: this.settings.table, Item: item, ...condition }));
    } catch (error) {
      if (condition.ConditionExpression !== undefined && isConditionalCheckFailed(error)) {
        throw new BanditStateConflictError(`${this.where(item.predictionId?.S ?? '')} changed since it was read (${errorName(error)}): another call wrote it first; retry`, { cause: error });
      }
      throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The stored state
// ---------------------------------------------------------------------------------------------------

const IsoSchema = z.string().check(z.refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO-8601 date-time'));

const isWeightList = (value: unknown): boolean => Array.isArray(value) && value.every((entry) => isRecord(entry) && typeof entry.VariantName === 'string' && typeof entry.DesiredWeight === 'number');

/** A DecideResult as this function stores it (in the state and the decision record). */
function isDecideResult(value: unknown): value is DecideResult {
  return (
    isRecord(value) &&
    typeof value.decisionKey === 'string' &&
    typeof value.change === 'boolean' &&
    typeof value.complete === 'boolean' &&
    typeof value.outcomesRead === 'number' &&
    isRecord(value.observations) &&
    isWeightList(value.desiredWeights) &&
    isWeightList(value.previousWeights)
  );
}

/** The state JSON's own fields; the rest is the BanditState. The state is written only by a decision, so every field is there. */
const StateFieldsSchema = z.object({
  documentVersion: z.literal(STATE_DOCUMENT_VERSION),
  model: z.string(),
  endpointName: z.string(),
  cursor: IsoSchema,
  lastDecisionAt: IsoSchema,
  lastDecision: z.object({ key: z.string(), decisionId: z.string(), result: z.unknown().check(z.refine(isDecideResult, 'must be a decide result')) }),
  updatedAt: IsoSchema,
});

type StateFields = Omit<z.output<typeof StateFieldsSchema>, 'lastDecision'> & {
  readonly lastDecision: { readonly key: string; readonly decisionId: string; readonly result: DecideResult };
};

interface StoredState {
  readonly fields: StateFields;
  readonly bandit: BanditState;
  /** The item's stateVersion: the next write is conditional on it. */
  readonly version: number;
}

const STATE_FIELDS = Object.keys(StateFieldsSchema.shape) as (keyof StateFields)[];

function readStateDocument(store: StateStore, { value, version }: StateRead): StoredState {
  const where = store.where(store.stateKey);
  if (!isRecord(value)) throw inputError([{ path: 'model', message: `${where} is not a bandit state (not a JSON object)` }]);
  const own: Record<string, unknown> = {};
  const rest: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) ((STATE_FIELDS as string[]).includes(key) ? own : rest)[key] = field;
  const fields = StateFieldsSchema.safeParse(own);
  const problems = fields.success ? [] : problemsOf(fields.error.issues);
  let bandit: BanditState | undefined;
  try {
    bandit = parseBanditState(rest, '');
  } catch (error) {
    if (!(error instanceof BanditInputError)) throw error;
    problems.push(...error.issues.map((issue) => ({ path: issue.path.replace(/^\.?/, ''), message: issue.message })));
  }
  if (!fields.success || bandit === undefined) {
    throw inputError([{ path: 'model', message: `${where} is not a valid bandit state: ${problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}` }]);
  }
  return { fields: fields.data as StateFields, bandit, version };
}

/** The template's arms with the stored outcomes of the arms the endpoint still has. */
function reconcile(template: BanditState, stored: BanditState | undefined): { state: BanditState; added: string[]; removed: { variant: string; observations: number }[] } {
  if (stored === undefined) return { state: template, added: [], removed: [] };
  const byVariant = new Map<string, BanditState['arms'][number]>(stored.arms.map((arm) => [arm.variant, arm]));
  const names = new Set(template.arms.map((arm) => arm.variant));
  const added = template.arms.filter((arm) => !byVariant.has(arm.variant)).map((arm) => arm.variant);
  const removed = stored.arms.filter((arm) => !names.has(arm.variant)).map((arm) => ({ variant: arm.variant, observations: observationsOf(arm) }));
  const arms = template.arms.map((arm) => {
    const kept = byVariant.get(arm.variant);
    return kept === undefined ? arm : { ...kept, weight: arm.weight };
  });
  return { state: parseBanditState({ ...template, step: stored.step, arms }), added, removed };
}

// ---------------------------------------------------------------------------------------------------
// Reading the outcomes
// ---------------------------------------------------------------------------------------------------

type Key = NonNullable<QueryCommandOutput['LastEvaluatedKey']>;

/**
 * One page of the model's predictions served in [from, to] on the byModel index. Every variant's items come
 * back (a variant list does not fit predictionWindowQuery's two arms), with only the attributes read here.
 */
function windowQuery(settings: Settings, model: string, from: string, to: string, exclusiveStartKey: Key | undefined): QueryCommandInput {
  return {
    TableName: settings.table,
    IndexName: settings.indexName,
    KeyConditionExpression: '#model = :model AND #servedAt BETWEEN :from AND :to',
    ProjectionExpression: '#predictionId, #model, #variant, #servedAt, #outcomeType, #outcomeValue',
    ExpressionAttributeNames: { '#predictionId': 'predictionId', '#model': 'model', '#variant': 'variant', '#servedAt': 'servedAt', '#outcomeType': 'outcomeType', '#outcomeValue': 'outcomeValue' },
    ExpressionAttributeValues: { ':model': { S: model }, ':from': { S: from }, ':to': { S: to } },
    ...(settings.pageSize === undefined ? {} : { Limit: settings.pageSize }),
    ...(exclusiveStartKey === undefined ? {} : { ExclusiveStartKey: exclusiveStartKey }),
  };
}

interface Tally {
  readonly arms: Map<string, { successes: number; failures: number; count: number; sum: number; sumOfSquares: number }>;
  withoutOutcome: number;
  otherOutcomes: number;
  otherVariants: number;
}

const newTally = (): Tally => ({ arms: new Map(), withoutOutcome: 0, otherOutcomes: 0, otherVariants: 0 });

function addTo(target: Tally, source: Tally): void {
  for (const [variant, arm] of source.arms) {
    const into = target.arms.get(variant) ?? { successes: 0, failures: 0, count: 0, sum: 0, sumOfSquares: 0 };
    into.successes += arm.successes;
    into.failures += arm.failures;
    into.count += arm.count;
    into.sum += arm.sum;
    into.sumOfSquares += arm.sumOfSquares;
    target.arms.set(variant, into);
  }
  target.withoutOutcome += source.withoutOutcome;
  target.otherOutcomes += source.otherOutcomes;
  target.otherVariants += source.otherVariants;
}

function count(tally: Tally, item: ReadableItem, arms: ReadonlySet<string>, outcomeType: OutcomeType): void {
  const stored = readStoredPrediction(item);
  const variant = item.variant?.S;
  if (stored === undefined || variant === undefined || !arms.has(variant)) {
    tally.otherVariants += 1;
    return;
  }
  if (item.outcomeType === undefined && item.outcomeValue === undefined) {
    tally.withoutOutcome += 1;
    return;
  }
  const { outcome } = stored;
  if (outcome === undefined || outcome.type !== outcomeType) {
    tally.otherOutcomes += 1;
    return;
  }
  const arm = tally.arms.get(variant) ?? { successes: 0, failures: 0, count: 0, sum: 0, sumOfSquares: 0 };
  if (outcome.type === 'binary') {
    if (outcome.value === 1) arm.successes += 1;
    else arm.failures += 1;
  } else {
    arm.count += 1;
    arm.sum += outcome.value;
    arm.sumOfSquares += outcome.value * outcome.value;
  }
  tally.arms.set(variant, arm);
}

interface WindowRead {
  readonly tally: Tally;
  /** The new cursor. */
  readonly readThrough: string;
  readonly complete: boolean;
  readonly pages: number;
  readonly items: number;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Reads (after, through] page by page. Items are counted one servedAt at a time: when reading stops early,
 * the items at the servedAt where it stopped are left for the next call, which reads that millisecond again.
 */
async function readWindow(settings: Settings, model: string, after: string, through: string, arms: ReadonlySet<string>, outcomeType: OutcomeType, context: Context | undefined): Promise<WindowRead> {
  const tally = newTally();
  const from = iso(Date.parse(after) + 1);
  if (from > through) return { tally, readThrough: after > through ? after : through, complete: true, pages: 0, items: 0 };
  let pending = newTally();
  let pendingServedAt: string | undefined;
  let exclusiveStartKey: Key | undefined;
  let pages = 0;
  let items = 0;
  do {
    if (pages > 0 && context !== undefined && context.getRemainingTimeInMillis() < DEADLINE_MARGIN_MS) {
      const boundary = exclusiveStartKey?.servedAt?.S ?? through;
      if (pendingServedAt !== boundary) addTo(tally, pending);
      const readThrough = iso(Date.parse(boundary) - 1);
      return { tally, readThrough: readThrough > after ? readThrough : after, complete: false, pages, items };
    }
    const page = await dynamodb.send(new QueryCommand(windowQuery(settings, model, from, through, exclusiveStartKey)));
    pages += 1;
    for (const item of page.Items ?? []) {
      items += 1;
      const servedAt = item.servedAt?.S;
      if (servedAt !== pendingServedAt) {
        addTo(tally, pending);
        pending = newTally();
        pendingServedAt = servedAt;
      }
      count(pending, item, arms, outcomeType);
    }
    exclusiveStartKey = page.LastEvaluatedKey;
  } while (exclusiveStartKey !== undefined);
  addTo(tally, pending);
  return { tally, readThrough: through, complete: true, pages, items };
}

function outcomesOf(tally: Tally, outcomeType: OutcomeType): { batch: BinaryOutcomes[] | ContinuousOutcomes[]; perArm: Record<string, ArmOutcomes>; total: number } {
  const perArm: Record<string, ArmOutcomes> = {};
  let total = 0;
  if (outcomeType === 'binary') {
    const batch = [...tally.arms].map(([variant, arm]) => ({ variant, successes: arm.successes, failures: arm.failures }));
    for (const { variant, ...outcomes } of batch) {
      perArm[variant] = outcomes;
      total += outcomes.successes + outcomes.failures;
    }
    return { batch, perArm, total };
  }
  const batch = [...tally.arms].map(([variant, arm]) => ({ variant, count: arm.count, sum: arm.sum, sumOfSquares: arm.sumOfSquares }));
  for (const { variant, ...outcomes } of batch) {
    perArm[variant] = outcomes;
    total += outcomes.count;
  }
  return { batch, perArm, total };
}

// ---------------------------------------------------------------------------------------------------
// decide
// ---------------------------------------------------------------------------------------------------

function publishDecision(result: DecideResult): void {
  try {
    metrics.addMetric('OutcomesRead', MetricUnit.Count, result.outcomesRead);
    metrics.addMetric(result.change ? 'UpdatesTriggered' : 'UpdatesRefused', MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
    for (const weight of result.desiredWeights) {
      const single = metrics.singleMetric();
      single.addDimension('variant', weight.VariantName);
      single.addMetric('ArmWeight', MetricUnit.NoUnit, weight.DesiredWeight);
    }
  } catch (error) {
    // Metrics must never fail a decision.
    logger.warn('could not publish the decision metrics', { error: (error as Error).message });
  }
}

/** The result recorded for `now`: the decision record's when it is the one the state counted, else the state's copy. */
async function recordedDecision(store: StateStore, stored: StoredState | undefined, now: string): Promise<DecideResult | undefined> {
  if (stored === undefined) return undefined;
  const { lastDecisionAt, lastDecision } = stored.fields;
  if (now > lastDecisionAt) return undefined;
  const record = await store.readDecision(store.decisionKey(now));
  const result = isRecord(record?.value) && isDecideResult(record.value.result) ? record.value.result : undefined;
  if (now === lastDecisionAt) {
    if (result !== undefined && isRecord(record?.value) && record.value.decisionId === lastDecision.decisionId) return result;
    logger.warn("the decision record is not the one the state counted (a concurrent call lost the race after writing it): returning the state's copy", { key: lastDecision.key });
    return lastDecision.result;
  }
  // An older call retried after a later decision: its own record, if it got as far.
  if (result !== undefined) return result;
  throw inputError([{ path: 'now', message: `is ${now}, before the last decision (${lastDecisionAt}) in ${store.where(store.stateKey)}, and there is no decision for it` }]);
}

async function decide(settings: Settings, input: ParsedDecide, context: Context | undefined): Promise<DecideResult> {
  const store = new StateStore(settings, input.model);
  const read = await store.readState();
  const stored = read === undefined ? undefined : readStateDocument(store, read);
  const repeated = await recordedDecision(store, stored, input.now);
  if (repeated !== undefined) {
    logger.info('decision already taken: the recorded result', { model: input.model, now: input.now, decisionKey: repeated.decisionKey });
    return repeated;
  }
  if (stored !== undefined && stored.bandit.outcomeType !== input.outcomeType) {
    throw inputError([{ path: 'outcomeType', message: `is '${input.outcomeType}', but ${store.where(store.stateKey)} holds ${stored.bandit.outcomeType} outcomes: a bandit's outcome type cannot change (delete the item to start again)` }]);
  }
  const nowMs = Date.parse(input.now);
  const cursor = stored?.fields.cursor ?? iso(nowMs - input.firstWindowHours * 3_600_000);
  const through = iso(nowMs - input.outcomeDelaySeconds * 1000);
  const { state: reconciled, added, removed } = reconcile(input.template, stored?.bandit);
  const arms = new Set(reconciled.arms.map((arm) => arm.variant));
  const window = await readWindow(settings, input.model, cursor, through, arms, input.outcomeType, context);
  const outcomes = outcomesOf(window.tally, input.outcomeType);
  const updated = outcomes.batch.length === 0 ? reconciled : recordOutcomes(reconciled, outcomes.batch);
  const allocation = decideAllocation(updated, { seed: input.seed });
  const { decision } = allocation;

  const decisionKey = store.decisionKey(input.now);
  const previousWeights = decision.arms.map((arm) => ({ VariantName: arm.variant, DesiredWeight: arm.previousWeight }));
  const desiredWeights = allocation.weights.map((weight) => ({ VariantName: weight.VariantName, DesiredWeight: weight.DesiredWeight }));
  const reason: NoChangeReason | null = decision.outcome === 'insufficient-data' ? 'min-observations' : decision.changed ? null : 'unchanged';
  const result: DecideResult = {
    model: input.model,
    endpointName: input.endpointName,
    change: decision.changed,
    reason,
    desiredWeights,
    previousWeights,
    observations: Object.fromEntries(allocation.state.arms.map((arm) => [arm.variant, observationsOf(arm)])),
    outcomesRead: outcomes.total,
    complete: window.complete,
    decisionKey,
  };
  const decisionId = randomUUID();
  const record: DecisionRecord = {
    version: 1,
    status: 'decided',
    decisionId,
    model: input.model,
    endpointName: input.endpointName,
    decidedAt: input.now,
    seed: input.seed,
    window: { after: cursor, through, readThrough: window.readThrough, complete: window.complete, pages: window.pages, items: window.items },
    outcomesRead: outcomes.perArm,
    ignored: { withoutOutcome: window.tally.withoutOutcome, otherOutcomes: window.tally.otherOutcomes, otherVariants: window.tally.otherVariants },
    armsAdded: added,
    armsRemoved: removed,
    previousWeights,
    desiredWeights,
    change: decision.changed,
    reason,
    allocation: decision,
    result,
  };
  const fields: StateFields = {
    documentVersion: STATE_DOCUMENT_VERSION,
    model: input.model,
    endpointName: input.endpointName,
    cursor: window.readThrough,
    lastDecisionAt: input.now,
    lastDecision: { key: decisionKey, decisionId, result },
    updatedAt: input.now,
  };
  // The record first, the state last: a state that names a decision means the decision counted.
  await store.writeDecision(decisionKey, record, new Date().toISOString());
  const stateVersion = await store.writeState({ ...allocation.state, ...fields }, stored?.version, input.now);
  publishDecision(result);
  if (!window.complete) logger.warn('stopped reading before the deadline; the next call reads on', { model: input.model, cursor: window.readThrough, through, pages: window.pages });
  logger.info('allocation decided', {
    model: input.model,
    endpointName: input.endpointName,
    decisionKey,
    stateVersion,
    change: result.change,
    reason: decision.reason,
    outcomesRead: outcomes.total,
    armsAdded: added,
    armsRemoved: removed.map((arm) => arm.variant),
    window: record.window,
    weights: desiredWeights,
  });
  return result;
}

// ---------------------------------------------------------------------------------------------------
// record
// ---------------------------------------------------------------------------------------------------

/** The time in a decision item's key: `now` as toISOString writes it. */
const DECISION_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** What `record` relies on in a decision record; the rest is written back as it was. */
const StoredRecordSchema = z.object({ version: z.literal(1), status: z.literal('decided'), model: z.string() });

function publishOutcome(status: DecisionStatus): void {
  if (status === 'skipped') return;
  try {
    metrics.addMetric(status === 'deployed' ? 'UpdatesDeployed' : 'UpdatesRolledBack', MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  } catch (error) {
    logger.warn('could not publish the outcome metric', { error: (error as Error).message });
  }
}

async function recordOutcome(settings: Settings, input: ParsedRecord): Promise<RecordResult> {
  const store = new StateStore(settings, input.model);
  const result: RecordResult = { model: input.model, decisionKey: input.decisionKey, status: input.status };
  const name = input.decisionKey.startsWith(store.decisionsPrefix) ? input.decisionKey.slice(store.decisionsPrefix.length) : undefined;
  if (name === undefined || !DECISION_TIME.test(name)) {
    throw inputError([{ path: 'decisionKey', message: `must be a decision of model '${input.model}': ${store.decisionsPrefix}<time>, as decide returned it; got '${input.decisionKey}'` }]);
  }
  const read = await store.readDecision(input.decisionKey, 'decisionKey');
  if (read === undefined) throw inputError([{ path: 'decisionKey', message: `${store.where(input.decisionKey)} does not exist` }]);
  const parsed = StoredRecordSchema.safeParse(read.value);
  if (!parsed.success || parsed.data.model !== input.model) {
    throw inputError([{ path: 'decisionKey', message: `${store.where(input.decisionKey)} is not a decision record of model '${input.model}'` }]);
  }
  const current = read.value as DecisionRecord;
  if (current.outcome?.status === input.status) {
    logger.info('outcome already recorded', { ...result });
    return result;
  }
  const outcome: DecisionOutcome = { status: input.status, at: new Date().toISOString(), detail: input.detail ?? null };
  const previousOutcomes = current.outcome === undefined ? current.previousOutcomes : [...(current.previousOutcomes ?? []), current.outcome].slice(-MAX_PREVIOUS_OUTCOMES);
  await store.writeDecision(input.decisionKey, { ...current, outcome, ...(previousOutcomes === undefined ? {} : { previousOutcomes }) }, outcome.at, read.text);
  publishOutcome(input.status);
  logger.info('outcome recorded', { ...result, detail: outcome.detail });
  return result;
}

// ---------------------------------------------------------------------------------------------------
// The handler
// ---------------------------------------------------------------------------------------------------

export async function handler(event: unknown, context?: Context): Promise<BanditAllocationResult> {
  if (context !== undefined) logger.addContext(context);
  let parsed: ParsedDecide | ParsedRecord;
  try {
    parsed = parseEvent(event);
  } catch (error) {
    logger.error('bad bandit-allocation event', { error: (error as Error).message });
    throw error;
  }
  try {
    const settings = loadSettings();
    return parsed.action === 'decide' ? await decide(settings, parsed, context) : await recordOutcome(settings, parsed);
  } catch (error) {
    logger.error(`${parsed.action} failed`, { action: parsed.action, model: parsed.model, errorName: errorName(error), error: (error as Error).message });
    throw error;
  }
}
