// Batch side of precomputed predictions: after BatchInference's transform job, its workflow calls this
// function to load the joined output (JSON Lines, `JoinSource: Input`) into the inference API's state
// table, one item per record id (lambda/shared/precomputed.ts has the key and the item), where the
// real-time API serves a fresh one to a request that names the entity.
//
// It lists the `.out` objects under the output prefix in key order, streams each one line by line (never
// more than one line and four batches in memory), writes 25 items per BatchWriteItem call with at most
// four calls in flight, and retries unprocessed items with jittered exponential backoff. A line that is
// no answer (not JSON, no SageMakerOutput, no usable record id, too large) is counted and the first ten
// are reported with their object and line number; none is dropped unseen. A minute before the function's
// deadline it stops at a batch boundary, once everything read is written, and returns a continuation:
// the workflow calls it again with it, so an output of any size loads over several calls.
//
// Input:  { tableName, model, modelVersion, featureGroup, outputPrefix: "s3://bucket/prefix/",
//           recordIdField: "customer_id" | "/json/pointer" | "0" (format csv: a column), format?: "jsonl" | "csv",
//           ttlSeconds, computedAt?, continuation? }
//         jsonl (default): joined JSON records, the answer is SageMakerOutput, stored as application/json;
//         csv: joined CSV rows, the answer is every field but the id's, stored as text/csv.
// Output: { loaded, invalid, objects, invalidLines: [{ object, line, reason }], done, continuation }
//         counts are for the whole load so far; continuation is null when done.
// Errors (the `error` Step Functions sees):
//   PrecomputedInputError           bad input, no `.out` object under the prefix, or an object that changed
//                                   between calls: not retried
//   PrecomputedWriteRetriableError  DynamoDB still throttling (or unavailable) after the retries: retry the call
//                                   (items are overwritten with the same values, so a retry is harmless)
//   PrecomputedWriteError           any other write failure (no such table, access denied): fix and redrive
// A record id that repeats is written more than once; the item holds one of its lines' answers.
//
// Environment: POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE (MlPlatform/Inference); AWS_ENDPOINT_URL_S3,
// AWS_ENDPOINT_URL_DYNAMODB, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchWriteItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { PRECOMPUTED_CONTENT_TYPE, PRECOMPUTED_CSV_CONTENT_TYPE, parseJoinedCsvLine, parseJoinedLine, precomputedKey, toPrecomputedItem, type PrecomputedItem } from '../shared/precomputed';
import {
  backoffDelayMs,
  decodeContinuation,
  decodeLine,
  EMPTY_PROGRESS,
  encodeContinuation,
  isRetriableWriteError,
  MAX_BATCH_WRITE_ITEMS,
  parseLoadInput,
  PrecomputedInputError,
  splitLines,
  withInvalidSample,
  type InvalidLine,
  type LoadInput,
  type LoadProgress,
} from '../shared/precomputed-load';

export { PrecomputedInputError } from '../shared/precomputed-load';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'precomputed-predictions';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const s3 = new S3Client({});
const dynamodb = new DynamoDBClient({});

/** BatchWriteItem calls in flight at once. */
const MAX_WRITES_IN_FLIGHT = 4;

/** Calls of one batch, the first included, before its unprocessed items fail the load. */
const MAX_WRITE_ATTEMPTS = 8;

/** Stop reading when the function has less than this left: enough to finish the writes in flight. */
const STOP_BEFORE_DEADLINE_MS = 60_000;

/** DynamoDB kept refusing (throttling, unprocessed items, 5xx) after the retries. */
export class PrecomputedWriteRetriableError extends Error {
  override readonly name = 'PrecomputedWriteRetriableError';
}

/** A write failed for a reason retrying will not fix (missing table, access denied, refused item). */
export class PrecomputedWriteError extends Error {
  override readonly name = 'PrecomputedWriteError';
}

