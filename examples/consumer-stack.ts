// An application team's own stack using cdk-ml-patterns. The README shows this file; the tests
// type-check and synthesize it. In your project, import from 'cdk-ml-patterns'.
import { App, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AlarmSeverity, AlarmTopic, DataKey, ModelEndpoint, RealTimeInferenceApi } from '../lib';

export function buildExample(app: App): Stack {
  const stack = new Stack(app, 'RecommendationsStack', { env: { region: 'eu-west-1' } });
  const key = new DataKey(stack, 'Key').key;
  const alarms = new AlarmTopic(stack, 'Alarms', { encryptionKey: key, emails: ['ml-oncall@example.com'] });

  // Champion/challenger: 90% of traffic to the current model, 10% to the candidate.
  const endpoint = new ModelEndpoint(stack, 'Recommender', {
    modelName: 'recommender',
    encryptionKey: key,
    variants: [
      {
        name: 'champion',
        weight: 90,
        model: { version: '3.2.0', image: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1' },
        capacity: {
          kind: 'instance',
          instanceType: 'ml.c5.xlarge',
          initialInstanceCount: 2,
          autoscaling: { minCapacity: 2, maxCapacity: 6, targetInvocationsPerInstance: 500 },
        },
      },
      {
        name: 'challenger',
        weight: 10,
        model: { version: '3.3.0-rc1', image: '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1' },
        capacity: { kind: 'instance', instanceType: 'ml.c5.xlarge', initialInstanceCount: 1 },
      },
    ],
    dataCapture: { samplingPercentage: 10 },
    alarms: { actions: { [AlarmSeverity.CRITICAL]: alarms.alarmAction }, modelLatencyP99Ms: 200 },
  });

  const api = new RealTimeInferenceApi(stack, 'Inference', { endpoints: [endpoint], encryptionKey: key });
  const frontend = new iam.Role(stack, 'FrontendRole', { assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com') });
  api.grantInvoke(frontend);
  return stack;
}

if (require.main === module) {
  const app = new App();
  buildExample(app);
  app.synth();
}
