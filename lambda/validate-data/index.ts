// Data validation before training: checks a dataset (every object under an S3 prefix, CSV with a header
// line or JSON Lines) or a micro-batch of records against a constraints document
// (lambda/shared/data-validation.ts ConstraintsSchema, made by `npm run suggest-constraints`), and says
// whether it passes.
//
// It lists the objects under the dataset prefix in key order (skipping folder markers, any path segment
// that starts with `_` or `.` such as `_SUCCESS`, the report prefix when it is nested in the dataset and
// the constraints object), streams each one record by record (never more than one record and one
// quarantine part in memory) and checks every row. A row with a value of the wrong type, out of range,
// of an unknown category or missing where the column is required, and a line that is no row (not JSON,
// wrong number of CSV fields, not UTF-8, over 1 MiB), is QUARANTINED: written, with its object key, line
// number and reasons, to `<reportUri>quarantine/part-NNNNN.jsonl` (JSON Lines), never dropped. When
// everything is read it judges the dataset-level constraints (completeness, distribution against the
// baseline, minimum valid rows, maximum quarantined fraction, required CSV header columns, undeclared
// columns) and writes `<reportUri>report.json` (lambda/shared/data-validation-run.ts ValidationReport):
// the constraints' URI, S3 VersionId and ETag, the counts, per-column statistics, every violation and
// the quarantine objects. Everything it writes is KMS-encrypted: with `kmsKeyId` (SSE-KMS), else by
// the bucket's default encryption.
//
// A minute before the function's deadline (Context.getRemainingTimeInMillis) it stops between records,
// writes the quarantined rows it holds, saves the run's state (the validator's running totals, which
// grow with the columns and baseline bins, never the rows, and where it stopped) to
// `<reportUri>_state/<runId>/<call>.json` and returns a continuation: the workflow calls it again with
// the same input and that continuation until `done`. The state lives in S3, not in the token, so the
// Step Functions payload stays under 1 KB whatever the constraints; one object per call, so a retried
// call finds the state it started from. The constraints are read on the first call and pinned: by
// VersionId in a versioned bucket (a new version does not change a run under way), else by ETag (a change
// fails the run); a dataset object changing while it is being read fails the run too.
//
// Input:  { datasetUri: "s3://bucket/prefix/", format: "csv" | "jsonl",
//           constraintsUri: "s3://bucket/key.json", constraintsVersionId?,
//           reportUri: "s3://bucket/prefix/validation/", kmsKeyId?, continuation? }
//     or  { records: [{ column: value, ... }, ...] (a micro-batch, at most 10 000, validated in one call),
//           constraintsUri, constraintsVersionId?, reportUri, kmsKeyId? }
// Output: { status: "passed" | "failed" | "in-progress", rows, valid, quarantined, objects,
//           violations: [{ constraint, column, observed, expected, message }], violationCount,
//           reportUri: string | null, done, continuation: string | null }
//         Counts are for the whole run so far (rows = valid + quarantined, malformed lines included).
//         While done is false: status "in-progress", violations [], reportUri null; pass continuation
//         back. Once done: the status, the first 10 violations (violationCount in all; every one is in
//         the report), reportUri the report written ("s3://bucket/prefix/validation/report.json"),
//         continuation null. `constraint` is one of required-column, undeclared-column, completeness,
//         distribution, min-rows, quarantined-fraction; `column` is null for the dataset-wide ones.
// Errors (the `error` Step Functions sees):
//   DataValidationInputError  bad input, constraints that cannot be read (missing, access denied, not JSON,
//                             not a valid document), no data object under the prefix, a continuation that is
//                             not this run's, or an object or the constraints changed between calls: not retried
//   anything else             S3 unavailable, throttled or failing: the SDK's own error after its retries
//                             (its name, e.g. `Error` for a dropped connection, `SlowDown`, `InternalError`).
//                             Retry the call with the same input (a retrier for DataValidationInputError with
//                             MaxAttempts 0, then one for States.ALL): it starts again from the same state and
//                             rewrites the same quarantine parts, so a retry is harmless
// A failed validation is not an error: it returns status "failed" (a Choice state routes on it).
// Quarantine parts and the report are overwritten by a new run with the same reportUri; a part not listed
// in the report is left from a failed attempt. Compressed objects are not read (their lines are malformed).
//
// Permissions: s3:ListBucket on the dataset bucket (the prefix); s3:GetObject on the dataset prefix, the
// constraints (and s3:GetObjectVersion when they are versioned) and the report prefix (its _state/); s3:PutObject
// on the report prefix (and s3:PutObjectTagging with STATE_OBJECT_TAG); with a KMS key, kms:GenerateDataKey and
// kms:Decrypt on it. Give the function a timeout of several minutes (it stops a minute before it) and memory for a
// quarantine part (4 MiB) and the constraints.
// Environment: POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE (EMF: RecordsValidated and
// RecordsQuarantined per call, ValidationViolations when done); STATE_OBJECT_TAG (optional `key=value`, the tag of
// the resume-state objects, which a lifecycle rule can expire); AWS_ENDPOINT_URL_S3, AWS_MAX_ATTEMPTS, AWS_REGION:
// read by the SDK itself.
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import {
  ConstraintsError,
  csvRecordIsOpen,
  DataValidator,
  parseConstraintsText,
  parseCsvHeader,
  parseCsvRecord,
  parseJsonRecord,
  quarantineLine,
  ValidatorStateError,
  type Constraints,
  type CsvHeader,
  type DataLine,
  type QuarantineReason,
  type Violation,
} from '../shared/data-validation';
import {
  buildReport,
  DataValidationInputError,
  decodeContinuation,
  decodeProgress,
  encodeContinuation,
  encodeProgress,
  isDatasetObject,
  MAX_RETURNED_VIOLATIONS,
  parseValidateInput,
  quarantinePartKey,
  reportKey,
  s3Uri,
  stateKey,
  withQuarantineSample,
  type PinnedConstraints,
  type QuarantineSample,
  type RunProgress,
  type ValidateInput,
} from '../shared/data-validation-run';
import { decodeLine, MAX_LINE_BYTES, splitLines } from '../shared/precomputed-load';

