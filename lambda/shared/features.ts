// Pure logic of the Feature Store pattern: the speed layer (lambda/ingest-features, Kinesis), the
// batch layer (lambda/ingest-features-batch, S3 chunks from a Step Functions Distributed Map) and
// online serving (lambda/get-features, and the inference API's request enrichment).
//
// Nothing in this module talks to AWS. Feature Store requests are built and answers read through
// structural types, and the lookups take the client as a minimal interface, so the handlers only
// wire the SDK, logging and metrics. The feature group definition itself (and the check of one
// record against it) lives in lib/features/feature-definition.ts, shared with the CDK construct.
import * as z from './zod';
import {
  checkFeatureGroupDefinition,
  FEATURE_TYPES,
  toFeatureStoreRecord,
  type FeatureGroupDefinition,
  type FeatureValue,
} from '../../lib/features/feature-definition';
import { ConfigError, firstIssueField, formatIssues, loadJsonSetting, readProperty, readString, RequestError, UpstreamError } from './errors';
import type { RequestEnricher } from './inference';

export type { FeatureGroupDefinition, FeatureValue } from '../../lib/features/feature-definition';

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/** Most record identifiers one BatchGetRecord call accepts; longer lists are split into several calls. */
export const MAX_BATCH_GET_IDENTIFIERS = 100;

/** Most ids one `POST /features/{featureGroup}/batch` request may ask for. */
export const MAX_LOOKUP_IDS = 100;

/** Most entries in one SQS SendMessageBatch call. */
export const MAX_SQS_BATCH_ENTRIES = 10;

/**
 * Largest SQS message (and SendMessageBatch request) we build, in bytes. SQS's historical limit;
 * a rejected record whose message is larger fails loudly rather than being cut (nothing is lost).
 */
export const MAX_SQS_MESSAGE_BYTES = 256 * 1024;

/** Longest text kept from a Feature Store error message. */
const MAX_DETAIL_CHARS = 1_000;

// ---------------------------------------------------------------------------------------------
// Configuration (FEATURE_GROUPS, REJECTED_RECORDS_QUEUE_URL)
// ---------------------------------------------------------------------------------------------

const FeatureSpecSchema = z.object({
  name: z.string({ error: 'must be a string' }),
  type: z.enum(FEATURE_TYPES as unknown as ['string', 'integral', 'fractional'], {
    error: `must be one of ${FEATURE_TYPES.join(', ')}`,
  }),
  description: z.string({ error: 'must be a string' }),
});

/** Shape of one FeatureGroupDefinition; the rules are checked by checkFeatureGroupDefinition. Extra keys are ignored. */
export const FeatureGroupDefinitionSchema = z.object({
  name: z.string({ error: 'must be a string' }),
  description: z.string({ error: 'must be a string' }),
  owner: z.string({ error: 'must be a string' }),
  recordIdentifier: z.string({ error: 'must be a string' }),
  eventTime: z.string({ error: 'must be a string' }),
  features: z.array(FeatureSpecSchema, { error: 'must be an array of features' }),
  onlineTtlHours: z.optional(z.number({ error: 'must be a number' })),
});

/** The feature groups a function serves, by name (the SageMaker feature group name). */
export type FeatureGroupCatalog = ReadonlyMap<string, FeatureGroupDefinition>;

/**
 * Parses FEATURE_GROUPS (a JSON array of {@link FeatureGroupDefinition}) and checks every definition
 * with checkFeatureGroupDefinition. Throws {@link ConfigError} whose message starts with the
 * variable's name and the path of the first problem, e.g. `FEATURE_GROUPS: [0].features[2].type: ...`.
 */
export function loadFeatureGroups(raw: string | undefined, name = 'FEATURE_GROUPS'): FeatureGroupCatalog {
  const definitions = loadJsonSetting(
    raw,
    name,
    z
      .array(FeatureGroupDefinitionSchema, { error: 'must be a JSON array of feature group definitions' })
      .check(z.minLength(1, 'must define at least one feature group')),
  );
  const catalog = new Map<string, FeatureGroupDefinition>();
  definitions.forEach((definition, index) => {
    const issues = checkFeatureGroupDefinition(definition);
    if (issues.length > 0) {
      const detail = issues.map((issue) => `${formatPath([index, ...issue.path])}: ${issue.message}`).join('; ');
      throw new ConfigError(`${name}: ${detail}`);
    }
    if (catalog.has(definition.name)) {
      throw new ConfigError(`${name}: [${index}].name: feature group '${definition.name}' is defined twice`);
    }
    catalog.set(definition.name, definition);
  });
  return catalog;
}

/** Reads the URL of the rejected-records queue. Throws {@link ConfigError} naming the variable. */
export function loadQueueUrl(raw: string | undefined, name = 'REJECTED_RECORDS_QUEUE_URL'): string {
  const value = raw?.trim();
  if (value === undefined || value.length === 0) {
    throw new ConfigError(`${name}: is not set`);
  }
  if (!/^https?:\/\/[^\s/]+\/\S+$/.test(value)) {
    throw new ConfigError(`${name}: must be an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>); got '${value}'`);
  }
  return value;
}

/** What the ingestion functions (speed and batch layers) read from their environment. */
export interface IngestionConfig {
  readonly groups: FeatureGroupCatalog;
  /** The rejected-records queue. */
  readonly queueUrl: string;
}

/** Reads FEATURE_GROUPS and REJECTED_RECORDS_QUEUE_URL from `env`. Throws {@link ConfigError} naming the variable. */
export function loadIngestionConfig(env: Readonly<Record<string, string | undefined>>): IngestionConfig {
  return { groups: loadFeatureGroups(env.FEATURE_GROUPS), queueUrl: loadQueueUrl(env.REJECTED_RECORDS_QUEUE_URL) };
}

/** A configuration as first read: its value, or the {@link ConfigError} that makes it unusable. */
export type ConfigOutcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: ConfigError };

