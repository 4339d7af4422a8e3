import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { MlWorkflow } from '../core/ml-workflow';
import { EXPERIMENTS_METRICS_NAMESPACE } from '../experiments/private/experiment-metrics';

/** The experiment workflows of one model, as the dashboard shows them. */
export interface ExperimentWorkflows {
  readonly modelName: string;
  readonly promotion?: { readonly workflow: MlWorkflow };
  readonly shadowComparison?: { readonly workflow: MlWorkflow };
  readonly abTest?: { readonly workflow: MlWorkflow; readonly defaults: Record<string, unknown> };
}

const WIDTH = 8;
const HEIGHT = 6;

const experimentMetric = (metricName: string, modelName: string, extra: Record<string, string> = {}, props: cloudwatch.MetricOptions = {}) =>
  new cloudwatch.Metric({
    namespace: EXPERIMENTS_METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { Model: modelName, ...extra },
    period: Duration.hours(1),
    statistic: 'Maximum',
    ...props,
  });

/** Dashboard widgets for a model's experiments: verdicts, A/B results and workflow runs. */
export function experimentWidgets(experiments: ExperimentWorkflows): cloudwatch.IWidget[] {
  const { modelName } = experiments;
  const workflows = [
    ['promotion', experiments.promotion?.workflow],
    ['shadow comparison', experiments.shadowComparison?.workflow],
    ['A/B analysis', experiments.abTest?.workflow],
  ].filter((entry): entry is [string, MlWorkflow] => entry[1] !== undefined);
  if (workflows.length === 0) return [];

  const widgets: cloudwatch.IWidget[] = [
    new cloudwatch.TextWidget({ markdown: `## Experiments of \`${modelName}\``, width: 24, height: 1 }),
    new cloudwatch.GraphWidget({
      title: 'Workflow runs: succeeded / failed',
      left: workflows.map(([label, workflow]) => workflow.stateMachine.metricSucceeded({ statistic: 'Sum', period: Duration.hours(1), label: `${label} succeeded` })),
      right: workflows.map(([label, workflow]) => workflow.stateMachine.metricFailed({ statistic: 'Sum', period: Duration.hours(1), label: `${label} failed` })),
      width: WIDTH,
      height: HEIGHT,
    }),
  ];
  if (experiments.shadowComparison) {
    widgets.push(
      new cloudwatch.GraphWidget({
        title: 'Shadow verdict (1 = promote-ready)',
        left: [experimentMetric('ShadowPromoteReady', modelName, {}, { label: 'promote-ready' })],
        leftYAxis: { min: 0, max: 1 },
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  if (experiments.abTest) {
    const arms = [experiments.abTest.defaults.variantA, experiments.abTest.defaults.variantB].map(String);
    widgets.push(
      new cloudwatch.GraphWidget({
        title: 'A/B: outcome rate or mean per arm',
        left: arms.map((variant) => experimentMetric('ArmMean', modelName, { Variant: variant }, { label: variant })),
        right: [experimentMetric('PValue', modelName, {}, { label: 'p-value' })],
        width: WIDTH,
        height: HEIGHT,
      }),
      new cloudwatch.GraphWidget({
        title: 'A/B: outcomes per arm',
        left: arms.map((variant) => experimentMetric('ArmOutcomes', modelName, { Variant: variant }, { label: variant })),
        width: WIDTH,
        height: HEIGHT,
      }),
    );
  }
  return widgets;
}
