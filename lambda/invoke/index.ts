// API Gateway (REST, proxy integration, IAM auth) handler for POST /models/{model}/predict.
// Thin by design: validation, routing, error mapping and response shaping live in
// lambda/shared/inference.ts; this file only wires SageMaker, logging and metrics.
//
// Environment:
//   ROUTES_PARAMETER_PREFIX            SSM prefix of the models' routes (one parameter per model; see lambda/shared/route-parameters.ts)
//   ROUTE_CACHE_TTL_SECONDS            optional, seconds a route is served from memory (default 60)
//   POWERTOOLS_METRICS_NAMESPACE       EMF namespace; POWERTOOLS_SERVICE_NAME names the service
//   SAGEMAKER_TIMEOUT_MS               optional per-attempt timeout for InvokeEndpoint (504 when exceeded)
//   PREDICTION_LOG_TABLE               optional DynamoDB table; when set every served prediction is logged there
//   PREDICTION_LOG_TTL_DAYS            optional, days a logged prediction is kept (default 90)
//   PREDICTION_LOG_TIMEOUT_MS          optional per-attempt timeout for the PutItem (default 1000)
//   PREDICTION_CACHE_TABLE             optional DynamoDB table: the shared tier of the prediction cache, for models whose route has `cache`
//   PREDICTION_CACHE_MEMORY_MB         optional size of the in-memory tier (default 32; 0 turns it off)
//   PREDICTION_CACHE_TIMEOUT_MS        optional: a shared-tier read slower than this is a miss (default 100)
//   BREAKER_STATE_TABLE                optional DynamoDB table: the circuit breakers' shared state, for models whose route has `breaker`
//                                      (without it each function instance keeps its own)
//   PRECOMPUTED_TABLE                  optional DynamoDB table: the batch layer's answers per entity, for models whose route has `precomputed`
//   PRECOMPUTED_TIMEOUT_MS             optional: a read slower than this finds nothing and the model answers (default 100)
//   AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME / AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself
import { randomUUID } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  InvokeEndpointCommand,
  SageMakerRuntimeClient,
  type SageMakerRuntimeClientConfig,
} from '@aws-sdk/client-sagemaker-runtime';
import { GetRecordCommand, type GetRecordCommandInput, SageMakerFeatureStoreRuntimeClient } from '@aws-sdk/client-sagemaker-featurestore-runtime';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import { featureEnricher, loadFeatureGroups } from '../shared/features';
import {
  assignRoute,
  DEFAULT_PREDICTION_LOG_TTL_DAYS,
  isConditionalCheckFailed,
  parsePredictionLogTtlDays,
  predictionLogPut,
  predictionLogRecord,
  type PredictionLogInput,
  type PredictionLogRecord,
} from '../shared/experiments';
import {
  ConfigError,
  errorResponse,
  handlePrediction,
  composeBackend,
  InferenceError,
  sageMakerBackend,
  UpstreamError,
  type InferenceBackend,
  type PrecomputedSource,
  type RequestEnricher,
  type RouteSource,
} from '../shared/inference';
import { ByteLru, TieredPredictionCache, type CachedPrediction } from '../shared/prediction-cache';
import { BreakerRegistry, CircuitBreaker, circuitBreakerMiddleware } from '../shared/circuit-breaker';
import { routeParametersFromEnv } from '../shared/route-parameters';
import { DynamoDbBreakerStore } from './breaker-store';
import { DynamoDbCacheStore } from './cache-store';
import { DynamoDbPrecomputedStore } from './precomputed-store';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'model-inference';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });

const client = new SageMakerRuntimeClient(clientOptions());

/** Breaker transitions and rejections of the current request, for its metrics. */
let breakerEvents: { opened: number; rejected: number } = { opened: 0, rejected: 0 };
const breakerTable = nonEmpty(process.env.BREAKER_STATE_TABLE);
const breakerStore =
  breakerTable === undefined
    ? undefined
    : new DynamoDbBreakerStore(new DynamoDBClient({ requestHandler: { requestTimeout: 200, throwOnRequestTimeout: true }, maxAttempts: 2 }), breakerTable);
