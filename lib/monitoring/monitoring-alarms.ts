import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { AlarmSeverity } from '../serving/endpoint-alarms';
import type { ModelMonitor } from './model-monitor';
import type { RetrainingTrigger } from './retraining-trigger';
import { assertRequiredProps } from '../core/private/props';

export interface MonitoringAlarmsProps {
  readonly monitor: ModelMonitor;
  /** Where the alarms notify, per severity. A severity without an action still alarms, silently. */
  readonly actions: Partial<Record<AlarmSeverity, cloudwatch.IAlarmAction>>;
  /**
   * WARNING when Model Monitor's drift distance of a feature from its baseline
   * (`feature_baseline_drift_<feature>`) exceeds the threshold. Needs data-quality monitoring.
   * @default - no drift alarms
   */
  readonly featureDriftThresholds?: Record<string, number>;
  /**
   * CRITICAL when a model-quality metric (e.g. `accuracy`, `f1`, `recall`) falls below the minimum.
   * Needs model-quality monitoring.
   * @default - no model-quality alarms
   */
  readonly modelQualityMinimums?: Record<string, number>;
  /**
   * WARNING on every monitoring execution that finds violations or fails, counted by the trigger.
   * @default - no violation or failed-execution alarms
   */
  readonly trigger?: RetrainingTrigger;
}

/**
 * Alarms on what Model Monitor reports, keyed by severity: per-feature drift above its threshold,
 * model quality below its minimum, and (with a RetrainingTrigger) constraint violations and failed
 * monitoring executions. Model Monitor publishes one datapoint per run, so missing data is not a
 * breach; a run that could not measure shows up as a failed execution instead.
 */
export class MonitoringAlarms extends Construct {
  /** Every alarm, by severity. */
  public readonly bySeverity: Record<AlarmSeverity, cloudwatch.Alarm[]> = { [AlarmSeverity.CRITICAL]: [], [AlarmSeverity.WARNING]: [] };

  constructor(scope: Construct, id: string, props: MonitoringAlarmsProps) {
    super(scope, id);
    assertRequiredProps(this.node.path, 'MonitoringAlarms', props, { monitor: 'construct', actions: 'object' });
    const where = `${this.node.path} (MonitoringAlarms)`;
    const { monitor } = props;
    const model = monitor.endpoint.modelName;
    const problems: string[] = [];
    const drift = Object.entries(props.featureDriftThresholds ?? {});
    const quality = Object.entries(props.modelQualityMinimums ?? {});
    if (drift.length > 0 && !monitor.has('dataQuality')) problems.push('featureDriftThresholds: need data-quality monitoring on the monitor');
    if (quality.length > 0 && !monitor.has('modelQuality')) problems.push('modelQualityMinimums: need model-quality monitoring on the monitor');
    for (const [feature, threshold] of drift) {
      if (monitor.headers && !monitor.headers.includes(feature)) problems.push(`featureDriftThresholds.${feature}: not one of the monitor's headers (${monitor.headers.join(', ')})`);
      if (!(threshold > 0)) problems.push(`featureDriftThresholds.${feature}: must be > 0; got ${threshold}`);
    }
    for (const [metric, minimum] of quality) {
      if (!/^[a-z0-9_]+$/.test(metric)) problems.push(`modelQualityMinimums.${metric}: must be a Model Monitor metric name such as accuracy, f1 or recall`);
      if (!(Number.isFinite(minimum))) problems.push(`modelQualityMinimums.${metric}: must be a number; got ${minimum}`);
    }
    if (problems.length > 0) throw new Error(`${where}: invalid props:\n  - ${problems.join('\n  - ')}`);

    if (drift.length > 0) {
      const hours = periodHours(monitor, 'dataQuality');
      for (const [feature, threshold] of drift) {
        this.add(AlarmSeverity.WARNING, props, `Drift-${feature}`, {
          metric: monitor.metricFeatureDrift(feature, { period: Duration.hours(hours) }),
          threshold,
          comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
          alarmDescription: `${model}: Model Monitor measured drift of feature ${feature} from its baseline above ${threshold}`,
        });
      }
    }
    if (quality.length > 0) {
      const hours = periodHours(monitor, 'modelQuality');
      for (const [metric, minimum] of quality) {
        this.add(AlarmSeverity.CRITICAL, props, `Quality-${metric}`, {
          metric: monitor.metricModelQuality(metric, { period: Duration.hours(hours) }),
          threshold: minimum,
          comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
          alarmDescription: `${model}: ${metric} against ground truth fell below ${minimum}`,
        });
      }
    }
    if (props.trigger) {
      this.add(AlarmSeverity.WARNING, props, 'Violations', {
        metric: props.trigger.metricViolations(),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarmDescription: `${model}: a Model Monitor execution found constraint violations (see the report under ${monitor.prefix}/reports/)`,
      });
      this.add(AlarmSeverity.WARNING, props, 'FailedExecutions', {
        metric: props.trigger.metricFailedExecutions(),
        threshold: 0,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        alarmDescription: `${model}: a Model Monitor execution failed (baseline missing or malformed, analysis configuration, capacity): monitoring is blind until it is fixed`,
      });
    }
  }

  /** All alarms of one severity. */
  public alarms(severity: AlarmSeverity): readonly cloudwatch.Alarm[] {
    return this.bySeverity[severity];
  }

  private add(
    severity: AlarmSeverity,
    props: MonitoringAlarmsProps,
    id: string,
    alarmProps: Pick<cloudwatch.AlarmProps, 'metric' | 'threshold' | 'alarmDescription' | 'comparisonOperator'>,
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      ...alarmProps,
      evaluationPeriods: 1,
      alarmDescription: `[${severity.toUpperCase()}] ${alarmProps.alarmDescription}`,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const action = props.actions[severity];
    if (action) {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
    this.bySeverity[severity].push(alarm);
  }
}

/** A metric period that holds one run of the schedule: 1 hour for hourly monitors, 1 day for daily ones. */
function periodHours(monitor: ModelMonitor, kind: 'dataQuality' | 'modelQuality'): number {
  return monitor.monitor(kind).frequency.description === 'hourly' ? 1 : 24;
}