export interface LoadResult {
  readonly loaded: number;
  readonly invalid: number;
  readonly objects: number;
  readonly invalidLines: readonly InvalidLine[];
  readonly done: boolean;
  /** Pass it back as `continuation` to go on; null when the load is complete. */
  readonly continuation: string | null;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Batches of up to 25 puts, at most MAX_WRITES_IN_FLIGHT of them in flight: `add` waits while the window
 * is full, so reading never runs ahead of writing by more than that. The first failure stops it.
 */
class BatchWriter {
  private batch = new Map<string, PrecomputedItem>();
  private batchLines = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  /** Lines whose items DynamoDB took. */
  written = 0;

  constructor(private readonly tableName: string) {}

  get isEmpty(): boolean {
    return this.batch.size === 0;
  }

  async add(key: string, item: PrecomputedItem): Promise<void> {
    this.throwIfFailed();
    // One call may not name a key twice; the later line wins within a batch.
    this.batch.set(key, item);
    this.batchLines += 1;
    if (this.batch.size >= MAX_BATCH_WRITE_ITEMS) await this.submit();
  }

  /** Waits for the writes in flight, whatever their outcome: before giving up on a load. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  /** Writes what is batched and waits for every write. */
  async flush(): Promise<void> {
    if (this.batch.size > 0) await this.submit();
    await Promise.allSettled([...this.inFlight]);
    this.throwIfFailed();
  }

  private async submit(): Promise<void> {
    const items = [...this.batch.values()];
    const lines = this.batchLines;
    this.batch = new Map();
    this.batchLines = 0;
    const write: Promise<void> = this.write(items).then(
      () => {
        this.written += lines;
      },
      (error: Error) => {
        this.failure ??= error;
      },
    );
    const tracked = write.finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
    while (this.inFlight.size >= MAX_WRITES_IN_FLIGHT) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  private async write(items: PrecomputedItem[]): Promise<void> {
    let pending = items.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; ; attempt += 1) {
      let unprocessed: typeof pending;
      try {
        const output = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [this.tableName]: pending } }));
        unprocessed = (output.UnprocessedItems?.[this.tableName] ?? []) as typeof pending;
      } catch (error) {
        const name = (error as { name?: string }).name ?? 'Error';
        const detail = `BatchWriteItem to ${this.tableName} failed (${name}): ${(error as Error).message}`;
        throw isRetriableWriteError(error) ? new PrecomputedWriteRetriableError(detail, { cause: error }) : new PrecomputedWriteError(detail, { cause: error });
      }
      if (unprocessed.length === 0) return;
      if (attempt + 1 >= MAX_WRITE_ATTEMPTS) {
        throw new PrecomputedWriteRetriableError(`BatchWriteItem to ${this.tableName}: ${unprocessed.length} items still unprocessed after ${MAX_WRITE_ATTEMPTS} attempts`);
      }
      logger.debug('unprocessed items; retrying', { unprocessed: unprocessed.length, attempt });
      await sleep(backoffDelayMs(attempt));
      pending = unprocessed;
    }
  }

  private throwIfFailed(): void {
    if (this.failure !== undefined) throw this.failure;
  }
}

interface OutputObject {
  readonly key: string;
  readonly etag: string;
  readonly lastModified?: Date;
}

/** The `.out` objects under the prefix in key order, after `startAfter`. */
async function* outputObjects(input: LoadInput, startAfter: string | undefined): AsyncGenerator<OutputObject> {
  let continuationToken: string | undefined;
  do {
    let page;
    try {
      page = await s3.send(
        new ListObjectsV2Command({
          Bucket: input.bucket,
          Prefix: input.prefix,
          ...(continuationToken === undefined ? (startAfter === undefined ? {} : { StartAfter: startAfter }) : { ContinuationToken: continuationToken }),
        }),
      );
    } catch (error) {
      if ((error as { name?: string }).name === 'NoSuchBucket') throw new PrecomputedInputError(`outputPrefix: no bucket '${input.bucket}'`, 'outputPrefix');
      throw error;
    }
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined || !object.Key.endsWith('.out')) continue;
      yield { key: object.Key, etag: object.ETag ?? '', ...(object.LastModified === undefined ? {} : { lastModified: object.LastModified }) };
    }
    continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (continuationToken !== undefined);
}

