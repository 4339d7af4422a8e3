// Near-real-time data drift detector (seed pattern "Data Drift Detection"), run by an EventBridge
// schedule every few minutes; SageMaker Model Monitor runs at most hourly.
//
// Lists the SageMaker data-capture objects written within the lookback window
// (<CAPTURE_PREFIX><variant>/yyyy/mm/dd/hh/<file>.jsonl, every variant folder, every hour partition the
// window touches), parses them, compares the rows with the baseline (lambda/shared/drift.ts) and
// publishes EMF metrics per feature (dimensions Model, Feature): PSI, KSStatistic (numeric),
// ChiSquarePValue (categorical), RowsAnalysed; plus RowsAnalysed and FeaturesDrifted per Model.
//
// Problems with the data (missing or malformed baseline, capture lines that cannot be parsed or carry
// fields the baseline does not know, bad configuration) publish DriftDetectorErrors (dimensions Model,
// Reason), log an error naming the problem and are reported in the returned summary. S3 access errors
// are thrown, so the invocation fails, is retried and alarmed on.
//
// Environment:
//   CAPTURE_BUCKET, CAPTURE_PREFIX   where SageMaker writes data capture (prefix up to the endpoint name)
//   BASELINE_BUCKET, BASELINE_KEY    the baseline JSON (lambda/shared/drift.ts BaselineSchema)
//   LOOKBACK_MINUTES                 optional, default 15
//   MIN_ROWS                         optional, default 100
//   PSI_THRESHOLD                    optional, default 0.2: a feature above it counts as drifted
//   MODEL_NAME                       the Model dimension
//   POWERTOOLS_METRICS_NAMESPACE     e.g. MlPlatform/Drift; POWERTOOLS_SERVICE_NAME for the logs
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import {
  BaselineError,
  CaptureParseError,
  detectDrift,
  parseBaselineText,
  parseCaptureLine,
  type Baseline,
  type DriftReport,
  type Row,
} from '../shared/drift';

const SERVICE_NAME = process.env.POWERTOOLS_SERVICE_NAME ?? 'drift-detector';

const logger = new Logger({ serviceName: SERVICE_NAME });
const metrics = new Metrics({ serviceName: SERVICE_NAME });
// The metrics carry exactly the documented dimensions (Model, Feature / Model, Reason), not Powertools' `service`.
metrics.clearDefaultDimensions();
const s3 = new S3Client({});

/** Capture files read at once. */
const READ_CONCURRENCY = 8;
/** Problems quoted in the summary and the log, per reason. */
const MAX_QUOTED_PROBLEMS = 5;

export type ErrorReason = 'InvalidConfiguration' | 'BaselineMissing' | 'BaselineMalformed' | 'CaptureMalformed' | 'UnexpectedField';

export interface DriftProblem {
  readonly reason: ErrorReason;
  /** How many times it happened (lines, for capture problems). */
  readonly count: number;
  /** The first few messages, each naming the field (and object key for capture problems). */
  readonly messages: readonly string[];
}

export interface DriftSummary {
  readonly status: 'ok' | 'insufficient-data' | 'error';
  readonly model: string;
  readonly window?: { readonly start: string; readonly end: string };
  readonly objectsRead?: number;
  readonly linesRead?: number;
  readonly linesRejected?: number;
  readonly rowsAnalysed?: number;
  readonly drift?: boolean;
  readonly driftedFeatures?: readonly string[];
  readonly features?: DriftReport['features'];
  readonly problems: readonly DriftProblem[];
}

interface Configuration {
  readonly captureBucket: string;
  readonly capturePrefix: string;
  readonly baselineBucket: string;
  readonly baselineKey: string;
  readonly lookbackMinutes: number;
  readonly minRows: number;
  readonly psiThreshold: number;
  readonly model: string;
}

class ConfigurationError extends Error {
  override readonly name = 'ConfigurationError';
}

function required(name: string): string {
  const value = process.env[name]?.trim();
  if (value === undefined || value.length === 0) {
    throw new ConfigurationError(`${name}: is not set`);
  }
  return value;
}

function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw.length === 0) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`${name}: must be a whole number greater than 0; got ${JSON.stringify(raw)}`);
  }
  return value;
}

function positiveNumber(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw.length === 0) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    throw new ConfigurationError(`${name}: must be a number greater than 0; got ${JSON.stringify(raw)}`);
  }
  return value;
}

