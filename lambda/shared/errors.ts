// The errors every handler turns into responses or workflow errors, and the helpers that read settings
// and unknown values without throwing. Kept apart from ./inference, whose request and route schemas a
// handler that needs only these (feature ingestion, for one) would otherwise bundle and build at start-up.
import type * as z from './zod';

/** Shape of every error body the API returns. */
export interface ErrorBody {
  readonly error: string;
  readonly message: string;
  readonly predictionId?: string;
}

/** Base class of the errors the API turns into HTTP responses. */
export abstract class InferenceError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;

  toBody(): ErrorBody {
    return { error: this.code, message: this.message };
  }
}

export type RequestErrorStatus = 400 | 404 | 405 | 409 | 413 | 415;

const REQUEST_ERROR_CODES: Record<RequestErrorStatus, string> = {
  400: 'BadRequest',
  404: 'NotFound',
  405: 'MethodNotAllowed',
  409: 'Conflict',
  413: 'PayloadTooLarge',
  415: 'UnsupportedMediaType',
};

/** The caller sent something we will not forward to the model. The message names the field. */
export class RequestError extends InferenceError {
  override readonly name = 'RequestError';
  readonly code: string;

  constructor(
    readonly status: RequestErrorStatus,
    message: string,
    /** Dotted path of the offending field (`body`, `payload`, `targetVariant`, `model`, ...). */
    readonly field?: string,
  ) {
    super(message);
    this.code = REQUEST_ERROR_CODES[status];
  }
}

export type UpstreamErrorStatus = 429 | 502 | 503 | 504;

/** The model endpoint (or the path to it) failed. Safe to show to the caller: no stack, no internals. */
export class UpstreamError extends InferenceError {
  override readonly name = 'UpstreamError';
  /** Set by {@link predict} so error responses can be correlated with endpoint logs / data capture. */
  predictionId?: string;

  /** Seconds the caller should wait before trying again, sent as `Retry-After` (an open circuit breaker sets it). */
  readonly retryAfterSeconds?: number;
  constructor(
    readonly status: UpstreamErrorStatus,
    readonly code: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  override toBody(): ErrorBody {
    return this.predictionId === undefined
      ? { error: this.code, message: this.message }
      : { error: this.code, message: this.message, predictionId: this.predictionId };
  }
}

/** The function's own configuration is unusable (for example a model's route). Always a 500. */
export class ConfigError extends InferenceError {
  override readonly name = 'ConfigError';
  readonly status = 500;
  readonly code = 'ConfigurationError';
}

/** Renders zod issues as `field.path: message; ...`, naming `body` when the issue is about the whole object. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], root = 'body'): string {
  return issues
    .map((issue) => {
      if (issue.code === 'unrecognized_keys') {
        const prefix = issue.path.length > 0 ? `${formatPath(issue.path, root)}.` : '';
        return `${issue.keys.map((key) => prefix + key).join(', ')}: unknown field`;
      }
      if (issue.code === 'invalid_key' && issue.issues.length > 0) {
        return `${formatPath(issue.path, root)}: invalid key: ${issue.issues.map((inner) => inner.message).join(', ')}`;
      }
      return `${formatPath(issue.path, root)}: ${issue.message}`;
    })
    .join('; ');
}

function formatPath(path: readonly PropertyKey[], root: string): string {
  if (path.length === 0) {
    return root;
  }
  // `items[0].id`, `[2].name`: an index follows its array without a dot.
  return path.reduce<string>((text, segment) => (typeof segment === 'number' ? `${text}[${segment}]` : text === '' ? String(segment) : `${text}.${String(segment)}`), '');
}

/** Dotted path of the field the first issue is about (`body` for the whole object). */
export function firstIssueField(issues: readonly z.core.$ZodIssue[], root = 'body'): string {
  const issue = issues[0];
  if (issue === undefined) {
    return root;
  }
  if (issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined) {
    return issue.path.length > 0 ? `${formatPath(issue.path, root)}.${issue.keys[0]}` : issue.keys[0];
  }
  return formatPath(issue.path, root);
}

/**
 * Parses a JSON environment variable with a zod schema. Throws {@link ConfigError} whose message
 * starts with the variable's name: `NAME: is not set`, `NAME: is not valid JSON`, `NAME: <path>: ...`.
 */
export function loadJsonSetting<S extends z.ZodMiniType>(raw: string | undefined, name: string, schema: S): z.output<S> {
  if (raw === undefined || raw.trim().length === 0) {
    throw new ConfigError(`${name}: is not set`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new ConfigError(`${name}: is not valid JSON`);
  }
  const result = schema.safeParse(json);
  if (!result.success) {
    throw new ConfigError(`${name}: ${formatIssues(result.error.issues, '(root)')}`);
  }
  return result.data;
}

/** Reads an own or inherited property without ever throwing (getters, proxies and null are tolerated). */
export function readProperty(value: unknown, key: string): unknown {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) {
    return undefined;
  }
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** A non-empty string property, read without ever throwing. */
export function readString(value: unknown, key: string): string | undefined {
  const property = readProperty(value, key);
  return typeof property === 'string' && property.length > 0 ? property : undefined;
}
