// The loader's pure parts (lambda/load-precomputed): its input, the continuation token that lets the
// workflow call it again where it stopped, the byte-exact line splitter that makes resuming inside an
// object possible, and the backoff of unprocessed writes. The item format and the reading of one line are
// the contract with the real-time side and live in ./precomputed. Nothing here talks to AWS.
import * as z from './zod';
import { formatIssues } from './errors';
import { MAX_CSV_ID_COLUMN, recordIdLocator, type RecordIdLocator } from './precomputed';

/** Items one BatchWriteItem call takes. */
export const MAX_BATCH_WRITE_ITEMS = 25;

/** Longest line read, in bytes: a longer one is counted invalid without being held in memory. */
export const MAX_LINE_BYTES = 1024 * 1024;

/** Invalid lines reported by line number (in the result and the logs); the rest are only counted. */
export const MAX_INVALID_SAMPLES = 10;

/** Longest reason kept for a reported invalid line. */
const MAX_REASON_CHARS = 300;

/** Bad input, named by field: not retried. */
export class PrecomputedInputError extends Error {
  override readonly name = 'PrecomputedInputError';

  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------------

const nonEmpty = (what: string) => z.string({ error: `is required (${what})` }).check(z.minLength(1, 'must be a non-empty string'));

const LoadInputSchema = z.object(
  {
    tableName: nonEmpty('the state table name'),
    model: nonEmpty('the model family'),
    modelVersion: nonEmpty('a string'),
    featureGroup: nonEmpty('the feature group the record ids belong to'),
    outputPrefix: z
      .string({ error: 'is required (s3://bucket/prefix/)' })
      .check(z.regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/(.*\/)?$/, 'must be s3://<bucket>/<prefix>/ (ending in /)')),
    recordIdField: nonEmpty('a field name or a JSON pointer; with format csv, a column number'),
    /** How the transform's output is written: JSON Lines joined records (default) or CSV rows. */
    format: z.optional(z.enum(['jsonl', 'csv'], { error: 'must be jsonl or csv' })),
    ttlSeconds: z
      .number({ error: 'is required (a number of seconds)' })
      .check(z.int('must be a whole number of seconds'), z.minimum(60, 'must be at least 60'), z.maximum(366 * 86_400, 'must be at most a year (31622400)')),
    /** When the answers were computed: an ISO 8601 time or ms since the epoch. Default: each object's LastModified. */
    computedAt: z.optional(z.union([z.string(), z.number()], { error: 'must be an ISO 8601 time or ms since the epoch' })),
    continuation: z.optional(z.nullable(z.string({ error: 'must be the continuation a previous call returned' }))),
  },
  { error: 'must be an object with tableName, model, modelVersion, featureGroup, outputPrefix, recordIdField and ttlSeconds' },
);

export interface LoadInput {
  readonly tableName: string;
  readonly model: string;
  readonly modelVersion: string;
  readonly featureGroup: string;
  readonly bucket: string;
  /** The key prefix (ends in `/`, or is empty). */
  readonly prefix: string;
  readonly outputPrefix: string;
  /** Where a JSON Lines record holds its id (format jsonl). */
  readonly locator: RecordIdLocator;
  readonly format: 'jsonl' | 'csv';
  /** The column of a CSV row that holds its id (format csv). */
  readonly idColumn?: number;
  readonly ttlSeconds: number;
  /** ms since the epoch; undefined: each object's LastModified. */
  readonly computedAt?: number;
  readonly continuation?: string;
}

