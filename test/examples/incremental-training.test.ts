import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { fraudIncrementalTraining } from '../../examples/incremental-training';
import { ManagedPolicyRole, ModelPackageGroup, TrainingPipeline } from '../../lib';
import { expectValidStateMachines } from '../support/asl';
import { nagFindings } from '../support/platform';
import { lifecycleStack, pipelineProps } from '../lib/lifecycle/fixtures';

const source = readFileSync(join(__dirname, '..', '..', 'examples', 'incremental-training.ts'), 'utf8');
const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');

test('the README shows the fraudIncrementalTraining example exactly as the tests compile it', () => {
  const start = source.indexOf('export function fraudIncrementalTraining(');
  expect(start).toBeGreaterThan(0);
  expect(readme).toContain(source.slice(start, source.indexOf('\n}\n', start) + 2).trim());
});

test('the example streams into windows of 50 000 records, lets its producer put records, and passes the three cdk-nag packs', () => {
  const world = lifecycleStack();
  const group = new ModelPackageGroup(world.stack, 'FraudVersions', { modelFamily: 'fraud' });
  const pipeline = new TrainingPipeline(world.stack, 'FraudTraining', pipelineProps(world, { modelPackageGroup: group, dataValidation: {} }));
  const producer = new ManagedPolicyRole(world.stack, 'CaseService', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'), description: 'The case-management service' });
  const incremental = fraudIncrementalTraining(world.stack, pipeline, producer, world.topic, world.key);
  const template = Template.fromStack(world.stack).toJSON();
  const machine = expectValidStateMachines(template).find((candidate) => candidate.logicalId.startsWith('FraudIncremental'))!;
  expect((machine.definition as any).States['Load defaults'].Parameters).toMatchObject({
    constraintsKey: 'fraud/constraints/constraints.json',
    settings: { minRecords: 50_000, cooldownSeconds: 6 * 3600 },
    fineTuneHyperparameters: { num_round: '25', eta: '0.05' },
  });
  const stream = Object.values<any>(template.Resources).find((resource) => resource.Type === 'AWS::KinesisFirehose::DeliveryStream');
  expect(stream.Properties.ExtendedS3DestinationConfiguration).toMatchObject({ Prefix: 'fraud/stream/arrived/!{timestamp:yyyy/MM/dd/HH}/', BufferingHints: { IntervalInSeconds: 300, SizeInMBs: 16 } });
  const producerPolicy = template.Resources[world.stack.getLogicalId(producer.grantsPolicy.node.defaultChild as any)];
  expect(producerPolicy.Properties.PolicyDocument.Statement).toEqual([
    expect.objectContaining({ Action: ['firehose:PutRecord', 'firehose:PutRecordBatch'], Resource: { 'Fn::GetAtt': [world.stack.getLogicalId(incremental.deliveryStream), 'Arn'] } }),
  ]);
  world.app.synth();
  expect(nagFindings(world.stack)).toEqual([]);
});
