// The pure parts of the validate-data function (lambda/validate-data): its input, which objects of a
// prefix are data, where it writes (quarantine parts, its state between calls, the report), the
// continuation token, the run's progress and the report document. The checks themselves are in
// ./data-validation. Nothing here talks to AWS.
import * as z from './zod';
import { formatIssues } from './errors';
import { DATA_FORMATS, type ColumnStats, type Constraints, type DataFormat, type QuarantinedLine, type ValidationOutcome, type ValidatorState, type Violation } from './data-validation';

/** Quarantined lines reported in the report's sample (all of them are in the quarantine objects). */
export const MAX_QUARANTINE_SAMPLES = 10;

/** Violations the function returns (the report has all of them). */
export const MAX_RETURNED_VIOLATIONS = 10;

/** Records a micro-batch may hold (the Step Functions payload is 256 KB anyway). */
export const MAX_INPUT_RECORDS = 10_000;

/** Bad input, unreadable constraints, no data: retrying will not help. `field` names the input field. */
export class DataValidationInputError extends Error {
  override readonly name = 'DataValidationInputError';

  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------------
// S3 locations
// ---------------------------------------------------------------------------------------------------

const BUCKET = '[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]';
const PREFIX_URI = new RegExp(`^s3://(${BUCKET})/((?:.*/)?)$`);
const OBJECT_URI = new RegExp(`^s3://(${BUCKET})/(.*[^/])$`);

export interface S3Location {
  readonly bucket: string;
  /** A key, or a prefix ending in `/` (empty for the whole bucket). */
  readonly key: string;
}

export const s3Uri = (location: S3Location): string => `s3://${location.bucket}/${location.key}`;

/** Whether a key under the dataset prefix is data: not a folder marker, no path segment starting with `_` or `.` (`_SUCCESS`, `_temporary/`, `.crc`), not under an excluded prefix. */
export function isDatasetObject(key: string, prefix: string, excluded: readonly string[] = []): boolean {
  if (!key.startsWith(prefix) || key.endsWith('/') || key.length === prefix.length) return false;
  if (excluded.some((other) => key.startsWith(other))) return false;
  return key
    .slice(prefix.length)
    .split('/')
    .every((segment) => !segment.startsWith('_') && !segment.startsWith('.'));
}

/** Where a run writes, under the report prefix. */
export const reportKey = (reportPrefix: string): string => `${reportPrefix}report.json`;
export const quarantinePrefix = (reportPrefix: string): string => `${reportPrefix}quarantine/`;
export const quarantinePartKey = (reportPrefix: string, part: number): string => `${quarantinePrefix(reportPrefix)}part-${String(part).padStart(5, '0')}.jsonl`;
/** The run's state after `call` calls: one object per call, so a retried call still finds the state it started from. */
export const stateKey = (reportPrefix: string, runId: string, call: number): string => `${reportPrefix}_state/${runId}/${String(call).padStart(5, '0')}.json`;

// ---------------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------------

const prefixUri = (what: string) => z.string({ error: `is required (${what})` }).check(z.regex(PREFIX_URI, 'must be s3://<bucket>/<prefix>/ (ending in /)'));

const InputSchema = z.strictObject(
  {
    datasetUri: z.optional(prefixUri('s3://bucket/prefix/ of the dataset')),
    records: z.optional(
      z
        .array(z.record(z.string(), z.unknown()), { error: 'must be an array of JSON objects (column -> value)' })
        .check(z.minLength(1, 'must hold at least one record'), z.maxLength(MAX_INPUT_RECORDS, `must hold at most ${MAX_INPUT_RECORDS} records`)),
    ),
    format: z.optional(z.enum(DATA_FORMATS, { error: `must be one of ${DATA_FORMATS.join(', ')}` })),
    constraintsUri: z.string({ error: 'is required (s3://bucket/key.json of the constraints document)' }).check(z.regex(OBJECT_URI, 'must be s3://<bucket>/<key>')),
    constraintsVersionId: z.optional(z.string({ error: 'must be a string' }).check(z.minLength(1, 'must be a non-empty string'))),
    reportUri: prefixUri('s3://bucket/prefix/ to write the report and the quarantine to'),
    kmsKeyId: z.optional(z.string({ error: 'must be a string' }).check(z.minLength(1, 'must be a non-empty string'))),
    continuation: z.optional(z.nullable(z.string({ error: 'must be the continuation a previous call returned' }))),
  },
  { error: 'must be an object with datasetUri (or records), format, constraintsUri and reportUri' },
);

/** The input of the validate-data function, checked. */
export interface ValidateInput {
  /** The dataset under a prefix, or undefined for a micro-batch of `records`. */
  readonly dataset?: S3Location & { readonly uri: string; readonly format: DataFormat };
  readonly records?: ReadonlyArray<Readonly<Record<string, unknown>>>;
  readonly constraints: S3Location & { readonly uri: string; readonly versionId?: string };
  readonly report: S3Location & { readonly uri: string };
  readonly kmsKeyId?: string;
  readonly continuation?: string;
}

const location = (uri: string, pattern: RegExp): S3Location => {
  const match = pattern.exec(uri) as RegExpExecArray;
  return { bucket: match[1]!, key: match[2]! };
};

/** Validates the function's event; throws {@link DataValidationInputError} naming the bad field. */
export function parseValidateInput(event: unknown): ValidateInput {
  const result = InputSchema.safeParse(event);
  if (!result.success) {
    const first = result.error.issues[0];
    const field = first === undefined || first.path.length === 0 ? (first?.code === 'unrecognized_keys' ? first.keys[0] ?? 'input' : 'input') : String(first.path[0]);
    throw new DataValidationInputError(formatIssues(result.error.issues, 'input'), field);
  }
  const data = result.data;
  if ((data.datasetUri === undefined) === (data.records === undefined)) {
    throw new DataValidationInputError('datasetUri: give either datasetUri (a dataset under an S3 prefix) or records (a micro-batch), not both or neither', 'datasetUri');
  }
  if (data.datasetUri !== undefined && data.format === undefined) throw new DataValidationInputError(`format: is required with datasetUri (one of ${DATA_FORMATS.join(', ')})`, 'format');
  if (data.datasetUri !== undefined && data.datasetUri === data.reportUri) {
    throw new DataValidationInputError('reportUri: must not be the dataset prefix itself (give a prefix of its own, e.g. <datasetUri>validation/)', 'reportUri');
  }
  const hasContinuation = data.continuation !== undefined && data.continuation !== null;
  if (data.records !== undefined && hasContinuation) throw new DataValidationInputError('continuation: a micro-batch of records is validated in one call', 'continuation');
  return {
    ...(data.datasetUri === undefined ? {} : { dataset: { ...location(data.datasetUri, PREFIX_URI), uri: data.datasetUri, format: data.format! } }),
    ...(data.records === undefined ? {} : { records: data.records }),
    constraints: { ...location(data.constraintsUri, OBJECT_URI), uri: data.constraintsUri, ...(data.constraintsVersionId === undefined ? {} : { versionId: data.constraintsVersionId }) },
    report: { ...location(data.reportUri, PREFIX_URI), uri: data.reportUri },
    ...(data.kmsKeyId === undefined ? {} : { kmsKeyId: data.kmsKeyId }),
    ...(hasContinuation ? { continuation: data.continuation! } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// The run's progress, kept in S3 between calls, and the continuation token that points at it
// ---------------------------------------------------------------------------------------------------

/** The constraints a run is judged by: read once, pinned by version id (versioned bucket) or ETag. */
export interface PinnedConstraints {
  readonly uri: string;
  readonly versionId: string | null;
  readonly etag: string;
}

/** A quarantined line as the report samples it (without its text, which may be long). */
export type QuarantineSample = Omit<QuarantinedLine, 'text'>;

/** Where a run stands after a call. */
export interface RunProgress {
  readonly runId: string;
  /** Calls finished. */
  readonly call: number;
  readonly datasetUri: string;
  readonly reportUri: string;
  readonly format: DataFormat;
  readonly constraints: PinnedConstraints;
  readonly startedAt: string;
  /** Dataset objects read to their end. */
  readonly objects: number;
  /** The last object read to its end; the next listing starts after it. */
  readonly after?: string;
  /** The object the previous call stopped inside: its ETag, the byte offset of the next record, the number of the last line read and (CSV) its header. */
  readonly current?: {
    readonly key: string;
    readonly etag: string;
    readonly offset: number;
    readonly line: number;
    readonly header?: { readonly columns: readonly string[] } | { readonly problem: string };
  };
  /** Quarantine parts written (s3:// URIs), and the first quarantined lines. */
  readonly quarantine: { readonly parts: readonly string[]; readonly sample: readonly QuarantineSample[] };
  readonly validator: ValidatorState;
}

const count = z.number().check(z.int(), z.nonnegative());
const ReasonSchema = z.object({ kind: z.string(), column: z.optional(z.string()), message: z.string() });

const ProgressSchema = z.object({
  v: z.literal(1),
  runId: z.string(),
  call: count,
  datasetUri: z.string(),
  reportUri: z.string(),
  format: z.enum(DATA_FORMATS),
  constraints: z.object({ uri: z.string(), versionId: z.nullable(z.string()), etag: z.string() }),
  startedAt: z.string(),
  objects: count,
  after: z.optional(z.string()),
  current: z.optional(
    z.object({
      key: z.string(),
      etag: z.string(),
      offset: count,
      line: count,
      header: z.optional(z.union([z.object({ columns: z.array(z.string()) }), z.object({ problem: z.string() })])),
    }),
  ),
  quarantine: z.object({
    parts: z.array(z.string()),
    sample: z.array(z.object({ object: z.string(), line: count, reasons: z.array(ReasonSchema) })).check(z.maxLength(MAX_QUARANTINE_SAMPLES)),
  }),
  // Checked in full by DataValidator.fromState against the constraints.
  validator: z.unknown(),
});

export function encodeProgress(progress: RunProgress): string {
  return JSON.stringify({ v: 1, ...progress });
}

/** Reads a state object; throws {@link DataValidationInputError} (field `continuation`) when it is not one of this run. */
export function decodeProgress(text: string, input: ValidateInput): RunProgress {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new DataValidationInputError('continuation: its state object is not valid JSON; start the validation again', 'continuation');
  }
  const result = ProgressSchema.safeParse(json);
  if (!result.success) throw new DataValidationInputError('continuation: its state object is not one this function wrote; start the validation again', 'continuation');
  const { v: _version, ...progress } = result.data;
  if (progress.datasetUri !== input.dataset?.uri || progress.reportUri !== input.report.uri) {
    throw new DataValidationInputError(`continuation: was returned for ${progress.datasetUri} reported to ${progress.reportUri}, not ${input.dataset?.uri} to ${input.report.uri}`, 'continuation');
  }
  if (progress.constraints.uri !== input.constraints.uri) throw new DataValidationInputError(`continuation: was returned for the constraints ${progress.constraints.uri}, not ${input.constraints.uri}`, 'constraintsUri');
  return progress as RunProgress;
}

/** What the continuation token holds: where the run's state is (under the report prefix) and its ETag. */
export interface ContinuationToken {
  readonly runId: string;
  readonly call: number;
  readonly etag: string;
}

const TokenSchema = z.strictObject({ v: z.literal(1), runId: z.string().check(z.regex(/^[A-Za-z0-9-]{1,64}$/)), call: count.check(z.minimum(1)), etag: z.string() });

export function encodeContinuation(token: ContinuationToken): string {
  return Buffer.from(JSON.stringify({ v: 1, ...token }), 'utf8').toString('base64url');
}

/** Reads a continuation token; throws {@link DataValidationInputError} when it is not one this function returned. */
export function decodeContinuation(text: string): ContinuationToken {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    json = undefined;
  }
  const result = TokenSchema.safeParse(json);
  if (!result.success) throw new DataValidationInputError('continuation: is not a continuation this function returned', 'continuation');
  const { v: _version, ...token } = result.data;
  return token;
}

/** Adds a quarantined line to the sample while there is room. */
export function withQuarantineSample(sample: readonly QuarantineSample[], line: QuarantineSample): readonly QuarantineSample[] {
  return sample.length >= MAX_QUARANTINE_SAMPLES ? sample : [...sample, { object: line.object, line: line.line, reasons: line.reasons }];
}

// ---------------------------------------------------------------------------------------------------
// The report
// ---------------------------------------------------------------------------------------------------

/** The report a run writes to `<reportUri>report.json` when it is done. */
export interface ValidationReport {
  /** The report format. */
  readonly version: 1;
  readonly status: ValidationOutcome['status'];
  /** The dataset under its prefix, or the micro-batch's record count. */
  readonly dataset: { readonly uri: string; readonly format: DataFormat; readonly objects: number } | { readonly records: number };
  /** Which constraints judged the data: their location, S3 version id (null in an unversioned bucket) and ETag, and their own metadata. */
  readonly constraints: PinnedConstraints & { readonly formatVersion: number; readonly datasetVersion: string | null; readonly description: string | null };
  readonly startedAt: string;
  readonly finishedAt: string;
  /** Function calls the run took. */
  readonly calls: number;
  readonly rows: number;
  readonly valid: number;
  readonly quarantined: number;
  readonly malformed: number;
  readonly violations: readonly Violation[];
  readonly columns: readonly ColumnStats[];
  readonly quarantine: { readonly prefix: string; readonly objects: readonly string[]; readonly sample: readonly QuarantineSample[] };
}

export function buildReport(parts: {
  readonly outcome: ValidationOutcome;
  readonly constraints: Constraints;
  readonly pinned: PinnedConstraints;
  readonly dataset: ValidationReport['dataset'];
  readonly reportUri: string;
  readonly quarantine: RunProgress['quarantine'];
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly calls: number;
}): ValidationReport {
  const { outcome, constraints, pinned } = parts;
  return {
    version: 1,
    status: outcome.status,
    dataset: parts.dataset,
    constraints: {
      ...pinned,
      formatVersion: constraints.version,
      datasetVersion: constraints.datasetVersion ?? null,
      description: constraints.description ?? null,
    },
    startedAt: parts.startedAt,
    finishedAt: parts.finishedAt,
    calls: parts.calls,
    rows: outcome.rows,
    valid: outcome.valid,
    quarantined: outcome.quarantined,
    malformed: outcome.malformed,
    violations: outcome.violations,
    columns: outcome.columns,
    quarantine: {
      prefix: `${parts.reportUri}quarantine/`,
      objects: parts.quarantine.parts,
      sample: parts.quarantine.sample,
    },
  };
}
