// Pure logic of the real-time inference API (POST /models/{model}/predict).
//
// Nothing in this module talks to AWS: the handler in lambda/invoke wires an InferenceBackend that
// calls SageMaker, and everything else (request validation, routing, error mapping, response
// shaping) lives here so it can be unit- and property-tested without a network.
import { ConfigError, firstIssueField, formatIssues, InferenceError, loadJsonSetting, readProperty, readString, RequestError, UpstreamError, type ErrorBody, type UpstreamErrorStatus } from './errors';
import { chainInput, combine, CompositeRouteSchema, DEFAULT_COMPOSITE_TIMEOUT_MS, extract, ExtractionError, isConfident, quorumOf, stackingPayload, toLabel, toScore, type CascadeSpec, type ChainSpec, type CompositeRoute, type CompositeSpec, type EnsembleSpec } from './composite';
import { isFresh, precomputedKey, type PrecomputedPrediction } from './precomputed';
import { optsOut, predictionCacheKey, type TieredPredictionCache } from './prediction-cache';
import * as z from './zod';

// The errors and the settings helpers live in ./errors, so that a handler that needs only those does not
// bundle the request and route schemas below; they are re-exported for the modules that import them from here.
export { ConfigError, firstIssueField, formatIssues, InferenceError, loadJsonSetting, readProperty, readString, RequestError, UpstreamError } from './errors';
export type { ErrorBody, RequestErrorStatus, UpstreamErrorStatus } from './errors';
export type { CompositeRoute, CompositeSpec } from './composite';

// ---------------------------------------------------------------------------------------------
// Limits and shared patterns
// ---------------------------------------------------------------------------------------------

/**
 * Largest request body accepted, in bytes. SageMaker real-time InvokeEndpoint rejects payloads
 * above 6 MB; 5 MB leaves headroom for the JSON envelope and keeps the failure a clear 413 from
 * us instead of an opaque ValidationError from the endpoint.
 */
export const MAX_REQUEST_BODY_BYTES = 5 * 1024 * 1024;

/** SageMaker's pattern for endpoint and production-variant names. */
export const SAGEMAKER_NAME_PATTERN = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/** Characters allowed in a caller-supplied inference id (SageMaker allows 1..64 of these). */
export const INFERENCE_ID_PATTERN = /^[A-Za-z0-9\-_.]{1,64}$/;

/** Longest caller id accepted for sticky variant assignment (it is hashed, never stored or forwarded). */
export const MAX_CALLER_ID_LENGTH = 256;

export const CONTENT_TYPES = ['application/json', 'text/csv'] as const;
export type InferenceContentType = (typeof CONTENT_TYPES)[number];

// ---------------------------------------------------------------------------------------------
// Request schema and parsing
// ---------------------------------------------------------------------------------------------

const ContentTypeSchema = z.enum(CONTENT_TYPES, {
  error: () => `Invalid content type: expected one of ${CONTENT_TYPES.join(', ')}`,
});

export const VariantNameSchema = z
  .string({ error: 'Invalid variant name: expected a string' })
  .check(
    z.regex(
      SAGEMAKER_NAME_PATTERN,
      'Invalid variant name: expected 1-63 letters, digits or hyphens, starting and ending with a letter or digit',
    ),
  );

/** HTTP body of POST /models/{model}/predict. */
export const PredictRequestSchema = z
  .strictObject({
    /** The model input: any JSON value, or a string of CSV rows when contentType is text/csv. */
    // Typed as classic zod's `.refine()` typed it: narrowed by the type predicate to anything but undefined.
    payload: z.unknown().check(z.refine((value) => value !== undefined, { message: 'is required' })) as z.ZodMiniType<NonNullable<unknown> | null, unknown>,
    contentType: z._default(ContentTypeSchema, 'application/json'),
    accept: z._default(ContentTypeSchema, 'application/json'),
    targetVariant: z.optional(VariantNameSchema),
    inferenceId: z.optional(
      z
        .string({ error: 'Invalid inference id: expected a string' })
        .check(z.regex(INFERENCE_ID_PATTERN, 'Invalid inference id: expected 1-64 characters from A-Z a-z 0-9 - _ .')),
    ),
    /**
     * Stable id of the caller (user, account, session...) for sticky A/B assignment. Only its
     * SHA-256 is logged; it is never sent to the model.
     */
    callerId: z.optional(
      z
        .string({ error: 'Invalid caller id: expected a string' })
        .check(
          z.minLength(1, 'Invalid caller id: expected 1-256 characters'),
          z.maxLength(MAX_CALLER_ID_LENGTH, 'Invalid caller id: expected 1-256 characters'),
        ),
    ),
    /** `false`: neither served from nor stored in the prediction cache (as `Cache-Control: no-cache`). */
    cache: z.optional(z.boolean({ error: 'Invalid cache flag: expected true or false' })),
    /**
     * Enrich the payload with the entity's online features before the model sees it: they are added
     * to the (JSON object) payload as `features`.
     */
    entity: z.optional(
      z.strictObject({
        featureGroup: z.string({ error: 'Invalid feature group: expected a string' }).check(z.minLength(1, 'Invalid feature group: expected a name')),
        recordId: z.string({ error: 'Invalid record id: expected a string' }).check(z.minLength(1, 'Invalid record id: expected a non-empty string')),
      }),
    ),
  })
  .check(
    z.superRefine((request, ctx) => {
      if (request.contentType === 'text/csv' && typeof request.payload !== 'string') {
        ctx.addIssue({
          code: 'custom',
          path: ['payload'],
          message: 'must be a string when contentType is text/csv',
        });
      }
      const isObject = typeof request.payload === 'object' && request.payload !== null && !Array.isArray(request.payload);
      if (request.entity !== undefined && (request.contentType !== 'application/json' || !isObject)) {
        ctx.addIssue({ code: 'custom', path: ['entity'], message: 'enrichment adds `features` to the payload, so the payload must be a JSON object' });
      }
    }),
  );

export type PredictRequest = z.output<typeof PredictRequestSchema>;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Validates the raw API Gateway body. Throws {@link RequestError} (400, or 413 when the body is
 * larger than {@link MAX_REQUEST_BODY_BYTES}) whose message starts with the offending field.
 */
export function parseRequest(rawBody: string | null | undefined, isBase64Encoded = false): PredictRequest {
  const json = decodeJsonBody(rawBody, isBase64Encoded, {
    maxBytes: MAX_REQUEST_BODY_BYTES,
    missing: 'body: is required (a JSON object with a "payload" field)',
    tooLarge: `body: exceeds the ${MAX_REQUEST_BODY_BYTES / (1024 * 1024)} MB limit for real-time inference; use batch transform or asynchronous inference for larger payloads`,
  });
  const result = PredictRequestSchema.safeParse(json);
  if (!result.success) {
    throw new RequestError(400, formatIssues(result.error.issues), firstIssueField(result.error.issues));
  }
  return result.data;
}

export interface JsonBodyLimits {
  /** Largest accepted body in bytes (after base64 decoding). */
  readonly maxBytes: number;
  /** Message of the 400 for a missing or empty body; should start with `body: `. */
  readonly missing: string;
  /** Message of the 413 for an oversized body; should start with `body: `. */
  readonly tooLarge: string;
}

/**
 * Decodes an API Gateway body (optionally base64) as UTF-8 JSON. Throws {@link RequestError} naming
 * `body`: 400 when it is missing, not UTF-8 or not JSON, 413 when it exceeds `limits.maxBytes`.
 */
export function decodeJsonBody(rawBody: string | null | undefined, isBase64Encoded: boolean, limits: JsonBodyLimits): unknown {
  if (rawBody === null || rawBody === undefined || rawBody.length === 0) {
    throw new RequestError(400, limits.missing, 'body');
  }
  const tooLarge = (): RequestError => new RequestError(413, limits.tooLarge, 'body');

  let text: string;
  if (isBase64Encoded) {
    // Four base64 characters encode three bytes; reject before decoding anything huge.
    if (Math.floor((rawBody.length * 3) / 4) > limits.maxBytes + 2) {
      throw tooLarge();
    }
    const bytes = Buffer.from(rawBody, 'base64');
    if (bytes.byteLength > limits.maxBytes) {
      throw tooLarge();
    }
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new RequestError(400, 'body: must be UTF-8 encoded JSON', 'body');
    }
  } else {
    // A string's UTF-8 size is at least its length, so a long string is rejected without measuring.
    if (rawBody.length > limits.maxBytes || Buffer.byteLength(rawBody, 'utf8') > limits.maxBytes) {
      throw tooLarge();
    }
    text = rawBody;
  }

  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new RequestError(400, 'body: must be valid JSON', 'body');
  }
}

