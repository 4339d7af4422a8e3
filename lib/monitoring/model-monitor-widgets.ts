import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { MODEL_MONITOR_NAMESPACES, type ModelMonitor } from './model-monitor';
import type { MonitoringAlarms } from './monitoring-alarms';
import type { RetrainingTrigger } from './retraining-trigger';

const WIDTH = 8;
const HEIGHT = 6;

/** Model-quality metrics Model Monitor publishes, per problem type. */
const QUALITY_METRICS: Record<string, string[]> = {
  BinaryClassification: ['accuracy', 'precision', 'recall', 'f1', 'auc'],
  MulticlassClassification: ['accuracy', 'weighted_precision', 'weighted_recall', 'weighted_f1'],
  Regression: ['mae', 'rmse', 'r2'],
};

export interface ModelMonitorWidgetsOptions {
  /** Adds violations and failed executions. */
  readonly trigger?: RetrainingTrigger;
  /** Adds the monitoring alarms' states. */
  readonly alarms?: MonitoringAlarms;
}

/**
 * Dashboard widgets for a ModelMonitor: model performance (accuracy, precision, recall, F1 or
 * regression errors against ground truth), data quality and drift per feature, completeness, and the
 * violations, failed executions and alarms of the monitoring itself. (Latency, invocations, errors
 * and CPU / memory / GPU per variant are the endpoint's own widgets.)
 */
export function modelMonitorWidgets(monitor: ModelMonitor, options: ModelMonitorWidgetsOptions = {}): cloudwatch.IWidget[] {
  const model = monitor.endpoint.modelName;
  const widgets: cloudwatch.IWidget[] = [
    new cloudwatch.TextWidget({
      markdown: `## Model monitoring \`${model}\`\n${monitor.monitors.map((m) => `**${m.kind}** ${m.frequency.description}`).join(' · ')}`,
      width: 24,
      height: 2,
    }),
  ];
  if (monitor.has('modelQuality')) {
    const names = QUALITY_METRICS[monitor.problemType ?? ''] ?? QUALITY_METRICS.BinaryClassification;
    widgets.push(
      new cloudwatch.GraphWidget({
        title: `Performance of ${model} against ground truth`,
        left: names.map((name) => monitor.metricModelQuality(name, { label: name })),
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  if (monitor.has('dataQuality')) {
    const schedule = monitor.monitor('dataQuality').scheduleName;
    // Per feature when the features are known; otherwise a search over the metric names' prefix.
    const perFeature = (prefix: string, statistic: string, metric: (feature: string) => cloudwatch.IMetric): cloudwatch.IMetric[] =>
      monitor.headers && monitor.headers.length > 0
        ? monitor.headers.map(metric)
        : [
            new cloudwatch.MathExpression({
              expression: `SEARCH('{${MODEL_MONITOR_NAMESPACES.dataQuality},Endpoint,MonitoringSchedule} MonitoringSchedule="${schedule}" ${prefix}', '${statistic}', 3600)`,
              label: prefix,
              period: Duration.hours(1),
            }),
          ];
    widgets.push(
      new cloudwatch.GraphWidget({
        title: `Drift of ${model}'s features from the baseline (Model Monitor)`,
        left: perFeature('feature_baseline_drift', 'Maximum', (feature) => monitor.metricFeatureDrift(feature, { label: feature })),
        width: WIDTH,
        height: HEIGHT,
      }),
      new cloudwatch.GraphWidget({
        title: `Data quality of ${model}: completeness per feature`,
        left: perFeature('feature_non_null', 'Average', (feature) => monitor.metricFeatureCompleteness(feature, { label: feature })),
        leftYAxis: { min: 0, max: 1 },
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  if (options.trigger) {
    widgets.push(
      new cloudwatch.GraphWidget({
        title: `Monitoring runs of ${model}: violations and failures`,
        left: [options.trigger.metricViolations({ label: 'violations' }), options.trigger.metricFailedExecutions({ label: 'failed executions' })],
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  const alarms = options.alarms ? [...options.alarms.bySeverity.critical, ...options.alarms.bySeverity.warning] : [];
  if (alarms.length > 0) {
    widgets.push(new cloudwatch.AlarmStatusWidget({ title: `${model} monitoring alarms`, alarms, width: WIDTH, height: HEIGHT }));
  }
  return widgets;
}
