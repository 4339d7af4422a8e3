import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { ModelEndpoint } from '../serving/model-endpoint';
import type { RealTimeInferenceApi } from '../serving/real-time-inference-api';

const WIDTH = 8;
const HEIGHT = 6;

/** Dashboard widgets for one ModelEndpoint: traffic, latency, errors and instance utilisation per variant. */
export function endpointWidgets(endpoint: ModelEndpoint): cloudwatch.IWidget[] {
  const variants = endpoint.variants;
  const perVariant = (metric: (name: string) => cloudwatch.IMetric) => variants.map((variant) => metric(variant.name));
  const widgets: cloudwatch.IWidget[] = [
    new cloudwatch.TextWidget({
      markdown: `## Model \`${endpoint.modelName}\`\n${variants.map((v) => `**${v.name}** (${v.kind}) v${v.modelVersion}`).join(' · ')}`,
      width: 24,
      height: 2,
    }),
    new cloudwatch.GraphWidget({
      title: 'Invocations per variant',
      left: perVariant((name) => endpoint.metricInvocations(name, { label: name })),
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: 'Model latency p50 / p90 / p99 (µs)',
      left: variants.flatMap((variant) =>
        (['p50', 'p90', 'p99'] as const).map((statistic) => endpoint.metricModelLatency(variant.name, { statistic, label: `${variant.name} ${statistic}` })),
      ),
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: 'Overhead latency p99 (µs)',
      left: perVariant((name) => endpoint.metricOverheadLatency(name, { label: name })),
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: '4xx / 5xx errors',
      left: perVariant((name) => endpoint.metric4xxErrors(name, { label: `${name} 4xx` })),
      right: perVariant((name) => endpoint.metric5xxErrors(name, { label: `${name} 5xx` })),
      width: WIDTH,
      height: HEIGHT,
    }),
  ];
  const instanceVariants = variants.filter((variant) => variant.capacity.kind === 'instance');
  if (instanceVariants.length > 0) {
    const utilisation = (metricName: string) =>
      instanceVariants.map(
        (variant) =>
          new cloudwatch.Metric({
            namespace: '/aws/sagemaker/Endpoints',
            metricName,
            dimensionsMap: { EndpointName: endpoint.endpointName, VariantName: variant.name },
            statistic: 'Average',
            period: Duration.minutes(5),
            label: `${variant.name} ${metricName}`,
          }),
      );
    widgets.push(
      new cloudwatch.GraphWidget({
        title: 'CPU / memory / disk utilisation (%)',
        left: [...utilisation('CPUUtilization'), ...utilisation('MemoryUtilization'), ...utilisation('DiskUtilization')],
        width: WIDTH,
        height: HEIGHT,
      }),
      new cloudwatch.GraphWidget({
        title: 'GPU / GPU memory utilisation (%)',
        left: [...utilisation('GPUUtilization'), ...utilisation('GPUMemoryUtilization')],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  if (endpoint.alarms) {
    widgets.push(
      new cloudwatch.AlarmStatusWidget({
        title: `${endpoint.modelName} alarms`,
        alarms: [...endpoint.alarms.bySeverity.critical, ...endpoint.alarms.bySeverity.warning],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  return widgets;
}

/** Dashboard widgets for the inference API: requests, errors and latency as callers see them. */
export function inferenceApiWidgets(api: RealTimeInferenceApi, modelNames: readonly string[]): cloudwatch.IWidget[] {
  const period = Duration.minutes(5);
  return [
    new cloudwatch.TextWidget({ markdown: '## Real-time inference API', width: 24, height: 1 }),
    new cloudwatch.GraphWidget({
      title: 'API requests and errors',
      left: [api.api.metricCount({ period, statistic: 'Sum', label: 'requests' })],
      right: [
        api.api.metricClientError({ period, statistic: 'Sum', label: '4xx' }),
        api.api.metricServerError({ period, statistic: 'Sum', label: '5xx' }),
      ],
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: 'API latency p50 / p99 (ms)',
      left: [
        api.api.metricLatency({ period, statistic: 'p50', label: 'p50' }),
        api.api.metricLatency({ period, statistic: 'p99', label: 'p99' }),
      ],
      width: WIDTH,
      height: HEIGHT,
    }),
    // Per-model lines for a family's own dashboard; a fleet's overview ranks models instead (fleet-widgets.ts).
    ...(modelNames.length === 0
      ? []
      : [
          new cloudwatch.GraphWidget({
            title: 'Predictions and failed requests per model',
            left: modelNames.map((name) => api.metricPredictions(name, { label: `${name} predictions` })),
            right: modelNames.map((name) => api.metricPredictionErrors(name, { label: `${name} errors` })),
            width: WIDTH,
            height: HEIGHT,
          }),
        ]),
    ...cacheWidgets(api, modelNames.filter((name) => api.cachedModelNames.includes(name)), period),
    ...breakerWidgets(api, modelNames.filter((name) => api.guardedModelNames.includes(name)), period),
    ...precomputedWidgets(api, modelNames.filter((name) => api.precomputedModelNames.includes(name)), period),
  ];
}

/** The batch layer's answers served in real time: hits, misses (no answer or too old) and failed reads. */
function precomputedWidgets(api: RealTimeInferenceApi, models: readonly string[], period: Duration): cloudwatch.IWidget[] {
  if (models.length === 0) return [];
  return [
    new cloudwatch.GraphWidget({
      title: 'Precomputed predictions: served, asked in real time, read errors',
      left: models.flatMap((name) => [api.metricPrecomputedHits(name, { period, label: `${name} precomputed` }), api.metricPrecomputedMisses(name, { period, label: `${name} real time` })]),
      right: models.flatMap((name) => [api.metricPrecomputedErrors(name, { period, label: `${name} read errors` }), api.metricFallbacksServed(name, 'precomputed', { period, label: `${name} fallback: precomputed` })]),
      width: WIDTH,
      height: HEIGHT,
    }),
  ];
}

/** The prediction cache of the cached models: hit ratio, and the shared tier's failures (each a miss). */
function cacheWidgets(api: RealTimeInferenceApi, cached: readonly string[], period: Duration): cloudwatch.IWidget[] {
  if (cached.length === 0) return [];
  return [
    new cloudwatch.GraphWidget({
      title: 'Prediction cache: hit ratio (%) and shared-tier errors',
      left: cached.map((name) => api.metricCacheHitRatio(name, { period })),
      leftYAxis: { min: 0, max: 100 },
      right: cached.map((name) => api.metricCacheErrors(name, { period, label: `${name} cache errors` })),
      width: WIDTH,
      height: HEIGHT,
    }),
  ];
}

/** The circuit breakers of the guarded models: calls an open breaker refused, and the fallbacks served by kind. */
function breakerWidgets(api: RealTimeInferenceApi, guarded: readonly string[], period: Duration): cloudwatch.IWidget[] {
  if (guarded.length === 0) return [];
  const openAlarms = guarded.flatMap((name) => api.routeOf(name)?.circuitOpenAlarm ?? []);
  return [
    new cloudwatch.GraphWidget({
      title: 'Circuit breakers: calls refused while open, fallbacks served',
      left: guarded.map((name) => api.metricCircuitOpenRejections(name, { period, label: `${name} refused` })),
      right: guarded.flatMap((name) => [
        api.metricFallbacksServed(name, 'variant', { period, label: `${name} fallback: variant` }),
        api.metricFallbacksServed(name, 'static', { period, label: `${name} fallback: static` }),
      ]),
      width: WIDTH,
      height: HEIGHT,
    }),
    // The breaker's state per endpoint: its warning alarm is in ALARM while the breaker refuses calls.
    ...(openAlarms.length === 0 ? [] : [new cloudwatch.AlarmStatusWidget({ title: 'Circuit breakers open', alarms: openAlarms, width: WIDTH, height: 3 })]),
  ];
}

/**
 * The composites (ensembles, cascades, chains) an API serves: their predictions and failed requests, the
 * members or stages that failed or answered with a fallback, and the cascades' escalations.
 */
export function compositeWidgets(api: RealTimeInferenceApi, names: readonly string[] = api.compositeNames): cloudwatch.IWidget[] {
  if (names.length === 0) return [];
  const period = Duration.minutes(5);
  const cascades = names.filter((name) => api.compositeOf(name)?.kind === 'cascade');
  return [
    new cloudwatch.TextWidget({ markdown: '### Composite models: ensembles, cascades and chains', width: 24, height: 1 }),
    new cloudwatch.GraphWidget({
      title: 'Composites: predictions and failed requests',
      left: names.map((name) => api.metricPredictions(name, { period, statistic: 'Sum', label: `${name} predictions` })),
      right: names.map((name) => api.metricPredictionErrors(name, { period, statistic: 'Sum', label: `${name} errors` })),
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: 'Composites: parts failed; cascade escalations',
      left: names.map((name) => api.metricCompositePartsFailed(name, { period, label: `${name} parts failed` })),
      right: cascades.map((name) => api.metricCascadeEscalations(name, { period, label: `${name} escalations` })),
      width: WIDTH,
      height: HEIGHT,
    }),
  ];
}
