// Incremental training from streamed micro-batches (seed pattern 17, online learning). One function, called by the
// incremental-training workflow (a Step Functions LambdaInvoke per state, the event as its Payload). The logic that
// needs no I/O is lambda/shared/online-learning.ts.
//
// Labelled events reach S3 through the family's delivery stream as micro-batch objects under
// <family>/stream/arrived/<yyyy/MM/dd/HH>/ (one object per Firehose buffer, SSE-KMS). `tick` validates each one
// against the family's constraints document (lambda/shared/data-validation.ts: types, completeness, ranges,
// categories, distribution) and files it:
//   valid records        <family>/datasets/increments/<window>/<batch>.<csv|jsonl>   the open window: a dataset in the
//                        training datasets' format (CSV with the constraints' columns as header, or JSON Lines)
//   quarantined records  <family>/stream/quarantine/<window>/<batch>.jsonl           each with its reasons
//   a batch that fails   <family>/stream/rejected/<batch> and <batch>.report.json     whole, with the violated
//   a dataset constraint                                                              constraints (min-rows, meant
//                                                                                     for whole datasets, is not
//                                                                                     applied to one batch)
// then deletes the arrived object (the bucket is versioned: the deleted version stays recoverable). When the open
// window holds at least minRecords validated records, no update runs and the cooldown since the last update has
// passed, it closes the window (a new one opens) and returns `decision: "start"`: the workflow trains on the window.
// `finish` records how the update ended and starts the cooldown.
//
// State, in the table STATE_TABLE (partition key `id`, TTL `expiresAt`):
//   state            openWindow, windowOpenedAt, windowRecords, windowObjects (N), lastUpdateAt, lastOutcome,
//                    update { id (the window), records, objects, startedAt, until } while an update runs, and
//                    lease { holder, until } while a tick runs: ticks never overlap (a second one returns "busy"),
//                    and a lease whose function died lapses after LEASE_SECONDS.
//   batch#<key>      one item per micro-batch filed: its counts, window and status (accepted or rejected), written
//                    in one transaction with the window's counters, so a batch is counted once even when a tick
//                    dies between counting it and deleting it. Expires after 90 days.
//   update#<window>  one item per update: records, objects, startedAt, status (started, registered, refused,
//                    failed), detail, modelPackageArn, endedAt. Expires after 400 days.
//
// Input (unknown fields are refused; every problem is named by its path):
//   { action: "tick", now, constraintsKey, settings: { minRecords, cooldownSeconds, updateTimeoutSeconds } }
//       now             the workflow's $$.State.EnteredTime: the time windows open and cooldowns are measured by.
//       -> { decision: "start" | "waiting" | "cooling-down" | "busy", reason, window?, dataPrefix?, records,
//            objects, openWindow, pendingRecords, filed: { objects, rows, valid, quarantined, rejected }, backlog }
//          backlog: true when the tick stopped before its deadline with micro-batches left (the next tick goes on).
//          A tick called again with the `now` of the tick that started the update under way (a retry whose answer
//          was lost) answers that start again, so the closed window is still trained on.
//          In a quarantine object each line is { object, line, reasons, text }: `line` is the record's position in
//          the micro-batch (1-based), 0 for text that is no record.
//   { action: "finish", now, window, outcome: "registered" | "refused" | "failed", detail, modelPackageArn? }
//       -> { window, outcome, lockReleased }   (the same outcome again changes nothing; the lock's release and the
//          update's record are one transaction)
// Errors (the `error` Step Functions sees):
//   OnlineLearningInputError  a bad event (its message names every field), a constraints document that is missing
//                             or not valid, a state item that is not valid: not retried
//   ConfigError               the function's environment is unusable
//   anything else             S3, DynamoDB or KMS failing after the SDK's retries: both actions are safe to repeat.
// EMF (POWERTOOLS_METRICS_NAMESPACE, dimension service): tick publishes RecordsArrived, RecordsValidated,
// RecordsQuarantined, MicroBatchesRejected, and UpdatesTriggered or UpdatesDeferred (records enough, but an update
// running or the cooldown not over); finish publishes UpdatesRegistered, UpdatesRefused or UpdatesFailed.
// Environment: STATE_TABLE, DATA_BUCKET, MODEL_FAMILY, DATASET_FORMAT (csv | jsonl), KMS_KEY_ID,
// POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE; AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL_DYNAMODB,
// AWS_REGION: read by the SDK.
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import {
  DynamoDBClient,
  GetItemCommand,
  TransactWriteItemsCommand,
  UpdateItemCommand,
  type AttributeValue,
} from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { ConstraintsError, DataValidator, parseConstraintsText, quarantineLine, type Constraints, type QuarantineReason } from '../shared/data-validation';
import { ConfigError } from '../shared/errors';
import {
  arrivedPrefix,
  batchName,
  decideUpdate,
  formatRows,
  OnlineLearningInputError,
  quarantineKey,
  rejectedKey,
  splitJsonRecords,
  nextWindowId,
  WINDOW_ID_PATTERN,
  windowId,
  windowPartKey,
  windowPrefix,
  type UpdateState,
} from '../shared/online-learning';
import * as z from '../shared/zod';