export { DataValidationInputError } from '../shared/data-validation-run';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'data-validation';
/**
 * STATE_OBJECT_TAG (optional, `key=value`): the tag each resume-state object is written with, so that a lifecycle
 * rule of the report bucket can expire them once no run can resume from them any more.
 */
const STATE_OBJECT_TAG = process.env.STATE_OBJECT_TAG;

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
const s3 = new S3Client({});

/** Stop reading when the function has less than this left: enough to write a quarantine part, the state and the report. */
const STOP_BEFORE_DEADLINE_MS = 60_000;

/** A quarantine part is written once it holds this much. */
const MAX_PART_BYTES = 4 * 1024 * 1024;

/** The `object` of a micro-batch's quarantined records. */
const RECORDS_OBJECT = 'records';

export interface ValidateResult {
  /** "in-progress" until done. */
  readonly status: 'passed' | 'failed' | 'in-progress';
  readonly rows: number;
  readonly valid: number;
  readonly quarantined: number;
  /** Dataset objects read to their end. */
  readonly objects: number;
  /** The first MAX_RETURNED_VIOLATIONS violations (all of them are in the report); [] until done. */
  readonly violations: readonly Violation[];
  readonly violationCount: number;
  /** The report's URI once it is written; null until done. */
  readonly reportUri: string | null;
  readonly done: boolean;
  /** Pass it back as `continuation` to go on; null when done. */
  readonly continuation: string | null;
}

const errorName = (error: unknown): string | undefined => (error as { name?: string } | null)?.name;

/** A dataset object of the listing. */
interface DataObject {
  readonly key: string;
  readonly etag: string;
}

/** Where reading stopped inside an object: the next record's first byte, the last line read and the object's header. */
interface StoppedAt {
  readonly offset: number;
  readonly line: number;
  readonly header?: CsvHeader;
}

/** A CSV record whose quoted field goes on on the next line. */
interface OpenRecord {
  line: number;
  text: string;
}

