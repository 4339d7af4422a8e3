// Online serving of the Feature Store pattern: API Gateway (REST, proxy integration) handler for
//   GET  /features/{featureGroup}/{recordId}[?features=a,b]  -> 200 { featureGroup, recordId, features }
//   POST /features/{featureGroup}/batch  { "ids": [...up to 100], "features"?: [...] }
//                                         -> 200 { featureGroup, records: [{ recordId, features }], missing: [...] }
// Values are typed by the feature group definition (integral -> number when safe, else string;
// fractional -> number; string -> string). Lookups live in lambda/shared/features.ts
// (lookupRecord / lookupFeatures), which the inference API reuses to enrich requests.
//
// Responses: 400 bad input (names the field; unknown feature name in `features`), 404 unknown feature
// group (lists the groups) or no features for the entity, 405 other methods, 429 / 503 / 504 Feature
// Store throttling / unavailable / timeout, 502 other Feature Store failures, 500 configuration or
// unexpected errors. Never throws.
//
// Environment:
//   FEATURE_GROUPS                 JSON array of FeatureGroupDefinition (lib/features/feature-definition.ts)
//   POWERTOOLS_METRICS_NAMESPACE   EMF namespace (MlPlatform/Features); POWERTOOLS_SERVICE_NAME names the service
//   FEATURE_STORE_TIMEOUT_MS       optional per-attempt timeout of GetRecord / BatchGetRecord (default 2000)
//   AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { BatchGetRecordCommand, GetRecordCommand, SageMakerFeatureStoreRuntimeClient } from '@aws-sdk/client-sagemaker-featurestore-runtime';
import type { APIGatewayProxyEvent, APIGatewayProxyResult, Context } from 'aws-lambda';
import {
  checkRecordId,
  loadFeatureGroups,
  loadOnce,
  lookupFeatures,
  lookupRecord,
  parseBatchLookupRequest,
  parseFeaturesQuery,
  resolveFeatureGroup,
  type FeatureStoreReader,
} from '../shared/features';
import { decodeJsonBody, errorResponse, RequestError, toHttpResponse, UpstreamError } from '../shared/inference';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'feature-serving';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });

function timeoutMs(): number {
  const value = Number(process.env.FEATURE_STORE_TIMEOUT_MS);
  return Number.isFinite(value) && value > 0 ? value : 2_000;
}

// Per-attempt limit so a stuck call becomes a 504 well inside API Gateway's 29 s.
const client = new SageMakerFeatureStoreRuntimeClient({ requestHandler: { requestTimeout: timeoutMs(), throwOnRequestTimeout: true } });

const reader: FeatureStoreReader = {
  getRecord: (input) => client.send(new GetRecordCommand(input)),
  batchGetRecord: (input) => client.send(new BatchGetRecordCommand(input)),
};

/** Largest batch lookup body accepted, in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/** FeatureGroup dimension when the request did not name a configured group (bounded cardinality). */
const UNRESOLVED_GROUP = 'unresolved';

/** FEATURE_GROUPS, read on first use and kept (or its ConfigError, logged once) for the life of the environment. */
const getGroups = loadOnce(
  () => loadFeatureGroups(process.env.FEATURE_GROUPS),
  'FEATURE_GROUPS: could not be loaded',
  (error) => logger.error('invalid function configuration', { error: error.message }),
);

type Metric = 'FeatureLookups' | 'FeatureLookupMisses' | 'FeatureLookupErrors';

export async function handler(event: APIGatewayProxyEvent, context?: Context): Promise<APIGatewayProxyResult> {
  let group = UNRESOLVED_GROUP;
  const counted = new Map<Metric, number>();
  const count = (metric: Metric, n = 1): void => {
    counted.set(metric, (counted.get(metric) ?? 0) + n);
  };
  const started = Date.now();

  try {
    if (context !== undefined) {
      logger.addContext(context);
    }
    const current = getGroups();
    if (!current.ok) {
      count('FeatureLookupErrors');
      return errorResponse(current.error);
    }
    const isBatch = event.resource?.endsWith('/batch') === true || (event.pathParameters?.recordId === undefined && event.httpMethod === 'POST');
    const expected = isBatch ? 'POST' : 'GET';
    if (event.httpMethod !== expected) {
      throw new RequestError(405, `method: ${event.httpMethod} is not allowed here; use ${expected}`, 'method');
    }
    const definition = resolveFeatureGroup(current.value, event.pathParameters?.featureGroup);
    group = definition.name;

    if (!isBatch) {
      const recordId = checkRecordId(definition, event.pathParameters?.recordId ?? undefined);
      const featureNames = parseFeaturesQuery(event.queryStringParameters?.features);
      const features = await lookupRecord(reader, definition, recordId, featureNames);
      count('FeatureLookups');
      if (features === undefined) {
        count('FeatureLookupMisses');
        logger.info('no features for entity', { featureGroup: group, recordId });
        return toHttpResponse(404, { error: 'NotFound', message: `recordId: no features for '${recordId}' in ${group}` });
      }
      logger.info('features served', { featureGroup: group, recordId, features: Object.keys(features).length });
      return toHttpResponse(200, { featureGroup: group, recordId, features });
    }

    const request = parseBatchLookupRequest(
      decodeJsonBody(event.body, event.isBase64Encoded ?? false, {
        maxBytes: MAX_BODY_BYTES,
        missing: 'body: is required (a JSON object with "ids")',
        tooLarge: `body: exceeds ${MAX_BODY_BYTES / 1024} KB`,
      }),
    );
    const result = await lookupFeatures(reader, definition, request.ids, request.features);
    count('FeatureLookups', result.records.length + result.missing.length);
    count('FeatureLookupMisses', result.missing.length);
    logger.info('features served', { featureGroup: group, found: result.records.length, missing: result.missing.length });
    return toHttpResponse(200, { featureGroup: group, records: result.records, missing: result.missing });
  } catch (error) {
    return failure(error, group, count);
  } finally {
    publish(group, counted, Date.now() - started);
  }
}

function failure(error: unknown, group: string, count: (metric: Metric) => void): APIGatewayProxyResult {
  try {
    if (error instanceof RequestError) {
      logger.warn('request rejected', { status: error.status, field: error.field, reason: error.message, featureGroup: group });
      return errorResponse(error);
    }
    count('FeatureLookupErrors');
    if (error instanceof UpstreamError) {
      const cause = error.cause as { name?: unknown; message?: unknown } | undefined;
      logger.error('feature lookup failed', { featureGroup: group, status: error.status, code: error.code, cause: { name: cause?.name, message: cause?.message } });
      return errorResponse(error);
    }
    const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
    logger.error('unexpected error while serving features', { featureGroup: group, error: { name, message } });
  } catch {
    // Logging must never turn a 500 into a crash.
  }
  return toHttpResponse(500, { error: 'InternalError', message: 'the features could not be served because of an internal error' });
}

function publish(group: string, counted: ReadonlyMap<Metric, number>, latencyMs: number): void {
  if (counted.size === 0) return;
  try {
    metrics.addDimension('FeatureGroup', group);
    for (const [metric, value] of counted) {
      metrics.addMetric(metric, MetricUnit.Count, value);
    }
    metrics.addMetric('LookupLatency', MetricUnit.Milliseconds, latencyMs);
    metrics.publishStoredMetrics();
  } catch {
    // Metrics must never fail the request.
  }
}
