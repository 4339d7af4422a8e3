// Runs the detect-drift handler (source via swc, and once the esbuild bundle) against moto's S3 holding
// SageMaker data-capture files (<prefix><variant>/yyyy/mm/dd/hh/<file>.jsonl, current UTC hour) and a
// baseline object, and reads the EMF documents and logs it prints.
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { buildBaseline, type Row } from '../../lambda/shared/drift';
import { captureOutput, emfDocuments, handlerModulePaths, loadFreshHandler, logEntries, useHandlerEnv, type LogLine } from '../support/handler-harness';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';

type Handler = (event: unknown) => Promise<Record<string, unknown>>;

const { source: HANDLER_SOURCE, bundle: HANDLER_BUNDLE } = handlerModulePaths('detect-drift');
const CAPTURE_BUCKET = 'capture-bucket';
const BASELINE_BUCKET = 'baseline-bucket';
const NAMESPACE = 'MlPlatform/Drift';
const MODEL = 'churn';
const COLUMNS = ['tenure', 'charges', 'plan'];

const setEnv = useHandlerEnv(
  [
    'AWS_ENDPOINT_URL_S3',
    'CAPTURE_BUCKET',
    'CAPTURE_PREFIX',
    'BASELINE_BUCKET',
    'BASELINE_KEY',
    'LOOKBACK_MINUTES',
    'MIN_ROWS',
    'MODEL_NAME',
    'POWERTOOLS_METRICS_NAMESPACE',
    'POWERTOOLS_SERVICE_NAME',
    'POWERTOOLS_LOG_LEVEL',
    'POWERTOOLS_DEV',
    'POWERTOOLS_METRICS_DISABLED',
  ],
  {
    CAPTURE_BUCKET,
    BASELINE_BUCKET,
    MODEL_NAME: MODEL,
    POWERTOOLS_METRICS_NAMESPACE: NAMESPACE,
    POWERTOOLS_SERVICE_NAME: 'drift-test',
    POWERTOOLS_LOG_LEVEL: 'WARN',
  },
);

/** Deterministic pseudo-normal values (Box–Muller over a fixed LCG). */
function normals(count: number, mean: number, sd: number, seed: number): number[] {
  let state = seed >>> 0;
  const uniform = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 1) / 4294967297;
  };
  return Array.from({ length: count }, () => mean + sd * Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform()));
}

const PLANS = ['basic', 'basic', 'plus', 'premium'];

function rows(count: number, seed: number, chargesMean: number): Row[] {
  const tenure = normals(count, 20, 5, seed);
  const charges = normals(count, chargesMean, 10, seed + 1);
  return tenure.map((t, i) => ({ tenure: Math.round(t * 100) / 100, charges: Math.round(charges[i]! * 100) / 100, plan: PLANS[i % PLANS.length]! }));
}

const BASELINE = buildBaseline(COLUMNS, rows(3000, 11, 50));