class Validation {
  private validator!: DataValidator;
  private constraints!: Constraints;
  private pinned!: PinnedConstraints;
  private progress: RunProgress | undefined;
  private parts: string[] = [];
  private sample: readonly QuarantineSample[] = [];
  private buffer: string[] = [];
  private bufferBytes = 0;
  /** Physical lines taken in this call: it always reads some before it may stop, so every call makes progress. */
  private linesRead = 0;
  private startRows = 0;
  private startQuarantined = 0;
  private readonly encryption: { ServerSideEncryption?: 'aws:kms'; SSEKMSKeyId?: string };

  constructor(
    private readonly input: ValidateInput,
    private readonly outOfTime: () => boolean,
  ) {
    this.encryption = input.kmsKeyId === undefined ? {} : { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: input.kmsKeyId };
  }

  async run(): Promise<ValidateResult> {
    const { input } = this;
    if (input.continuation !== undefined) {
      const token = decodeContinuation(input.continuation);
      const progress = await this.readState(token.runId, token.call, token.etag);
      await this.readConstraints(progress.constraints);
      try {
        this.validator = DataValidator.fromState(this.constraints, progress.validator);
      } catch (error) {
        if (error instanceof ValidatorStateError) throw new DataValidationInputError(`continuation: ${error.message}; start the validation again`, 'continuation');
        throw error;
      }
      this.progress = progress;
      this.parts = [...progress.quarantine.parts];
      this.sample = progress.quarantine.sample;
    } else {
      await this.readConstraints(undefined);
      this.validator = new DataValidator(this.constraints);
    }
    this.startRows = this.validator.rows;
    this.startQuarantined = this.validator.quarantined;
    if (input.records !== undefined) {
      for (const [index, record] of input.records.entries()) await this.take(RECORDS_OBJECT, { line: index + 1, text: JSON.stringify(record), row: record });
      return this.finish({ records: input.records.length }, new Date().toISOString(), 1);
    }
    const dataset = input.dataset!;
    this.progress ??= {
      runId: randomUUID(),
      call: 0,
      datasetUri: dataset.uri,
      reportUri: input.report.uri,
      format: dataset.format,
      constraints: this.pinned,
      startedAt: new Date().toISOString(),
      objects: 0,
      quarantine: { parts: [], sample: [] },
      validator: this.validator.toState(),
    };
    return this.stream();
  }

  // ---- constraints and state ---------------------------------------------------------------------

  /** Reads the constraints, pinned to what the run started with (by version id, or by ETag). */
  private async readConstraints(pin: PinnedConstraints | undefined): Promise<void> {
    const { constraints: where } = this.input;
    const versionId = pin === undefined ? where.versionId : (pin.versionId ?? undefined);
    let response;
    try {
      response = await s3.send(
        new GetObjectCommand({
          Bucket: where.bucket,
          Key: where.key,
          ...(versionId === undefined ? {} : { VersionId: versionId }),
          ...(pin !== undefined && pin.versionId === null && pin.etag !== '' ? { IfMatch: pin.etag } : {}),
        }),
      );
    } catch (error) {
      const name = errorName(error);
      if (name === 'PreconditionFailed') throw new DataValidationInputError(`constraintsUri: ${where.uri} changed during the validation; start it again`, 'constraintsUri');
      if (name === 'NoSuchKey' || name === 'NoSuchBucket' || name === 'NoSuchVersion' || name === 'AccessDenied' || name === 'InvalidArgument') {
        throw new DataValidationInputError(`constraintsUri: cannot read ${where.uri}${versionId === undefined ? '' : ` version ${versionId}`} (${name})`, 'constraintsUri');
      }
      throw error;
    }
    const text = (await response.Body?.transformToString('utf-8')) ?? '';
    try {
      this.constraints = parseConstraintsText(text);
    } catch (error) {
      if (error instanceof ConstraintsError) throw new DataValidationInputError(`constraintsUri: ${where.uri} is not a valid constraints document: ${error.message}`, 'constraintsUri');
      throw error;
    }
    this.pinned = { uri: where.uri, versionId: response.VersionId ?? null, etag: response.ETag ?? '' };
    if (pin !== undefined && pin.etag !== '' && this.pinned.etag !== pin.etag) {
      throw new DataValidationInputError(`constraintsUri: ${where.uri} changed during the validation; start it again`, 'constraintsUri');
    }
  }