// ---------------------------------------------------------------------------------------------
// Routing table (one route per model family; see lambda/shared/routes.ts for where it is read from)
// ---------------------------------------------------------------------------------------------

export const VariantRouteSchema = z.object({
  /** Version label reported to callers, e.g. a model package version or a git sha. */
  modelVersion: z.string().check(z.minLength(1, 'must be a non-empty string')),
  /**
   * Relative share of sticky-assigned callers sent to this variant (normalised over the model's
   * variants; 0 for a variant only requests that name it reach, as SageMaker allows). Required on every
   * variant of a sticky route; ignored otherwise (SageMaker then splits traffic by the endpoint's own
   * variant weights).
   */
  weight: z.optional(
    z.number({ error: 'must be a number' }).check(z.nonnegative('must be at least 0'), z.maximum(1e9, 'must be at most 1000000000')),
  ),
});

export const StickyRoutingSchema = z.strictObject({
  /**
   * Mixed into the caller-id hash. Changing it re-shuffles every caller, so use a new salt per
   * experiment and keep it for the experiment's lifetime.
   */
  salt: z.string({ error: 'must be a string' }).check(z.minLength(1, 'must be a non-empty string'), z.maxLength(256, 'must be at most 256 characters')),
});

export const PredictionCacheRouteSchema = z.strictObject({
  ttlSeconds: z.number({ error: 'must be a number' }).check(z.int('must be a whole number'), z.minimum(1, 'must be at least 1'), z.maximum(86_400, 'must be at most 86400 (a day)')),
});

const positiveInt = (max: number) => z.number({ error: 'must be a number' }).check(z.int('must be a whole number'), z.minimum(1, 'must be at least 1'), z.maximum(max, `must be at most ${max}`));

/** Longest a precomputed answer may be served for: 30 days. */
export const MAX_PRECOMPUTED_AGE_SECONDS = 30 * 86_400;

export const PrecomputedRouteSchema = z.strictObject({
  /** A precomputed answer older than this is not served (the model answers instead). */
  maxAgeSeconds: positiveInt(MAX_PRECOMPUTED_AGE_SECONDS),
});

export const BreakerRouteSchema = z.strictObject({
  windowSeconds: positiveInt(3_600),
  failureRateThreshold: z.number({ error: 'must be a number' }).check(z.gt(0, 'must be above 0'), z.lt(1, 'must be below 1')),
  minimumCalls: positiveInt(10_000),
  coolDownSeconds: positiveInt(3_600),
  probes: positiveInt(100),
});

export const FallbackRouteSchema = z
  .strictObject({
    /** Another production variant of the same endpoint (a simpler model), called with TargetVariant. */
    variant: z.optional(VariantNameSchema),
    /** A fixed answer, returned as the prediction. */
    static: z.optional(z.unknown()),
  })
  .check(z.refine((fallback) => fallback.variant !== undefined || fallback.static !== undefined, { message: 'must name a variant or a static answer' }));

export const ModelRouteSchema = z
  .object({
    endpointName: z.string().check(z.regex(SAGEMAKER_NAME_PATTERN, 'Invalid endpoint name: expected 1-63 letters, digits or hyphens')),
    variants: z
      .record(VariantNameSchema, VariantRouteSchema)
      .check(z.refine((variants) => Object.keys(variants).length > 0, { message: 'must define at least one variant' })),
    /** Present when callers that send a callerId are pinned to a variant by a salted hash of it. */
    sticky: z.optional(StickyRoutingSchema),
    /** Present when the model's answers are cached (lambda/shared/prediction-cache.ts), for this long. */
    cache: z.optional(PredictionCacheRouteSchema),
    /** Present when a circuit breaker guards the model's endpoint (lambda/shared/circuit-breaker.ts). */
    breaker: z.optional(BreakerRouteSchema),
    /** What answers, marked degraded, when the endpoint fails or its breaker is open: tried in this order. */
    fallback: z.optional(FallbackRouteSchema),
    /** Present when the batch layer loads answers per entity (lambda/shared/precomputed.ts) for the model. */
    precomputed: z.optional(PrecomputedRouteSchema),
  })
  .check(
    z.superRefine((route, ctx) => {
      if (route.sticky === undefined) {
        return;
      }
      let total = 0;
      for (const [name, variant] of Object.entries(route.variants)) {
        if (variant.weight === undefined) {
          ctx.addIssue({
            code: 'custom',
            path: ['variants', name, 'weight'],
            message: 'is required on every variant when sticky routing is on',
          });
        } else {
          total += variant.weight;
        }
      }
      if (total === 0 && Object.values(route.variants).every((variant) => variant.weight !== undefined)) {
        ctx.addIssue({ code: 'custom', path: ['variants'], message: 'sticky routing needs a variant with a weight above 0' });
      }
    }),
  );

/**
 * A routing table: model name (the `{model}` path parameter) -> endpoint and its variants, or a composite
 * (lambda/shared/composite.ts) of other models. Each entry is one route parameter.
 */
export const RoutingTableSchema = z
  .record(
    z.string().check(z.minLength(1, 'model names must be non-empty')),
    // Each entry is checked by the schema its shape calls for (see parseRouteEntry): a union would report
    // only "Invalid input" for a route that is wrong in one field.
    z.pipe(
      z.unknown(),
      z.transform((value, ctx): ModelRouteOrComposite => {
        const result = parseRouteEntry(value);
        if (result.success) return result.data;
        for (const issue of result.issues) ctx.issues.push({ ...issue, input: value } as (typeof ctx.issues)[number]);
        return z.NEVER;
      }),
    ),
  )
  .check(z.refine((table) => Object.keys(table).length > 0, { message: 'must define at least one model' }));

type ModelRouteOrComposite = z.output<typeof ModelRouteSchema> | CompositeRoute;
export type RoutingTable = z.output<typeof RoutingTableSchema>;
export type ModelRoute = z.output<typeof ModelRouteSchema>;
/** What a route parameter holds: a model's endpoint route, or a composite of other models. */
export type RouteEntry = ModelRoute | CompositeRoute;

/** Whether a route entry is a composite's. */
export function isComposite(entry: RouteEntry): entry is CompositeRoute {
  return Object.hasOwn(entry, 'composite');
}

/**
 * Parses a route parameter's JSON with the schema its shape calls for (a document with `composite` is a
 * composite's), so that its problems are reported against the right fields.
 */
export function parseRouteEntry(json: unknown): { readonly success: true; readonly data: RouteEntry } | { readonly success: false; readonly issues: readonly z.core.$ZodIssue[] } {
  const composite = json !== null && typeof json === 'object' && Object.hasOwn(json, 'composite');
  const result = composite ? CompositeRouteSchema.safeParse(json) : ModelRouteSchema.safeParse(json);
  return result.success ? { success: true, data: result.data } : { success: false, issues: result.error.issues };
}

/** Parses and validates MODEL_ROUTES. Throws {@link ConfigError} whose message starts with `MODEL_ROUTES:`. */
export function loadRoutingTable(raw: string | undefined, name = 'MODEL_ROUTES'): RoutingTable {
  return loadJsonSetting(raw, name, RoutingTableSchema);
}

/** A model resolved against the routing table. */
export interface ResolvedRoute {
  readonly model: string;
  readonly endpointName: string;
  readonly targetVariant?: string;
  readonly variants: Readonly<Record<string, { readonly modelVersion: string; readonly weight?: number }>>;
  /** Set when the model pins callers to variants (see {@link StickyRoutingSchema}). */
  readonly sticky?: { readonly salt: string };
  /** Set when the model's answers are cached. */
  readonly cache?: { readonly ttlSeconds: number };
  readonly breaker?: z.output<typeof BreakerRouteSchema>;
  readonly fallback?: z.output<typeof FallbackRouteSchema>;
  /** The container to call on a multi-container endpoint in Direct mode (ensemble members only). */
  readonly targetContainer?: string;
  /** Set when requests that name an entity may be answered by the batch layer's precomputed answer. */
  readonly precomputed?: { readonly maxAgeSeconds: number };
}