/**
 * Reads a configuration with `load` on the first call and keeps the outcome (the value or the error)
 * for the life of the environment. Never throws: an error that is not a {@link ConfigError} becomes
 * `new ConfigError(fallbackMessage)`. `onFailure` is called once, when the first read fails.
 */
export function loadOnce<T>(load: () => T, fallbackMessage: string, onFailure?: (error: ConfigError) => void): () => ConfigOutcome<T> {
  let outcome: ConfigOutcome<T> | undefined;
  return () => {
    if (outcome === undefined) {
      try {
        outcome = { ok: true, value: load() };
      } catch (error) {
        const configError = error instanceof ConfigError ? error : new ConfigError(fallbackMessage);
        onFailure?.(configError);
        outcome = { ok: false, error: configError };
      }
    }
    return outcome;
  };
}

/**
 * The ingestion functions' configuration, read from `env` on first use ({@link loadIngestionConfig})
 * and kept. While it is unusable every call reports the error and throws it: failing the whole
 * invocation makes Lambda (or the workflow) retry, so no record is dropped over configuration.
 */
export function ingestionConfigLoader(env: Readonly<Record<string, string | undefined>>, report: (error: ConfigError) => void): () => IngestionConfig {
  const read = loadOnce(() => loadIngestionConfig(env), 'configuration could not be loaded');
  return () => {
    const outcome = read();
    if (!outcome.ok) {
      report(outcome.error);
      throw outcome.error;
    }
    return outcome.value;
  };
}

function formatPath(path: ReadonlyArray<string | number>): string {
  return path.map((segment, index) => (typeof segment === 'number' ? `[${segment}]` : index === 0 ? segment : `.${segment}`)).join('');
}

function listNames(names: Iterable<string>): string {
  const sorted = [...names].sort();
  return sorted.length === 0 ? '(none)' : sorted.join(', ');
}

// ---------------------------------------------------------------------------------------------
// Records, sources and rejections
// ---------------------------------------------------------------------------------------------

/** One feature value on the wire: Feature Store's `FeatureValue` without collection types. */
export interface WireFeatureValue {
  readonly FeatureName: string;
  readonly ValueAsString: string;
}

/** Where a record came from, so a rejected record can be traced back (and replayed). */
export type RecordSource =
  | { readonly kind: 'kinesis'; readonly sequenceNumber: string; readonly shardId: string }
  | { readonly kind: 's3'; readonly bucket: string; readonly key: string; readonly line: number };

/** One reason a record was refused. `feature` is set when the problem is one feature's value. */
export interface RejectionIssue {
  /** Dotted path of what is wrong: `payload`, `featureGroup`, `record`, `record.<feature>`, `line`, `header`, `featureStore`. */
  readonly field: string;
  readonly message: string;
  readonly feature?: string;
}

/** Body of the message sent to the rejected-records queue. `payload` is the original text: nothing is lost. */
export interface RejectedRecordMessage {
  /** One line: every issue as `field: message`, joined with `; `. */
  readonly reason: string;
  readonly issues: readonly RejectionIssue[];
  /** The feature group the record was meant for, when it could be read. */
  readonly featureGroup?: string;
  readonly source: RecordSource;
  readonly payload: string;
}

/** A record that passed every check, in Feature Store's wire form. */
export interface ValidRecord {
  readonly featureGroup: string;
  readonly definition: FeatureGroupDefinition;
  readonly record: readonly WireFeatureValue[];
  /** The record identifier's value, for logs. */
  readonly recordId: string;
  readonly source: RecordSource;
  /** The record's original text, for the rejected-record message should Feature Store refuse it. */
  readonly payload: string;
}

export type RecordEvaluation =
  | ({ readonly ok: true } & ValidRecord)
  | { readonly ok: false; readonly rejection: RejectedRecordMessage };

/** Builds the rejected-record message; the reason is derived from the issues. */
export function rejectedRecord(input: {
  readonly issues: readonly RejectionIssue[];
  readonly source: RecordSource;
  readonly payload: string;
  readonly featureGroup?: string;
}): RejectedRecordMessage {
  const issues = input.issues.length > 0 ? input.issues : [{ field: 'record', message: 'was rejected' }];
  return {
    reason: issues.map((issue) => `${issue.field}: ${issue.message}`).join('; '),
    issues,
    ...(input.featureGroup === undefined ? {} : { featureGroup: input.featureGroup }),
    source: input.source,
    payload: input.payload,
  };
}

/**
 * Checks one record (already decoded into feature name -> value) against its definition. Never
 * throws; every issue of a refused record names its feature.
 */
export function evaluateRecord(
  definition: FeatureGroupDefinition,
  record: Record<string, FeatureValue>,
  source: RecordSource,
  payload: string,
): RecordEvaluation {
  let checked: ReturnType<typeof toFeatureStoreRecord>;
  try {
    checked = toFeatureStoreRecord(definition, record);
  } catch (error) {
    // toFeatureStoreRecord does not throw on any decoded JSON; this only guards the promise made above.
    return {
      ok: false,
      rejection: rejectedRecord({
        issues: [{ field: 'record', message: `could not be checked: ${oneLine(readMessage(error) ?? 'unknown error')}` }],
        featureGroup: definition.name,
        source,
        payload,
      }),
    };
  }
  if (!checked.ok) {
    return {
      ok: false,
      rejection: rejectedRecord({
        issues: checked.issues.map((issue) => ({ field: `record.${issue.feature}`, feature: issue.feature, message: issue.message })),
        featureGroup: definition.name,
        source,
        payload,
      }),
    };
  }
  const identifier = checked.record.find((value) => value.FeatureName === definition.recordIdentifier);
  return { ok: true, featureGroup: definition.name, definition, record: checked.record, recordId: identifier?.ValueAsString ?? '', source, payload };
}

// ---------------------------------------------------------------------------------------------
// Speed layer: Kinesis payloads
// ---------------------------------------------------------------------------------------------

