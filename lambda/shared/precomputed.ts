// Precomputed predictions (seed pattern: Lambda architecture, batch and real-time results combined): the
// batch side scores every entity of a feature group in a SageMaker batch transform (lib/lifecycle/
// batch-inference.ts) and lambda/load-precomputed writes one answer per entity into the inference API's
// state table; the real-time side (lambda/invoke) serves a fresh one to a request that names the entity
// and asks the model otherwise. This module is the contract between the two: the key, the item, freshness,
// and the reading of one line of the transform's joined output. It imports no SDK.
//
// Item (DynamoDB, the InferenceStateTable):
//   pk           S  precomputedKey(model, featureGroup, recordId)
//   body         S  the model's answer for the record, as JSON text (JSON.stringify of SageMakerOutput)
//   contentType  S  the answer's content type: 'application/json'
//   modelVersion S  the registry version that computed it (ModelPackageVersion, e.g. "7")
//   computedAt   N  when it was computed, ms since the epoch (the batch run's start: its input's age at most)
//   ttl          N  s since the epoch: ceil(computedAt / 1000) + the configured TTL (the table's TTL attribute)

/** Content type of a precomputed answer read from JSON Lines: the transform's JSON output for the record, as JSON text. */
export const PRECOMPUTED_CONTENT_TYPE = 'application/json';

/** Content type of a precomputed answer read from CSV: the row's fields but the record id's, as CSV text. */
export const PRECOMPUTED_CSV_CONTENT_TYPE = 'text/csv';

/** Largest CSV column a record id is read from. */
export const MAX_CSV_ID_COLUMN = 999;

/** What the key of every precomputed item starts with; no other item of the state table starts so. */
export const PRECOMPUTED_KEY_PREFIX = 'pre#';

/** Largest partition key DynamoDB accepts, in UTF-8 bytes. */
export const MAX_PRECOMPUTED_KEY_BYTES = 2048;

/**
 * Largest answer stored, in UTF-8 bytes: with the key and the other attributes the item stays under
 * DynamoDB's 400 KB, and the same bound as the prediction cache's (MAX_CACHED_BODY_BYTES).
 */
export const MAX_PRECOMPUTED_BODY_BYTES = 350 * 1024;

/**
 * How far in the future a `computedAt` may lie and still count as fresh: the clocks of the batch run
 * and of the API's function instances differ by a little, never by this much.
 */
export const MAX_CLOCK_SKEW_MS = 60_000;

/** One precomputed answer, as the real-time API serves it. */
export interface PrecomputedPrediction {
  /** The answer as the model gave it for the record: JSON text. */
  readonly body: string;
  readonly contentType: string;
  /** The registry version (ModelPackageVersion) that computed it. */
  readonly modelVersion: string;
  /** When it was computed, in ms since the epoch. */
  readonly computedAt: number;
}

const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

/** `%` and `#` escaped as `%25` and `%23`: a part then holds no `#`, and unescaping gives it back. */
function escapePart(part: string): string {
  return part.replace(/%/g, '%25').replace(/#/g, '%23');
}

function unescapePart(part: string): string {
  return part.replace(/%23/g, '#').replace(/%25/g, '%');
}

/**
 * The state-table key of the precomputed answer for one entity of a model:
 * `pre#<model>#<featureGroup>#<recordId>`, each part with `%` written `%25` and then `#` written `%23`.
 * No part then holds a `#`, so the three separators are the only ones and different parts never give the
 * same key (`parsePrecomputedKey` gives them back); names without `%` or `#` appear as they are.
 *
 * Throws RangeError for an empty part, a part that is not well-formed UTF-16 (a lone surrogate, which
 * DynamoDB cannot store) or a key over 2048 UTF-8 bytes. Such a record id has no precomputed answer:
 * the loader counts its line as invalid, and the API asks the model.
 */
export function precomputedKey(model: string, featureGroup: string, recordId: string): string {
  for (const [name, part] of [
    ['model', model],
    ['featureGroup', featureGroup],
    ['recordId', recordId],
  ] as const) {
    if (typeof part !== 'string' || part.length === 0) throw new RangeError(`${name}: must be a non-empty string`);
    if (LONE_SURROGATE.test(part)) throw new RangeError(`${name}: is not well-formed Unicode (a lone surrogate)`);
  }
  const key = `${PRECOMPUTED_KEY_PREFIX}${escapePart(model)}#${escapePart(featureGroup)}#${escapePart(recordId)}`;
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_PRECOMPUTED_KEY_BYTES) throw new RangeError(`recordId: the key would be ${bytes} bytes; DynamoDB keys hold at most ${MAX_PRECOMPUTED_KEY_BYTES}`);
  return key;
}

