import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { FeatureGroup } from '../features/feature-group';
import type { FeatureIngestion } from '../features/feature-ingestion';

const WIDTH = 8;
const HEIGHT = 6;

/** Dashboard widgets for Feature Store: write and read health per group, and the ingestion layers. */
export function featureStoreWidgets(groups: readonly FeatureGroup[], ingestion: FeatureIngestion): cloudwatch.IWidget[] {
  const period = Duration.minutes(5);
  return [
    new cloudwatch.TextWidget({ markdown: `## Feature Store: ${groups.map((group) => `\`${group.featureGroupName}\``).join(', ')}`, width: 24, height: 1 }),
    new cloudwatch.GraphWidget({
      title: 'Online store latency p99 (µs)',
      left: groups.flatMap((group) => [
        group.metricLatency('GetRecord', { label: `${group.featureGroupName} GetRecord` }),
        group.metricLatency('PutRecord', { label: `${group.featureGroupName} PutRecord` }),
      ]),
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: 'Feature Store errors and throttles',
      left: groups.flatMap((group) => [
        group.metric5xxErrors('PutRecord', { label: `${group.featureGroupName} PutRecord 5xx` }),
        group.metric4xxErrors('PutRecord', { label: `${group.featureGroupName} PutRecord 4xx` }),
        group.metricThrottled('PutRecord', { label: `${group.featureGroupName} throttled` }),
      ]),
      width: WIDTH,
      height: HEIGHT,
    }),
    new cloudwatch.GraphWidget({
      title: 'Ingestion: rejected and failed records, stream lag',
      left: [
        ingestion.rejectedRecords.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum', label: 'rejected (queue)' }),
        ingestion.ingestionFailures.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum', label: 'failed (queue)' }),
      ],
      right: [ingestion.speedLayer.metric('IteratorAge', { period, statistic: 'Maximum', label: 'iterator age (ms)' })],
      width: WIDTH,
      height: HEIGHT,
    }),
  ];
}