const FeatureValueSchema = z.union([z.string(), z.number(), z.boolean(), z.null()], {
  error: 'must be a string, a number or null',
});

/** Feature name -> value, as a JSON object. */
export const FeatureRecordSchema = z.record(z.string(), FeatureValueSchema, { error: 'must be a JSON object of feature name -> value' });

/** What a producer puts on the stream (UTF-8 JSON): the feature group and the record. */
export const FeatureRecordEnvelopeSchema = z.strictObject(
  {
    featureGroup: z.string({ error: 'is required (the feature group name, a string)' }).check(z.minLength(1, 'must be a non-empty string')),
    record: FeatureRecordSchema,
  },
  { error: 'must be a JSON object with "featureGroup" and "record"' },
);

export type FeatureRecordEnvelope = z.output<typeof FeatureRecordEnvelopeSchema>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes Kinesis `data` (base64) as UTF-8. The text falls back to the base64 itself when it is not UTF-8. */
export function decodeKinesisData(data: string): { readonly ok: true; readonly text: string } | { readonly ok: false; readonly text: string; readonly issue: RejectionIssue } {
  try {
    return { ok: true, text: utf8.decode(Buffer.from(data, 'base64')) };
  } catch {
    return { ok: false, text: data, issue: { field: 'payload', message: 'must be UTF-8 encoded JSON (kept here base64-encoded as received)' } };
  }
}

/** Parses the producer's JSON text into the envelope, or the issues (each naming its field). */
export function parseFeatureRecordPayload(
  text: string,
): { readonly ok: true; readonly value: FeatureRecordEnvelope } | { readonly ok: false; readonly issues: RejectionIssue[]; readonly featureGroup?: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, issues: [{ field: 'payload', message: 'must be valid JSON' }] };
  }
  const result = FeatureRecordEnvelopeSchema.safeParse(json);
  if (result.success) {
    return { ok: true, value: result.data };
  }
  const featureGroup = typeof (json as { featureGroup?: unknown } | null)?.featureGroup === 'string' ? (json as { featureGroup: string }).featureGroup : undefined;
  return { ok: false, issues: zodIssues(result.error.issues), ...(featureGroup === undefined || featureGroup.length === 0 ? {} : { featureGroup }) };
}

function zodIssues(issues: readonly z.core.$ZodIssue[]): RejectionIssue[] {
  return issues.map((issue) => {
    const text = formatIssues([issue], 'payload');
    const separator = text.indexOf(': ');
    const field = separator < 0 ? 'payload' : text.slice(0, separator);
    const message = separator < 0 ? text : text.slice(separator + 2);
    const feature = issue.path.length === 2 && issue.path[0] === 'record' && typeof issue.path[1] === 'string' ? issue.path[1] : undefined;
    return feature === undefined ? { field, message } : { field, message, feature };
  });
}

/** Finds a feature group by name, or the issue for the rejected-record message. */
export function resolveGroupForRecord(groups: FeatureGroupCatalog, name: string): FeatureGroupDefinition | RejectionIssue {
  const definition = groups.get(name);
  return definition ?? { field: 'featureGroup', message: `unknown feature group '${name}'; this function serves: ${listNames(groups.keys())}` };
}

/** `shardId-000000000001:4954...` -> `shardId-000000000001`. */
export function shardIdOf(eventId: string | undefined): string {
  const id = eventId ?? '';
  const separator = id.indexOf(':');
  return separator < 0 ? id : id.slice(0, separator);
}

/**
 * The whole speed-layer check of one Kinesis record: decode, parse, route to the definition and
 * validate. Never throws.
 */
export function evaluateKinesisRecord(groups: FeatureGroupCatalog, data: string, source: RecordSource): RecordEvaluation {
  const decoded = decodeKinesisData(data);
  if (!decoded.ok) {
    return { ok: false, rejection: rejectedRecord({ issues: [decoded.issue], source, payload: decoded.text }) };
  }
  const parsed = parseFeatureRecordPayload(decoded.text);
  if (!parsed.ok) {
    return {
      ok: false,
      rejection: rejectedRecord({
        issues: parsed.issues,
        source,
        payload: decoded.text,
        ...(parsed.featureGroup === undefined ? {} : { featureGroup: parsed.featureGroup }),
      }),
    };
  }
  const definition = resolveGroupForRecord(groups, parsed.value.featureGroup);
  if (!('features' in definition)) {
    return { ok: false, rejection: rejectedRecord({ issues: [definition], source, payload: decoded.text, featureGroup: parsed.value.featureGroup }) };
  }
  return evaluateRecord(definition, parsed.value.record, source, decoded.text);
}

// ---------------------------------------------------------------------------------------------
// Batch layer: CSV and JSON Lines chunks
// ---------------------------------------------------------------------------------------------

export const CHUNK_FORMATS = ['csv', 'jsonl'] as const;
export type ChunkFormat = (typeof CHUNK_FORMATS)[number];

/** One data line of a chunk: the decoded record, or why it could not be decoded. */
export interface ChunkLine {
  /** 1-based line of the file where the record starts (a CSV header is line 1). */
  readonly line: number;
  /** The record's original text (without its line break). */
  readonly text: string;
  readonly record?: Record<string, FeatureValue>;
  readonly issues?: readonly RejectionIssue[];
}

/** One CSV record as RFC 4180 reads it. */
export interface CsvRow {
  readonly line: number;
  readonly text: string;
  readonly fields: readonly string[];
  /** Set when the row is malformed (an unterminated quote, text after a closing quote). */
  readonly error?: string;
}

/**
 * Splits CSV text into rows (RFC 4180): fields separated by commas, rows by CRLF or LF, fields in
 * double quotes may hold commas, line breaks and doubled quotes (`""`). A leading UTF-8 BOM and blank
 * lines are skipped; a quote inside an unquoted field is kept as text. Never throws.
 */