/** Something that answers a model's route: the SSM-backed cache of lambda/shared/routes.ts or a table in memory. */
export interface RouteSource {
  /** The model's route; `undefined` when the model is unknown. */
  route(model: string): Promise<RouteEntry | undefined>;
}

/**
 * Looks the model up in the routing table. Unknown model -> 404 listing the known models; unknown
 * target variant -> 400 naming it and listing the model's variants.
 */
export function resolveRoute(table: RoutingTable, modelName: string, targetVariant?: string): ResolvedRoute {
  return endpointRoute(modelName, tableEntry(table, modelName), targetVariant);
}

function tableEntry(table: RoutingTable, modelName: string): RouteEntry {
  if (!Object.hasOwn(table, modelName)) {
    throw new RequestError(
      404,
      `model: unknown model ${JSON.stringify(modelName)}; known models: ${listNames(Object.keys(table))}`,
      'model',
    );
  }
  return table[modelName] as RouteEntry;
}

/**
 * Looks the model up in a route source (a fleet's routes are not listed, so a 404 names only the
 * model); unknown target variant -> 400 as {@link resolveRoute}. A composite's name is a 400: it has no
 * endpoint of its own (see {@link resolveEntryFrom}).
 */
export async function resolveRouteFrom(routes: RoutingTable | RouteSource, modelName: string, targetVariant?: string): Promise<ResolvedRoute> {
  return endpointRoute(modelName, await entryFrom(routes, modelName), targetVariant);
}

/** A model's route entry as {@link resolveRouteFrom} finds it, composites included: 404 when there is none. */
export async function resolveEntryFrom(routes: RoutingTable | RouteSource, modelName: string): Promise<RouteEntry> {
  return entryFrom(routes, modelName);
}

async function entryFrom(routes: RoutingTable | RouteSource, modelName: string): Promise<RouteEntry> {
  if (!isRouteSource(routes)) return tableEntry(routes, modelName);
  const route = await routes.route(modelName);
  if (route === undefined) {
    throw new RequestError(404, `model: unknown model ${JSON.stringify(modelName)}`, 'model');
  }
  return route;
}

function endpointRoute(modelName: string, entry: RouteEntry, targetVariant: string | undefined): ResolvedRoute {
  if (isComposite(entry)) {
    throw new RequestError(400, `model: ${JSON.stringify(modelName)} is a composite (${entry.composite.kind}) of other models, not a model with an endpoint`, 'model');
  }
  return routeFor(modelName, entry, targetVariant);
}

function isRouteSource(routes: RoutingTable | RouteSource): routes is RouteSource {
  // A table's values are routes (objects), never functions, whatever its models are called.
  return typeof (routes as Partial<RouteSource>).route === 'function';
}

function routeFor(modelName: string, route: ModelRoute, targetVariant: string | undefined): ResolvedRoute {
  if (targetVariant !== undefined && !Object.hasOwn(route.variants, targetVariant)) {
    throw new RequestError(
      400,
      `targetVariant: unknown variant ${JSON.stringify(targetVariant)} for model ${JSON.stringify(modelName)}; variants: ${listNames(Object.keys(route.variants))}`,
      'targetVariant',
    );
  }
  return {
    model: modelName,
    endpointName: route.endpointName,
    variants: route.variants,
    ...(targetVariant === undefined ? {} : { targetVariant }),
    ...(route.sticky === undefined ? {} : { sticky: route.sticky }),
    ...(route.cache === undefined ? {} : { cache: route.cache }),
    ...(route.breaker === undefined ? {} : { breaker: route.breaker }),
    ...(route.fallback === undefined ? {} : { fallback: route.fallback }),
    ...(route.precomputed === undefined ? {} : { precomputed: route.precomputed }),
  };
}

function listNames(names: readonly string[]): string {
  return names.length === 0 ? '(none)' : [...names].sort().join(', ');
}

// ---------------------------------------------------------------------------------------------
// Backend abstraction and composition
// ---------------------------------------------------------------------------------------------

/** One call to a model endpoint, already serialised. */
export interface ModelInvocation {
  readonly endpointName: string;
  readonly body: Uint8Array | string;
  readonly contentType: InferenceContentType;
  readonly accept: InferenceContentType;
  readonly targetVariant?: string;
  readonly inferenceId: string;
  /** The route's circuit-breaker settings, when a breaker guards the endpoint. */
  readonly breaker?: z.output<typeof BreakerRouteSchema>;
  /** A container of a multi-container endpoint in Direct mode (an ensemble member's `container`). */
  readonly targetContainerHostname?: string;
  /** Aborts the call: an ensemble member or composite stage that ran out of time. */
  readonly signal?: AbortSignal;
}

/** What a model endpoint answered. */
export interface ModelResult {
  readonly body: string;
  readonly contentType?: string;
  readonly invokedVariant?: string;
}

/** Calls a model. Implementations should throw {@link UpstreamError} (or errors {@link classifySageMakerError} understands). */
export type InferenceBackend = (invocation: ModelInvocation) => Promise<ModelResult>;

/** Wraps a backend; prediction cache, circuit breaker with fallback, cascades and ensembles plug in here. */
export type InferenceMiddleware = (next: InferenceBackend) => InferenceBackend;

/**
 * Composes middlewares around a backend. The first middleware is the outermost:
 * `composeBackend(b, m1, m2)` behaves as `m1(m2(b))`, so an invocation passes m1, then m2, then b,
 * and the result travels back through m2, then m1.
 */
export function composeBackend(backend: InferenceBackend, ...middlewares: readonly InferenceMiddleware[]): InferenceBackend {
  return middlewares.reduceRight<InferenceBackend>((next, middleware) => middleware(next), backend);
}

/** Structural subset of SageMaker's InvokeEndpoint input, so this module needs no SDK import. */
export interface InvokeEndpointInputLike {
  EndpointName: string;
  Body: Uint8Array | string;
  ContentType: string;
  Accept: string;
  TargetVariant?: string;
  TargetContainerHostname?: string;
  InferenceId: string;
}

/** Structural subset of SageMaker's InvokeEndpoint output. */
export interface InvokeEndpointOutputLike {
  Body?: Uint8Array;
  ContentType?: string;
  InvokedProductionVariant?: string;
}

/**
 * Adapts an InvokeEndpoint call (e.g. `(input) => client.send(new InvokeEndpointCommand(input))`)
 * into an {@link InferenceBackend} that throws only {@link UpstreamError}s, so middlewares see
 * classified failures (the SDK error is kept as `cause` for logging).
 */
export function sageMakerBackend(
  invokeEndpoint: (input: InvokeEndpointInputLike, signal?: AbortSignal) => Promise<InvokeEndpointOutputLike>,
): InferenceBackend {
  const decoder = new TextDecoder();
  return async (invocation) => {
    let output: InvokeEndpointOutputLike;
    try {
      output = await invokeEndpoint({
        EndpointName: invocation.endpointName,
        Body: invocation.body,
        ContentType: invocation.contentType,
        Accept: invocation.accept,
        InferenceId: invocation.inferenceId,
        ...(invocation.targetVariant === undefined ? {} : { TargetVariant: invocation.targetVariant }),
        ...(invocation.targetContainerHostname === undefined ? {} : { TargetContainerHostname: invocation.targetContainerHostname }),
      }, invocation.signal);
    } catch (error) {
      throw classifySageMakerError(error);
    }
    return {
      body: output.Body === undefined ? '' : decoder.decode(output.Body),
      ...(output.ContentType === undefined ? {} : { contentType: output.ContentType }),
      ...(output.InvokedProductionVariant === undefined ? {} : { invokedVariant: output.InvokedProductionVariant }),
    };
  };
}

// ---------------------------------------------------------------------------------------------
// Prediction
// ---------------------------------------------------------------------------------------------

/** Produces prediction ids; the handler passes crypto.randomUUID. Must return 1..64 chars of [A-Za-z0-9-_.]. */
export type IdGenerator = () => string;