const breakers = new BreakerRegistry(
  (name, policy) =>
    new CircuitBreaker({
      name,
      policy,
      ...(breakerStore === undefined ? {} : { store: breakerStore }),
      onStoreError: (error) => {
        const { name: errorName, message } = (error ?? {}) as { name?: unknown; message?: unknown };
        logger.warn('circuit breaker state unavailable; deciding on this instance\'s view', { breaker: name, table: breakerTable, error: { name: errorName, message } });
      },
      onTransition: (from, to, made) => {
        if (to === 'open' && made) breakerEvents.opened += 1;
        logger.warn(made ? 'circuit breaker changed state' : 'circuit breaker state changed by another instance', { breaker: name, from, to });
      },
    }),
);
const guardedBreakers = circuitBreakerMiddleware((name, policy) => breakers.get(name, policy));

const backend: InferenceBackend = composeBackend(
  sageMakerBackend((input, signal) => client.send(new InvokeEndpointCommand(input), signal === undefined ? {} : { abortSignal: signal })),
  // Count the calls an open breaker refused, for the request's metrics.
  (next) => async (invocation) => {
    try {
      return await next(invocation);
    } catch (error) {
      if (error instanceof UpstreamError && error.code === 'CircuitOpen') breakerEvents.rejected += 1;
      throw error;
    }
  },
  guardedBreakers,
);

const predictionLogTable = nonEmpty(process.env.PREDICTION_LOG_TABLE);
const predictionLogClient = predictionLogTable === undefined ? undefined : new DynamoDBClient(predictionLogClientOptions());
let predictionLogTtlDays: number | undefined;

/** The prediction cache: memory always, DynamoDB when PREDICTION_CACHE_TABLE is set; used only for models whose route has `cache`. */
const cacheTable = nonEmpty(process.env.PREDICTION_CACHE_TABLE);
const cacheTimeoutMs = positiveNumber(process.env.PREDICTION_CACHE_TIMEOUT_MS, 100);
/** Shared-tier failures of the current request: counted as PredictionCacheErrors. */
let cacheErrors = 0;
const predictionCache = new TieredPredictionCache({
  memory: new ByteLru<CachedPrediction>(positiveNumber(process.env.PREDICTION_CACHE_MEMORY_MB, 32, true) * 1024 * 1024),
  ...(cacheTable === undefined
    ? {}
    : { shared: new DynamoDbCacheStore(new DynamoDBClient({ requestHandler: { requestTimeout: cacheTimeoutMs, throwOnRequestTimeout: true }, maxAttempts: 1 }), cacheTable) }),
  // Each route sets its own TTL; this applies to none of them.
  ttlMs: 60_000,
  sharedTimeoutMs: cacheTimeoutMs,
  onSharedError: (operation, error) => {
    cacheErrors += 1;
    const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
    logger.warn('prediction cache unavailable; answering without it', { operation, table: cacheTable, error: { name, message } });
  },
});

/** The batch layer's answers per entity (lambda/load-precomputed writes them), when PRECOMPUTED_TABLE is set. */
const precomputedTable = nonEmpty(process.env.PRECOMPUTED_TABLE);
const precomputedTimeoutMs = positiveNumber(process.env.PRECOMPUTED_TIMEOUT_MS, 100);
/** Reads of the current request that failed or were too slow: counted as PrecomputedErrors. */
let precomputedErrors = 0;
const precomputedStore =
  precomputedTable === undefined
    ? undefined
    : new DynamoDbPrecomputedStore(new DynamoDBClient({ requestHandler: { requestTimeout: precomputedTimeoutMs, throwOnRequestTimeout: true }, maxAttempts: 1 }), precomputedTable);
const precomputed: PrecomputedSource | undefined =
  precomputedStore === undefined
    ? undefined
    : {
        // A store that fails or is slow finds nothing: the model answers, and the failure is logged and counted.
        get: async (key) => {
          try {
            return await precomputedStore.get(key);
          } catch (error) {
            precomputedErrors += 1;
            const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
            logger.warn('precomputed predictions unavailable; asking the model', { table: precomputedTable, error: { name, message } });
            return undefined;
          }
        },
      };

/** Enrichment by entity id, when the API serves a feature store (FEATURE_GROUPS); read once. */
const featureGroupsConfig = nonEmpty(process.env.FEATURE_GROUPS);
const featureStoreClient = featureGroupsConfig === undefined ? undefined : new SageMakerFeatureStoreRuntimeClient({});
let enricher: { readonly ok: true; readonly enrich?: RequestEnricher } | { readonly ok: false; readonly error: ConfigError } | undefined;