export function parseCsvRows(input: string): CsvRow[] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const n = text.length;
  const rows: CsvRow[] = [];
  let i = 0;
  let line = 1;
  while (i < n) {
    const start = i;
    const startLine = line;
    const fields: string[] = [];
    let error: string | undefined;
    let end = -1;
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        i += 1;
        let closed = false;
        while (i < n) {
          const c = text[i] as string;
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i += 1;
            closed = true;
            break;
          }
          if (c === '\n') line += 1;
          field += c;
          i += 1;
        }
        if (!closed) {
          error = 'has an unterminated quoted field';
          end = n;
          fields.push(field);
          break;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          error = 'has text after a closing quote (a quote inside a field must be doubled and the field quoted)';
          while (i < n && text[i] !== '\n') i += 1;
          end = i > 0 && text[i - 1] === '\r' && i < n ? i - 1 : i;
          fields.push(field);
          if (i < n) {
            i += 1;
            line += 1;
          }
          break;
        }
      } else {
        while (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          field += text[i];
          i += 1;
        }
      }
      fields.push(field);
      if (i < n && text[i] === ',') {
        i += 1;
        continue;
      }
      end = i;
      if (i < n) {
        i += text[i] === '\r' ? 2 : 1;
        line += 1;
      }
      break;
    }
    const raw = text.slice(start, end);
    if (raw.length === 0) {
      continue; // a blank line
    }
    rows.push(error === undefined ? { line: startLine, text: raw, fields } : { line: startLine, text: raw, fields, error });
  }
  return rows;
}

/**
 * Reads a CSV chunk whose first row is the header (feature names). Each later row becomes a record
 * of feature name -> text (an empty field means the feature is absent); malformed rows carry issues.
 */
export function parseCsvChunk(text: string): ChunkLine[] {
  const rows = parseCsvRows(text);
  const header = rows[0];
  if (header === undefined) {
    return [];
  }
  const names = header.fields.map((name) => name.trim());
  let headerProblem = header.error === undefined ? undefined : `line ${header.line} ${header.error}`;
  if (headerProblem === undefined) {
    const seen = new Set<string>();
    for (const [index, name] of names.entries()) {
      if (name.length === 0) {
        headerProblem = `column ${index + 1} has no name`;
        break;
      }
      if (seen.has(name)) {
        headerProblem = `column '${name}' appears twice`;
        break;
      }
      seen.add(name);
    }
  }
  return rows.slice(1).map((row): ChunkLine => {
    if (headerProblem !== undefined) {
      return { line: row.line, text: row.text, issues: [{ field: 'header', message: `the CSV header (line ${header.line}) is unusable: ${headerProblem}` }] };
    }
    if (row.error !== undefined) {
      return { line: row.line, text: row.text, issues: [{ field: 'line', message: `line ${row.line} ${row.error}` }] };
    }
    if (row.fields.length !== names.length) {
      return {
        line: row.line,
        text: row.text,
        issues: [{ field: 'line', message: `line ${row.line} has ${row.fields.length} fields; the header has ${names.length}` }],
      };
    }
    const record: Record<string, FeatureValue> = {};
    names.forEach((name, index) => {
      record[name] = row.fields[index] as string;
    });
    return { line: row.line, text: row.text, record };
  });
}

/** Reads a JSON Lines chunk: one JSON object (feature name -> value) per non-blank line. */
export function parseJsonLinesChunk(input: string): ChunkLine[] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const out: ChunkLine[] = [];
  text.split('\n').forEach((rawLine, index) => {
    const lineText = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (lineText.trim().length === 0) {
      return;
    }
    const line = index + 1;
    let json: unknown;
    try {
      json = JSON.parse(lineText);
    } catch {
      out.push({ line, text: lineText, issues: [{ field: 'line', message: `line ${line} is not valid JSON` }] });
      return;
    }
    const result = FeatureRecordSchema.safeParse(json);
    if (!result.success || typeof json !== 'object' || json === null || Array.isArray(json)) {
      const issues = result.success
        ? [{ field: 'line', message: `line ${line} must be a JSON object of feature name -> value` }]
        : result.error.issues.map((issue): RejectionIssue => {
            const feature = typeof issue.path[0] === 'string' ? issue.path[0] : undefined;
            return feature === undefined
              ? { field: 'line', message: `line ${line} ${issue.message}` }
              : { field: `record.${feature}`, feature, message: issue.message };
          });
      out.push({ line, text: lineText, issues });
      return;
    }
    out.push({ line, text: lineText, record: result.data });
  });
  return out;
}

/** Parses a chunk in the given format. */
export function parseChunk(format: ChunkFormat, text: string): ChunkLine[] {
  return format === 'csv' ? parseCsvChunk(text) : parseJsonLinesChunk(text);
}

/** Checks every line of a chunk against the definition. Never throws. */
export function evaluateChunk(
  definition: FeatureGroupDefinition,
  lines: readonly ChunkLine[],
  location: { readonly bucket: string; readonly key: string },
): RecordEvaluation[] {
  return lines.map((line) => {
    const source: RecordSource = { kind: 's3', bucket: location.bucket, key: location.key, line: line.line };
    if (line.record === undefined) {
      return { ok: false, rejection: rejectedRecord({ issues: line.issues ?? [], source, payload: line.text, featureGroup: definition.name }) };
    }
    return evaluateRecord(definition, line.record, source, line.text);
  });
}

/** Input of the batch-layer function: one chunk object, one item of the Distributed Map. */
export interface BatchIngestionInput {
  readonly featureGroup: string;
  readonly bucket: string;
  readonly key: string;
  readonly format: ChunkFormat;
}

/** What the batch-layer function returns for a chunk. */
export interface BatchIngestionResult {
  readonly featureGroup: string;
  readonly bucket: string;
  readonly key: string;
  /** Records written with PutRecord. */
  readonly ingested: number;
  /** Lines sent to the rejected-records queue (bad data, or refused by Feature Store's validation). */
  readonly rejected: number;
  /**
   * Lines neither ingested nor rejected. Always 0 in a returned result: when a record cannot be
   * written for any other reason the function throws instead, so the workflow retries the chunk.
   */
  readonly failed: number;
}