function configuration(): Configuration {
  const prefix = required('CAPTURE_PREFIX').replace(/^\/+/, '');
  return {
    model: required('MODEL_NAME'),
    captureBucket: required('CAPTURE_BUCKET'),
    capturePrefix: prefix.endsWith('/') ? prefix : `${prefix}/`,
    baselineBucket: required('BASELINE_BUCKET'),
    baselineKey: required('BASELINE_KEY'),
    lookbackMinutes: positiveInteger('LOOKBACK_MINUTES', 15),
    minRows: positiveInteger('MIN_ROWS', 100),
    psiThreshold: positiveNumber('PSI_THRESHOLD', 0.2),
  };
}

/** yyyy/mm/dd/hh/ partitions (UTC) of every hour from start to end inclusive. */
export function hourPartitions(start: Date, end: Date): string[] {
  const partitions: string[] = [];
  const hour = new Date(start);
  hour.setUTCMinutes(0, 0, 0);
  for (; hour.getTime() <= end.getTime(); hour.setUTCHours(hour.getUTCHours() + 1)) {
    const pad = (value: number): string => String(value).padStart(2, '0');
    partitions.push(`${hour.getUTCFullYear()}/${pad(hour.getUTCMonth() + 1)}/${pad(hour.getUTCDate())}/${pad(hour.getUTCHours())}/`);
  }
  return partitions;
}

async function listVariantPrefixes(bucket: string, prefix: string): Promise<string[]> {
  const variants: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }));
    for (const common of page.CommonPrefixes ?? []) {
      if (common.Prefix !== undefined) variants.push(common.Prefix);
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return variants;
}

async function listRecentObjects(bucket: string, prefix: string, since: Date): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) {
      if (object.Key !== undefined && object.LastModified !== undefined && object.LastModified.getTime() >= since.getTime()) {
        keys.push(object.Key);
      }
    }
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

async function readText(bucket: string, key: string): Promise<string> {
  const response = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (response.Body === undefined) {
    return '';
  }
  return response.Body.transformToString('utf8');
}

