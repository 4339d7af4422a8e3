import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as events from 'aws-cdk-lib/aws-events';
import { expectValidStateMachines } from '../../support/asl';
import { nagFindings } from '../../support/platform';
import { lifecycleStack, pipelineProps, trainingPipeline } from './fixtures';
import { TrainingPipeline } from '../../../lib/lifecycle/training-pipeline';

function states(template: Template): Record<string, any> {
  const [machine] = expectValidStateMachines(template.toJSON());
  return (machine.definition as any).States;
}

describe('TrainingPipeline', () => {
  test('renders valid ASL and passes the three cdk-nag packs', () => {
    const { stack, app } = trainingPipeline({ transferLearning: { baseModelS3Uri: 's3://jumpstart-cache-prod-us-east-1/huggingface-training/model/' }, schedule: events.Schedule.rate(Duration.days(7)), trainOnDataArrival: true });
    const template = Template.fromStack(stack);
    expect(Object.keys(states(template)).length).toBeGreaterThan(20);
    app.synth();
    expect(nagFindings(stack)).toEqual([]);
  });
});