export { OnlineLearningInputError } from '../shared/online-learning';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'online-learning';
const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const s3 = new S3Client({});
const dynamodb = new DynamoDBClient({});

/** A tick stops filing micro-batches when the function has less than this left. */
export const DEADLINE_MARGIN_MS = 60_000;
/** How long a tick's lease lasts: longer than the function's timeout, so only a dead tick's lease lapses. */
export const LEASE_SECONDS = 16 * 60;
export const BATCH_TTL_DAYS = 90;
export const UPDATE_TTL_DAYS = 400;
export const MAX_DETAIL_LENGTH = 1000;
const STATE_ID = 'state';
const DAY_SECONDS = 86_400;

// ---------------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------------

const expecting = (message: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? 'is required' : message) });
const whole = (minimum: number, maximum: number) => {
  const message = `must be a whole number from ${minimum} to ${maximum}`;
  return z.number(expecting(message)).check(z.refine((value) => Number.isInteger(value), message), z.minimum(minimum, message), z.maximum(maximum, message));
};
const timestamp = z.string(expecting('must be an ISO 8601 time')).check(z.refine((value) => !Number.isNaN(Date.parse(value)), 'must be an ISO 8601 time'));

const TickSchema = z.strictObject({
  action: z.literal('tick'),
  now: timestamp,
  constraintsKey: z.string(expecting('must be an object key')).check(z.minLength(1, 'must be an object key'), z.refine((value) => !value.endsWith('/'), 'must be an object key, not a prefix')),
  settings: z.strictObject({
    minRecords: whole(1, 100_000_000),
    cooldownSeconds: whole(0, 30 * DAY_SECONDS),
    updateTimeoutSeconds: whole(60, 30 * DAY_SECONDS),
  }),
});
const FinishSchema = z.strictObject({
  action: z.literal('finish'),
  now: timestamp,
  window: z.string(expecting('must be a window id such as w-20261207T101500Z')).check(z.regex(WINDOW_ID_PATTERN, 'must be a window id such as w-20261207T101500Z')),
  outcome: z.enum(['registered', 'refused', 'failed'], expecting('must be one of registered, refused, failed')),
  detail: z.string(expecting('must be a string')),
  modelPackageArn: z.optional(z.string(expecting('must be a model package ARN')).check(z.regex(/^arn:aws[a-z-]*:sagemaker:/, 'must be a model package ARN'))),
});
export type TickEvent = z.infer<typeof TickSchema>;
export type FinishEvent = z.infer<typeof FinishSchema>;

function formatPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) text += typeof segment === 'number' ? `[${segment}]` : text.length === 0 ? String(segment) : `.${String(segment)}`;
  return text.length === 0 ? '(root)' : text;
}

/** The event, or an OnlineLearningInputError naming every problem by its path. */
export function parseEvent(event: unknown): TickEvent | FinishEvent {
  const action = typeof event === 'object' && event !== null ? (event as { action?: unknown }).action : undefined;
  if (action !== 'tick' && action !== 'finish') {
    throw new OnlineLearningInputError(action === undefined ? 'action: is required: one of tick, finish' : `action: must be one of tick, finish, not ${JSON.stringify(action)}`);
  }
  const parsed = (action === 'tick' ? TickSchema : FinishSchema).safeParse(event);
  if (parsed.success) return parsed.data;
  const seen = new Set<string>();
  const problems = parsed.error.issues
    .flatMap((issue) => (issue.code === 'unrecognized_keys' ? issue.keys.map((key) => `${formatPath([...issue.path, key])}: unknown field`) : [`${formatPath(issue.path)}: ${issue.message}`]))
    .filter((problem) => {
      const path = problem.slice(0, problem.indexOf(':'));
      return seen.has(path) ? false : (seen.add(path), true);
    });
  throw new OnlineLearningInputError(problems.join('; '));
}

// ---------------------------------------------------------------------------------------------------
// Environment
// ---------------------------------------------------------------------------------------------------

interface Environment {
  readonly table: string;
  readonly bucket: string;
  readonly family: string;
  readonly format: 'csv' | 'jsonl';
  readonly kmsKeyId: string;
}

function environment(): Environment {
  const missing = ['STATE_TABLE', 'DATA_BUCKET', 'MODEL_FAMILY', 'DATASET_FORMAT', 'KMS_KEY_ID'].filter((name) => !process.env[name]);
  if (missing.length > 0) throw new ConfigError(`${missing.join(', ')}: not set`);
  const format = process.env.DATASET_FORMAT;
  if (format !== 'csv' && format !== 'jsonl') throw new ConfigError(`DATASET_FORMAT: must be csv or jsonl; got ${JSON.stringify(format)}`);
  return { table: process.env.STATE_TABLE!, bucket: process.env.DATA_BUCKET!, family: process.env.MODEL_FAMILY!, format, kmsKeyId: process.env.KMS_KEY_ID! };
}

// ---------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------

const S = (value: string): AttributeValue => ({ S: value });
const N = (value: number): AttributeValue => ({ N: String(value) });
const errorName = (error: unknown): string => (error as { name?: string } | undefined)?.name ?? 'Error';

function readNumber(item: Record<string, AttributeValue>, name: string): number {
  const value = item[name]?.N;
  const number = value === undefined ? Number.NaN : Number(value);
  if (!Number.isFinite(number)) throw new OnlineLearningInputError(`state: ${name} is not a number; the state item is not valid`);
  return number;
}

/** The decision's view of the state item. */
export function stateOf(item: Record<string, AttributeValue>): UpdateState {
  const openWindow = item.openWindow?.S;
  if (openWindow === undefined || !WINDOW_ID_PATTERN.test(openWindow)) throw new OnlineLearningInputError('state: openWindow is not a window id; the state item is not valid');
  const update = item.update?.M;
  return {
    openWindow,
    windowRecords: readNumber(item, 'windowRecords'),
    windowObjects: readNumber(item, 'windowObjects'),
    ...(item.lastUpdateAt?.S === undefined ? {} : { lastUpdateAt: item.lastUpdateAt.S }),
    ...(update?.id?.S === undefined || update.until?.S === undefined
      ? {}
      : {
          update: {
            id: update.id.S,
            until: update.until.S,
            ...(update.startedAt?.S === undefined ? {} : { startedAt: update.startedAt.S }),
            ...(update.records?.N === undefined ? {} : { records: Number(update.records.N) }),
            ...(update.objects?.N === undefined ? {} : { objects: Number(update.objects.N) }),
          },
        }),
  };
}