function isNoSuchKey(error: unknown): boolean {
  const name = (error as { name?: string } | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound';
}

class ProblemLog {
  private readonly problems = new Map<ErrorReason, { count: number; messages: string[] }>();

  add(reason: ErrorReason, message: string): void {
    const entry = this.problems.get(reason) ?? { count: 0, messages: [] };
    entry.count += 1;
    if (entry.messages.length < MAX_QUOTED_PROBLEMS) entry.messages.push(message);
    this.problems.set(reason, entry);
  }

  list(): DriftProblem[] {
    return [...this.problems].map(([reason, { count, messages }]) => ({ reason, count, messages }));
  }
}

function publishProblems(model: string, problems: readonly DriftProblem[]): void {
  for (const problem of problems) {
    logger.error('drift detector problem', { model, reason: problem.reason, count: problem.count, problems: problem.messages });
    metrics.addDimensions({ Model: model, Reason: problem.reason });
    metrics.addMetric('DriftDetectorErrors', MetricUnit.Count, problem.count);
    metrics.publishStoredMetrics();
  }
  if (problems.length > 0) {
    // The same count per model alone, which the construct alarms on whatever the reason.
    metrics.addDimension('Model', model);
    metrics.addMetric('DriftDetectorErrors', MetricUnit.Count, problems.reduce((sum, problem) => sum + problem.count, 0));
    metrics.publishStoredMetrics();
  }
}

function publishReport(model: string, report: DriftReport): void {
  metrics.addDimension('Model', model);
  metrics.addMetric('RowsAnalysed', MetricUnit.Count, report.rows);
  if (report.status !== 'insufficient-data') {
    metrics.addMetric('FeaturesDrifted', MetricUnit.Count, report.driftedFeatures.length);
  }
  const measured = report.features.filter((feature) => feature.status === 'ok');
  if (measured.length > 0) {
    // The largest shift of any feature: one metric per model to alarm on.
    metrics.addMetric('MaxPSI', MetricUnit.NoUnit, Math.max(...measured.map((feature) => feature.psi)));
  }
  metrics.publishStoredMetrics();
  for (const feature of report.features) {
    if (feature.status !== 'ok') continue;
    metrics.addDimensions({ Model: model, Feature: feature.feature });
    metrics.addMetric('PSI', MetricUnit.NoUnit, feature.psi);
    if (feature.ks !== undefined) metrics.addMetric('KSStatistic', MetricUnit.NoUnit, feature.ks.statistic);
    if (feature.chiSquare !== undefined) metrics.addMetric('ChiSquarePValue', MetricUnit.NoUnit, feature.chiSquare.pValue);
    metrics.addMetric('RowsAnalysed', MetricUnit.Count, feature.rows);
    metrics.publishStoredMetrics();
  }
}

/** Maps items with at most `limit` in flight, keeping order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await fn(items[index]!);
    }
  });
  await Promise.all(workers);
  return results;
}

function windowEnd(event: unknown): Date {
  const time = (event as { time?: unknown } | null | undefined)?.time;
  if (typeof time === 'string' && Number.isFinite(Date.parse(time))) {
    return new Date(Date.parse(time));
  }
  return new Date();
}

export async function handler(event: unknown, context?: Context): Promise<DriftSummary> {
  if (context !== undefined) {
    logger.addContext(context);
  }
  let config: Configuration;
  try {
    config = configuration();
  } catch (error) {
    if (!(error instanceof ConfigurationError)) throw error;
    const problems: DriftProblem[] = [{ reason: 'InvalidConfiguration', count: 1, messages: [error.message] }];
    const model = process.env.MODEL_NAME?.trim() || 'unknown';
    publishProblems(model, problems);
    return { status: 'error', model, problems };
  }
  const { model } = config;
  const problems = new ProblemLog();
  const end = windowEnd(event);
  const start = new Date(end.getTime() - config.lookbackMinutes * 60_000);
  const window = { start: start.toISOString(), end: end.toISOString() };

  // Baseline first: without it there is nothing to compare with.
  let baseline: Baseline;
  try {
    baseline = parseBaselineText(await readText(config.baselineBucket, config.baselineKey));
  } catch (error) {
    if (isNoSuchKey(error)) {
      problems.add('BaselineMissing', `s3://${config.baselineBucket}/${config.baselineKey}: baseline object does not exist`);
    } else if (error instanceof BaselineError) {
      problems.add('BaselineMalformed', `s3://${config.baselineBucket}/${config.baselineKey}: ${error.message}`);
    } else {
      throw error;
    }
    const list = problems.list();
    publishProblems(model, list);
    return { status: 'error', model, window, problems: list };
  }

  const keys: string[] = [];
  for (const variant of await listVariantPrefixes(config.captureBucket, config.capturePrefix)) {
    for (const partition of hourPartitions(start, end)) {
      keys.push(...(await listRecentObjects(config.captureBucket, `${variant}${partition}`, start)));
    }
  }

  let linesRead = 0;
  let linesRejected = 0;
  const rows: Row[] = [];
  const texts = await mapLimited(keys, READ_CONCURRENCY, async (key) => {
    try {
      return await readText(config.captureBucket, key);
    } catch (error) {
      // Deleted between the listing and the read (lifecycle rule): nothing to analyse.
      if (isNoSuchKey(error)) {
        logger.warn('capture object vanished before it was read', { key });
        return '';
      }
      throw error;
    }
  });
  texts.forEach((text, index) => {
    text.split(/\r?\n/).forEach((line, lineIndex) => {
      if (line.trim().length === 0) return;
      linesRead += 1;
      try {
        rows.push(...parseCaptureLine(line, baseline.columns));
      } catch (error) {
        if (!(error instanceof CaptureParseError)) throw error;
        linesRejected += 1;
        problems.add(
          error.problem === 'unexpected-field' ? 'UnexpectedField' : 'CaptureMalformed',
          `s3://${config.captureBucket}/${keys[index]} line ${lineIndex + 1}: ${error.message}`,
        );
      }
    });
  });

  const report = detectDrift(baseline, rows, { minRows: config.minRows, psiThreshold: config.psiThreshold });
  const list = problems.list();
  publishProblems(model, list);
  publishReport(model, report);

  const summary: DriftSummary = {
    status: report.status === 'insufficient-data' ? 'insufficient-data' : 'ok',
    model,
    window,
    objectsRead: keys.length,
    linesRead,
    linesRejected,
    rowsAnalysed: report.rows,
    drift: report.status === 'drift',
    driftedFeatures: report.driftedFeatures,
    features: report.features,
    problems: list,
  };
  if (report.status === 'insufficient-data') {
    logger.warn('not enough rows to assess drift', { model, window, rows: report.rows, minRows: report.minRows, objectsRead: keys.length });
  } else {
    logger.info('drift assessed', { model, window, status: report.status, driftedFeatures: report.driftedFeatures, rows: report.rows });
  }
  return summary;
}
