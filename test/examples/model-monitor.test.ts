import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { modelMonitoring } from '../../examples/model-monitor';
import { DataKey, ModelEndpoint } from '../../lib';

test('the README shows the Model Monitor example exactly as the tests compile it, and it synthesizes', () => {
  const source = readFileSync(join(__dirname, '..', '..', 'examples', 'model-monitor.ts'), 'utf8');
  const start = source.indexOf('export function modelMonitoring(');
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());

  const stack = new Stack(new App(), 'Example', { env: { region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [{ name: 'champion', model: { version: '1', image: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1' }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
    dataCapture: { samplingPercentage: 100 },
  });
  const topic = new sns.Topic(stack, 'Alarms', { masterKey: key });
  const retraining = new sfn.StateMachine(stack, 'Training', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, 'Train')) });
  const { monitor } = modelMonitoring(endpoint, new s3.Bucket(stack, 'Artifacts', { encryptionKey: key }), key, topic, new actions.SnsAction(topic), retraining);
  const template = Template.fromStack(stack);
  template.resourceCountIs('AWS::SageMaker::MonitoringSchedule', 3);
  // eu-west-1's own Model Monitor and Clarify images, from the region map.
  expect(monitor.modelMonitorImage).toBe('468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer:latest');
  expect(monitor.clarifyImage).toBe('131013547314.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-clarify-processing:1.0');
  template.resourceCountIs('AWS::SageMaker::ModelCard', 1);
});