/** Where reading stopped inside an object: the first byte and the number of the last line read. */
interface StoppedAt {
  readonly offset: number;
  readonly line: number;
}

class Load {
  private progress: LoadProgress;
  /** Lines taken in this call: it always reads some before it may stop, so every call makes progress. */
  private linesRead = 0;
  private readonly writer: BatchWriter;
  private readonly startLoaded: number;
  private readonly startInvalid: number;

  constructor(
    private readonly input: LoadInput,
    progress: LoadProgress,
    private readonly outOfTime: () => boolean,
  ) {
    this.progress = progress;
    this.writer = new BatchWriter(input.tableName);
    this.startLoaded = progress.loaded;
    this.startInvalid = progress.invalid;
  }

  async run(): Promise<LoadResult> {
    try {
      return await this.load();
    } catch (error) {
      await this.writer.settle();
      throw error;
    }
  }

  private async load(): Promise<LoadResult> {
    const { current } = this.progress;
    if (current !== undefined) {
      const stopped = await this.readObject({ key: current.key, etag: current.etag }, current.offset, current.line);
      if (stopped !== undefined) return this.pause(current.key, current.etag, stopped);
    }
    let listed = 0;
    for await (const object of outputObjects(this.input, this.progress.after)) {
      listed += 1;
      if (this.linesRead > 0 && this.outOfTime()) return this.pause(object.key, object.etag, { offset: 0, line: 0 });
      const stopped = await this.readObject(object, 0, 0);
      if (stopped !== undefined) return this.pause(object.key, object.etag, stopped);
    }
    if (listed === 0 && current === undefined && this.progress.after === undefined) {
      throw new PrecomputedInputError(`outputPrefix: no transform output (.out objects) under ${this.input.outputPrefix}`, 'outputPrefix');
    }
    await this.writer.flush();
    return this.result(undefined);
  }

  /** Reads one object from `offset` (after line `line`); returns where it stopped, or undefined at its end. */
  private async readObject(object: OutputObject, offset: number, line: number): Promise<StoppedAt | undefined> {
    let response;
    try {
      response = await s3.send(new GetObjectCommand({ Bucket: this.input.bucket, Key: object.key, ...(object.etag === '' ? {} : { IfMatch: object.etag }), ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }));
    } catch (error) {
      const name = (error as { name?: string }).name;
      // Resumed exactly at the end of the object: nothing is left of it.
      if (name === 'InvalidRange' && offset > 0) return this.finishObject(object.key);
      if (name === 'PreconditionFailed') throw new PrecomputedInputError(`continuation: ${object.key} changed while it was being loaded; start the load again`, 'continuation');
      if (name === 'NoSuchKey') throw new PrecomputedInputError(`continuation: ${object.key} is gone; start the load again`, 'continuation');
      throw error;
    }
    const computedAt = this.input.computedAt ?? response.LastModified?.getTime() ?? object.lastModified?.getTime() ?? Date.now();
    const body = response.Body as unknown as AsyncIterable<Uint8Array> | undefined;
    let lineNumber = line;
    if (body !== undefined) {
      for await (const split of splitLines(body, offset)) {
        // Stop only at a batch boundary, so the continuation's offset has everything before it written.
        if (this.linesRead > 0 && this.writer.isEmpty && this.outOfTime()) {
          await this.writer.flush();
          return { offset: split.start, line: lineNumber };
        }
        lineNumber += 1;
        this.linesRead += 1;
        await this.take(object.key, lineNumber, split.bytes, computedAt);
      }
    }
    return this.finishObject(object.key);
  }

