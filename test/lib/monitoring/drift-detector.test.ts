import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { DataKey } from '../../../lib/core/data-key';
import { DriftDetector } from '../../../lib/monitoring/drift-detector';
import { ModelEndpoint } from '../../../lib/serving/model-endpoint';
import { nagFindings } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

function build(capture = true) {
  const app = new App();
  const stack = new Stack(app, 'Drift', { env: { account: '123456789012', region: 'us-east-1' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [{ name: 'champion', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
    dataCapture: capture ? { samplingPercentage: 100 } : undefined,
  });
  const baselines = new s3.Bucket(stack, 'Baselines', { encryptionKey: key, enforceSSL: true });
  const topic = new sns.Topic(stack, 'Topic', { masterKey: key, enforceSSL: true });
  return { app, stack, key, endpoint, baselines, topic };
}

describe('DriftDetector', () => {
  test('checks the endpoint every interval with a read-only grant on its capture prefix and the baseline', () => {
    const { stack, key, endpoint, baselines, topic } = build();
    new DriftDetector(stack, 'Detector', {
      endpoint,
      baseline: { bucket: baselines, key: 'baselines/churn/drift-baseline.json' },
      encryptionKey: key,
      interval: Duration.minutes(10),
      alarmAction: new actions.SnsAction(topic),
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ LOOKBACK_MINUTES: '10', MODEL_NAME: 'churn', BASELINE_KEY: 'baselines/churn/drift-baseline.json', POWERTOOLS_METRICS_NAMESPACE: 'MlPlatform/Drift' }) },
      DeadLetterConfig: { TargetArn: Match.anyValue() },
    });
    const detectorPolicies = Object.entries(template.findResources('AWS::IAM::ManagedPolicy')).filter(([id]) => id.startsWith('Detector'));
    expect(detectorPolicies).toHaveLength(1);
    const statements = JSON.stringify(detectorPolicies);
    expect(statements).toContain('"s3:prefix"');
    expect(statements).not.toMatch(/"s3:PutObject"|"s3:\*"/);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'MlPlatform/Drift', MetricName: 'MaxPSI', Threshold: 0.2, Dimensions: [{ Name: 'Model', Value: 'churn' }] });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Namespace: 'MlPlatform/Drift', MetricName: 'DriftDetectorErrors', Threshold: 0 });
  });

  test('is clean under cdk-nag', () => {
    const { app, stack, key, endpoint, baselines, topic } = build();
    new DriftDetector(stack, 'Detector', { endpoint, baseline: { bucket: baselines, key: 'b.json' }, encryptionKey: key, alarmAction: new actions.SnsAction(topic) });
    app.synth();
    const ours = nagFindings(app).filter((f) => f.resource.includes('/Detector/'));
    expect(ours.map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('refuses an endpoint without data capture and bad settings, naming them', () => {
    const noCapture = build(false);
    expect(() => new DriftDetector(noCapture.stack, 'Detector', { endpoint: noCapture.endpoint, baseline: { bucket: noCapture.baselines, key: 'b.json' }, encryptionKey: noCapture.key })).toThrow(
      "Drift/Detector (DriftDetector): endpoint: 'churn' has no data capture; turn on dataCapture to detect drift",
    );
    const { stack, key, endpoint, baselines } = build();
    expect(() => new DriftDetector(stack, 'A', { endpoint, baseline: { bucket: baselines, key: 'b.json' }, encryptionKey: key, interval: Duration.seconds(30) })).toThrow('interval: must be a whole number of minutes from 1 to 1440; got 0.5');
    expect(() => new DriftDetector(stack, 'B', { endpoint, baseline: { bucket: baselines, key: 'b.json' }, encryptionKey: key, psiThreshold: 0 })).toThrow('psiThreshold: must be > 0; got 0');
  });
});