  private async readState(runId: string, call: number, etag: string): Promise<RunProgress> {
    const { report } = this.input;
    const key = stateKey(report.key, runId, call);
    let response;
    try {
      response = await s3.send(new GetObjectCommand({ Bucket: report.bucket, Key: key, IfMatch: etag }));
    } catch (error) {
      const name = errorName(error);
      if (name === 'NoSuchKey' || name === 'NoSuchBucket' || name === 'PreconditionFailed') {
        throw new DataValidationInputError(`continuation: the run's state s3://${report.bucket}/${key} is ${name === 'PreconditionFailed' ? 'not the one this continuation saved' : 'gone'}; start the validation again`, 'continuation');
      }
      throw error;
    }
    return decodeProgress((await response.Body?.transformToString('utf-8')) ?? '', this.input);
  }

  private async put(key: string, body: string, contentType: string, tagging?: string): Promise<string> {
    const output = await s3.send(new PutObjectCommand({ Bucket: this.input.report.bucket, Key: key, Body: body, ContentType: contentType, ...this.encryption, ...(tagging === undefined ? {} : { Tagging: tagging }) }));
    return output.ETag ?? '';
  }

  // ---- reading the dataset -----------------------------------------------------------------------

  private async stream(): Promise<ValidateResult> {
    const progress = this.progress!;
    const { current } = progress;
    if (current !== undefined) {
      const stopped = await this.readObject({ key: current.key, etag: current.etag }, current.offset, current.line, current.header);
      if (stopped !== undefined) return this.pause({ key: current.key, etag: current.etag }, stopped);
    }
    for await (const object of this.dataObjects(this.progress!.after)) {
      if (this.linesRead > 0 && this.outOfTime()) return this.pause(object, { offset: 0, line: 0 });
      const stopped = await this.readObject(object, 0, 0, undefined);
      if (stopped !== undefined) return this.pause(object, stopped);
    }
    if (this.progress!.objects === 0) {
      throw new DataValidationInputError(`datasetUri: no data objects under ${this.input.dataset!.uri} (folder markers and names starting with _ or . are skipped)`, 'datasetUri');
    }
    return this.finish({ uri: progress.datasetUri, format: progress.format, objects: this.progress!.objects }, progress.startedAt, progress.call + 1);
  }