/** The parts of a key precomputedKey made, or undefined for any other string. */
export function parsePrecomputedKey(key: string): { model: string; featureGroup: string; recordId: string } | undefined {
  if (!key.startsWith(PRECOMPUTED_KEY_PREFIX)) return undefined;
  const parts = key.slice(PRECOMPUTED_KEY_PREFIX.length).split('#');
  if (parts.length !== 3 || parts.some((part) => part.length === 0)) return undefined;
  const [model, featureGroup, recordId] = parts.map(unescapePart) as [string, string, string];
  return { model, featureGroup, recordId };
}

/**
 * Whether a precomputed answer may still be served: computed at most `maxAgeSeconds` before `nowMs`
 * (and not more than a minute of clock skew after it). An unusable age or time is never fresh.
 */
export function isFresh(item: Pick<PrecomputedPrediction, 'computedAt'>, nowMs: number, maxAgeSeconds: number): boolean {
  if (!Number.isFinite(item.computedAt) || !Number.isFinite(nowMs) || !Number.isFinite(maxAgeSeconds) || maxAgeSeconds < 0) return false;
  const age = nowMs - item.computedAt;
  return age >= -MAX_CLOCK_SKEW_MS && age <= maxAgeSeconds * 1000;
}

// ---------------------------------------------------------------------------------------------
// The item, as DynamoDB's attribute values (structural types: no SDK import)
// ---------------------------------------------------------------------------------------------

/** The attribute values this module reads and writes: a subset of the SDK's AttributeValue. */
export interface PrecomputedAttributeValue {
  readonly S?: string;
  readonly N?: string;
}

/**
 * The item toPrecomputedItem writes. A type (not an interface) so that it is assignable to the SDK's
 * `Record<string, AttributeValue>`.
 */
export type PrecomputedItem = {
  readonly pk: { readonly S: string };
  readonly body: { readonly S: string };
  readonly contentType: { readonly S: string };
  readonly modelVersion: { readonly S: string };
  readonly computedAt: { readonly N: string };
  readonly ttl: { readonly N: string };
};

/** The item that stores `prediction` under `key`, expiring `ttlSeconds` after it was computed. */
export function toPrecomputedItem(key: string, prediction: PrecomputedPrediction, ttlSeconds: number): PrecomputedItem {
  return {
    pk: { S: key },
    body: { S: prediction.body },
    contentType: { S: prediction.contentType },
    modelVersion: { S: prediction.modelVersion },
    computedAt: { N: String(prediction.computedAt) },
    ttl: { N: String(Math.ceil(prediction.computedAt / 1000) + ttlSeconds) },
  };
}

/**
 * The answer an item holds, or undefined when it is not one toPrecomputedItem wrote (a missing or
 * mistyped attribute) or its `ttl` has passed at `nowMs` (DynamoDB deletes expired items within days,
 * not at once).
 */
