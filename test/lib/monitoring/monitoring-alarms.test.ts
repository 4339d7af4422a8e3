import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { ModelCard } from '../../../lib/monitoring/model-card';
import { MonitoringFrequency } from '../../../lib/monitoring/model-monitor';
import { modelMonitorWidgets } from '../../../lib/monitoring/model-monitor-widgets';
import { MonitoringAlarms } from '../../../lib/monitoring/monitoring-alarms';
import { RetrainingTrigger } from '../../../lib/monitoring/retraining-trigger';
import { AlarmSeverity } from '../../../lib/serving/endpoint-alarms';
import { nagFindings } from '../../support/platform';
import { allMonitors, monitorWorld } from './monitor-fixtures';

function build() {
  const world = monitorWorld();
  const monitor = allMonitors(world, { modelQuality: { problemType: 'BinaryClassification', probabilityAttribute: '0', schedule: MonitoringFrequency.daily(2) } });
  const trigger = new RetrainingTrigger(world.stack, 'Trigger', { monitor, alarmTopic: world.topic, encryptionKey: world.key, cooldown: Duration.hours(24) });
  const action = new actions.SnsAction(world.topic);
  return { world, monitor, trigger, action };
}

describe('MonitoringAlarms', () => {
  test('alarms per feature on drift, on model quality below its minimum, on violations and failed runs, keyed by severity', () => {
    const { world, monitor, trigger, action } = build();
    const alarms = new MonitoringAlarms(world.stack, 'MonitorAlarms', {
      monitor,
      trigger,
      actions: { [AlarmSeverity.WARNING]: action, [AlarmSeverity.CRITICAL]: action },
      featureDriftThresholds: { tenure_months: 0.2, age: 0.3 },
      modelQualityMinimums: { f1: 0.7 },
    });
    const template = Template.fromStack(world.stack);
    const schedule = (kind: 'dataQuality' | 'modelQuality') => [
      { Name: 'Endpoint', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Churn'), 'EndpointName'] } },
      { Name: 'MonitoringSchedule', Value: monitor.monitor(kind).scheduleName },
    ];
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'aws/sagemaker/Endpoints/data-metrics',
      MetricName: 'feature_baseline_drift_age',
      Dimensions: schedule('dataQuality'),
      Statistic: 'Maximum',
      Period: 3600,
      Threshold: 0.3,
      ComparisonOperator: 'GreaterThanThreshold',
      TreatMissingData: 'notBreaching',
      AlarmDescription: Match.stringLikeRegexp('^\\[WARNING\\] churn: Model Monitor measured drift of feature age'),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'aws/sagemaker/Endpoints/model-metrics',
      MetricName: 'f1',
      Dimensions: schedule('modelQuality'),
      Period: 86400,
      Threshold: 0.7,
      ComparisonOperator: 'LessThanThreshold',
      AlarmDescription: Match.stringLikeRegexp('^\\[CRITICAL\\]'),
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'MlPlatform/ModelMonitor', MetricName: 'Violations', Dimensions: [{ Name: 'Model', Value: 'churn' }], Threshold: 0 });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'MlPlatform/ModelMonitor', MetricName: 'FailedExecutions', Threshold: 0, AlarmActions: [Match.anyValue()], OKActions: [Match.anyValue()] });
    expect(alarms.alarms(AlarmSeverity.CRITICAL)).toHaveLength(1);
    expect(alarms.alarms(AlarmSeverity.WARNING)).toHaveLength(4);
  });

  test('refuses thresholds for monitors that are off or features that do not exist, naming them', () => {
    const world = monitorWorld();
    const monitor = allMonitors(world, { dataQuality: undefined, modelQuality: undefined });
    expect(() => new MonitoringAlarms(world.stack, 'MonitorAlarms', { monitor, actions: {}, featureDriftThresholds: { zip: 0 }, modelQualityMinimums: { 'F-1': 0.5 } })).toThrow(
      [
        'Monitoring/MonitorAlarms (MonitoringAlarms): invalid props:',
        '  - featureDriftThresholds: need data-quality monitoring on the monitor',
        '  - modelQualityMinimums: need model-quality monitoring on the monitor',
        "  - featureDriftThresholds.zip: not one of the monitor's headers (tenure_months, monthly_charges, contract_type, age)",
        '  - featureDriftThresholds.zip: must be > 0; got 0',
        '  - modelQualityMinimums.F-1: must be a Model Monitor metric name such as accuracy, f1 or recall',
      ].join('\n'),
    );
  });
});