/**
 * Bad batch input. `name` is the error type Step Functions sees (do not Retry on it); the message
 * starts with the offending field.
 */
export class IngestionInputError extends Error {
  override readonly name = 'IngestionInputError';

  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

const BatchIngestionInputSchema = z.object(
  {
    featureGroup: z.string({ error: 'is required (a string)' }).check(z.minLength(1, 'must be a non-empty string')),
    bucket: z.string({ error: 'is required (a string)' }).check(z.minLength(1, 'must be a non-empty string')),
    key: z.string({ error: 'is required (a string)' }).check(z.minLength(1, 'must be a non-empty string')),
    format: z.enum(CHUNK_FORMATS, { error: `must be one of ${CHUNK_FORMATS.join(', ')}` }),
  },
  { error: 'must be an object with featureGroup, bucket, key and format' },
);

/** Validates the batch input and resolves its feature group; throws {@link IngestionInputError}. */
export function parseBatchIngestionInput(event: unknown, groups: FeatureGroupCatalog): { readonly input: BatchIngestionInput; readonly definition: FeatureGroupDefinition } {
  const result = BatchIngestionInputSchema.safeParse(event);
  if (!result.success) {
    const first = result.error.issues[0];
    const field = first === undefined || first.path.length === 0 ? 'input' : String(first.path[0]);
    throw new IngestionInputError(formatIssues(result.error.issues, 'input'), field);
  }
  const definition = groups.get(result.data.featureGroup);
  if (definition === undefined) {
    throw new IngestionInputError(`featureGroup: unknown feature group '${result.data.featureGroup}'; this function serves: ${listNames(groups.keys())}`, 'featureGroup');
  }
  return { input: result.data, definition };
}

// ---------------------------------------------------------------------------------------------
// Feature Store requests and errors
// ---------------------------------------------------------------------------------------------

/** Structural subset of PutRecord's input. TargetStores is left out: Feature Store writes both stores. */
export interface PutRecordInputLike {
  FeatureGroupName: string;
  Record: WireFeatureValue[];
}

export function putRecordInput(valid: Pick<ValidRecord, 'featureGroup' | 'record'>): PutRecordInputLike {
  return { FeatureGroupName: valid.featureGroup, Record: valid.record.map((value) => ({ FeatureName: value.FeatureName, ValueAsString: value.ValueAsString })) };
}

export type FeatureStoreErrorKind = 'throttled' | 'unavailable' | 'timeout' | 'validation' | 'not-found' | 'forbidden' | 'other';

export interface FeatureStoreFailure {
  readonly kind: FeatureStoreErrorKind;
  /** True when the same request may succeed later (throttling, 5xx, network, timeouts). */
  readonly retriable: boolean;
  /** The error's name, e.g. ValidationError. */
  readonly name?: string;
  /** Feature Store's (or the network's) message, one line, bounded. */
  readonly message: string;
}

const THROTTLING_NAMES = new Set(['ThrottlingException', 'Throttling', 'TooManyRequestsException', 'ThrottledException', 'RequestLimitExceeded', 'SlowDown', 'ProvisionedThroughputExceededException']);
const UNAVAILABLE_NAMES = new Set(['ServiceUnavailable', 'InternalFailure', 'InternalServerError', 'InternalError', 'ServiceUnavailableException']);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'AbortError']);
const NETWORK_CODE = /\b(ECONNREFUSED|ECONNRESET|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|EPIPE|ECONNABORTED|ETIMEDOUT|ESOCKETTIMEDOUT|UND_ERR_[A-Z_]+)\b/;

/** Sorts anything thrown by a Feature Store (or SQS, S3) call. Never throws. */
export function classifyFeatureStoreError(error: unknown): FeatureStoreFailure {
  const name = readString(error, 'name');
  const message = oneLine(readString(error, 'Message') ?? readMessage(error) ?? name ?? 'unknown error');
  const status = readStatus(error);
  const base = { ...(name === undefined ? {} : { name }), message };
  if ((name !== undefined && THROTTLING_NAMES.has(name)) || status === 429 || readThrottling(error)) {
    return { kind: 'throttled', retriable: true, ...base };
  }
  if (name === 'ValidationError' || name === 'ValidationException') {
    return { kind: 'validation', retriable: false, ...base };
  }
  if (name === 'ResourceNotFound' || name === 'ResourceNotFoundException') {
    return { kind: 'not-found', retriable: false, ...base };
  }
  if (name === 'AccessForbidden' || name === 'AccessDeniedException' || name === 'AccessDenied' || status === 403) {
    return { kind: 'forbidden', retriable: false, ...base };
  }
  if ((name !== undefined && TIMEOUT_NAMES.has(name)) || /\b(ETIMEDOUT|ESOCKETTIMEDOUT|UND_ERR_CONNECT_TIMEOUT)\b/.test(networkText(error))) {
    return { kind: 'timeout', retriable: true, ...base };
  }
  if ((name !== undefined && UNAVAILABLE_NAMES.has(name)) || (status !== undefined && status >= 500) || NETWORK_CODE.test(networkText(error))) {
    return { kind: 'unavailable', retriable: true, ...base };
  }
  return { kind: 'other', retriable: readProperty(error, '$retryable') !== undefined, ...base };
}

/** The rejected-record message for a record Feature Store refused with a ValidationError. */
export function featureStoreRejection(valid: ValidRecord, failure: FeatureStoreFailure): RejectedRecordMessage {
  return rejectedRecord({
    issues: [{ field: 'featureStore', message: `Feature Store refused the record: ${failure.message}` }],
    featureGroup: valid.featureGroup,
    source: valid.source,
    payload: valid.payload,
  });
}

/**
 * Maps a failed lookup to the API's error: 429 throttled, 503 unavailable, 504 timeout, 502 for
 * anything else (a missing feature group, missing permissions, a refused request).
 */