/** One capture line in SageMaker's format; CSV data by default. */
function captureLine(data: string, encoding: 'CSV' | 'JSON' | 'BASE64' = 'CSV', index = 0): string {
  return JSON.stringify({
    captureData: {
      endpointInput: { observedContentType: encoding === 'JSON' ? 'application/json' : 'text/csv', mode: 'INPUT', data, encoding },
      endpointOutput: { observedContentType: 'text/csv; charset=utf-8', mode: 'OUTPUT', data: '0.31', encoding: 'CSV' },
    },
    eventMetadata: { eventId: `event-${index}`, inferenceTime: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'), inferenceId: `inference-${index}` },
    eventVersion: '0',
  });
}

function csv(row: Row): string {
  return COLUMNS.map((column) => String(row[column])).join(',');
}

/** Capture lines for rows: mostly one CSV row per record, some two-row CSV records, some JSON and BASE64 records. */
function captureLines(data: readonly Row[]): string[] {
  const lines: string[] = [];
  for (let i = 0; i < data.length; ) {
    const kind = lines.length % 4;
    if (kind === 1 && i + 1 < data.length) {
      lines.push(captureLine(`${csv(data[i]!)}\n${csv(data[i + 1]!)}`, 'CSV', i));
      i += 2;
    } else if (kind === 2) {
      lines.push(captureLine(JSON.stringify({ instances: [data[i]] }), 'JSON', i));
      i += 1;
    } else if (kind === 3) {
      lines.push(captureLine(Buffer.from(csv(data[i]!)).toString('base64'), 'BASE64', i));
      i += 1;
    } else {
      lines.push(captureLine(csv(data[i]!), 'CSV', i));
      i += 1;
    }
  }
  return lines;
}

function hourPartition(date: Date): string {
  const pad = (value: number): string => String(value).padStart(2, '0');
  return `${date.getUTCFullYear()}/${pad(date.getUTCMonth() + 1)}/${pad(date.getUTCDate())}/${pad(date.getUTCHours())}/`;
}

function metricNames(document: LogLine): string[] {
  const aws = document._aws as { CloudWatchMetrics: { Metrics: { Name: string }[] }[] };
  return aws.CloudWatchMetrics.flatMap((directive) => directive.Metrics.map((metric) => metric.Name));
}

function dimensionSets(document: LogLine): string[][] {
  const aws = document._aws as { CloudWatchMetrics: { Namespace: string; Dimensions: string[][] }[] };
  return aws.CloudWatchMetrics.flatMap((directive) => directive.Dimensions);
}

function featureDocument(lines: readonly LogLine[], feature: string): LogLine {
  const documents = emfDocuments(lines).filter((document) => document.Feature === feature);
  expect(documents).toHaveLength(1);
  return documents[0]!;
}

/** The per-model DriftDetectorErrors total (dimension Model only), which the construct alarms on. */
function perModelTotal(count: number) {
  return {
    asymmetricMatch: (document: Record<string, unknown>) => document.DriftDetectorErrors === count && typeof document.Model === 'string' && !('Reason' in document),
    toAsymmetricMatcher: () => `perModelTotal(${count})`,
  };
}

function errorDocuments(lines: readonly LogLine[]): LogLine[] {
  return emfDocuments(lines).filter((document) => metricNames(document).includes('DriftDetectorErrors'));
}

describe('detect-drift handler against moto S3', () => {
  let moto: MotoServer;
  let s3: S3Client;

  beforeAll(async () => {
    moto = await startMoto();
    s3 = new S3Client({ ...sdkTestConfig(moto.endpoint), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: CAPTURE_BUCKET }));
    await s3.send(new CreateBucketCommand({ Bucket: BASELINE_BUCKET }));
    await put(BASELINE_BUCKET, 'baselines/churn.json', JSON.stringify(BASELINE));
  });

  afterAll(async () => {
    await moto?.stop();
  });

  async function put(bucket: string, key: string, body: string): Promise<void> {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
  }

  /** Writes capture files of the given rows under <prefix><variant>/<current hour>/, split across files. */
  async function writeCapture(prefix: string, variant: string, data: readonly Row[], files = 2, extraLines: string[] = []): Promise<void> {
    const lines = [...captureLines(data), ...extraLines];
    const perFile = Math.ceil(lines.length / files);
    for (let file = 0; file < files; file += 1) {
      const chunk = lines.slice(file * perFile, (file + 1) * perFile);
      await put(CAPTURE_BUCKET, `${prefix}${variant}/${hourPartition(new Date())}capture-${file}.jsonl`, `${chunk.join('\n')}\n`);
    }
  }

  async function run(
    overrides: Record<string, string>,
    path = HANDLER_SOURCE,
  ): Promise<{ result: Record<string, unknown>; lines: LogLine[] }> {
    setEnv({ AWS_ENDPOINT_URL_S3: moto.endpoint, BASELINE_KEY: 'baselines/churn.json', ...overrides });
    const handler = loadFreshHandler<Handler>(path);
    return captureOutput(() => handler({ 'detail-type': 'Scheduled Event', source: 'aws.events', time: new Date().toISOString(), detail: {} }));
  }

  describe.each([
    ['source', HANDLER_SOURCE],
    ['bundle', HANDLER_BUNDLE],
  ])('drifted and stable features (%s)', (_, path) => {
    const prefix = `data-capture/churn/churn-endpoint-${path === HANDLER_SOURCE ? 'src' : 'bundle'}/`;

    beforeAll(async () => {
      // Two variants; charges drifted from mean 50 to 75 in both, tenure and plan stable.
      await writeCapture(prefix, 'AllTraffic', rows(400, 101, 75));
      await writeCapture(prefix, 'Challenger', rows(200, 202, 75), 1);
      // An old partition of the same endpoint is outside the window and not read.
      await put(CAPTURE_BUCKET, `${prefix}AllTraffic/2020/01/01/00/old.jsonl`, `${captureLines(rows(50, 3, 500)).join('\n')}\n`);
    });

    test('high PSI/KS for the drifted feature, low for the stable ones', async () => {
      const { result, lines } = await run({ CAPTURE_PREFIX: prefix }, path);
      expect(result).toMatchObject({ status: 'ok', model: MODEL, objectsRead: 3, linesRejected: 0, rowsAnalysed: 600, drift: true, driftedFeatures: ['charges'] });
      expect(result.problems).toEqual([]);

      const charges = featureDocument(lines, 'charges');
      expect(charges).toMatchObject({ Model: MODEL, Feature: 'charges', RowsAnalysed: 600 });
      expect((charges._aws as { CloudWatchMetrics: { Namespace: string }[] }).CloudWatchMetrics[0]!.Namespace).toBe(NAMESPACE);
      expect(dimensionSets(charges)).toEqual([['Model', 'Feature']]);
      expect(metricNames(charges).sort()).toEqual(['KSStatistic', 'PSI', 'RowsAnalysed']);
      expect(charges.PSI as number).toBeGreaterThan(1);
      expect(charges.KSStatistic as number).toBeGreaterThan(0.6);

      const tenure = featureDocument(lines, 'tenure');
      expect(tenure.PSI as number).toBeLessThan(0.1);
      expect(tenure.KSStatistic as number).toBeLessThan(0.1);

      const plan = featureDocument(lines, 'plan');
      expect(metricNames(plan).sort()).toEqual(['ChiSquarePValue', 'PSI', 'RowsAnalysed']);
      expect(plan.PSI as number).toBeLessThan(0.01);
      expect(plan.ChiSquarePValue as number).toBeGreaterThan(0.5);

      const overall = emfDocuments(lines).filter((document) => document.Feature === undefined);
      expect(overall).toEqual([expect.objectContaining({ Model: MODEL, RowsAnalysed: 600, FeaturesDrifted: 1, MaxPSI: charges.PSI })]);
      expect(errorDocuments(lines)).toEqual([]);
    });
  });

  test('missing baseline → DriftDetectorErrors (Reason BaselineMissing) and status error', async () => {
    const { result, lines } = await run({ CAPTURE_PREFIX: 'data-capture/churn/none/', BASELINE_KEY: 'baselines/absent.json' });
    expect(result).toMatchObject({ status: 'error', problems: [{ reason: 'BaselineMissing', count: 1 }] });
    const errors = errorDocuments(lines);
    expect(errors).toEqual([expect.objectContaining({ Model: MODEL, Reason: 'BaselineMissing', DriftDetectorErrors: 1 }), perModelTotal(1)]);
    expect(dimensionSets(errors[0]!)).toEqual([['Model', 'Reason']]);
    expect(emfDocuments(lines).filter((document) => 'PSI' in document)).toEqual([]);
    const logged = logEntries(lines, 'ERROR');
    expect(JSON.stringify(logged)).toContain('baselines/absent.json: baseline object does not exist');
  });

  test('malformed baseline → DriftDetectorErrors (Reason BaselineMalformed) naming the field', async () => {
    const broken = JSON.parse(JSON.stringify(BASELINE)) as { features: { charges: { binEdges: number[] } } };
    broken.features.charges.binEdges.reverse();
    await put(BASELINE_BUCKET, 'baselines/broken.json', JSON.stringify(broken));
    const { result, lines } = await run({ CAPTURE_PREFIX: 'data-capture/churn/none/', BASELINE_KEY: 'baselines/broken.json' });
    expect(result).toMatchObject({ status: 'error', problems: [{ reason: 'BaselineMalformed', count: 1 }] });
    expect(JSON.stringify(result.problems)).toContain('features.charges.binEdges[1]: must be strictly increasing');
    expect(errorDocuments(lines)).toEqual([expect.objectContaining({ Model: MODEL, Reason: 'BaselineMalformed', DriftDetectorErrors: 1 }), perModelTotal(1)]);
    expect(JSON.stringify(logEntries(lines, 'ERROR'))).toContain('features.charges.binEdges[1]');

    await put(BASELINE_BUCKET, 'baselines/not-json.json', '{"version": 1,');
    const notJson = await run({ CAPTURE_PREFIX: 'data-capture/churn/none/', BASELINE_KEY: 'baselines/not-json.json' });
    expect(notJson.result).toMatchObject({ status: 'error', problems: [{ reason: 'BaselineMalformed' }] });
    expect(JSON.stringify(notJson.result.problems)).toContain('not valid JSON');
  });

  test('capture line with an unexpected field → DriftDetectorErrors (Reason UnexpectedField) naming it', async () => {
    const prefix = 'data-capture/churn/schema-change/';
    const unexpected = captureLine(JSON.stringify({ instances: [{ tenure: 3, charges: 40, plan: 'basic', region: 'eu-west-1' }] }), 'JSON', 999);
    const truncated = captureLine('1,2', 'CSV', 998);
    await writeCapture(prefix, 'AllTraffic', rows(150, 303, 50), 1, [unexpected, unexpected, truncated]);
    const { result, lines } = await run({ CAPTURE_PREFIX: prefix });
    expect(result).toMatchObject({
      status: 'ok',
      linesRejected: 3,
      rowsAnalysed: 150,
      problems: [
        { reason: 'UnexpectedField', count: 2 },
        { reason: 'CaptureMalformed', count: 1 },
      ],
    });
    expect(JSON.stringify(result.problems)).toContain("unexpected field 'region' not in baseline columns");
    expect(JSON.stringify(result.problems)).toContain('row 0 has 2 values; the baseline has 3 columns');
    const errors = errorDocuments(lines);
    expect(errors).toEqual([
      expect.objectContaining({ Model: MODEL, Reason: 'UnexpectedField', DriftDetectorErrors: 2 }),
      expect.objectContaining({ Model: MODEL, Reason: 'CaptureMalformed', DriftDetectorErrors: 1 }),
      // The per-model total the construct alarms on, whatever the reason.
      perModelTotal(3),
    ]);
    expect(JSON.stringify(logEntries(lines, 'ERROR'))).toContain("unexpected field 'region'");
    // The valid lines are still analysed.
    expect(featureDocument(lines, 'tenure').RowsAnalysed).toBe(150);
  });

  test('too few rows → insufficient-data and no PSI metric at all', async () => {
    const prefix = 'data-capture/churn/quiet/';
    await writeCapture(prefix, 'AllTraffic', rows(30, 404, 50), 1);
    const { result, lines } = await run({ CAPTURE_PREFIX: prefix });
    expect(result).toMatchObject({ status: 'insufficient-data', rowsAnalysed: 30, objectsRead: 1, features: [] });
    expect(emfDocuments(lines).filter((document) => 'PSI' in document || 'KSStatistic' in document)).toEqual([]);
    expect(emfDocuments(lines)).toEqual([expect.objectContaining({ Model: MODEL, RowsAnalysed: 30 })]);
    expect(JSON.stringify(logEntries(lines, 'WARN'))).toContain('not enough rows to assess drift');
  });

  test('no capture at all → insufficient-data with RowsAnalysed 0', async () => {
    const { result } = await run({ CAPTURE_PREFIX: 'data-capture/churn/silent/' });
    expect(result).toMatchObject({ status: 'insufficient-data', rowsAnalysed: 0, objectsRead: 0 });
  });

  test('S3 access errors are thrown so the invocation is retried', async () => {
    await expect(run({ CAPTURE_PREFIX: 'data-capture/churn/x/', BASELINE_BUCKET: 'no-such-bucket' })).rejects.toThrow(/bucket/i);
  });

  test('bad configuration → DriftDetectorErrors (Reason InvalidConfiguration)', async () => {
    const { result, lines } = await run({ CAPTURE_PREFIX: 'data-capture/churn/x/', LOOKBACK_MINUTES: 'soon' });
    expect(result).toMatchObject({ status: 'error', problems: [{ reason: 'InvalidConfiguration' }] });
    expect(JSON.stringify(result.problems)).toContain('LOOKBACK_MINUTES');
    expect(errorDocuments(lines)).toEqual([expect.objectContaining({ Reason: 'InvalidConfiguration', DriftDetectorErrors: 1 }), perModelTotal(1)]);
  });
});