describe('modelMonitorWidgets', () => {
  test('shows performance, drift and completeness per feature, violations and the alarms', () => {
    const { world, monitor, trigger, action } = build();
    const alarms = new MonitoringAlarms(world.stack, 'MonitorAlarms', { monitor, trigger, actions: { [AlarmSeverity.WARNING]: action }, featureDriftThresholds: { age: 0.3 } });
    const widgets = modelMonitorWidgets(monitor, { trigger, alarms });
    new cloudwatch.Dashboard(world.stack, 'Dashboard', { widgets: [widgets] });
    const body = JSON.stringify(world.stack.resolve(Template.fromStack(world.stack).findResources('AWS::CloudWatch::Dashboard')));
    const titles = widgets.map((widget) => (widget.toJson()[0] as any).properties.title ?? (widget.toJson()[0] as any).properties.markdown);
    expect(titles).toEqual([
      expect.stringContaining('## Model monitoring `churn`'),
      'Performance of churn against ground truth',
      "Drift of churn's features from the baseline (Model Monitor)",
      'Data quality of churn: completeness per feature',
      'Monitoring runs of churn: violations and failures',
      'churn monitoring alarms',
    ]);
    for (const metric of ['accuracy', 'precision', 'recall', 'f1', 'feature_baseline_drift_tenure_months', 'feature_non_null_age', 'Violations', 'FailedExecutions']) {
      expect(body).toContain(metric);
    }
  });
});

describe('ModelCard', () => {
  const props = {
    intendedUse: { purpose: 'Rank customers by churn risk.', intendedUses: 'Retention offers, reviewed by a person.', riskRating: 'Medium', riskRatingExplanation: 'A person reviews every action.' },
    owner: 'customer-analytics',
    problemType: 'Binary classification',
    trainingDetails: { objective: 'binary:logistic', hyperParameters: { max_depth: '5' }, metrics: { auc: 0.91 } },
    ethicalConsiderations: 'Bias drift on contract type is monitored.',
  };

  test('documents the deployed model, encrypted with the key, with a generated name', () => {
    const world = monitorWorld();
    const card = new ModelCard(world.stack, 'Card', { endpoint: world.endpoint, ...props });
    Template.fromStack(world.stack).hasResourceProperties('AWS::SageMaker::ModelCard', {
      ModelCardName: card.modelCardName,
      ModelCardStatus: 'Draft',
      SecurityConfig: { KmsKeyId: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] } },
      Content: {
        ModelOverview: Match.objectLike({ ModelName: 'churn', ModelOwner: 'customer-analytics', ModelDescription: 'Serving: champion (production) v1.' }),
        IntendedUses: Match.objectLike({ RiskRating: 'Medium', PurposeOfModel: 'Rank customers by churn risk.' }),
        TrainingDetails: {
          ObjectiveFunction: { Notes: 'binary:logistic' },
          TrainingJobDetails: { UserProvidedHyperParameters: [{ Name: 'max_depth', Value: '5' }], UserProvidedTrainingMetrics: [{ Name: 'auc', Value: 0.91 }] },
        },
        AdditionalInformation: { EthicalConsiderations: 'Bias drift on contract type is monitored.' },
      },
    });
    expect(card.modelCardName).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
    world.app.synth();
    expect(nagFindings(world.app).filter((f) => f.resource.includes('/Card/'))).toEqual([]);
  });

  test('refuses a risk rating, status or name SageMaker would reject, naming each', () => {
    const world = monitorWorld();
    expect(() =>
      new ModelCard(world.stack, 'Bad', {
        endpoint: world.endpoint,
        intendedUse: { purpose: ' ', intendedUses: 'x', riskRating: 'Severe' },
        status: 'Published',
        modelCardName: 'churn card',
        trainingDetails: { metrics: { auc: Number.NaN } },
      }),
    ).toThrow(
      [
        'Monitoring/Bad (ModelCard): invalid props:',
        "  - intendedUse.riskRating: must be one of High, Medium, Low, Unknown; got 'Severe'",
        '  - intendedUse.purpose: must not be empty',
        "  - status: must be one of Approved, Archived, Draft, PendingReview (AWS SDK ModelCardStatus); got 'Published'",
        "  - modelCardName: must be 1-63 letters, digits or hyphens; got 'churn card'",
        '  - trainingDetails.metrics.auc: must be a finite number; got NaN',
      ].join('\n'),
    );
  });
});