export interface PredictionResult {
  readonly predictionId: string;
  readonly model: string;
  readonly variant: string;
  readonly modelVersion: string;
  /** Parsed JSON when the model answered with a JSON content type, otherwise the raw text. */
  readonly prediction: unknown;
  readonly contentType: string;
  /**
   * For a model whose answers are cached: `hit` (the variant and model version are the ones that answered
   * then), `miss` (the model answered, and the answer was kept), or `bypass` (the request opted out, or
   * SageMaker picks the variant, so a cached answer could change who sees which variant).
   */
  readonly cache?: CacheStatus;
  /** Set when a fallback answered because the endpoint failed or its breaker was open. */
  readonly degraded?: true;
  /**
   * Which fallback answered: `variant` (another variant of the endpoint), `precomputed` (the batch layer's
   * answer for the entity, however old) or `static` (the configured answer).
   */
  readonly fallback?: FallbackKind;
  /**
   * For a model the batch layer precomputes: `precomputed` (a fresh precomputed answer for the request's
   * entity; variant `batch`, model version the one that computed it) or `realtime` (the endpoint answered).
   */
  readonly source?: 'precomputed' | 'realtime';
  /** A composite's: how its answer was made (`ensemble`, `cascade` or `chain`). */
  readonly composite?: CompositeSpec['kind'];
  /** An ensemble's: each member's output or failure, in member order. */
  readonly members?: readonly MemberOutcome[];
  /** An ensemble's: the combiner, and for votes the share of the votes the answer got. */
  readonly combiner?: string;
  readonly agreement?: number;
  /** A cascade's or chain's: the stages that ran, in order. */
  readonly stages?: readonly StageOutcome[];
}

/** What one ensemble member did. `degraded` members answered with their static fallback, which is not combined. */
export interface MemberOutcome {
  readonly model: string;
  readonly status: 'answered' | 'degraded' | 'failed';
  readonly variant?: string;
  readonly container?: string;
  readonly modelVersion?: string;
  /** The value the combiner used (the member's answer read by `output`). */
  readonly output?: unknown;
  readonly cache?: CacheStatus;
  readonly fallback?: FallbackKind;
  readonly error?: { readonly status: number; readonly code: string; readonly message: string };
}

/** What one cascade or chain stage did: a cascade's stage `answered` or `escalated` (not confident, or failed). */
export interface StageOutcome {
  readonly model: string;
  readonly status: 'answered' | 'escalated' | 'failed';
  readonly variant?: string;
  readonly modelVersion?: string;
  readonly confidence?: number;
  /** Why a cascade stage's confidence could not be read. */
  readonly problem?: string;
  readonly cache?: CacheStatus;
  readonly fallback?: FallbackKind;
  readonly error?: { readonly status: number; readonly code: string; readonly message: string };
}

export type CacheStatus = 'hit' | 'miss' | 'bypass';

/** The fallbacks, in the order they are tried. */
export type FallbackKind = 'variant' | 'precomputed' | 'static';

/** The variant a precomputed answer reports: the batch layer's, not one of the endpoint's. */
export const PRECOMPUTED_VARIANT = 'batch';

/** Value used for variant / modelVersion when SageMaker's answer cannot be matched to the routing table. */
export const UNKNOWN = 'unknown';

/**
 * Serialises the payload, calls the backend and shapes the answer. The prediction id is the
 * caller's inferenceId or a fresh id, and is sent to SageMaker as InferenceId so it appears in
 * data capture. Backend failures are rethrown as {@link UpstreamError} carrying the prediction id.
 */
export async function predict(
  request: PredictRequest,
  route: ResolvedRoute,
  backend: InferenceBackend,
  ids: IdGenerator,
  signal?: AbortSignal,
): Promise<PredictionResult> {
  const predictionId = request.inferenceId ?? ids();
  const body = serialisePayload(request);
  const targetVariant = request.targetVariant ?? route.targetVariant;

  let result: ModelResult;
  try {
    result = await backend({
      endpointName: route.endpointName,
      body,
      contentType: request.contentType,
      accept: request.accept,
      inferenceId: predictionId,
      ...(targetVariant === undefined ? {} : { targetVariant }),
      ...(route.breaker === undefined ? {} : { breaker: route.breaker }),
      ...(route.targetContainer === undefined ? {} : { targetContainerHostname: route.targetContainer }),
      ...(signal === undefined ? {} : { signal }),
    });
  } catch (error) {
    if (error instanceof RequestError) {
      throw error; // a middleware (e.g. a cascade stage) refused the input
    }
    const upstream = classifySageMakerError(error);
    upstream.predictionId ??= predictionId;
    throw upstream;
  }

  const variant = result.invokedVariant ?? targetVariant ?? soleVariant(route) ?? UNKNOWN;
  const modelVersion = Object.hasOwn(route.variants, variant)
    ? (route.variants[variant] as { modelVersion: string }).modelVersion
    : UNKNOWN;
  const contentType = result.contentType ?? request.accept;
  return {
    predictionId,
    model: route.model,
    variant,
    modelVersion,
    prediction: decodePrediction(result.body, contentType),
    contentType,
  };
}

function serialisePayload(request: PredictRequest): string {
  if (request.contentType === 'text/csv' && typeof request.payload === 'string') {
    return request.payload;
  }
  try {
    // Stringify can only fail here on pathological nesting: the payload came from JSON.parse.
    return JSON.stringify(request.payload);
  } catch {
    throw new RequestError(400, 'payload: is too deeply nested to serialise', 'payload');
  }
}

function soleVariant(route: ResolvedRoute): string | undefined {
  const names = Object.keys(route.variants);
  return names.length === 1 ? names[0] : undefined;
}

/** True for application/json, application/*+json and their parameterised forms. */
export function isJsonContentType(contentType: string): boolean {
  return /^\s*application\/([\w.-]+\+)?json\s*(;|$)/i.test(contentType);
}

function decodePrediction(body: string, contentType: string): unknown {
  if (!isJsonContentType(contentType)) {
    return body;
  }
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return body;
  }
}

// ---------------------------------------------------------------------------------------------
// SageMaker error classification
// ---------------------------------------------------------------------------------------------

const MAX_DETAIL_CHARS = 500;

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
]);
const TIMEOUT_ERROR_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * Maps anything thrown while invoking a SageMaker endpoint to an {@link UpstreamError}. Never
 * throws, never copies stack traces; messages from SageMaker are single-lined and truncated.
 * An {@link UpstreamError} passes through unchanged (so middlewares can throw their own).
 */
export function classifySageMakerError(error: unknown): UpstreamError {
  if (error instanceof UpstreamError) {
    return error;
  }
  const name = readString(error, 'name');
  const detail = sanitise(readString(error, 'Message') ?? readString(error, 'message'));
  const cause = { cause: error };

  switch (name) {
    case 'ModelError': {
      const originalStatus = readNumber(error, 'OriginalStatusCode');
      const originalMessage = sanitise(readString(error, 'OriginalMessage'));
      const parts = [
        'the model container returned an error',
        originalStatus === undefined ? undefined : `(status ${originalStatus})`,
      ].filter((part) => part !== undefined);
      const suffix = originalMessage ?? detail;
      return new UpstreamError(502, 'ModelError', `${parts.join(' ')}${suffix === undefined ? '' : `: ${suffix}`}`, cause);
    }
    case 'ModelNotReadyException':
      return new UpstreamError(503, 'ModelNotReady', withDetail('the model is not ready to serve requests; retry later', detail), cause);
    case 'ServiceUnavailable':
      return new UpstreamError(503, 'ServiceUnavailable', withDetail('SageMaker is temporarily unavailable; retry later', detail), cause);
    case 'InternalFailure':
      return new UpstreamError(502, 'InternalFailure', 'SageMaker failed to process the request', cause);
    case 'InternalDependencyException':
      return new UpstreamError(502, 'InternalDependencyFailure', 'a SageMaker dependency failed to process the request', cause);
    case 'ThrottlingException':
    case 'Throttling':
    case 'TooManyRequestsException':
      return new UpstreamError(429, 'Throttled', 'the model endpoint is throttling requests; retry with backoff', cause);
    case 'ValidationError':
      return new UpstreamError(502, 'EndpointRejectedRequest', `endpoint rejected the request: ${detail ?? 'validation error'}`, cause);
    case 'TimeoutError':
    case 'RequestTimeout':
      return new UpstreamError(504, 'Timeout', 'the model endpoint did not answer in time', cause);
    case 'AbortError':
      return new UpstreamError(504, 'Timeout', 'the model invocation was aborted before the endpoint answered', cause);
    default:
      break;
  }

  const codes = networkCodes(error);
  if (codes.some((code) => TIMEOUT_ERROR_CODES.has(code))) {
    return new UpstreamError(504, 'Timeout', 'the model endpoint did not answer in time', cause);
  }
  const connectionCode = codes.find((code) => CONNECTION_ERROR_CODES.has(code));
  if (connectionCode !== undefined) {
    return new UpstreamError(503, 'EndpointUnreachable', `could not reach the model endpoint (${connectionCode})`, cause);
  }
  return new UpstreamError(
    502,
    'UpstreamFailure',
    `the model invocation failed${name === undefined ? '' : ` (${sanitise(name)})`}`,
    cause,
  );
}

