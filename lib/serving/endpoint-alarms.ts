import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import type { ModelEndpoint } from './model-endpoint';

/** How loudly an alarm should speak. */
export enum AlarmSeverity {
  /** Users are failing now: page. */
  CRITICAL = 'critical',
  /** Degraded or trending badly: look during working hours. */
  WARNING = 'warning',
}

export interface EndpointAlarmOptions {
  /** Where the alarms notify, per severity. A severity without an action still alarms, silently. */
  readonly actions: Partial<Record<AlarmSeverity, cloudwatch.IAlarmAction>>;
  /**
   * CRITICAL when a variant's 5xx errors exceed this percentage of its invocations.
   * @default 1
   */
  readonly error5xxRatePercent?: number;
  /**
   * WARNING when a variant's 4xx errors exceed this percentage of its invocations.
   * @default 5
   */
  readonly error4xxRatePercent?: number;
  /**
   * WARNING when a variant's p99 model latency exceeds this many milliseconds.
   * @default 1000
   */
  readonly modelLatencyP99Ms?: number;
  /**
   * Consecutive 5-minute periods that must breach before an alarm fires.
   * @default 3
   */
  readonly evaluationPeriods?: number;
}

export interface EndpointAlarmsProps extends EndpointAlarmOptions {
  readonly endpoint: ModelEndpoint;
}

/** Per-variant alarms of a ModelEndpoint, keyed by severity. */
export class EndpointAlarms extends Construct {
  /** Every alarm, by severity. */
  public readonly bySeverity: Record<AlarmSeverity, cloudwatch.Alarm[]> = { [AlarmSeverity.CRITICAL]: [], [AlarmSeverity.WARNING]: [] };

  constructor(scope: Construct, id: string, props: EndpointAlarmsProps) {
    super(scope, id);
    const { endpoint } = props;
    const evaluationPeriods = props.evaluationPeriods ?? 3;
    const error5xx = props.error5xxRatePercent ?? 1;
    const error4xx = props.error4xxRatePercent ?? 5;
    const latencyMs = props.modelLatencyP99Ms ?? 1000;
    for (const [name, value] of [
      ['error5xxRatePercent', error5xx],
      ['error4xxRatePercent', error4xx],
      ['modelLatencyP99Ms', latencyMs],
      ['evaluationPeriods', evaluationPeriods],
    ] as const) {
      if (!(value > 0)) {
        throw new Error(`${this.node.path} (EndpointAlarms): ${name}: must be > 0; got ${value}`);
      }
    }

    for (const variant of endpoint.variants) {
      const errorRate = (metric: cloudwatch.IMetric, label: string) =>
        new cloudwatch.MathExpression({
          expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
          usingMetrics: { errors: metric, invocations: endpoint.metricInvocations(variant.name) },
          label,
          period: Duration.minutes(5),
        });
      this.add(AlarmSeverity.CRITICAL, props, `${variant.name}-5xxRate`, {
        metric: errorRate(endpoint.metric5xxErrors(variant.name), `${variant.name} 5xx %`),
        threshold: error5xx,
        alarmDescription: `${endpoint.modelName}/${variant.name}: more than ${error5xx}% of invocations failed with a 5xx`,
        evaluationPeriods,
      });
      this.add(AlarmSeverity.WARNING, props, `${variant.name}-4xxRate`, {
        metric: errorRate(endpoint.metric4xxErrors(variant.name), `${variant.name} 4xx %`),
        threshold: error4xx,
        alarmDescription: `${endpoint.modelName}/${variant.name}: more than ${error4xx}% of invocations were rejected with a 4xx`,
        evaluationPeriods,
      });
      this.add(AlarmSeverity.WARNING, props, `${variant.name}-ModelLatencyP99`, {
        // ModelLatency is published in microseconds.
        metric: endpoint.metricModelLatency(variant.name),
        threshold: latencyMs * 1000,
        alarmDescription: `${endpoint.modelName}/${variant.name}: p99 model latency above ${latencyMs} ms`,
        evaluationPeriods,
      });
    }
  }

  /** All alarms of one severity. */
  public alarms(severity: AlarmSeverity): readonly cloudwatch.Alarm[] {
    return this.bySeverity[severity];
  }

  private add(
    severity: AlarmSeverity,
    props: EndpointAlarmOptions,
    id: string,
    alarmProps: Pick<cloudwatch.AlarmProps, 'metric' | 'threshold' | 'alarmDescription' | 'evaluationPeriods'>,
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      ...alarmProps,
      alarmDescription: `[${severity.toUpperCase()}] ${alarmProps.alarmDescription}`,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
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