// ---------------------------------------------------------------------------------------------------
// tick
// ---------------------------------------------------------------------------------------------------

export interface Filed {
  objects: number;
  rows: number;
  valid: number;
  quarantined: number;
  rejected: number;
}

export interface TickResult {
  readonly decision: 'start' | 'waiting' | 'cooling-down' | 'busy';
  readonly reason: string;
  /** With start: the window trained on and its dataset prefix. */
  readonly window: string | null;
  readonly dataPrefix: string | null;
  readonly records: number;
  readonly objects: number;
  /** The window being filled after this tick, and what it holds. */
  readonly openWindow: string | null;
  readonly pendingRecords: number;
  readonly filed: Filed;
  readonly backlog: boolean;
}

type Deadline = () => number;

async function tick(env: Environment, event: TickEvent, remaining: Deadline): Promise<TickResult> {
  const now = new Date(Date.parse(event.now));
  const holder = randomUUID();
  const filed: Filed = { objects: 0, rows: 0, valid: 0, quarantined: 0, rejected: 0 };
  let leased: Record<string, AttributeValue>;
  try {
    const result = await dynamodb.send(
      new UpdateItemCommand({
        TableName: env.table,
        Key: { id: S(STATE_ID) },
        UpdateExpression:
          'SET #lease = :lease, openWindow = if_not_exists(openWindow, :window), windowOpenedAt = if_not_exists(windowOpenedAt, :now), windowRecords = if_not_exists(windowRecords, :zero), windowObjects = if_not_exists(windowObjects, :zero)',
        ConditionExpression: 'attribute_not_exists(#lease) OR #lease.#until < :clock',
        ExpressionAttributeNames: { '#lease': 'lease', '#until': 'until' },
        ExpressionAttributeValues: {
          ':lease': { M: { holder: S(holder), until: S(new Date(Date.now() + LEASE_SECONDS * 1000).toISOString()) } },
          ':window': S(windowId(now)),
          ':now': S(now.toISOString()),
          ':zero': N(0),
          ':clock': S(new Date().toISOString()),
        },
        ReturnValues: 'ALL_NEW',
      }),
    );
    leased = result.Attributes ?? {};
  } catch (error) {
    if (errorName(error) !== 'ConditionalCheckFailedException') throw error;
    return { decision: 'busy', reason: 'another tick is filing micro-batches', window: null, dataPrefix: null, records: 0, objects: 0, openWindow: null, pendingRecords: 0, filed, backlog: true };
  }
  try {
    let state = stateOf(leased);
    const constraints = await readConstraints(env, event.constraintsKey);
    const columns = constraints.columns.map((column) => column.name);
    let backlog = false;
    for await (const key of arrivedObjects(env)) {
      if (filed.objects > 0 && remaining() < DEADLINE_MARGIN_MS) {
        backlog = true;
        break;
      }
      const valid = await fileBatch(env, constraints, columns, state.openWindow, key, holder, now, filed);
      if (valid === 'lease-lost') {
        return { decision: 'busy', reason: 'the tick outlived its lease; another tick goes on', window: null, dataPrefix: null, records: 0, objects: 0, openWindow: null, pendingRecords: 0, filed, backlog: true };
      }
      if (valid !== undefined) state = { ...state, windowRecords: state.windowRecords + valid, windowObjects: state.windowObjects + 1 };
    }
    publishFiled(filed);
    const decision = decideUpdate(state, event.settings, now);
    if (decision.decision !== 'start') {
      // Deferred: records enough, but an update running or the cooldown not over (busy is decided before the count).
      if (decision.decision === 'cooling-down' || (decision.decision === 'busy' && state.windowRecords >= event.settings.minRecords)) {
        metrics.addMetric('UpdatesDeferred', MetricUnit.Count, 1);
      }
      metrics.publishStoredMetrics();
      return { decision: decision.decision, reason: decision.reason, window: null, dataPrefix: null, records: 0, objects: 0, openWindow: state.openWindow, pendingRecords: state.windowRecords, filed, backlog };
    }
    if (decision.resumed === true) {
      logger.info('update already started by this call', { window: decision.window });
      metrics.publishStoredMetrics();
      return {
        decision: 'start',
        reason: `window ${decision.window} was closed by this same call (retried): ${decision.records} validated record(s) in ${decision.objects} micro-batch(es)`,
        window: decision.window,
        dataPrefix: windowPrefix(env.family, decision.window),
        records: decision.records,
        objects: decision.objects,
        openWindow: state.openWindow,
        pendingRecords: state.windowRecords,
        filed,
        backlog,
      };
    }
    const next = nextWindowId(decision.window, now);
    const until = new Date(now.getTime() + event.settings.updateTimeoutSeconds * 1000).toISOString();
    await dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Update: {
              TableName: env.table,
              Key: { id: S(STATE_ID) },
              UpdateExpression: 'SET #update = :update, openWindow = :next, windowOpenedAt = :now, windowRecords = :zero, windowObjects = :zero',
              ConditionExpression: '#lease.holder = :holder AND openWindow = :window',
              ExpressionAttributeNames: { '#update': 'update', '#lease': 'lease' },
              ExpressionAttributeValues: {
                ':update': { M: { id: S(decision.window), records: N(decision.records), objects: N(decision.objects), startedAt: S(now.toISOString()), until: S(until) } },
                ':next': S(next),
                ':now': S(now.toISOString()),
                ':zero': N(0),
                ':holder': S(holder),
                ':window': S(decision.window),
              },
            },
          },
          {
            Put: {
              TableName: env.table,
              Item: {
                id: S(`update#${decision.window}`),
                window: S(decision.window),
                records: N(decision.records),
                objects: N(decision.objects),
                startedAt: S(now.toISOString()),
                status: S('started'),
                ...(decision.takesOver === undefined ? {} : { tookOverFrom: S(decision.takesOver) }),
                expiresAt: N(Math.floor(now.getTime() / 1000) + UPDATE_TTL_DAYS * DAY_SECONDS),
              },
            },
          },
        ],
      }),
    );
    metrics.addMetric('UpdatesTriggered', MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
    logger.info('update started', { window: decision.window, records: decision.records, objects: decision.objects, nextWindow: next, tookOverFrom: decision.takesOver });
    return {
      decision: 'start',
      reason: `window ${decision.window} holds ${decision.records} validated record(s) in ${decision.objects} micro-batch(es)`,
      window: decision.window,
      dataPrefix: windowPrefix(env.family, decision.window),
      records: decision.records,
      objects: decision.objects,
      openWindow: next,
      pendingRecords: 0,
      filed,
      backlog,
    };
  } finally {
    await releaseLease(env, holder);
  }
}