export function lookupError(error: unknown, featureGroup: string): UpstreamError {
  if (error instanceof UpstreamError) {
    return error;
  }
  const failure = classifyFeatureStoreError(error);
  const cause = { cause: error };
  switch (failure.kind) {
    case 'throttled':
      return new UpstreamError(429, 'Throttled', `Feature Store is throttling lookups in ${featureGroup}; retry with backoff`, cause);
    case 'unavailable':
      return new UpstreamError(503, 'ServiceUnavailable', 'Feature Store is temporarily unavailable; retry later', cause);
    case 'timeout':
      return new UpstreamError(504, 'Timeout', 'Feature Store did not answer in time', cause);
    case 'not-found':
      return new UpstreamError(502, 'FeatureGroupUnavailable', `feature group ${featureGroup} does not exist in Feature Store or has no online store`, cause);
    case 'forbidden':
      return new UpstreamError(502, 'FeatureStoreAccessDenied', `this function may not read ${featureGroup}`, cause);
    default:
      return new UpstreamError(502, 'FeatureStoreError', `the lookup in ${featureGroup} failed${failure.name === undefined ? '' : ` (${failure.name})`}`, cause);
  }
}

// ---------------------------------------------------------------------------------------------
// Online lookups
// ---------------------------------------------------------------------------------------------

/** A feature value as the API returns it: integral -> number when safe (else string), fractional -> number, string -> string. */
export type TypedFeatureValue = string | number | readonly string[];

export type TypedFeatures = Record<string, TypedFeatureValue>;

/** Structural subset of Feature Store's FeatureValue as it comes back from GetRecord / BatchGetRecord. */
export interface FeatureValueLike {
  FeatureName?: string | undefined;
  ValueAsString?: string | undefined;
  ValueAsStringList?: string[] | undefined;
}

export interface GetRecordInputLike {
  FeatureGroupName: string;
  RecordIdentifierValueAsString: string;
  FeatureNames?: string[];
}

export interface GetRecordOutputLike {
  Record?: FeatureValueLike[] | undefined;
}

export interface BatchGetRecordIdentifierLike {
  FeatureGroupName: string;
  RecordIdentifiersValueAsString: string[];
  FeatureNames?: string[];
}

export interface BatchGetRecordInputLike {
  Identifiers: BatchGetRecordIdentifierLike[];
}

export interface BatchGetRecordOutputLike {
  Records?: Array<{ FeatureGroupName?: string | undefined; RecordIdentifierValueAsString?: string | undefined; Record?: FeatureValueLike[] | undefined }> | undefined;
  Errors?: Array<{ FeatureGroupName?: string | undefined; RecordIdentifierValueAsString?: string | undefined; ErrorCode?: string | undefined; ErrorMessage?: string | undefined }> | undefined;
  UnprocessedIdentifiers?: Array<{ FeatureGroupName?: string | undefined; RecordIdentifiersValueAsString?: string[] | undefined; FeatureNames?: string[] | undefined }> | undefined;
}

/** What a lookup needs from Feature Store: `(input) => client.send(new GetRecordCommand(input))` and the BatchGetRecord equivalent. */
export interface FeatureStoreReader {
  getRecord(input: GetRecordInputLike): Promise<GetRecordOutputLike>;
  batchGetRecord(input: BatchGetRecordInputLike): Promise<BatchGetRecordOutputLike>;
}

const INTEGRAL_TEXT = /^-?\d+$/;

/** Converts one wire value back to its typed value using the feature's type. */
export function fromWireValue(type: FeatureGroupDefinition['features'][number]['type'] | undefined, text: string): string | number {
  if (type === 'integral') {
    const trimmed = text.trim();
    if (INTEGRAL_TEXT.test(trimmed)) {
      const number = Number(trimmed);
      if (Number.isSafeInteger(number)) return number;
    }
    return text;
  }
  if (type === 'fractional') {
    const number = Number(text);
    return text.trim().length > 0 && Number.isFinite(number) ? number : text;
  }
  return text;
}

/** Converts a Feature Store record (`[{FeatureName, ValueAsString}]`) to feature name -> typed value. */
export function fromFeatureStoreRecord(definition: FeatureGroupDefinition, record: readonly FeatureValueLike[]): TypedFeatures {
  const types = new Map(definition.features.map((feature) => [feature.name, feature.type]));
  const out: TypedFeatures = {};
  for (const value of record) {
    if (value.FeatureName === undefined) continue;
    if (value.ValueAsString !== undefined) {
      out[value.FeatureName] = fromWireValue(types.get(value.FeatureName), value.ValueAsString);
    } else if (value.ValueAsStringList !== undefined) {
      out[value.FeatureName] = [...value.ValueAsStringList];
    }
  }
  return out;
}

/** Finds a feature group by name; unknown -> 404 listing the groups. */
export function resolveFeatureGroup(groups: FeatureGroupCatalog, name: string | null | undefined): FeatureGroupDefinition {
  if (name === undefined || name === null || name.length === 0) {
    throw new RequestError(400, 'featureGroup: path parameter is required', 'featureGroup');
  }
  const definition = groups.get(name);
  if (definition === undefined) {
    throw new RequestError(404, `featureGroup: unknown feature group '${name}'; feature groups: ${listNames(groups.keys())}`, 'featureGroup');
  }
  return definition;
}

/** Checks requested feature names (duplicates removed, order kept); unknown -> 400 naming it and listing the group's features. */
export function resolveFeatureNames(definition: FeatureGroupDefinition, names: readonly string[] | undefined, field = 'features'): string[] | undefined {
  if (names === undefined) return undefined;
  if (names.length === 0) {
    throw new RequestError(400, `${field}: must name at least one feature (leave it out for all features)`, field);
  }
  const known = new Set(definition.features.map((feature) => feature.name));
  const unknown = names.filter((name) => !known.has(name));
  if (unknown.length > 0) {
    throw new RequestError(
      400,
      `${field}: unknown feature${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `'${name}'`).join(', ')} in ${definition.name}; features: ${listNames(known)}`,
      field,
    );
  }
  return [...new Set(names)];
}

