// SageMaker Model Monitor, violation-triggered retraining and a model card in an application team's own
// stack. The README shows this function; the tests type-check and synthesize it. In your project, import
// from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { AlarmSeverity, ModelCard, ModelEndpoint, ModelMonitor, MonitoringAlarms, MonitoringBaselineWorkflow, MonitoringFrequency, RetrainingTrigger } from '../lib';

export function modelMonitoring(endpoint: ModelEndpoint, artifacts: s3.IBucket, key: kms.IKey, alarmTopic: sns.ITopic, pager: cloudwatch.IAlarmAction, retraining: sfn.IStateMachine) {
  // The endpoint must capture its requests and responses (dataCapture).
  const monitor = new ModelMonitor(endpoint, 'Monitor', {
    endpoint,
    bucket: artifacts,
    encryptionKey: key,
    headers: ['tenure_months', 'monthly_charges', 'support_tickets_30d', 'contract_type'],
    dataQuality: { schedule: MonitoringFrequency.hourly() },
    modelQuality: { schedule: MonitoringFrequency.daily(2), problemType: 'BinaryClassification', probabilityAttribute: '0', probabilityThreshold: 0.5, groundTruthAttribute: 'churned' },
    bias: { label: 'churned', labelValuesOrThreshold: [1], facets: [{ name: 'contract_type', valuesOrThreshold: ['month-to-month'] }], probabilityAttribute: '0', schedule: MonitoringFrequency.daily(3) },
  });
  new MonitoringBaselineWorkflow(endpoint, 'Baselines', { monitor, encryptionKey: key, failureAlarmAction: pager });
  const trigger = new RetrainingTrigger(endpoint, 'Retraining', {
    monitor,
    alarmTopic,
    encryptionKey: key,
    retrainingWorkflow: retraining,
    retrainingInput: { pipeline: 'churn-training' },
    cooldown: Duration.hours(72),
  });
  new MonitoringAlarms(endpoint, 'MonitoringAlarms', {
    monitor,
    trigger,
    actions: { [AlarmSeverity.CRITICAL]: pager, [AlarmSeverity.WARNING]: pager },
    featureDriftThresholds: { tenure_months: 0.2, contract_type: 0.2 },
    modelQualityMinimums: { f1: 0.7 },
  });
  new ModelCard(endpoint, 'Card', {
    endpoint,
    owner: 'customer-analytics',
    intendedUse: { purpose: 'Rank customers by churn risk.', intendedUses: 'Prioritise retention offers; a person reviews each one.', riskRating: 'Medium' },
  });
  return { monitor, trigger };
}