function publishFiled(filed: Filed): void {
  metrics.addMetric('RecordsArrived', MetricUnit.Count, filed.rows);
  metrics.addMetric('RecordsValidated', MetricUnit.Count, filed.valid);
  metrics.addMetric('RecordsQuarantined', MetricUnit.Count, filed.quarantined);
  metrics.addMetric('MicroBatchesRejected', MetricUnit.Count, filed.rejected);
}

async function releaseLease(env: Environment, holder: string): Promise<void> {
  try {
    await dynamodb.send(
      new UpdateItemCommand({
        TableName: env.table,
        Key: { id: S(STATE_ID) },
        UpdateExpression: 'REMOVE #lease',
        ConditionExpression: '#lease.holder = :holder',
        ExpressionAttributeNames: { '#lease': 'lease' },
        ExpressionAttributeValues: { ':holder': S(holder) },
      }),
    );
  } catch (error) {
    // A lease another tick took over is not ours to release; anything else lapses after LEASE_SECONDS.
    logger.warn('lease not released', { errorName: errorName(error), error: (error as Error).message });
  }
}

async function readConstraints(env: Environment, key: string): Promise<Constraints> {
  let text: string;
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: key }));
    text = await response.Body!.transformToString('utf-8');
  } catch (error) {
    if (errorName(error) === 'NoSuchKey') throw new OnlineLearningInputError(`constraintsKey: no constraints document at s3://${env.bucket}/${key} (make one with npm run suggest-constraints)`);
    throw error;
  }
  try {
    return parseConstraintsText(text);
  } catch (error) {
    if (error instanceof ConstraintsError) throw new OnlineLearningInputError(`constraintsKey: s3://${env.bucket}/${key} is not a valid constraints document: ${error.message}`);
    throw error;
  }
}