/** Checks a record identifier value: non-empty, and a whole number when the identifier feature is integral. */
export function checkRecordId(definition: FeatureGroupDefinition, id: unknown, field = 'recordId'): string {
  if (typeof id !== 'string' || id.trim().length === 0) {
    throw new RequestError(400, `${field}: must be a non-empty string`, field);
  }
  const identifier = definition.features.find((feature) => feature.name === definition.recordIdentifier);
  if (identifier?.type === 'integral' && !INTEGRAL_TEXT.test(id.trim())) {
    throw new RequestError(400, `${field}: must be a whole number ('${definition.recordIdentifier}' of ${definition.name} is integral); got '${oneLine(id)}'`, field);
  }
  return id;
}

/** The GetRecord input for one entity. */
export function getRecordInput(definition: FeatureGroupDefinition, recordId: string, featureNames?: readonly string[]): GetRecordInputLike {
  return {
    FeatureGroupName: definition.name,
    RecordIdentifierValueAsString: recordId,
    ...(featureNames === undefined ? {} : { FeatureNames: [...featureNames] }),
  };
}

/** BatchGetRecord inputs for the ids (duplicates removed, order kept), at most {@link MAX_BATCH_GET_IDENTIFIERS} ids per call. */
export function batchGetRecordInputs(definition: FeatureGroupDefinition, ids: readonly string[], featureNames?: readonly string[]): BatchGetRecordInputLike[] {
  const unique = [...new Set(ids)];
  const inputs: BatchGetRecordInputLike[] = [];
  for (let start = 0; start < unique.length; start += MAX_BATCH_GET_IDENTIFIERS) {
    inputs.push({
      Identifiers: [
        {
          FeatureGroupName: definition.name,
          RecordIdentifiersValueAsString: unique.slice(start, start + MAX_BATCH_GET_IDENTIFIERS),
          ...(featureNames === undefined ? {} : { FeatureNames: [...featureNames] }),
        },
      ],
    });
  }
  return inputs;
}

/** Looks one entity up with GetRecord: its typed features, or undefined when the online store has none. */
export async function lookupRecord(
  client: Pick<FeatureStoreReader, 'getRecord'>,
  definition: FeatureGroupDefinition,
  recordId: string,
  featureNames?: readonly string[],
): Promise<TypedFeatures | undefined> {
  const names = resolveFeatureNames(definition, featureNames);
  const id = checkRecordId(definition, recordId);
  let output: GetRecordOutputLike;
  try {
    output = await client.getRecord(getRecordInput(definition, id, names));
  } catch (error) {
    throw lookupError(error, definition.name);
  }
  return output.Record === undefined || output.Record.length === 0 ? undefined : fromFeatureStoreRecord(definition, output.Record);
}

export interface FeatureLookupResult {
  /** The entities found, in the order asked for (duplicates once). */
  readonly records: ReadonlyArray<{ readonly recordId: string; readonly features: TypedFeatures }>;
  /** Ids the online store has no record for. */
  readonly missing: readonly string[];
}

/** Times BatchGetRecord is asked again for identifiers it left unprocessed. */
const UNPROCESSED_RETRIES = 2;

/**
 * Looks entities up with BatchGetRecord (split into calls of at most 100 ids). `ids` and
 * `featureNames` are checked (RequestError 400 naming the field); Feature Store failures become
 * {@link UpstreamError}s (429 / 503 / 504 / 502), so the inference API can enrich a request with
 * `lookupFeatures` and answer with errorResponse. Unprocessed identifiers are asked for again twice.
 * A per-id `ResourceNotFound` error counts as a missing entity.
 */
export async function lookupFeatures(
  client: Pick<FeatureStoreReader, 'batchGetRecord'>,
  definition: FeatureGroupDefinition,
  ids: readonly string[],
  featureNames?: readonly string[],
): Promise<FeatureLookupResult> {
  const names = resolveFeatureNames(definition, featureNames);
  ids.forEach((id, index) => checkRecordId(definition, id, `ids[${index}]`));
  const found = new Map<string, TypedFeatures>();
  const limit = createLimiter(4);
  await Promise.all(
    batchGetRecordInputs(definition, ids, names).map((input) =>
      limit(async () => {
        let pending: BatchGetRecordInputLike | undefined = input;
        for (let attempt = 0; pending !== undefined; attempt += 1) {
          let output: BatchGetRecordOutputLike;
          try {
            output = await client.batchGetRecord(pending);
          } catch (error) {
            throw lookupError(error, definition.name);
          }
          for (const result of output.Records ?? []) {
            if (result.RecordIdentifierValueAsString !== undefined && result.Record !== undefined && result.Record.length > 0) {
              found.set(result.RecordIdentifierValueAsString, fromFeatureStoreRecord(definition, result.Record));
            }
          }
          const failed = (output.Errors ?? []).find((error) => !/NotFound/i.test(error.ErrorCode ?? ''));
          if (failed !== undefined) {
            throw lookupError(
              { name: failed.ErrorCode, message: failed.ErrorMessage ?? failed.ErrorCode ?? 'lookup failed' },
              definition.name,
            );
          }
          const unprocessed = (output.UnprocessedIdentifiers ?? []).flatMap((identifier) => identifier.RecordIdentifiersValueAsString ?? []);
          if (unprocessed.length === 0) {
            pending = undefined;
          } else if (attempt >= UNPROCESSED_RETRIES) {
            throw new UpstreamError(503, 'ServiceUnavailable', `Feature Store left ${unprocessed.length} of the ids unprocessed; retry later`);
          } else {
            pending = batchGetRecordInputs(definition, unprocessed, names)[0];
          }
        }
      }),
    ),
  );
  const unique = [...new Set(ids)];
  return {
    records: unique.filter((id) => found.has(id)).map((id) => ({ recordId: id, features: found.get(id) as TypedFeatures })),
    missing: unique.filter((id) => !found.has(id)),
  };
}