function withDetail(message: string, detail: string | undefined): string {
  return detail === undefined ? message : `${message}: ${detail}`;
}

function readNumber(value: unknown, key: string): number | undefined {
  const property = readProperty(value, key);
  return typeof property === 'number' && Number.isFinite(property) ? property : undefined;
}

/** Error codes of the error, its cause and, for AggregateError (happy-eyeballs connects), its members. */
function networkCodes(error: unknown, depth = 0): string[] {
  if (depth > 3) {
    return [];
  }
  const codes: string[] = [];
  const code = readString(error, 'code');
  if (code !== undefined) {
    codes.push(code);
  }
  // Wrappers can drop `code` but keep it in the text, e.g. the SDK's "AWS SDK error wrapper for
  // Error: connect ECONNREFUSED ..." (which is what a cross-realm error becomes, as under Jest).
  const message = readString(error, 'message');
  if (message !== undefined) {
    codes.push(...(message.slice(0, 1_000).match(/\b(E[A-Z_]{3,}|UND_ERR_[A-Z_]+)\b/g) ?? []));
  }
  const cause = readProperty(error, 'cause');
  if (cause !== undefined && cause !== error) {
    codes.push(...networkCodes(cause, depth + 1));
  }
  const members = readProperty(error, 'errors');
  if (Array.isArray(members)) {
    for (const member of members.slice(0, 10)) {
      codes.push(...networkCodes(member, depth + 1));
    }
  }
  return codes;
}

/** One line, bounded length; drops anything that looks like a stack frame. */
function sanitise(text: string | undefined): string | undefined {
  if (text === undefined) {
    return undefined;
  }
  const firstLines = text
    .split(/\r?\n/)
    .filter((line) => !/^\s+at\s/.test(line))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim();
  if (firstLines.length === 0) {
    return undefined;
  }
  return firstLines.length > MAX_DETAIL_CHARS ? `${firstLines.slice(0, MAX_DETAIL_CHARS - 1)}…` : firstLines;
}

// ---------------------------------------------------------------------------------------------
// HTTP shaping and the whole request flow
// ---------------------------------------------------------------------------------------------

/** Structurally an API Gateway proxy result (aws-lambda's APIGatewayProxyResult). */
export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