  /** The dataset's data objects in key order, after `startAfter`. */
  private async *dataObjects(startAfter: string | undefined): AsyncGenerator<DataObject> {
    const dataset = this.input.dataset!;
    const { report, constraints } = this.input;
    const excluded = report.bucket === dataset.bucket ? [report.key] : [];
    let continuationToken: string | undefined;
    do {
      let page;
      try {
        page = await s3.send(
          new ListObjectsV2Command({
            Bucket: dataset.bucket,
            Prefix: dataset.key,
            ...(continuationToken === undefined ? (startAfter === undefined ? {} : { StartAfter: startAfter }) : { ContinuationToken: continuationToken }),
          }),
        );
      } catch (error) {
        if (errorName(error) === 'NoSuchBucket') throw new DataValidationInputError(`datasetUri: no bucket '${dataset.bucket}'`, 'datasetUri');
        throw error;
      }
      for (const object of page.Contents ?? []) {
        const key = object.Key;
        if (key === undefined || !isDatasetObject(key, dataset.key, excluded)) continue;
        if (constraints.bucket === dataset.bucket && key === constraints.key) continue;
        yield { key, etag: object.ETag ?? '' };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken !== undefined);
  }

  /** Reads one object from `offset` (after line `line`); returns where it stopped, or undefined at its end. */
  private async readObject(object: DataObject, offset: number, line: number, header: CsvHeader | undefined): Promise<StoppedAt | undefined> {
    const dataset = this.input.dataset!;
    let response;
    try {
      response = await s3.send(
        new GetObjectCommand({ Bucket: dataset.bucket, Key: object.key, ...(object.etag === '' ? {} : { IfMatch: object.etag }), ...(offset > 0 ? { Range: `bytes=${offset}-` } : {}) }),
      );
    } catch (error) {
      const name = errorName(error);
      // Resumed exactly at the end of the object: nothing is left of it.
      if (name === 'InvalidRange' && offset > 0) return this.finishObject(object.key);
      if (name === 'PreconditionFailed') throw new DataValidationInputError(`continuation: ${object.key} changed during the validation; start it again`, 'continuation');
      if (name === 'NoSuchKey') throw new DataValidationInputError(`continuation: ${object.key} is gone; start the validation again`, 'continuation');
      throw error;
    }
    const csv = dataset.format === 'csv';
    let lineNumber = line;
    let open: OpenRecord | undefined;
    const body = response.Body as unknown as AsyncIterable<Uint8Array> | undefined;
    if (body !== undefined) {
      for await (const split of splitLines(body, offset)) {
        // Stop only between records, so the continuation's offset starts one.
        if (open === undefined && this.linesRead > 0 && this.outOfTime()) {
          return { offset: split.start, line: lineNumber, ...(header === undefined ? {} : { header }) };
        }
        lineNumber += 1;
        this.linesRead += 1;
        let text: string | undefined;
        let problem: string | undefined;
        if (split.bytes === undefined) problem = `line ${lineNumber} is longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB`;
        else {
          text = decodeLine(split.bytes);
          if (text === undefined) problem = `line ${lineNumber} is not valid UTF-8`;
          else if (split.start === 0 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        }
        if (open !== undefined) {
          // A quoted field spans lines: this line goes on the open record.
          if (problem !== undefined || open.text.length + 1 + text!.length > MAX_LINE_BYTES) {
            await this.take(object.key, { line: open.line, text: open.text, malformed: `the record from line ${open.line} ${problem === undefined ? `is longer than ${MAX_LINE_BYTES / 1024 / 1024} MiB` : `is unreadable: ${problem}`}` });
            open = undefined;
            continue;
          }
          open.text = `${open.text}\n${text!}`;
          if (csvRecordIsOpen(open.text)) continue;
          const record = open;
          open = undefined;
          await this.take(object.key, parseCsvRecord(record.text, header!, record.line));
          continue;
        }
        if (text !== undefined && text.trim().length === 0) continue; // a blank line holds no record
        if (csv && header === undefined) {
          header = problem === undefined ? parseCsvHeader(text!, lineNumber) : { problem: `the CSV header (${problem})` };
          if ('columns' in header) this.validator.addHeader(header.columns);
          continue;
        }
        if (problem !== undefined) {
          await this.take(object.key, { line: lineNumber, text: text ?? '', malformed: problem });
        } else if (csv) {
          if (csvRecordIsOpen(text!)) open = { line: lineNumber, text: text! };
          else await this.take(object.key, parseCsvRecord(text!, header!, lineNumber));
        } else {
          await this.take(object.key, parseJsonRecord(text!, lineNumber));
        }
      }
    }
    if (open !== undefined) await this.take(object.key, parseCsvRecord(open.text, header!, open.line));
    return this.finishObject(object.key);
  }

  private finishObject(key: string): undefined {
    const { current: _current, ...rest } = this.progress!;
    this.progress = { ...rest, after: key, objects: rest.objects + 1 };
    return undefined;
  }

  // ---- rows and the quarantine -------------------------------------------------------------------

  /** Checks one record; a bad one goes to the quarantine. */
  private take(object: string, record: DataLine): Promise<void> | void {
    let reasons: QuarantineReason[];
    if (record.row !== undefined) {
      reasons = this.validator.add(record.row);
      if (reasons.length === 0) return;
    } else {
      this.validator.addMalformed();
      reasons = [{ kind: 'malformed', message: record.malformed ?? `line ${record.line} is no record` }];
    }
    const line = { object, line: record.line, reasons };
    const before = this.sample.length;
    this.sample = withQuarantineSample(this.sample, line);
    if (this.sample.length > before) logger.warn('quarantined', line);
    const text = quarantineLine({ ...line, text: record.text });
    this.buffer.push(text);
    this.bufferBytes += Buffer.byteLength(text);
    if (this.bufferBytes >= MAX_PART_BYTES) return this.flushQuarantine();
  }

  private async flushQuarantine(): Promise<void> {
    if (this.buffer.length === 0) return;
    const key = quarantinePartKey(this.input.report.key, this.parts.length);
    await this.put(key, this.buffer.join(''), 'application/x-ndjson');
    this.parts.push(s3Uri({ bucket: this.input.report.bucket, key }));
    this.buffer = [];
    this.bufferBytes = 0;
  }

  // ---- results -----------------------------------------------------------------------------------

  private async pause(object: DataObject, stopped: StoppedAt): Promise<ValidateResult> {
    await this.flushQuarantine();
    const previous = this.progress!;
    const progress: RunProgress = {
      ...previous,
      call: previous.call + 1,
      current: { key: object.key, etag: object.etag, offset: stopped.offset, line: stopped.line, ...(stopped.header === undefined ? {} : { header: stopped.header }) },
      quarantine: { parts: this.parts, sample: this.sample },
      validator: this.validator.toState(),
    };
    const etag = await this.put(stateKey(this.input.report.key, progress.runId, progress.call), encodeProgress(progress), 'application/json', STATE_OBJECT_TAG);
    this.publishMetrics(undefined);
    return {
      status: 'in-progress',
      rows: this.validator.rows,
      valid: this.validator.valid,
      quarantined: this.validator.quarantined,
      objects: progress.objects,
      violations: [],
      violationCount: 0,
      reportUri: null,
      done: false,
      continuation: encodeContinuation({ runId: progress.runId, call: progress.call, etag }),
    };
  }

  private async finish(dataset: Parameters<typeof buildReport>[0]['dataset'], startedAt: string, calls: number): Promise<ValidateResult> {
    await this.flushQuarantine();
    const outcome = this.validator.finish();
    const report = buildReport({
      outcome,
      constraints: this.constraints,
      pinned: this.pinned,
      dataset,
      reportUri: this.input.report.uri,
      quarantine: { parts: this.parts, sample: this.sample },
      startedAt,
      finishedAt: new Date().toISOString(),
      calls,
    });
    const key = reportKey(this.input.report.key);
    await this.put(key, `${JSON.stringify(report, null, 2)}\n`, 'application/json');
    this.publishMetrics(outcome.violations.length);
    return {
      status: outcome.status,
      rows: outcome.rows,
      valid: outcome.valid,
      quarantined: outcome.quarantined,
      objects: 'objects' in dataset ? dataset.objects : 0,
      violations: outcome.violations.slice(0, MAX_RETURNED_VIOLATIONS),
      violationCount: outcome.violations.length,
      reportUri: s3Uri({ bucket: this.input.report.bucket, key }),
      done: true,
      continuation: null,
    };
  }

  private publishMetrics(violations: number | undefined): void {
    try {
      metrics.addMetric('RecordsValidated', MetricUnit.Count, this.validator.rows - this.startRows);
      metrics.addMetric('RecordsQuarantined', MetricUnit.Count, this.validator.quarantined - this.startQuarantined);
      if (violations !== undefined) metrics.addMetric('ValidationViolations', MetricUnit.Count, violations);
      metrics.publishStoredMetrics();
    } catch {
      // Metrics must never fail the validation.
    }
  }
}

export async function handler(event: unknown, context?: Context): Promise<ValidateResult> {
  if (context !== undefined) logger.addContext(context);
  let input: ValidateInput;
  try {
    input = parseValidateInput(event);
  } catch (error) {
    logger.error('bad validation input', { error: (error as Error).message });
    throw error;
  }
  const outOfTime = context === undefined ? () => false : () => context.getRemainingTimeInMillis() < STOP_BEFORE_DEADLINE_MS;
  const started = Date.now();
  const where = { datasetUri: input.dataset?.uri ?? `${input.records?.length ?? 0} records`, constraintsUri: input.constraints.uri, reportUri: input.report.uri };
  try {
    const result = await new Validation(input, outOfTime).run();
    logger.info(result.done ? `validation ${result.status}` : 'stopping before the deadline; call again with the continuation', {
      ...where,
      status: result.status,
      rows: result.rows,
      valid: result.valid,
      quarantined: result.quarantined,
      objects: result.objects,
      violations: result.violationCount,
      durationMs: Date.now() - started,
    });
    return result;
  } catch (error) {
    logger.error('validation failed', { ...where, error: (error as Error).message, errorName: (error as Error).name });
    throw error;
  }
}