/** The micro-batches waiting, oldest first (the stream's keys start with their hour). */
async function* arrivedObjects(env: Environment): AsyncGenerator<string> {
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: env.bucket, Prefix: arrivedPrefix(env.family), ...(token === undefined ? {} : { ContinuationToken: token }) }));
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined && !object.Key.endsWith('/')) yield object.Key;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

const encrypted = (env: Environment) => ({ ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: env.kmsKeyId });

/**
 * Validates and files one micro-batch. Returns the validated records it added to the open window, undefined when
 * it added none to it (rejected, already filed, gone), or 'lease-lost'.
 */
async function fileBatch(
  env: Environment,
  constraints: Constraints,
  columns: readonly string[],
  window: string,
  key: string,
  holder: string,
  now: Date,
  filed: Filed,
): Promise<number | undefined | 'lease-lost'> {
  const markerId = `batch#${key}`;
  const marker = await dynamodb.send(new GetItemCommand({ TableName: env.table, Key: { id: S(markerId) }, ConsistentRead: true }));
  if (marker.Item !== undefined) {
    // Filed by a tick that died before deleting it.
    await s3.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: key }));
    return undefined;
  }
  let text: string;
  try {
    const response = await s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: key }));
    text = await response.Body!.transformToString('utf-8');
  } catch (error) {
    if (errorName(error) === 'NoSuchKey') return undefined;
    throw error;
  }
  const batch = batchName(env.family, key);
  const { records, malformed } = splitJsonRecords(text);
  const validator = new DataValidator(constraints);
  const valid: Array<Readonly<Record<string, unknown>>> = [];
  const quarantine: string[] = [];
  records.forEach((record, index) => {
    const problems = validator.add(record);
    if (problems.length === 0) valid.push(record);
    else quarantine.push(quarantineLine({ object: key, line: index + 1, reasons: problems, text: JSON.stringify(record) }));
  });
  for (const junk of malformed) {
    validator.addMalformed();
    const reason: QuarantineReason = { kind: 'malformed', message: 'not a JSON object' };
    quarantine.push(quarantineLine({ object: key, line: 0, reasons: [reason], text: junk }));
  }
  const outcome = validator.finish();
  // min-rows is about a whole dataset: the window is checked against it when it is trained on.
  const violations = outcome.violations.filter((violation) => violation.constraint !== 'min-rows');
  const rejected = violations.length > 0;
  if (rejected) {
    const target = rejectedKey(env.family, batch);
    await s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: target, Body: text, ContentType: 'application/x-ndjson', ...encrypted(env) }));
    const report = { batch: key, window, validatedAt: now.toISOString(), rows: outcome.rows, valid: outcome.valid, quarantined: outcome.quarantined, violations, quarantine: quarantine.length };
    await s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: `${target}.report.json`, Body: JSON.stringify(report, null, 2), ContentType: 'application/json', ...encrypted(env) }));
  } else {
    if (valid.length > 0) {
      await s3.send(
        new PutObjectCommand({
          Bucket: env.bucket,
          Key: windowPartKey(env.family, window, batch, env.format),
          Body: formatRows(valid, env.format, columns),
          ContentType: env.format === 'csv' ? 'text/csv' : 'application/x-ndjson',
          ...encrypted(env),
        }),
      );
    }
    if (quarantine.length > 0) {
      await s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: quarantineKey(env.family, window, batch), Body: quarantine.join(''), ContentType: 'application/x-ndjson', ...encrypted(env) }));
    }
  }
  const added = rejected ? 0 : valid.length;
  try {
    await dynamodb.send(
      new TransactWriteItemsCommand({
        TransactItems: [
          {
            Put: {
              TableName: env.table,
              Item: {
                id: S(markerId),
                window: S(window),
                status: S(rejected ? 'rejected' : 'accepted'),
                rows: N(outcome.rows),
                valid: N(added),
                quarantined: N(rejected ? outcome.rows : outcome.quarantined),
                filedAt: S(now.toISOString()),
                expiresAt: N(Math.floor(now.getTime() / 1000) + BATCH_TTL_DAYS * DAY_SECONDS),
              },
              ConditionExpression: 'attribute_not_exists(id)',
            },
          },
          {
            Update: {
              TableName: env.table,
              Key: { id: S(STATE_ID) },
              UpdateExpression: 'ADD windowRecords :records, windowObjects :objects',
              ConditionExpression: '#lease.holder = :holder AND openWindow = :window',
              ExpressionAttributeNames: { '#lease': 'lease' },
              ExpressionAttributeValues: { ':records': N(added), ':objects': N(rejected || added === 0 ? 0 : 1), ':holder': S(holder), ':window': S(window) },
            },
          },
        ],
      }),
    );
  } catch (error) {
    if (errorName(error) !== 'TransactionCanceledException') throw error;
    const reasons = (error as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons ?? [];
    if (reasons[1]?.Code === 'ConditionalCheckFailed') return 'lease-lost';
    if (reasons[0]?.Code !== 'ConditionalCheckFailed') throw error;
    // Counted already: only the delete is left.
    await s3.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: key }));
    return undefined;
  }
  await s3.send(new DeleteObjectCommand({ Bucket: env.bucket, Key: key }));
  filed.objects += 1;
  filed.rows += outcome.rows;
  filed.valid += added;
  filed.quarantined += rejected ? outcome.rows : outcome.quarantined;
  if (rejected) {
    filed.rejected += 1;
    logger.warn('micro-batch rejected', { batch: key, violations: violations.map((violation) => violation.message) });
  }
  return added > 0 ? added : undefined;
}

