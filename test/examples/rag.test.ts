import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { questionAnswering } from '../../examples/rag';
import { checkRagRequest } from '../../lambda/shared/retrieval';
import { DataKey } from '../../lib';

const ROOT = join(__dirname, '..', '..');

test('the README shows the RAG example exactly as the tests compile it, and it synthesizes', () => {
  const source = readFileSync(join(ROOT, 'examples', 'rag.ts'), 'utf8');
  const start = source.indexOf('export function questionAnswering(');
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());

  const stack = new Stack(new App(), 'Example', { env: { region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const api = questionAnswering(stack, new s3.Bucket(stack, 'Documents', { encryptionKey: key }), key, new actions.SnsAction(new sns.Topic(stack, 'Pager')));
  const template = Template.fromStack(stack);
  template.hasResourceProperties('Custom::KnnIndex', { IndexName: 'handbook', Dimension: 1024 });
  template.resourceCountIs('AWS::Bedrock::Guardrail', 1);
  expect(api.api.restApiId).toBeDefined();
});

test('the sample question passes the API model and the handler checks', () => {
  const sample = JSON.parse(readFileSync(join(ROOT, 'examples', 'inputs', 'rag-query.json'), 'utf8'));
  expect(checkRagRequest(sample, 2000)).toEqual({ ok: true, request: { question: sample.question } });
  const stack = new Stack(new App(), 'Example', { env: { region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  questionAnswering(stack, new s3.Bucket(stack, 'Documents', { encryptionKey: key }), key, new actions.SnsAction(new sns.Topic(stack, 'Pager')));
  const model = Object.values(Template.fromStack(stack).findResources('AWS::ApiGateway::Model'))[0].Properties.Schema;
  expect(Object.keys(sample)).toEqual(model.required);
  expect(sample.question.length).toBeLessThanOrEqual(model.properties.question.maxLength);
});
