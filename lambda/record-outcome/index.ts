// API Gateway (REST, proxy integration, IAM auth) handler for POST /models/{model}/outcomes.
// Records the observed outcome of a logged prediction, once: validation, the conditional update and
// the explanation of a failed condition live in lambda/shared/experiments.ts.
//
// Environment:
//   PREDICTION_LOG_TABLE               DynamoDB prediction log (partition key predictionId)
//   ROUTES_PARAMETER_PREFIX            SSM prefix of the inference API's routes; only whether a model has one is used (404 for others)
//   ROUTE_CACHE_TTL_SECONDS            optional, seconds a route is served from memory (default 60)
//   POWERTOOLS_METRICS_NAMESPACE       EMF namespace; POWERTOOLS_SERVICE_NAME names the service
//   AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself
//
// Responses: 201 first recording, 200 identical repeat (idempotent), 400 bad body (names the field),
// 404 unknown model or no such prediction for the model, 409 a different outcome is already recorded,
// 429 / 503 DynamoDB throttling / unavailability (retry), 500 configuration or unexpected errors.
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import {
  classifyDynamoDbError,
  explainOutcomeConflict,
  isConditionalCheckFailed,
  outcomeResponseBody,
  outcomeUpdate,
  parseOutcomeRequest,
  readStoredPrediction,
} from '../shared/experiments';
import {
  ConfigError,
  errorResponse,
  InferenceError,
  RequestError,
  resolveEntryFrom,
  toHttpResponse,
  UpstreamError,
  type RouteSource,
} from '../shared/inference';
import { routeParametersFromEnv } from '../shared/route-parameters';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'model-outcomes';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
// Per-attempt limit (AWS_MAX_ATTEMPTS sets the attempts) so a stuck call becomes a 503 well inside API Gateway's 29 s.
const dynamodb = new DynamoDBClient({ requestHandler: { requestTimeout: 3_000, throwOnRequestTimeout: true } });

type Config =
  | { readonly ok: true; readonly table: string; readonly routes: RouteSource }
  | { readonly ok: false; readonly error: ConfigError };
let config: Config | undefined;

/** Reads the configuration on first use; the result (or the error) is kept for the life of the environment. */
function getConfig(): Config {
  if (config === undefined) {
    try {
      const table = process.env.PREDICTION_LOG_TABLE?.trim();
      if (table === undefined || table.length === 0) {
        throw new ConfigError('PREDICTION_LOG_TABLE: is not set');
      }
      config = { ok: true, table, routes: routeParametersFromEnv(process.env) };
    } catch (error) {
      const configError = error instanceof ConfigError ? error : new ConfigError('configuration could not be loaded');
      logger.error('invalid function configuration', { error: configError.message });
      config = { ok: false, error: configError };
    }
  }
  return config;
}

export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  let metricsAdded = false;
  const count = (model: string, metric: 'OutcomesRecorded' | 'OutcomeErrors'): void => {
    metrics.addDimension('Model', model);
    metrics.addMetric(metric, MetricUnit.Count, 1);
    metricsAdded = true;
  };

  let model: string | undefined;
  try {
    if (context !== undefined) {
      logger.addContext(context);
    }
    const current = getConfig();
    if (!current.ok) {
      return errorResponse(current.error);
    }

    const modelName = event.pathParameters?.model;
    if (modelName === undefined || modelName === null || modelName.length === 0) {
      throw new RequestError(400, 'model: path parameter is required (POST /models/{model}/outcomes)', 'model');
    }
    // Same order as the predict route: the body first, then the model.
    const request = parseOutcomeRequest(event.body, event.isBase64Encoded ?? false);
    // A composite's predictions are logged under its own name, so its outcomes are recorded under it too.
    await resolveEntryFrom(current.routes, modelName);
    model = modelName;

    try {
      const written = await dynamodb.send(new UpdateItemCommand(outcomeUpdate(current.table, model, request, new Date())));
      const stored = readStoredPrediction(written.Attributes);
      const body = stored === undefined
        ? { predictionId: request.predictionId, model, variant: 'unknown', outcome: request.outcome }
        : outcomeResponseBody(stored, request);
      logger.info('outcome recorded', { ...body, repeat: false });
      count(model, 'OutcomesRecorded');
      return toHttpResponse(201, body);
    } catch (error) {
      if (!isConditionalCheckFailed(error)) {
        throw error;
      }
      // Throws 404 / 409; returns the stored prediction for an identical repeat.
      const stored = explainOutcomeConflict(error.Item, model, request);
      const body = outcomeResponseBody(stored, request);
      logger.info('outcome already recorded', { ...body, repeat: true });
      return toHttpResponse(200, body);
    }
  } catch (error) {
    return failure(error, model, count, event?.pathParameters?.model ?? undefined);
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

/** `model` is the resolved model; `requested` the path's name, logged when the route could not be resolved. */
function failure(error: unknown, model: string | undefined, count: (model: string, metric: 'OutcomeErrors') => void, requested?: string): APIGatewayProxyResult {
  try {
    if (error instanceof RequestError) {
      logger.warn('request rejected', { status: error.status, field: error.field, reason: error.message, model });
      return errorResponse(error);
    }
    if (error instanceof InferenceError) {
      // The model's route could not be read (503) or is unusable (500); the message says which.
      logger.error('model route unavailable', { model: model ?? requested, status: error.status, code: error.code, reason: error.message });
      count(model ?? 'unresolved', 'OutcomeErrors');
      return errorResponse(error);
    }
    const upstream = classifyDynamoDbError(error);
    const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
    if (upstream instanceof UpstreamError) {
      logger.error('prediction log unavailable', { model, status: upstream.status, code: upstream.code, cause: { name, message } });
      count(model ?? 'unresolved', 'OutcomeErrors');
      return errorResponse(upstream);
    }
    logger.error('unexpected error while recording an outcome', { model, error: { name, message } });
    count(model ?? 'unresolved', 'OutcomeErrors');
  } catch {
    // Logging must never turn a 500 into a crash.
  }
  return toHttpResponse(500, { error: 'InternalError', message: 'the outcome could not be recorded because of an internal error' });
}