// ---------------------------------------------------------------------------------------------------
// finish
// ---------------------------------------------------------------------------------------------------

export interface FinishResult {
  readonly window: string;
  readonly outcome: FinishEvent['outcome'];
  /** False when the update's lock was no longer its own (it lapsed and a later update took over). */
  readonly lockReleased: boolean;
}

const OUTCOME_METRICS = { registered: 'UpdatesRegistered', refused: 'UpdatesRefused', failed: 'UpdatesFailed' } as const;

async function finish(env: Environment, event: FinishEvent): Promise<FinishResult> {
  const now = new Date(Date.parse(event.now)).toISOString();
  const detail = event.detail.slice(0, MAX_DETAIL_LENGTH);
  const record = await dynamodb.send(new GetItemCommand({ TableName: env.table, Key: { id: S(`update#${event.window}`) }, ConsistentRead: true }));
  const status = record.Item?.status?.S;
  if (status === undefined) throw new OnlineLearningInputError(`window: no update of window ${event.window} was started`);
  if (status === event.outcome) return { window: event.window, outcome: event.outcome, lockReleased: record.Item?.lockReleased?.BOOL ?? false };
  if (status !== 'started') throw new OnlineLearningInputError(`outcome: the update of window ${event.window} already ended as ${status}`);
  // The lock and the update's record change together; a lock that is no longer this update's (it lapsed and a later
  // update took over) is left alone and the record says so.
  const releaseLock = {
    Update: {
      TableName: env.table,
      Key: { id: S(STATE_ID) },
      UpdateExpression: 'REMOVE #update SET lastUpdateAt = :now, lastOutcome = :outcome',
      ConditionExpression: '#update.#id = :window',
      ExpressionAttributeNames: { '#update': 'update', '#id': 'id' },
      ExpressionAttributeValues: { ':now': S(now), ':window': S(event.window), ':outcome': { M: { window: S(event.window), outcome: S(event.outcome), at: S(now) } } },
    },
  };
  const recordOutcome = (released: boolean) => ({
    Update: {
      TableName: env.table,
      Key: { id: S(`update#${event.window}`) },
      UpdateExpression: `SET #status = :outcome, detail = :detail, endedAt = :now, lockReleased = :released${event.modelPackageArn === undefined ? '' : ', modelPackageArn = :arn'}`,
      ConditionExpression: '#status = :started',
      ExpressionAttributeNames: { '#status': 'status' },
      ExpressionAttributeValues: {
        ':outcome': S(event.outcome),
        ':detail': S(detail),
        ':now': S(now),
        ':released': { BOOL: released },
        ':started': S('started'),
        ...(event.modelPackageArn === undefined ? {} : { ':arn': S(event.modelPackageArn) }),
      },
    },
  });
  let lockReleased = true;
  try {
    await dynamodb.send(new TransactWriteItemsCommand({ TransactItems: [releaseLock, recordOutcome(true)] }));
  } catch (error) {
    if (errorName(error) !== 'TransactionCanceledException') throw error;
    const reasons = (error as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons ?? [];
    if (reasons[1]?.Code === 'ConditionalCheckFailed') return finishedAlready(env, event);
    if (reasons[0]?.Code !== 'ConditionalCheckFailed') throw error;
    lockReleased = false;
    try {
      await dynamodb.send(new UpdateItemCommand(recordOutcome(false).Update));
    } catch (inner) {
      if (errorName(inner) === 'ConditionalCheckFailedException') return finishedAlready(env, event);
      throw inner;
    }
  }
  metrics.addMetric(OUTCOME_METRICS[event.outcome], MetricUnit.Count, 1);
  metrics.publishStoredMetrics();
  logger.info('update finished', { window: event.window, outcome: event.outcome, lockReleased });
  return { window: event.window, outcome: event.outcome, lockReleased };
}

/** The answer to a finish whose update another call ended meanwhile: the same outcome is no change, another an error. */
async function finishedAlready(env: Environment, event: FinishEvent): Promise<FinishResult> {
  const record = await dynamodb.send(new GetItemCommand({ TableName: env.table, Key: { id: S(`update#${event.window}`) }, ConsistentRead: true }));
  const status = record.Item?.status?.S;
  if (status === event.outcome) return { window: event.window, outcome: event.outcome, lockReleased: record.Item?.lockReleased?.BOOL ?? false };
  throw new OnlineLearningInputError(`outcome: the update of window ${event.window} already ended as ${status}`);
}

// ---------------------------------------------------------------------------------------------------
// Handler
// ---------------------------------------------------------------------------------------------------

export async function handler(event: unknown, context?: Context): Promise<TickResult | FinishResult> {
  if (context !== undefined) logger.addContext(context);
  let parsed: TickEvent | FinishEvent;
  try {
    parsed = parseEvent(event);
  } catch (error) {
    logger.error('bad online-learning event', { error: (error as Error).message });
    throw error;
  }
  try {
    const env = environment();
    const remaining: Deadline = () => context?.getRemainingTimeInMillis() ?? Number.POSITIVE_INFINITY;
    return parsed.action === 'tick' ? await tick(env, parsed, remaining) : await finish(env, parsed);
  } catch (error) {
    logger.error(`${parsed.action} failed`, { action: parsed.action, errorName: errorName(error), error: (error as Error).message });
    throw error;
  }
}
