import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { driftDetection } from '../../examples/drift-detector';
import { DataKey, ModelEndpoint } from '../../lib';

test('the README shows the drift example exactly as the tests compile it, and it synthesizes', () => {
  const source = readFileSync(join(__dirname, '..', '..', 'examples', 'drift-detector.ts'), 'utf8');
  const start = source.indexOf('export function driftDetection(');
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
  driftDetection(endpoint, new s3.Bucket(stack, 'Artifacts', { encryptionKey: key }), key, new actions.SnsAction(new sns.Topic(stack, 'Pager')));
  Template.fromStack(stack).hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(10 minutes)' });
});
