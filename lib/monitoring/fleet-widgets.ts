import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type { RealTimeInferenceApi } from '../serving/real-time-inference-api';

/** CloudWatch's alarm status widget shows at most this many alarms. */
export const MAX_ALARMS_PER_STATUS_WIDGET = 100;

export interface FleetOverviewOptions {
  /** How many families each top-N graph shows. @default 10 */
  readonly topN?: number;
  /** One alarm per family (its health alarm), listed while in ALARM. */
  readonly familyAlarms: readonly cloudwatch.IAlarm[];
  /** Alarms of what the families share (the API, feature store, RAG), listed while in ALARM. */
  readonly sharedAlarms?: readonly cloudwatch.IAlarm[];
}

/**
 * The environment overview of a fleet of model families: the families with the most traffic, the
 * most failed predictions and the highest latency (Metrics Insights queries, so the dashboard does
 * not grow with the fleet), and every family or shared alarm that is in ALARM.
 */
export function fleetOverviewWidgets(api: RealTimeInferenceApi, options: FleetOverviewOptions): cloudwatch.IWidget[] {
  const topN = options.topN ?? 10;
  const period = Duration.minutes(5);
  const top = (title: string, metric: Parameters<RealTimeInferenceApi['metricTopModels']>[0]) =>
    new cloudwatch.GraphWidget({ title, left: [api.metricTopModels(metric, { limit: topN, period })], width: 8, height: 6, legendPosition: cloudwatch.LegendPosition.RIGHT });
  const alarmWidgets = (title: string, alarms: readonly cloudwatch.IAlarm[]) => {
    const widgets: cloudwatch.IWidget[] = [];
    for (let start = 0; start < alarms.length; start += MAX_ALARMS_PER_STATUS_WIDGET) {
      const chunk = alarms.slice(start, start + MAX_ALARMS_PER_STATUS_WIDGET);
      const part = alarms.length > MAX_ALARMS_PER_STATUS_WIDGET ? ` (${start + 1}-${start + chunk.length})` : '';
      widgets.push(
        new cloudwatch.AlarmStatusWidget({
          title: `${title}${part}`,
          alarms: [...chunk],
          states: [cloudwatch.AlarmState.ALARM],
          sortBy: cloudwatch.AlarmStatusWidgetSortBy.STATE_UPDATED_TIMESTAMP,
          width: 12,
          height: 4,
        }),
      );
    }
    return widgets;
  };
  return [
    new cloudwatch.TextWidget({
      markdown: `## Model families: top ${topN}\nEach family has its own dashboard (stack \`MlPlatform-<env>-<family>\`); a family in ALARM below has at least one alarm firing.`,
      width: 24,
      height: 2,
    }),
    top(`Most predictions (top ${topN})`, 'Predictions'),
    top(`Most failed predictions (top ${topN})`, 'PredictionErrors'),
    top(`Highest model latency, ms (top ${topN})`, 'ModelLatency'),
    ...alarmWidgets('Model families in ALARM', options.familyAlarms),
    ...alarmWidgets('Shared services in ALARM', options.sharedAlarms ?? []),
  ];
}