function getEnricher(): NonNullable<typeof enricher> {
  if (enricher === undefined) {
    if (featureGroupsConfig === undefined || featureStoreClient === undefined) {
      enricher = { ok: true };
    } else {
      try {
        const groups = loadFeatureGroups(featureGroupsConfig);
        const reader = { getRecord: (input: GetRecordCommandInput) => featureStoreClient.send(new GetRecordCommand(input)) };
        enricher = { ok: true, enrich: featureEnricher(groups, reader) };
      } catch (error) {
        const configError = error instanceof ConfigError ? error : new ConfigError('FEATURE_GROUPS: could not be loaded');
        logger.error('invalid function configuration', { error: configError.message });
        enricher = { ok: false, error: configError };
      }
    }
  }
  return enricher;
}

/** Model dimension value when the request never resolved to a configured model (keeps cardinality bounded). */
const UNRESOLVED_MODEL = 'unresolved';

type Routes = { readonly ok: true; readonly table: RouteSource } | { readonly ok: false; readonly error: ConfigError };
let routes: Routes | undefined;

function clientOptions(): SageMakerRuntimeClientConfig {
  const timeoutMs = Number(process.env.SAGEMAKER_TIMEOUT_MS);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    return {};
  }
  // Without throwOnRequestTimeout the SDK only logs a warning when requestTimeout elapses.
  return { requestHandler: { requestTimeout: timeoutMs, throwOnRequestTimeout: true } };
}

function positiveNumber(raw: string | undefined, fallback: number, allowZero = false): number {
  const value = Number(raw);
  return raw !== undefined && raw.trim() !== '' && Number.isFinite(value) && (allowZero ? value >= 0 : value > 0) ? value : fallback;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim().length === 0 ? undefined : value.trim();
}

function predictionLogClientOptions(): { requestHandler: { requestTimeout: number; throwOnRequestTimeout: boolean } } {
  // A slow log write delays the prediction it logs: keep each attempt short.
  const timeoutMs = Number(process.env.PREDICTION_LOG_TIMEOUT_MS);
  return { requestHandler: { requestTimeout: Number.isFinite(timeoutMs) && timeoutMs > 0 ? timeoutMs : 1_000, throwOnRequestTimeout: true } };
}

/** PREDICTION_LOG_TTL_DAYS, read once; an unusable value is logged and the default is used (never lose predictions over it). */
function ttlDays(): number {
  if (predictionLogTtlDays === undefined) {
    try {
      predictionLogTtlDays = parsePredictionLogTtlDays(process.env.PREDICTION_LOG_TTL_DAYS);
    } catch (error) {
      logger.error('invalid function configuration; using the default prediction log TTL', {
        error: (error as Error).message,
        defaultDays: DEFAULT_PREDICTION_LOG_TTL_DAYS,
      });
      predictionLogTtlDays = DEFAULT_PREDICTION_LOG_TTL_DAYS;
    }
  }
  return predictionLogTtlDays;
}

/**
 * Writes the prediction-log record. Never throws: the caller already has a prediction and must get
 * it. A failed write is logged with the whole record (so it can be replayed into the table) and
 * counted as PredictionLogWriteErrors.
 */
async function logPrediction(table: string, dynamodb: DynamoDBClient, input: PredictionLogInput, countError: () => void): Promise<void> {
  let record: PredictionLogRecord | undefined;
  try {
    record = predictionLogRecord(input);
    await dynamodb.send(new PutItemCommand(predictionLogPut(table, record)));
  } catch (error) {
    if (isConditionalCheckFailed(error)) {
      // The caller reused an inference id: the first record (and any outcome on it) is kept.
      logger.warn('prediction id already logged; kept the first record', { record });
      return;
    }
    const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
    logger.error('prediction log write failed', {
      table,
      // Without a record (it could not be built) log what identifies the prediction; never the model output.
      record: record ?? {
        predictionId: input.result.predictionId,
        model: input.result.model,
        variant: input.result.variant,
        modelVersion: input.result.modelVersion,
        assignment: input.assignment,
      },
      error: { name, message },
    });
    countError();
  }
}