export function fromPrecomputedItem(item: Readonly<Record<string, PrecomputedAttributeValue | undefined>> | undefined, nowMs: number): PrecomputedPrediction | undefined {
  if (item === undefined) return undefined;
  const body = item.body?.S;
  const contentType = item.contentType?.S;
  const modelVersion = item.modelVersion?.S;
  const computedAtText = item.computedAt?.N;
  if (body === undefined || contentType === undefined || modelVersion === undefined || computedAtText === undefined) return undefined;
  const computedAt = Number(computedAtText);
  if (!Number.isFinite(computedAt)) return undefined;
  const ttlText = item.ttl?.N;
  if (ttlText !== undefined && Number(ttlText) * 1000 <= nowMs) return undefined;
  return { body, contentType, modelVersion, computedAt };
}

// ---------------------------------------------------------------------------------------------
// One line of the transform's joined output
// ---------------------------------------------------------------------------------------------

/**
 * Where each joined record holds its record id, from the configured `recordIdField`:
 * - a field name (`customer_id`): that top-level field of the joined object;
 * - a JSON pointer (RFC 6901, starts with `/`): e.g. `/customer/id`, or `/SageMakerInput/0` when the
 *   input records are not JSON objects (SageMaker then joins `{ SageMakerInput, SageMakerOutput }`).
 */
export interface RecordIdLocator {
  readonly field: string;
  /** The pointer's reference tokens, unescaped; one token for a field name. */
  readonly tokens: readonly string[];
}

/** Reads `recordIdField`; throws RangeError naming it when it is empty or a malformed pointer. */
export function recordIdLocator(recordIdField: string): RecordIdLocator {
  if (typeof recordIdField !== 'string' || recordIdField.length === 0) throw new RangeError('recordIdField: must be a field name or a JSON pointer (/a/b)');
  if (!recordIdField.startsWith('/')) return { field: recordIdField, tokens: [recordIdField] };
  const tokens = recordIdField.slice(1).split('/');
  for (const token of tokens) {
    if (/~(?![01])/.test(token)) throw new RangeError(`recordIdField: '${recordIdField}' is not a JSON pointer: '~' must be followed by 0 or 1`);
  }
  return { field: recordIdField, tokens: tokens.map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~')) };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The value the pointer names in `document`, or undefined. Own properties only; array indexes as RFC 6901 writes them. */
function resolvePointer(document: unknown, tokens: readonly string[]): unknown {
  let node: unknown = document;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      if (!/^(0|[1-9][0-9]*)$/.test(token)) return undefined;
      node = node[Number(token)];
    } else if (isRecord(node)) {
      if (!Object.prototype.hasOwnProperty.call(node, token)) return undefined;
      node = node[token];
    } else {
      return undefined;
    }
  }
  return node;
}

/** The name SageMaker gives the model's output in a joined JSON record. */
export const SAGEMAKER_OUTPUT_FIELD = 'SageMakerOutput';

export type JoinedLine =
  | { readonly ok: true; readonly recordId: string; readonly prediction: unknown; readonly body: string }
  | { readonly ok: false; readonly reason: string };

const describe = (value: unknown): string => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `${typeof value} ${JSON.stringify(value)}`.slice(0, 80));

/**
 * Reads one line of a batch transform's output joined to its input (JSON Lines, `JoinSource: Input`):
 * a JSON object holding the input record's fields (or `SageMakerInput`) and the model's output for it
 * under `SageMakerOutput`. The record id is a non-empty string, or a whole number up to 2^53 written in
 * decimal (larger ones lose digits in JSON.parse, so they are refused rather than stored under another id).
 * The answer is SageMakerOutput as JSON text, at most MAX_PRECOMPUTED_BODY_BYTES.
 *
 * CSV output is not read: its joined rows carry no marker of where the input ends and the output begins.
 */