/** Body of `POST /features/{featureGroup}/batch`. */
export const BatchLookupRequestSchema = z.strictObject(
  {
    ids: z
      .array(z.string({ error: 'must be a string' }).check(z.minLength(1, 'must be a non-empty string')), { error: 'is required (an array of record ids)' })
      .check(z.minLength(1, 'must hold at least one id'), z.maxLength(MAX_LOOKUP_IDS, `must hold at most ${MAX_LOOKUP_IDS} ids`)),
    features: z.optional(
      z
        .array(z.string({ error: 'must be a string' }), { error: 'must be an array of feature names' })
        .check(z.minLength(1, 'must name at least one feature (leave it out for all features)')),
    ),
  },
  { error: 'must be a JSON object with "ids"' },
);

export type BatchLookupRequest = z.output<typeof BatchLookupRequestSchema>;

/** Validates the batch lookup body (already JSON-decoded); RequestError 400 naming the field. */
export function parseBatchLookupRequest(json: unknown): BatchLookupRequest {
  const result = BatchLookupRequestSchema.safeParse(json);
  if (!result.success) {
    throw new RequestError(400, formatIssues(result.error.issues), firstIssueField(result.error.issues));
  }
  return result.data;
}

/** Reads the optional `features` query parameter (comma-separated feature names). */
export function parseFeaturesQuery(value: string | null | undefined): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  return value
    .split(',')
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
}

// ---------------------------------------------------------------------------------------------
// Concurrency and SQS batching
// ---------------------------------------------------------------------------------------------

/** Runs at most `concurrency` tasks at a time; later ones wait in order. */
export function createLimiter(concurrency: number): <T>(task: () => Promise<T>) => Promise<T> {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a whole number of at least 1; got ${concurrency}`);
  }
  let active = 0;
  const waiting: Array<() => void> = [];
  return <T>(task: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const run = (): void => {
        active += 1;
        Promise.resolve()
          .then(task)
          .then(resolve, reject)
          .finally(() => {
            active -= 1;
            waiting.shift()?.();
          });
      };
      if (active < concurrency) run();
      else waiting.push(run);
    });
}

/** The SQS message body of a rejected record. */
export function rejectedMessageBody(message: RejectedRecordMessage): string {
  return JSON.stringify(message);
}

/**
 * Groups message bodies into SendMessageBatch calls: at most 10 entries and
 * {@link MAX_SQS_MESSAGE_BYTES} per call. A single oversized body gets a call of its own (and fails
 * there, loudly). Ids are the bodies' indexes.
 */
export function sqsBatches(bodies: readonly string[], maxBytes = MAX_SQS_MESSAGE_BYTES): Array<Array<{ Id: string; MessageBody: string }>> {
  const batches: Array<Array<{ Id: string; MessageBody: string }>> = [];
  let current: Array<{ Id: string; MessageBody: string }> = [];
  let bytes = 0;
  bodies.forEach((body, index) => {
    const size = Buffer.byteLength(body, 'utf8');
    if (current.length > 0 && (current.length >= MAX_SQS_BATCH_ENTRIES || bytes + size > maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push({ Id: String(index), MessageBody: body });
    bytes += size;
  });
  if (current.length > 0) batches.push(current);
  return batches;
}

// ---------------------------------------------------------------------------------------------
// Error reading helpers (never throw)
// ---------------------------------------------------------------------------------------------

function readMessage(value: unknown): string | undefined {
  return readString(value, 'message');
}

function readStatus(error: unknown): number | undefined {
  const status = readProperty(readProperty(error, '$metadata'), 'httpStatusCode');
  return typeof status === 'number' ? status : undefined;
}

function readThrottling(error: unknown): boolean {
  return readProperty(readProperty(error, '$retryable'), 'throttling') === true;
}

function networkText(error: unknown, depth = 0): string {
  if (depth > 3) return '';
  const parts = [readString(error, 'code') ?? '', (readMessage(error) ?? '').slice(0, 1_000)];
  const cause = readProperty(error, 'cause');
  if (cause !== undefined && cause !== error) parts.push(networkText(cause, depth + 1));
  const members = readProperty(error, 'errors');
  if (Array.isArray(members)) parts.push(...members.slice(0, 10).map((member) => networkText(member, depth + 1)));
  return parts.join(' ');
}

/** One line, bounded length, no stack frames. */
export function oneLine(text: string): string {
  const joined = text
    .split(/\r?\n/)
    .filter((line) => !/^\s+at\s/.test(line))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  return joined.length > MAX_DETAIL_CHARS ? `${joined.slice(0, MAX_DETAIL_CHARS - 1)}…` : joined;
}

/**
 * The inference API's enrichment step: looks up the entity named in a prediction request and adds its
 * online features to the payload as `features`. An unknown group is a 404 naming it, an entity without
 * features a 404 naming the record id; lookup failures are upstream errors (429/503).
 */
export function featureEnricher(groups: FeatureGroupCatalog, client: Pick<FeatureStoreReader, 'getRecord'>): RequestEnricher {
  return async (request) => {
    if (request.entity === undefined) return request;
    const definition = (() => {
      try {
        return resolveFeatureGroup(groups, request.entity.featureGroup);
      } catch (error) {
        if (error instanceof RequestError) throw new RequestError(error.status as 400 | 404, `entity.${error.message}`, 'entity.featureGroup');
        throw error;
      }
    })();
    const recordId = checkRecordId(definition, request.entity.recordId, 'entity.recordId');
    const features = await lookupRecord(client, definition, recordId);
    if (features === undefined) {
      throw new RequestError(404, `entity.recordId: no features for '${oneLine(recordId)}' in ${definition.name}`, 'entity.recordId');
    }
    return { ...request, payload: { ...(request.payload as Record<string, unknown>), features } };
  };
}