/** Sets up the route cache on first use; the result (or the error) is kept for the life of the environment. */
function getRoutes(): Routes {
  if (routes === undefined) {
    try {
      const onStale = (model: string, error: unknown) =>
        logger.warn('route refresh failed; serving the last route read', { model, error: { name: (error as Error)?.name, message: (error as Error)?.message } });
      routes = { ok: true, table: routeParametersFromEnv(process.env, { onStale }) };
    } catch (error) {
      const configError = error instanceof ConfigError ? error : new ConfigError('ROUTES_PARAMETER_PREFIX: could not be loaded');
      logger.error('invalid function configuration', { error: configError.message });
      routes = { ok: false, error: configError };
    }
  }
  return routes;
}

/** The request's Cache-Control header (API Gateway keeps the caller's letter case). */
function cacheControlOf(event: APIGatewayProxyEvent): { cacheControl?: string } {
  const headers = event.headers ?? {};
  const name = Object.keys(headers).find((header) => header.toLowerCase() === 'cache-control');
  const value = name === undefined ? undefined : headers[name];
  return value === undefined || value === null ? {} : { cacheControl: value };
}

export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  let metricsAdded = false;
  // One request's metrics share one Model dimension, set once: Powertools warns each time it is set again.
  let dimension: string | undefined;
  metrics.clearDimensions();
  const useModel = (model: string): void => {
    if (dimension === model) return;
    if (dimension !== undefined) {
      // Another model in the same request (a route that failed to resolve, then...): its metrics go out apart.
      if (metricsAdded) metrics.publishStoredMetrics();
      else metrics.clearDimensions();
      metricsAdded = false;
    }
    metrics.addDimension('Model', model);
    dimension = model;
  };
  cacheErrors = 0;
  precomputedErrors = 0;
  breakerEvents = { opened: 0, rejected: 0 };
  const count = (
    model: string,
    metric: 'Predictions' | 'PredictionErrors' | 'PredictionLogWriteErrors' | 'PredictionCacheHits' | 'PredictionCacheMisses' | 'PredictionCacheBypasses' | 'FallbacksServedVariant' | 'FallbacksServedPrecomputed' | 'FallbacksServedStatic' | 'CompositePartsFailed' | 'CascadeEscalations' | 'PrecomputedHits' | 'PrecomputedMisses',
    latencyMs?: number,
    value = 1,
  ): void => {
    useModel(model);
    metrics.addMetric(metric, MetricUnit.Count, value);
    if (latencyMs !== undefined) {
      metrics.addMetric('ModelLatency', MetricUnit.Milliseconds, Math.round(latencyMs * 100) / 100);
    }
    metricsAdded = true;
  };
  const countCacheErrors = (model: string): void => {
    const any = cacheErrors > 0 || breakerEvents.opened > 0 || breakerEvents.rejected > 0 || precomputedErrors > 0;
    if (!any) return;
    useModel(model);
    if (cacheErrors > 0) metrics.addMetric('PredictionCacheErrors', MetricUnit.Count, cacheErrors);
    if (breakerEvents.opened > 0) metrics.addMetric('CircuitBreakerOpened', MetricUnit.Count, breakerEvents.opened);
    if (breakerEvents.rejected > 0) metrics.addMetric('CircuitOpenRejections', MetricUnit.Count, breakerEvents.rejected);
    if (precomputedErrors > 0) metrics.addMetric('PrecomputedErrors', MetricUnit.Count, precomputedErrors);
    metricsAdded = true;
  };

  try {
    if (context !== undefined) {
      logger.addContext(context);
    }
    const current = getRoutes();
    if (!current.ok) {
      count(UNRESOLVED_MODEL, 'PredictionErrors');
      return errorResponse(current.error);
    }
    const features = getEnricher();
    if (!features.ok) {
      count(UNRESOLVED_MODEL, 'PredictionErrors');
      return errorResponse(features.error);
    }

    const outcome = await handlePrediction(
      {
        modelName: event.pathParameters?.model,
        body: event.body,
        isBase64Encoded: event.isBase64Encoded,
        ...cacheControlOf(event),
      },
      { routes: current.table, backend, ids: randomUUID, assign: assignRoute, enrich: features.enrich, cache: predictionCache, ...(precomputed === undefined ? {} : { precomputed }) },
    );

    switch (outcome.kind) {
      case 'success': {
        const { predictionId, model, variant, modelVersion } = outcome.result;
        const latencyMs = Math.round(outcome.latencyMs);
        logger.info('prediction served', { predictionId, model, variant, modelVersion, assignment: outcome.assignment, latencyMs, ...(outcome.cache === undefined ? {} : { cache: outcome.cache.status, cacheTier: outcome.cache.tier }), ...(outcome.precomputed === undefined ? {} : { precomputed: outcome.precomputed }) });
        count(model, 'Predictions', outcome.latencyMs);
        // A stale answer is a miss too: the model was asked.
        if (outcome.precomputed !== undefined) count(model, outcome.precomputed === 'hit' ? 'PrecomputedHits' : 'PrecomputedMisses');
        if (outcome.cache !== undefined) {
          count(model, outcome.cache.status === 'hit' ? 'PredictionCacheHits' : outcome.cache.status === 'miss' ? 'PredictionCacheMisses' : 'PredictionCacheBypasses');
        }
        const { members, stages } = outcome.result;
        const partsFailed = (members ?? []).filter((member) => member.status !== 'answered').length + (stages ?? []).filter((stage) => stage.status === 'failed').length;
        if (outcome.result.composite !== undefined) {
          // A composite's parts are counted under the composite: one request's metrics share one Model dimension.
          if (partsFailed > 0) count(model, 'CompositePartsFailed', undefined, partsFailed);
          const escalations = (stages ?? []).filter((stage) => stage.status === 'escalated').length;
          if (outcome.result.composite === 'cascade') count(model, 'CascadeEscalations', undefined, escalations);
          if (partsFailed > 0) logger.warn('composite served without some of its parts', { predictionId, model, composite: outcome.result.composite, members, stages });
        }
        if (outcome.result.fallback !== undefined) {
          count(model, outcome.result.fallback === 'variant' ? 'FallbacksServedVariant' : outcome.result.fallback === 'precomputed' ? 'FallbacksServedPrecomputed' : 'FallbacksServedStatic');
          logger.warn('prediction served by a fallback', { predictionId, model, fallback: outcome.result.fallback });
        }
        countCacheErrors(model);
        if (predictionLogTable !== undefined && predictionLogClient !== undefined) {
          const input: PredictionLogInput = {
            result: outcome.result,
            servedAt: new Date(),
            ttlDays: ttlDays(),
            assignment: outcome.assignment,
            ...(outcome.callerId === undefined ? {} : { callerId: outcome.callerId }),
            ...(outcome.cache === undefined ? {} : { cache: outcome.cache.status }),
          };
          await logPrediction(predictionLogTable, predictionLogClient, input, () => count(model, 'PredictionLogWriteErrors'));
        }
        break;
      }
      case 'rejected':
        logger.warn('request rejected', {
          status: outcome.error.status,
          field: outcome.error.field,
          reason: outcome.error.message,
          model: outcome.model,
        });
        break;
      case 'failed': {
        const cause = outcome.error.cause as { name?: unknown; message?: unknown } | undefined;
        logger.error('model invocation failed', {
          predictionId: outcome.error.predictionId,
          model: outcome.model,
          status: outcome.error.status,
          code: outcome.error.code,
          reason: outcome.error.message,
          latencyMs: Math.round(outcome.latencyMs),
          cause: { name: cause?.name, message: cause?.message },
        });
        count(outcome.model, 'PredictionErrors', outcome.latencyMs);
        countCacheErrors(outcome.model);
        break;
      }
    }
    return outcome.response;
  } catch (error) {
    try {
      if (error instanceof InferenceError) {
        // The model's route could not be read (503) or is unusable (500); the message says which.
        logger.error('model route unavailable', { model: event?.pathParameters?.model, status: error.status, code: error.code, reason: error.message });
      } else {
        logger.error('unexpected error while serving a prediction', error as Error);
      }
      count(UNRESOLVED_MODEL, 'PredictionErrors');
    } catch {
      // Logging must never turn a 500 into a crash.
    }
    return errorResponse(error);
  } finally {
    if (metricsAdded) {
      try {
        metrics.publishStoredMetrics();
      } catch {
        // Metrics must never fail the request.
      }
    }
  }
}
