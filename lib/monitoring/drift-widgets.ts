import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { DRIFT_METRICS_NAMESPACE, type DriftDetector } from './drift-detector';

/** Dashboard widgets for a drift detector: the largest PSI, each feature's PSI, and failed runs. */
export function driftWidgets(detector: DriftDetector): cloudwatch.IWidget[] {
  const model = detector.modelName;
  return [
    new cloudwatch.GraphWidget({
      title: `Drift of ${model}: largest PSI and failed runs`,
      left: [detector.metricMaxPsi({ label: 'max PSI' })],
      right: [detector.metricErrors({ label: 'cannot measure' })],
      width: 12,
      height: 6,
    }),
    new cloudwatch.GraphWidget({
      title: `Drift of ${model}: PSI per feature`,
      left: [
        new cloudwatch.MathExpression({
          expression: `SEARCH('{${DRIFT_METRICS_NAMESPACE},Model,Feature} MetricName="PSI" Model="${model}"', 'Maximum', 900)`,
          label: 'PSI',
          period: Duration.minutes(15),
        }),
      ],
      width: 12,
      height: 6,
    }),
  ];
}