  private async take(objectKey: string, lineNumber: number, bytes: Uint8Array | undefined, computedAt: number): Promise<void> {
    if (bytes === undefined) return this.reject(objectKey, lineNumber, 'is longer than 1 MiB');
    const text = decodeLine(bytes);
    if (text === undefined) return this.reject(objectKey, lineNumber, 'is not valid UTF-8');
    // A blank line (the newline after the last record) holds no record.
    if (text.trim().length === 0) return;
    const csv = this.input.format === 'csv';
    const parsed = csv ? parseJoinedCsvLine(text, this.input.idColumn ?? 0) : parseJoinedLine(text, this.input.locator);
    if (!parsed.ok) return this.reject(objectKey, lineNumber, parsed.reason);
    let key: string;
    try {
      key = precomputedKey(this.input.model, this.input.featureGroup, parsed.recordId);
    } catch (error) {
      return this.reject(objectKey, lineNumber, (error as Error).message);
    }
    const item = toPrecomputedItem(key, { body: parsed.body, contentType: csv ? PRECOMPUTED_CSV_CONTENT_TYPE : PRECOMPUTED_CONTENT_TYPE, modelVersion: this.input.modelVersion, computedAt }, this.input.ttlSeconds);
    await this.writer.add(key, item);
  }

  private reject(object: string, line: number, reason: string): void {
    const before = this.progress.invalidLines.length;
    const invalidLines = withInvalidSample(this.progress.invalidLines, { object, line, reason });
    if (invalidLines.length > before) logger.warn('invalid line', { object, line, reason });
    this.progress = { ...this.progress, invalid: this.progress.invalid + 1, invalidLines };
  }

  private async finishObject(key: string): Promise<undefined> {
    // The object counts once its lines are written: a continuation never skips a line.
    await this.writer.flush();
    const { current: _current, ...rest } = this.progress;
    this.progress = { ...rest, after: key, objects: this.progress.objects + 1 };
    return undefined;
  }

  private async pause(key: string, etag: string, stopped: StoppedAt): Promise<LoadResult> {
    await this.writer.flush();
    this.progress = { ...this.progress, current: { key, etag, offset: stopped.offset, line: stopped.line } };
    return this.result(encodeContinuation(this.input.outputPrefix, this.withWritten()));
  }

  private withWritten(): LoadProgress {
    return { ...this.progress, loaded: this.startLoaded + this.writer.written };
  }

  private result(continuation: string | undefined): LoadResult {
    const progress = this.withWritten();
    this.publishMetrics(progress);
    return { loaded: progress.loaded, invalid: progress.invalid, objects: progress.objects, invalidLines: progress.invalidLines, done: continuation === undefined, continuation: continuation ?? null };
  }

  private publishMetrics(progress: LoadProgress): void {
    try {
      metrics.addDimension('Model', this.input.model);
      metrics.addMetric('PrecomputedPredictionsLoaded', MetricUnit.Count, progress.loaded - this.startLoaded);
      metrics.addMetric('PrecomputedPredictionsInvalid', MetricUnit.Count, progress.invalid - this.startInvalid);
      metrics.publishStoredMetrics();
    } catch {
      // Metrics must never fail the load.
    }
  }
}

export async function handler(event: unknown, context?: Context): Promise<LoadResult> {
  if (context !== undefined) logger.addContext(context);
  let input: LoadInput;
  let progress: LoadProgress;
  try {
    input = parseLoadInput(event);
    progress = input.continuation === undefined ? EMPTY_PROGRESS : decodeContinuation(input.continuation, input.outputPrefix);
  } catch (error) {
    logger.error('bad load input', { error: (error as Error).message });
    throw error;
  }
  const outOfTime = context === undefined ? () => false : () => context.getRemainingTimeInMillis() < STOP_BEFORE_DEADLINE_MS;
  const started = Date.now();
  const where = { model: input.model, featureGroup: input.featureGroup, outputPrefix: input.outputPrefix, tableName: input.tableName };
  try {
    const result = await new Load(input, progress, outOfTime).run();
    logger.info(result.done ? 'precomputed predictions loaded' : 'stopping before the deadline; call again with the continuation', {
      ...where,
      loaded: result.loaded,
      invalid: result.invalid,
      objects: result.objects,
      durationMs: Date.now() - started,
    });
    return result;
  } catch (error) {
    logger.error('load failed', { ...where, error: (error as Error).message, errorName: (error as Error).name });
    throw error;
  }
}