export function toHttpResponse(status: number, body: unknown): HttpResponse {
  return {
    statusCode: status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

/** Response for an error: its own status and body for {@link InferenceError}s, a generic 500 otherwise. */
export function errorResponse(error: unknown): HttpResponse {
  if (error instanceof InferenceError) {
    const response = toHttpResponse(error.status, error.toBody());
    const retryAfter = error instanceof UpstreamError ? error.retryAfterSeconds : undefined;
    return retryAfter === undefined ? response : { ...response, headers: { ...response.headers, 'retry-after': String(retryAfter) } };
  }
  return toHttpResponse(500, {
    error: 'InternalError',
    message: 'the prediction could not be completed because of an internal error',
  } satisfies ErrorBody);
}

export interface PredictionInput {
  /** The `{model}` path parameter. */
  readonly modelName: string | null | undefined;
  readonly body: string | null | undefined;
  readonly isBase64Encoded?: boolean;
  /** The request's Cache-Control header: `no-cache` or `no-store` skip the prediction cache. */
  readonly cacheControl?: string;
}

/**
 * How the serving variant was chosen: `targeted` (the caller named it), `sticky` (derived from a
 * salted hash of the caller id, see lambda/shared/experiments.ts) or `weighted` (SageMaker split
 * the traffic by the endpoint's variant weights); a composite's own assignment is `composite` (each
 * member is assigned on its own); a precomputed answer's is `precomputed` (no variant was chosen).
 */
export type AssignmentKind = 'sticky' | 'weighted' | 'targeted' | 'composite' | 'precomputed';

export interface VariantAssignment {
  readonly assignment: AssignmentKind;
  /** Variant to send as TargetVariant; must be one of the route's variants. */
  readonly targetVariant?: string;
}

/** Chooses the variant for a request that resolved to `route` (which already validated targetVariant). */
export type VariantAssigner = (request: PredictRequest, route: ResolvedRoute) => VariantAssignment;

/** Assignment without sticky routing: the caller's targetVariant, or SageMaker's weighted split. */
export function defaultAssignment(request: PredictRequest, route: ResolvedRoute): VariantAssignment {
  const targetVariant = request.targetVariant ?? route.targetVariant;
  return targetVariant === undefined ? { assignment: 'weighted' } : { assignment: 'targeted', targetVariant };
}

export interface PredictionDeps {
  /** The models served: a table in memory, or a source that reads each model's route on demand. */
  readonly routes: RoutingTable | RouteSource;
  readonly backend: InferenceBackend;
  readonly ids: IdGenerator;
  /** Milliseconds clock for latency; defaults to performance.now. */
  readonly now?: () => number;
  /**
   * Chooses the variant; defaults to {@link defaultAssignment}. The invoke handler passes
   * `assignRoute` from lambda/shared/experiments.ts, which adds sticky assignment.
   */
  readonly assign?: VariantAssigner;
  /**
   * Adds the entity's online features to the request (`entity` in the body). Runs after routing and
   * before the model call; a lookup failure is an upstream failure of the request.
   * @default - requests with `entity` are refused: the API serves no feature store
   */
  readonly enrich?: RequestEnricher;
  /**
   * The prediction cache, used for the models whose route has `cache`.
   * @default - no cache: answers are never cached
   */
  readonly cache?: TieredPredictionCache;
  /**
   * The batch layer's answers per entity, for the models whose route has `precomputed`. It should answer
   * `undefined` rather than throw when its store fails or is slow (the handler's wraps it, counting the
   * failure): the model answers then. A throw is treated the same way.
   * @default - nothing is precomputed: the model always answers
   */
  readonly precomputed?: PrecomputedSource;
  /** Wall clock in ms since the epoch, for a precomputed answer's age; defaults to Date.now. */
  readonly clock?: () => number;
}

/** Where the batch layer's answers are: the state table (lambda/invoke/precomputed-store.ts) or a map in tests. */
export interface PrecomputedSource {
  /** The answer under a key of precomputedKey, or undefined when there is none. */
  get(key: string): Promise<PrecomputedPrediction | undefined>;
}

/** What the precomputed layer did for one request: `hit` (answered), `stale` (too old), `miss` (none), `error` (unreadable). */
export type PrecomputedStatus = 'hit' | 'stale' | 'miss' | 'error';

/** Turns a request that names an entity into one whose payload carries the entity's features. */
export type RequestEnricher = (request: PredictRequest) => Promise<PredictRequest>;

/** What happened to one request: the response plus what the handler needs for logs and metrics. */
export type PredictionOutcome =
  | {
      readonly kind: 'success';
      readonly response: HttpResponse;
      readonly result: PredictionResult;
      readonly latencyMs: number;
      /** How the variant was chosen. */
      readonly assignment: AssignmentKind;
      /** The request's callerId, for the prediction log (which stores only its hash). */
      readonly callerId?: string;
      /** For a cached model: what the cache did, and which tier answered a hit. */
      readonly cache?: { readonly status: CacheStatus; readonly tier?: 'memory' | 'shared' };
      /** For a precomputed model and a request that names an entity: what the lookup found. */
      readonly precomputed?: PrecomputedStatus;
    }
  | {
      readonly kind: 'rejected';
      readonly response: HttpResponse;
      readonly error: RequestError;
      /** Set when the model name resolved against the routing table. */
      readonly model?: string;
    }
  | {
      readonly kind: 'failed';
      readonly response: HttpResponse;
      readonly error: UpstreamError;
      readonly model: string;
      readonly latencyMs: number;
    };

/**
 * The complete request flow: parse, route, predict, shape. Only {@link RequestError} and
 * {@link UpstreamError} are turned into outcomes; anything else is a bug and propagates.
 */
export async function handlePrediction(input: PredictionInput, deps: PredictionDeps): Promise<PredictionOutcome> {
  const now = deps.now ?? (() => performance.now());
  let model: string | undefined;
  try {
    if (input.modelName === null || input.modelName === undefined || input.modelName.length === 0) {
      throw new RequestError(400, 'model: path parameter is required (POST /models/{model}/predict)', 'model');
    }
    const request = parseRequest(input.body, input.isBase64Encoded ?? false);
    const entry = await resolveEntryFrom(deps.routes, input.modelName);
    const composite = isComposite(entry) ? entry.composite : undefined;
    const resolved = composite === undefined ? endpointRoute(input.modelName, entry, request.targetVariant) : undefined;
    model = input.modelName;
    if (composite !== undefined && request.targetVariant !== undefined) {
      throw new RequestError(400, `targetVariant: ${JSON.stringify(model)} is a composite (${composite.kind}); its members name their variants`, 'targetVariant');
    }
    if (request.entity !== undefined && deps.enrich === undefined) {
      throw new RequestError(400, 'entity: this API serves no feature store to enrich requests from', 'entity');
    }
    const started = now();
    try {
      const stored = resolved === undefined ? undefined : await precomputedFor(request, resolved, deps, input.cacheControl);
      if (stored?.status === 'hit' && stored.prediction !== undefined && resolved !== undefined) {
        // The batch layer's answer for the entity: no enrichment and no model call.
        const result = precomputedResult(request, resolved.model, stored.prediction, deps.ids, 'precomputed');
        return { kind: 'success', response: toHttpResponse(200, result), result, latencyMs: now() - started, assignment: 'precomputed', ...(request.callerId === undefined ? {} : { callerId: request.callerId }), precomputed: 'hit' };
      }
      const enriched = request.entity !== undefined && deps.enrich ? await deps.enrich(request) : request;
      const served = resolved !== undefined
        ? await serveModel(enriched, resolved, deps, input.cacheControl, undefined, stored?.prediction)
        : { result: await serveComposite(model, composite as CompositeSpec, enriched, deps, input.cacheControl), assignment: 'composite' as const };
      const result = resolved?.precomputed !== undefined && served.result.source === undefined ? { ...served.result, source: 'realtime' as const } : served.result;
      return {
        kind: 'success',
        response: toHttpResponse(200, result),
        result,
        latencyMs: now() - started,
        assignment: served.assignment,
        ...(request.callerId === undefined ? {} : { callerId: request.callerId }),
        ...('cache' in served && served.cache !== undefined ? { cache: served.cache } : {}),
        ...(stored === undefined ? {} : { precomputed: stored.status }),
      };
    } catch (error) {
      if (error instanceof UpstreamError) {
        return { kind: 'failed', response: errorResponse(error), error, model, latencyMs: now() - started };
      }
      throw error;
    }
  } catch (error) {
    if (error instanceof RequestError) {
      return { kind: 'rejected', response: errorResponse(error), error, ...(model === undefined ? {} : { model }) };
    }
    throw error;
  }
}

/** One model's answer to a request: variant assignment, the cache, the endpoint and its fallbacks. */
async function serveModel(
  request: PredictRequest,
  resolved: ResolvedRoute,
  deps: PredictionDeps,
  cacheControl: string | undefined,
  signal?: AbortSignal,
  /** The entity's precomputed answer that was too old to serve: the fallback after another variant. */
  stale?: PrecomputedPrediction,
): Promise<{ readonly result: PredictionResult; readonly assignment: AssignmentKind; readonly cache?: { readonly status: CacheStatus; readonly tier?: 'memory' | 'shared' } }> {
  const chosen = (deps.assign ?? defaultAssignment)(request, resolved);
  if (chosen.targetVariant !== undefined && !Object.hasOwn(resolved.variants, chosen.targetVariant)) {
    // The assigner only picks among the route's variants; anything else is a bug (500).
    throw new Error(`variant assigner chose ${JSON.stringify(chosen.targetVariant)}, which model ${JSON.stringify(resolved.model)} does not have`);
  }
  const route = chosen.targetVariant === undefined ? resolved : { ...resolved, targetVariant: chosen.targetVariant };
  const cached = deps.cache !== undefined && route.cache !== undefined ? await cachedPrediction(request, route, deps.cache, deps.ids, cacheControl) : undefined;
  let result: PredictionResult;
  if (cached?.result !== undefined) {
    result = cached.result;
  } else {
    const predicted = await predictWithFallback(request, route, deps.backend, deps.ids, signal, stale);
    result = cached === undefined ? predicted : { ...predicted, cache: cached.status };
    if (cached?.key !== undefined && deps.cache !== undefined && predicted.degraded === undefined) {
      const body = isJsonContentType(predicted.contentType) ? JSON.stringify(predicted.prediction) : String(predicted.prediction);
      await deps.cache.store(cached.key, { body, contentType: predicted.contentType, variant: predicted.variant, modelVersion: predicted.modelVersion }, (route.cache?.ttlSeconds ?? 60) * 1000);
    }
  }
  return {
    result,
    assignment: chosen.assignment,
    ...(cached === undefined ? {} : { cache: { status: cached.result?.cache ?? cached.status, ...(cached.tier === undefined ? {} : { tier: cached.tier }) } }),
  };
}

// ---------------------------------------------------------------------------------------------
// Composites: ensembles, cascades and chains of other models' routes (lambda/shared/composite.ts)
// ---------------------------------------------------------------------------------------------

/** A model a composite calls: a member or a stage. */
interface CompositePart {
  readonly model: string;
  readonly variant?: string;
  readonly container?: string;
}

/** Serves a composite: each part goes through its own route (cache, breaker, fallback) under the composite's timeout. */
async function serveComposite(name: string, spec: CompositeSpec, request: PredictRequest, deps: PredictionDeps, cacheControl: string | undefined): Promise<PredictionResult> {
  const predictionId = request.inferenceId ?? deps.ids();
  const call = (part: CompositePart, index: number | 'meta', partRequest: PredictRequest) =>
    withTimeout(spec.timeoutMs ?? DEFAULT_COMPOSITE_TIMEOUT_MS, `${partLabel(part)} did not answer within ${spec.timeoutMs ?? DEFAULT_COMPOSITE_TIMEOUT_MS} ms`, async (signal) => {
      let resolved: ResolvedRoute;
      try {
        resolved = await resolveRouteFrom(deps.routes, part.model, part.variant);
      } catch (error) {
        if (!(error instanceof RequestError || error instanceof ConfigError)) throw error;
        // The composite names a model or variant the API does not serve: the composite's route is wrong, not the request.
        throw new UpstreamError(502, 'CompositeMemberUnavailable', `${partLabel(part)}: ${error.message}`, { cause: error });
      }
      const route = part.container === undefined ? resolved : { ...resolved, targetContainer: part.container };
      const { inferenceId: _callerId, targetVariant: _variant, ...rest } = partRequest;
      return serveModel({ ...rest, inferenceId: `${predictionId.slice(0, 58)}.${index === 'meta' ? 'meta' : index}` }, route, deps, cacheControl, signal);
    });
  const fail = (error: UpstreamError): UpstreamError => {
    error.predictionId = predictionId;
    return error;
  };
  switch (spec.kind) {
    case 'ensemble':
      return serveEnsemble(name, spec, request, predictionId, call, fail);
    case 'cascade':
      return serveCascade(name, spec, request, predictionId, call, fail);
    case 'chain':
      return serveChain(name, spec, request, predictionId, call, fail);
  }
}

type PartCall = (part: CompositePart, index: number | 'meta', request: PredictRequest) => Promise<{ readonly result: PredictionResult }>;

async function serveEnsemble(name: string, spec: EnsembleSpec, request: PredictRequest, predictionId: string, call: PartCall, fail: (error: UpstreamError) => UpstreamError): Promise<PredictionResult> {
  const settled = await Promise.all(
    spec.members.map(async (member, index): Promise<{ outcome: MemberOutcome; vote?: { value: unknown; weight: number } }> => {
      const where = { model: member.model, ...(member.container === undefined ? {} : { container: member.container }) };
      try {
        const { result } = await call(member, index, request);
        const served = { ...where, variant: result.variant, modelVersion: result.modelVersion, ...(result.cache === undefined ? {} : { cache: result.cache }), ...(result.fallback === undefined ? {} : { fallback: result.fallback }) };
        // A static fallback is a configured default, not a model's answer: it is listed but not combined.
        if (result.fallback === 'static') return { outcome: { ...served, status: 'degraded' } };
        const output = extract(result.prediction, spec.output);
        if (spec.combiner === 'mean' || spec.combiner === 'weighted-mean' || spec.combiner === 'median') toScore(output);
        else if (spec.combiner !== 'stacking') toLabel(output);
        return { outcome: { ...served, status: 'answered', output }, vote: { value: output, weight: member.weight ?? 1 } };
      } catch (error) {
        const failure = partFailure(error);
        return { outcome: { ...where, ...(member.variant === undefined ? {} : { variant: member.variant }), status: 'failed', error: failure } };
      }
    }),
  );
  const members = settled.map((entry) => entry.outcome);
  const votes = settled.flatMap((entry) => (entry.vote === undefined ? [] : [entry.vote]));
  const quorum = quorumOf(spec);
  if (votes.length < quorum) {
    const failures = members.map((member, index) => (member.status === 'answered' ? undefined : `members[${index}] (${partLabel(member)}): ${member.error === undefined ? 'answered with its static fallback' : `${member.error.code}: ${member.error.message}`}`)).filter((text) => text !== undefined);
    throw fail(new UpstreamError(quorumStatus(members), 'EnsembleQuorumNotMet', truncate(`ensemble ${name}: ${votes.length} of ${members.length} members answered, ${quorum} needed; ${failures.join('; ')}`)));
  }
  const answered = members.filter((member) => member.status === 'answered');
  const shape = { predictionId, model: name, variant: 'ensemble', modelVersion: versionsOf(answered), composite: 'ensemble' as const, combiner: spec.combiner, members, ...(answered.length < members.length ? { degraded: true as const } : {}) };
  if (spec.combiner === 'stacking') {
    const meta = spec.metaModel as NonNullable<EnsembleSpec['metaModel']>;
    const contentType = meta.contentType ?? 'application/json';
    let payload: unknown;
    try {
      payload = stackingPayload(votes.map((vote) => vote.value), contentType);
    } catch (error) {
      throw fail(new UpstreamError(502, 'StackingInputUnavailable', `ensemble ${name}: ${(error as Error).message}`));
    }
    let result: PredictionResult;
    try {
      ({ result } = await call(meta, 'meta', { ...request, payload: payload as NonNullable<unknown>, contentType }));
    } catch (error) {
      const failure = partFailure(error);
      throw fail(new UpstreamError(failure.status as UpstreamErrorStatus, failure.code, `ensemble ${name}: meta-model ${partLabel(meta)}: ${failure.message}`, { cause: error }));
    }
    return { ...shape, modelVersion: truncate(`${versionsOf(answered)} > ${versionsOf([{ ...meta, ...result }])}`, 256), prediction: result.prediction, contentType: result.contentType, ...(result.degraded === undefined ? {} : { degraded: true }) };
  }
  let combined: ReturnType<typeof combine>;
  try {
    combined = combine(spec.combiner, votes);
  } catch (error) {
    if (!(error instanceof ExtractionError)) throw error;
    throw fail(new UpstreamError(502, 'EnsembleCombineFailed', `ensemble ${name}: ${error.message}`));
  }
  return { ...shape, prediction: combined.value, contentType: 'application/json', ...(combined.agreement === undefined ? {} : { agreement: combined.agreement }) };
}

async function serveCascade(name: string, spec: CascadeSpec, request: PredictRequest, predictionId: string, call: PartCall, fail: (error: UpstreamError) => UpstreamError): Promise<PredictionResult> {
  const stages: StageOutcome[] = [];
  // The most confident answer of a stage that escalated: answers, degraded, when the last stage fails.
  let best: { result: PredictionResult; confidence: number } | undefined;
  const answer = (result: PredictionResult, degraded: boolean): PredictionResult => ({
    predictionId,
    model: name,
    variant: 'cascade',
    modelVersion: versionsOf([{ model: result.model, variant: result.variant, modelVersion: result.modelVersion }]),
    prediction: result.prediction,
    contentType: result.contentType,
    composite: 'cascade',
    stages,
    ...(degraded || result.degraded !== undefined ? { degraded: true as const } : {}),
  });
  for (const [index, stage] of spec.stages.entries()) {
    const last = index === spec.stages.length - 1;
    let result: PredictionResult;
    try {
      ({ result } = await call(stage, index, request));
    } catch (error) {
      stages.push({ model: stage.model, ...(stage.variant === undefined ? {} : { variant: stage.variant }), status: 'failed', error: partFailure(error) });
      if (!last) continue;
      if (best !== undefined) return answer(best.result, true);
      const failure = partFailure(error);
      throw fail(new UpstreamError(failure.status as UpstreamErrorStatus, failure.code, `cascade ${name}: stages[${index}] (${partLabel(stage)}): ${failure.message}`, { cause: error }));
    }
    const served = { model: stage.model, variant: result.variant, modelVersion: result.modelVersion, ...(result.cache === undefined ? {} : { cache: result.cache }), ...(result.fallback === undefined ? {} : { fallback: result.fallback }) };
    if (last) {
      stages.push({ ...served, status: 'answered' });
      return answer(result, false);
    }
    if (result.fallback === 'static') {
      // A configured default says nothing about this request: the next stage decides.
      stages.push({ ...served, status: 'escalated', problem: 'answered with its static fallback' });
      continue;
    }
    const verdict = isConfident(result.prediction, stage.confidence as NonNullable<typeof stage.confidence>, stage.threshold as number);
    stages.push({ ...served, status: verdict.confident ? 'answered' : 'escalated', ...(verdict.confidence === undefined ? {} : { confidence: verdict.confidence }), ...(verdict.problem === undefined ? {} : { problem: verdict.problem }) });
    if (verdict.confident) return answer(result, false);
    if (verdict.confidence !== undefined && (best === undefined || verdict.confidence > best.confidence)) best = { result, confidence: verdict.confidence };
  }
  throw new Error(`cascade ${name} ran out of stages`); // unreachable: the last stage returns or throws
}

async function serveChain(name: string, spec: ChainSpec, request: PredictRequest, predictionId: string, call: PartCall, fail: (error: UpstreamError) => UpstreamError): Promise<PredictionResult> {
  const stages: StageOutcome[] = [];
  const answers: unknown[] = [];
  let result: PredictionResult | undefined;
  let degraded = false;
  for (const [index, stage] of spec.stages.entries()) {
    let stageRequest = request;
    if (index > 0 || stage.input !== undefined) {
      let payload: unknown;
      try {
        payload = chainInput(stage.input, { request: request.payload, previous: answers[index - 1], stages: answers });
      } catch (error) {
        if (!(error instanceof ExtractionError)) throw error;
        throw fail(new UpstreamError(502, 'ChainInputUnavailable', `chain ${name}: stages[${index}].${error.message}`));
      }
      stageRequest = { ...request, payload: payload as NonNullable<unknown>, contentType: 'application/json' };
    }
    try {
      ({ result } = await call(stage, index, stageRequest));
    } catch (error) {
      const failure = partFailure(error);
      throw fail(new UpstreamError(failure.status as UpstreamErrorStatus, failure.code, `chain ${name}: stages[${index}] (${partLabel(stage)}): ${failure.message}`, { cause: error }));
    }
    degraded ||= result.degraded !== undefined;
    answers.push(result.prediction);
    stages.push({ model: stage.model, variant: result.variant, modelVersion: result.modelVersion, status: 'answered', ...(result.cache === undefined ? {} : { cache: result.cache }), ...(result.fallback === undefined ? {} : { fallback: result.fallback }) });
  }
  const final = result as PredictionResult;
  return {
    predictionId,
    model: name,
    variant: 'chain',
    modelVersion: versionsOf(stages.map((stage) => ({ model: stage.model, variant: stage.variant, modelVersion: stage.modelVersion }))),
    prediction: final.prediction,
    contentType: final.contentType,
    composite: 'chain',
    stages,
    ...(degraded ? { degraded: true as const } : {}),
  };
}

/** Runs `work` with a signal that aborts after `ms`; rejects with a 504 `Timeout` then, whatever `work` does. */
async function withTimeout<T>(ms: number, message: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new UpstreamError(504, 'Timeout', message));
      controller.abort();
    }, ms);
  });
  try {
    return await Promise.race([work(controller.signal), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** A part's failure as a member or stage outcome lists it. Anything but an API error is a bug and propagates. */
function partFailure(error: unknown): { readonly status: number; readonly code: string; readonly message: string } {
  if (error instanceof ExtractionError) return { status: 502, code: 'OutputUnreadable', message: error.message };
  if (error instanceof UpstreamError) return { status: error.status, code: error.code, message: error.message };
  throw error;
}

/** The status of an ensemble that missed its quorum: the members' own when they agree (all throttled, all timed out), else 502. */
function quorumStatus(members: readonly MemberOutcome[]): UpstreamErrorStatus {
  const statuses = new Set(members.flatMap((member) => (member.error === undefined ? [] : [member.error.status])));
  const [only] = statuses;
  return statuses.size === 1 && (only === 429 || only === 503 || only === 504) ? only : 502;
}

function partLabel(part: { readonly model: string; readonly variant?: string; readonly container?: string }): string {
  return `${part.model}${part.variant === undefined ? '' : `/${part.variant}`}${part.container === undefined ? '' : `#${part.container}`}`;
}

/** `model/variant@version` of each part that answered, for the prediction log's model version of a composite. */
function versionsOf(parts: readonly { readonly model: string; readonly variant?: string; readonly modelVersion?: string }[]): string {
  return truncate(parts.map((part) => `${part.model}/${part.variant ?? UNKNOWN}@${part.modelVersion ?? UNKNOWN}`).join(' '), 256);
}

function truncate(text: string, max = 1_000): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/**
 * The cache's part in one request to a cached model: a hit's result, or the key to store the answer
 * under (a miss), or neither (a bypass). The variant must be fixed before the call (targeted, sticky, or
 * the route's only variant); when SageMaker would split the traffic, a cached answer would change who sees
 * which variant, so the request bypasses the cache.
 */
async function cachedPrediction(
  request: PredictRequest,
  route: ResolvedRoute,
  cache: TieredPredictionCache,
  ids: IdGenerator,
  cacheControl: string | undefined,
): Promise<{ readonly status: CacheStatus; readonly key?: string; readonly result?: PredictionResult; readonly tier?: 'memory' | 'shared' }> {
  if (optsOut({ ...(request.cache === undefined ? {} : { cache: request.cache }), ...(cacheControl === undefined ? {} : { cacheControl }) })) return { status: 'bypass' };
  const variant = route.targetVariant ?? soleVariant(route);
  if (variant === undefined) return { status: 'bypass' };
  const serving = route.variants[variant] as { modelVersion: string };
  const key = predictionCacheKey({
    model: route.model,
    versions: { [variant]: serving.modelVersion },
    ...(route.targetVariant === undefined ? {} : { variant }),
    contentType: request.contentType,
    accept: request.accept,
    payload: request.payload,
    csv: request.contentType === 'text/csv',
  });
  const found = await cache.lookup(key);
  if (found === undefined) return { status: 'miss', key };
  const { entry } = found;
  return {
    status: 'hit',
    tier: found.tier,
    result: {
      predictionId: request.inferenceId ?? ids(),
      model: route.model,
      variant: entry.variant,
      modelVersion: entry.modelVersion,
      prediction: decodePrediction(entry.body, entry.contentType),
      contentType: entry.contentType,
      cache: 'hit',
    },
  };
}

/**
 * The model's answer, or a fallback's when the endpoint fails (5xx, throttling, timeout) or its breaker is
 * open: the route's fallback variant first, then its static answer. A fallback's answer is marked degraded
 * and never cached; when every fallback fails too, the endpoint's own error stands.
 */
async function predictWithFallback(request: PredictRequest, route: ResolvedRoute, backend: InferenceBackend, ids: IdGenerator, signal?: AbortSignal, stale?: PrecomputedPrediction): Promise<PredictionResult> {
  try {
    return await predict(request, route, backend, ids, signal);
  } catch (error) {
    const fallback = route.fallback;
    if ((fallback === undefined && stale === undefined) || !(error instanceof UpstreamError) || !(error.status >= 500 || error.status === 429)) throw error;
    const predictionId = error.predictionId ?? request.inferenceId ?? ids();
    if (fallback?.variant !== undefined && fallback.variant !== (route.targetVariant ?? soleVariant(route))) {
      try {
        const answer = await predict({ ...request, inferenceId: predictionId, targetVariant: fallback.variant }, { ...route, targetVariant: fallback.variant }, backend, ids, signal);
        return { ...answer, degraded: true, fallback: 'variant' };
      } catch (fallbackError) {
        if (!(fallbackError instanceof UpstreamError)) throw fallbackError;
      }
    }
    if (stale !== undefined) {
      return { ...precomputedResult({ ...request, inferenceId: predictionId }, route.model, stale, ids, 'realtime'), degraded: true, fallback: 'precomputed' };
    }
    if (fallback?.static !== undefined) {
      return { predictionId, model: route.model, variant: UNKNOWN, modelVersion: UNKNOWN, prediction: fallback.static, contentType: 'application/json', degraded: true, fallback: 'static' };
    }
    throw error;
  }
}

/**
 * The precomputed layer's part in one request: only for a model whose route has `precomputed`, a request
 * that names an entity, does not target a variant, is not a sticky caller of an experiment and does not opt
 * out of stored answers (`cache: false`, `Cache-Control: no-cache`), and only an answer of the content type the
 * request accepts. A fresh answer is a hit; an older one is kept as a fallback for when the endpoint fails.
 */
async function precomputedFor(request: PredictRequest, route: ResolvedRoute, deps: PredictionDeps, cacheControl: string | undefined): Promise<{ readonly status: PrecomputedStatus; readonly prediction?: PrecomputedPrediction } | undefined> {
  const { entity } = request;
  if (route.precomputed === undefined || deps.precomputed === undefined || entity === undefined) return undefined;
  if (request.targetVariant !== undefined || (route.sticky !== undefined && request.callerId !== undefined)) return undefined;
  if (optsOut({ ...(request.cache === undefined ? {} : { cache: request.cache }), ...(cacheControl === undefined ? {} : { cacheControl }) })) return undefined;
  let key: string;
  try {
    key = precomputedKey(route.model, entity.featureGroup, entity.recordId);
  } catch {
    return { status: 'miss' }; // an id the batch layer could not have stored (too long, not well-formed Unicode)
  }
  let prediction: PrecomputedPrediction | undefined;
  try {
    prediction = await deps.precomputed.get(key);
  } catch {
    return { status: 'error' };
  }
  // An answer in another form than the request accepts (CSV answers to a JSON request) is no answer to it.
  if (prediction === undefined || prediction.contentType !== request.accept) return { status: 'miss' };
  const fresh = isFresh(prediction, (deps.clock ?? Date.now)(), route.precomputed.maxAgeSeconds);
  return { status: fresh ? 'hit' : 'stale', prediction };
}

/** A precomputed answer as the API serves it: variant `batch`, the model version that computed it. */
function precomputedResult(request: PredictRequest, model: string, prediction: PrecomputedPrediction, ids: IdGenerator, source: 'precomputed' | 'realtime'): PredictionResult {
  return {
    predictionId: request.inferenceId ?? ids(),
    model,
    variant: PRECOMPUTED_VARIANT,
    modelVersion: prediction.modelVersion,
    prediction: decodePrediction(prediction.body, prediction.contentType),
    contentType: prediction.contentType,
    source,
  };
}