export function parseJoinedLine(line: string, locator: RecordIdLocator): JoinedLine {
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return { ok: false, reason: 'is not valid JSON' };
  }
  if (!isRecord(record)) return { ok: false, reason: `is not a JSON object (got ${describe(record)})` };
  if (!Object.prototype.hasOwnProperty.call(record, SAGEMAKER_OUTPUT_FIELD) || record[SAGEMAKER_OUTPUT_FIELD] === undefined) {
    return { ok: false, reason: `has no ${SAGEMAKER_OUTPUT_FIELD} (the transform must join its input: JoinSource Input, JSON Lines)` };
  }
  const id = resolvePointer(record, locator.tokens);
  let recordId: string;
  if (typeof id === 'string' && id.length > 0) {
    recordId = id;
  } else if (typeof id === 'number' && Number.isSafeInteger(id)) {
    recordId = String(id);
  } else if (id === undefined) {
    return { ok: false, reason: `has no record id at ${locator.field}` };
  } else {
    return { ok: false, reason: `record id at ${locator.field} must be a non-empty string or a whole number up to 2^53; got ${describe(id)}` };
  }
  if (LONE_SURROGATE.test(recordId)) return { ok: false, reason: `record id at ${locator.field} is not well-formed Unicode` };
  const prediction = record[SAGEMAKER_OUTPUT_FIELD];
  const body = JSON.stringify(prediction);
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_PRECOMPUTED_BODY_BYTES) return { ok: false, reason: `${SAGEMAKER_OUTPUT_FIELD} is ${bytes} bytes; a precomputed answer holds at most ${MAX_PRECOMPUTED_BODY_BYTES}` };
  return { ok: true, recordId, prediction, body };
}

/**
 * The fields of one CSV line (RFC 4180: a field in double quotes may hold commas and `""` for a quote),
 * each with its raw text as the line writes it; undefined when a quote is not closed.
 */
export function splitCsvLine(line: string): { readonly values: string[]; readonly raw: string[] } | undefined {
  const values: string[] = [];
  const raw: string[] = [];
  let index = 0;
  for (;;) {
    const start = index;
    let value = '';
    if (line[index] === '"') {
      index += 1;
      for (;;) {
        const quote = line.indexOf('"', index);
        if (quote < 0) return undefined;
        value += line.slice(index, quote);
        if (line[quote + 1] === '"') {
          value += '"';
          index = quote + 2;
        } else {
          index = quote + 1;
          break;
        }
      }
      if (index < line.length && line[index] !== ',') return undefined; // text after a closing quote
    } else {
      const comma = line.indexOf(',', index);
      value = line.slice(index, comma < 0 ? line.length : comma);
      index = comma < 0 ? line.length : comma;
    }
    values.push(value);
    raw.push(line.slice(start, index));
    if (index >= line.length) return { values, raw };
    index += 1; // the comma
  }
}

/**
 * Reads one line of a batch transform's CSV output joined to its input (`JoinSource: Input`, usually
 * filtered to the id and the answer, e.g. inputFilter `$[1:]` and outputFilter `$[0,-1]`): the record id is
 * the field in column `idColumn` (from 0), and the answer is every other field, as the line writes them
 * (`c-1,0.91` answers `0.91`). The answer is CSV text, at most MAX_PRECOMPUTED_BODY_BYTES.
 */
export function parseJoinedCsvLine(line: string, idColumn: number): JoinedLine {
  const text = line.endsWith('\r') ? line.slice(0, -1) : line;
  const fields = splitCsvLine(text);
  if (fields === undefined) return { ok: false, reason: 'is not a CSV row (a quoted field is not closed)' };
  if (fields.values.length <= idColumn) return { ok: false, reason: `has ${fields.values.length} column(s): no record id at column ${idColumn}` };
  if (fields.values.length < 2) return { ok: false, reason: 'has no answer beside the record id' };
  const recordId = fields.values[idColumn] as string;
  if (recordId.length === 0) return { ok: false, reason: `record id at column ${idColumn} is empty` };
  if (LONE_SURROGATE.test(recordId)) return { ok: false, reason: `record id at column ${idColumn} is not well-formed Unicode` };
  const body = fields.raw.filter((_, column) => column !== idColumn).join(',');
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > MAX_PRECOMPUTED_BODY_BYTES) return { ok: false, reason: `the answer is ${bytes} bytes; a precomputed answer holds at most ${MAX_PRECOMPUTED_BODY_BYTES}` };
  return { ok: true, recordId, prediction: body, body };
}
