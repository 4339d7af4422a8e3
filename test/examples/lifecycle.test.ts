import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { modelLifecycle } from '../../examples/lifecycle';
import { DataKey, ModelEndpoint } from '../../lib';
import { expectValidStateMachines } from '../support/asl';

test('the README shows the lifecycle example exactly as the tests compile it, and it synthesizes four valid workflows', () => {
  const source = readFileSync(join(__dirname, '..', '..', 'examples', 'lifecycle.ts'), 'utf8');
  const start = source.indexOf('export function modelLifecycle(');
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());

  const stack = new Stack(new App(), 'Example', { env: { region: 'us-east-1', account: '123456789012' } });
  const key = new DataKey(stack, 'Key').key;
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    encryptionKey: key,
    variants: [{ name: 'champion', model: { version: '1', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1' }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
  });
  const buckets = [new s3.Bucket(stack, 'Datasets', { encryptionKey: key }), new s3.Bucket(stack, 'Runs', { encryptionKey: key })];
  modelLifecycle(endpoint, buckets[0], buckets[1], key, new sns.Topic(stack, 'Topic'));
  const template = Template.fromStack(stack);
  expect(expectValidStateMachines(template.toJSON())).toHaveLength(4);
  template.resourceCountIs('AWS::Scheduler::Schedule', 1);
  template.resourceCountIs('AWS::SageMaker::ModelPackageGroup', 1);
});
