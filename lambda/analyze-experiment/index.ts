// Step Functions task: analyses an A/B (or champion–challenger) experiment over a servedAt window.
// Reads the prediction log's `byModel` GSI page by page, aggregates the two arms, runs the test and
// applies the fixed-horizon decision rule (lambda/shared/experiments.ts, lambda/shared/stats.ts).
// It returns the analysis and writes nothing: the state machine publishes the metrics.
//
// Input: see AnalysisInputSchema. Bad input throws AnalysisInputError (error type
// `AnalysisInputError`, message naming the field) for the state machine's Catch; DynamoDB errors
// propagate with their SDK names (e.g. ProvisionedThroughputExceededException) for its Retry.
//
// Environment:
//   PREDICTION_LOG_TABLE               DynamoDB prediction log
//   PREDICTION_LOG_INDEX               optional GSI name (default byModel)
//   ANALYSIS_QUERY_PAGE_SIZE           optional Limit per Query page (default: DynamoDB's 1 MB pages)
//   POWERTOOLS_SERVICE_NAME            service name in the logs
//   AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself
import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient, QueryCommand, type QueryCommandOutput } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';
import {
  analyzeExperiment,
  OutcomeAggregator,
  parseAnalysisInput,
  predictionWindowQuery,
  servedAtRange,
  type ExperimentAnalysis,
} from '../shared/experiments';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'experiment-analysis';

const logger = new Logger({ serviceName: SERVICE_NAME });
const dynamodb = new DynamoDBClient({});

/** Stop reading this long before the function's timeout, so the state machine gets a clear error instead of a timeout. */
const SAFETY_MARGIN_MS = 5_000;

export interface AnalysisResult extends ExperimentAnalysis {
  readonly model: string;
  readonly variantA: string;
  readonly variantB: string;
  readonly window: { readonly start: string; readonly end: string };
  readonly alpha: number;
  readonly power: number;
  readonly minimumDetectableEffect: number;
  readonly higherIsBetter: boolean;
  /** When the analysis ran (ISO-8601 UTC). */
  readonly analyzedAt: string;
  /** Prediction-log items of the two arms read from the window. */
  readonly itemsRead: number;
  readonly pages: number;
}

function configuration(): { table: string; indexName: string; pageSize?: number } {
  const table = process.env.PREDICTION_LOG_TABLE?.trim();
  if (table === undefined || table.length === 0) {
    throw new Error('PREDICTION_LOG_TABLE: is not set');
  }
  const indexName = process.env.PREDICTION_LOG_INDEX?.trim() || 'byModel';
  const rawPageSize = process.env.ANALYSIS_QUERY_PAGE_SIZE?.trim();
  if (rawPageSize === undefined || rawPageSize.length === 0) {
    return { table, indexName };
  }
  const pageSize = Number(rawPageSize);
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    throw new Error(`ANALYSIS_QUERY_PAGE_SIZE: must be a whole number greater than 0; got ${JSON.stringify(rawPageSize)}`);
  }
  return { table, indexName, pageSize };
}

export async function handler(event: unknown, context?: Context): Promise<AnalysisResult> {
  if (context !== undefined) {
    logger.addContext(context);
  }
  const input = parseAnalysisInput(event);
  const { table, indexName, pageSize } = configuration();

  const aggregator = new OutcomeAggregator(input);
  let exclusiveStartKey: QueryCommandOutput['LastEvaluatedKey'];
  let pages = 0;
  let itemsRead = 0;
  do {
    if (context !== undefined && pages > 0 && context.getRemainingTimeInMillis() < SAFETY_MARGIN_MS) {
      throw Object.assign(
        new Error(
          `windowStart: the window holds too many predictions to analyse in one invocation (${itemsRead} read in ${pages} pages); analyse a shorter window or raise the function's timeout`,
        ),
        { name: 'AnalysisWindowTooLargeError' },
      );
    }
    const page = await dynamodb.send(
      new QueryCommand(
        predictionWindowQuery(table, input, {
          indexName,
          ...(pageSize === undefined ? {} : { limit: pageSize }),
          ...(exclusiveStartKey === undefined ? {} : { exclusiveStartKey }),
        }),
      ),
    );
    pages += 1;
    const items = page.Items ?? [];
    itemsRead += items.length;
    aggregator.addAll(items);
    exclusiveStartKey = page.LastEvaluatedKey;
  } while (exclusiveStartKey !== undefined);

  const analysis = analyzeExperiment(aggregator.result(), input);
  const range = servedAtRange(input);
  const result: AnalysisResult = {
    model: input.model,
    variantA: input.variantA,
    variantB: input.variantB,
    window: { start: range.from, end: new Date(Date.parse(input.windowEnd)).toISOString() },
    alpha: input.alpha,
    power: input.power,
    minimumDetectableEffect: input.minimumDetectableEffect,
    higherIsBetter: input.higherIsBetter,
    analyzedAt: new Date().toISOString(),
    ...analysis,
    itemsRead,
    pages,
  };
  logger.info('experiment analysed', {
    model: input.model,
    variantA: input.variantA,
    variantB: input.variantB,
    window: result.window,
    decision: result.decision,
    reason: result.reason,
    pValue: result.test?.pValue,
    itemsRead,
    pages,
  });
  return result;
}