/** Validates the loader's event; throws {@link PrecomputedInputError} naming the first bad field. */
export function parseLoadInput(event: unknown): LoadInput {
  const result = LoadInputSchema.safeParse(event);
  if (!result.success) {
    const first = result.error.issues[0];
    const field = first === undefined || first.path.length === 0 ? 'input' : String(first.path[0]);
    throw new PrecomputedInputError(formatIssues(result.error.issues, 'input'), field);
  }
  const data = result.data;
  const format = data.format ?? 'jsonl';
  let locator: RecordIdLocator;
  try {
    locator = recordIdLocator(data.recordIdField);
  } catch (error) {
    throw new PrecomputedInputError((error as Error).message, 'recordIdField');
  }
  const idColumn = format === 'csv' ? Number(data.recordIdField) : undefined;
  if (idColumn !== undefined && !(/^\d{1,3}$/.test(data.recordIdField) && idColumn <= MAX_CSV_ID_COLUMN)) {
    throw new PrecomputedInputError(`recordIdField: must be a column number from 0 to ${MAX_CSV_ID_COLUMN} with format csv; got ${JSON.stringify(data.recordIdField)}`, 'recordIdField');
  }
  let computedAt: number | undefined;
  if (data.computedAt !== undefined) {
    computedAt = typeof data.computedAt === 'number' ? data.computedAt : Date.parse(data.computedAt);
    if (!Number.isFinite(computedAt) || computedAt < 0) throw new PrecomputedInputError(`computedAt: must be an ISO 8601 time or ms since the epoch; got ${JSON.stringify(data.computedAt)}`, 'computedAt');
  }
  const location = /^s3:\/\/([^/]+)\/(.*)$/.exec(data.outputPrefix) as RegExpExecArray;
  return {
    tableName: data.tableName,
    model: data.model,
    modelVersion: data.modelVersion,
    featureGroup: data.featureGroup,
    bucket: location[1] as string,
    prefix: location[2] as string,
    outputPrefix: data.outputPrefix,
    locator,
    format,
    ...(idColumn === undefined ? {} : { idColumn }),
    ttlSeconds: data.ttlSeconds,
    ...(computedAt === undefined ? {} : { computedAt }),
    ...(data.continuation === undefined || data.continuation === null ? {} : { continuation: data.continuation }),
  };
}

// ---------------------------------------------------------------------------------------------
// Progress and the continuation token
// ---------------------------------------------------------------------------------------------

/** One invalid line, reported with its object and line number (1-based). */
export interface InvalidLine {
  readonly object: string;
  readonly line: number;
  readonly reason: string;
}

/** Where a load stands: what the result reports, and where the next call goes on. */
export interface LoadProgress {
  /** Lines written as items. */
  readonly loaded: number;
  /** Lines that are no answer (not JSON, no SageMakerOutput, no usable record id, too large). */
  readonly invalid: number;
  /** `.out` objects read to their end. */
  readonly objects: number;
  /** The first MAX_INVALID_SAMPLES invalid lines. */
  readonly invalidLines: readonly InvalidLine[];
  /** The last object read to its end; the next listing starts after it. */
  readonly after?: string;
  /** The object the previous call stopped inside: its ETag, the byte offset and the number of the last line it read. */
  readonly current?: { readonly key: string; readonly etag: string; readonly offset: number; readonly line: number };
}

export const EMPTY_PROGRESS: LoadProgress = { loaded: 0, invalid: 0, objects: 0, invalidLines: [] };

const count = z.number().check(z.int(), z.nonnegative());
const TokenSchema = z.object({
  v: z.literal(1),
  prefix: z.string(),
  loaded: count,
  invalid: count,
  objects: count,
  invalidLines: z.array(z.object({ object: z.string(), line: count, reason: z.string() })).check(z.maxLength(MAX_INVALID_SAMPLES)),
  after: z.optional(z.string()),
  current: z.optional(z.object({ key: z.string(), etag: z.string(), offset: count, line: count })),
});

/** The continuation token: the progress, bound to the output prefix it is about (base64url JSON). */
export function encodeContinuation(outputPrefix: string, progress: LoadProgress): string {
  return Buffer.from(JSON.stringify({ v: 1, prefix: outputPrefix, ...progress }), 'utf8').toString('base64url');
}

/** Reads a continuation token; throws {@link PrecomputedInputError} when it is not one for this output prefix. */
export function decodeContinuation(token: string, outputPrefix: string): LoadProgress {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new PrecomputedInputError('continuation: is not a continuation this function returned', 'continuation');
  }
  const result = TokenSchema.safeParse(json);
  if (!result.success) throw new PrecomputedInputError('continuation: is not a continuation this function returned', 'continuation');
  const { v: _version, prefix, ...progress } = result.data;
  if (prefix !== outputPrefix) throw new PrecomputedInputError(`continuation: was returned for ${prefix}, not ${outputPrefix}`, 'continuation');
  return progress;
}

/** Adds one invalid line to the reported ones, while there is room. */
export function withInvalidSample(samples: readonly InvalidLine[], sample: InvalidLine): readonly InvalidLine[] {
  if (samples.length >= MAX_INVALID_SAMPLES) return samples;
  return [...samples, { ...sample, reason: sample.reason.length > MAX_REASON_CHARS ? `${sample.reason.slice(0, MAX_REASON_CHARS - 1)}…` : sample.reason }];
}

// ---------------------------------------------------------------------------------------------
// Lines, with their byte offsets
// ---------------------------------------------------------------------------------------------

/** One line of an object: its bytes (without the newline), where it starts and where the next one does. */
export interface SplitLine {
  /** The line's bytes, `\r\n` and `\n` removed; undefined when it is longer than the limit. */
  readonly bytes: Uint8Array | undefined;
  /** Byte offset of the line's first byte in the object. */
  readonly start: number;
  /** Byte offset just after its newline (of the next line). */
  readonly end: number;
}

/**
 * Splits a byte stream that starts at `startOffset` of an object into lines, at `\n` bytes (which never
 * occur inside a UTF-8 sequence, so no character is cut). A line over `maxLineBytes` is reported without
 * its bytes and is not held in memory. A last line without a newline is a line. The bytes of a line are
 * valid until the next one is asked for.
 */
export async function* splitLines(chunks: AsyncIterable<Uint8Array>, startOffset = 0, maxLineBytes = MAX_LINE_BYTES): AsyncGenerator<SplitLine> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let tooLong = false;
  let lineStart = startOffset;
  let position = startOffset;
  const line = (piece: Buffer): SplitLine => {
    let bytes: Buffer | undefined;
    if (!tooLong && pendingBytes + piece.length <= maxLineBytes) {
      bytes = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      if (bytes.length > 0 && bytes[bytes.length - 1] === 0x0d) bytes = bytes.subarray(0, bytes.length - 1);
    }
    const split = { bytes, start: lineStart, end: position };
    pending = [];
    pendingBytes = 0;
    tooLong = false;
    lineStart = position;
    return split;
  };
  for await (const chunk of chunks) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let from = 0;
    for (;;) {
      const newline = buffer.indexOf(0x0a, from);
      if (newline === -1) {
        const rest = buffer.subarray(from);
        position += rest.length;
        if (!tooLong) {
          if (pendingBytes + rest.length > maxLineBytes) {
            tooLong = true;
            pending = [];
            pendingBytes = 0;
          } else if (rest.length > 0) {
            // Copied: the stream may reuse the chunk's memory.
            pending.push(Buffer.from(rest));
            pendingBytes += rest.length;
          }
        }
        break;
      }
      const piece = buffer.subarray(from, newline);
      position += piece.length + 1;
      yield line(piece);
      from = newline + 1;
    }
  }
  if (tooLong || pendingBytes > 0) yield line(Buffer.alloc(0));
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A line's text, or undefined when its bytes are not UTF-8. */
export function decodeLine(bytes: Uint8Array): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Writes
// ---------------------------------------------------------------------------------------------

/** Delay before retrying unprocessed items the `attempt`-th time (0-based): full jitter over a doubling, capped window. */
export function backoffDelayMs(attempt: number, random: () => number = Math.random, baseMs = 50, capMs = 5_000): number {
  return Math.floor(random() * Math.min(capMs, baseMs * 2 ** attempt));
}

const RETRIABLE_WRITE_ERRORS = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TimeoutError',
  'RequestTimeout',
]);

/** Whether a failed BatchWriteItem call is worth running again later (throttling, 5xx, network). */
export function isRetriableWriteError(error: unknown): boolean {
  const value = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown }; $retryable?: unknown; code?: unknown } | null;
  if (value === null || typeof value !== 'object') return false;
  if (typeof value.name === 'string' && RETRIABLE_WRITE_ERRORS.has(value.name)) return true;
  const status = value.$metadata?.httpStatusCode;
  if (typeof status === 'number' && (status >= 500 || status === 429)) return true;
  if (value.$retryable !== undefined) return true;
  return typeof value.code === 'string' && /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN)$/.test(value.code);
}
