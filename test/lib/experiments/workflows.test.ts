import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AbTestAnalysis } from '../../../lib/experiments/ab-test-analysis';
import { ChampionChallengerPromotion } from '../../../lib/experiments/champion-challenger-promotion';
import { PredictionLog } from '../../../lib/experiments/prediction-log';
import { ShadowComparison } from '../../../lib/experiments/shadow-comparison';
import { expectValidStateMachines } from '../../support/asl';
import { ENVIRONMENT_NAMES, nagFindings, synthesizePlatform } from '../../support/platform';
import { experimentStack, IMAGE } from './fixtures';

const instance = { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 };

describe.each(ENVIRONMENT_NAMES)('the %s blueprint', (envName) => {
  test('renders every state machine as valid Amazon States Language', () => {
    const platform = synthesizePlatform(envName);
    const machines = Object.values(platform.templates).flatMap((template) =>
      Object.keys(template.findResources('AWS::StepFunctions::StateMachine')).length > 0 ? expectValidStateMachines(template.toJSON()) : [],
    );
    // The feature batch ingestion and the four lifecycle workflows in every environment, each environment's
    // experiments, the Model Monitor baselining and retraining-trigger workflows and churn's incremental training
    // in staging and prod; staging's federated training and the offers family's online allocation.
    expect(machines.length).toBe(5 + (envName === 'dev' ? 0 : envName === 'staging' ? 2 + 2 + 1 + 1 + 1 : 1 + 2 + 1));
  });
});

describe('ChampionChallengerPromotion', () => {
  test('logs ALL events encrypted, traces, and calls only its own endpoint', () => {
    const { stack, key, topic, endpoint } = experimentStack();
    new ChampionChallengerPromotion(stack, 'Promotion', { endpoint, notificationTopic: topic, encryptionKey: key, bakeTime: Duration.minutes(5) });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: Match.objectLike({ Level: 'ALL', IncludeExecutionData: true }),
      EncryptionConfiguration: Match.objectLike({ Type: 'CUSTOMER_MANAGED_KMS_KEY' }),
    });
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'sagemaker:UpdateEndpointWeightsAndCapacities', Resource: { Ref: stack.getLogicalId(endpoint.endpoint) } }),
        ]),
      },
    });
    const [machine] = expectValidStateMachines(template.toJSON());
    const states = (machine.definition as any).States;
    expect(states['Load defaults'].Result.defaults).toMatchObject({
      championVariant: 'champion',
      challengerVariant: 'challenger',
      trafficSteps: [
        { championWeight: 90, challengerWeight: 10 },
        { championWeight: 75, challengerWeight: 25 },
        { championWeight: 50, challengerWeight: 50 },
        { championWeight: 0, challengerWeight: 100 },
      ],
      bakeSeconds: 300,
      metricPeriodSeconds: 300,
      latencyStatistic: 'p99',
    });
    expect(states['Load defaults'].Result.defaults.alarmNames).toHaveLength(6);
    // Every AWS call retries throttling and is caught (but the failure notice, which ends the run).
    for (const [name, state] of Object.entries<any>(states)) {
      if (state.Type === 'Task') {
        const catches = name === 'Notify failure' ? state.Catch === undefined : state.Catch?.length > 0;
        expect({ name, retries: state.Retry?.length > 0, catches }).toEqual({ name, retries: true, catches: true });
      }
    }
  });

  test('refuses settings that cannot promote, naming the prop', () => {
    const build = (props: object) => {
      const { stack, key, topic, endpoint } = experimentStack();
      return () => new ChampionChallengerPromotion(stack, 'Promotion', { endpoint, notificationTopic: topic, encryptionKey: key, ...props });
    };
    expect(build({ trafficSteps: [10, 50] })).toThrow('trafficSteps: must end at 100 (all traffic on the challenger); got [10, 50]');
    expect(build({ challengerVariant: 'blue' })).toThrow("challengerVariant: 'blue' is not a production variant of the endpoint (champion, challenger)");
    expect(build({ maxErrorRate: 2 })).toThrow('maxErrorRate: must be a rate from 0 to 1; got 2');
    expect(build({ bakeTime: Duration.seconds(10) })).toThrow('bakeTime: must be at least 1 minute; got 10 s');
    expect(build({ latencyStatistic: 'median' })).toThrow("latencyStatistic: must be Average, Minimum, Maximum or a percentile such as p99; got 'median'");
  });
});

describe('ShadowComparison', () => {
  test('needs an endpoint with a shadow variant', () => {
    const { stack, key, topic, endpoint } = experimentStack();
    expect(() => new ShadowComparison(stack, 'Shadow', { endpoint, notificationTopic: topic, encryptionKey: key, verdictBucket: new s3.Bucket(stack, 'B') })).toThrow(
      'Experiments/Shadow (ShadowComparison): endpoint: must have one production and one shadow variant; has 2 production and 0 shadow',
    );
  });

  test('may publish its verdict metric to the experiments namespace only', () => {
    const { stack, key, topic } = experimentStack({
      variants: [{ name: 'production', model: { version: '1', image: IMAGE }, capacity: instance }],
      shadowVariants: [{ name: 'shadow', model: { version: '2', image: IMAGE }, capacity: instance }],
    });
    const endpoint = stack.node.findChild('Churn') as any;
    new ShadowComparison(stack, 'Shadow', { endpoint, notificationTopic: topic, encryptionKey: key, verdictBucket: new s3.Bucket(stack, 'B', { encryptionKey: key }) });
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'cloudwatch:PutMetricData', Condition: { StringEquals: { 'cloudwatch:namespace': 'MlPlatform/Experiments' } } }),
        ]),
      },
    });
  });
});

describe('AbTestAnalysis', () => {
  function build(props: Partial<ConstructorParameters<typeof AbTestAnalysis>[2]> = {}) {
    const { app, stack, key, topic } = experimentStack();
    const log = new PredictionLog(stack, 'Log', { encryptionKey: key });
    const analysis = new AbTestAnalysis(stack, 'AbTest', {
      modelName: 'churn',
      predictionLog: log,
      outcomeType: 'binary',
      minimumDetectableEffect: 0.02,
      notificationTopic: topic,
      encryptionKey: key,
      ...props,
    });
    return { app, stack, log, analysis, template: Template.fromStack(stack) };
  }

  test('runs the analysis function, publishes results and records the decision the promotion reads', () => {
    const { template, stack, log } = build();
    const [machine] = expectValidStateMachines(template.toJSON());
    const states = (machine.definition as any).States;
    expect(states['Analyze experiment'].Catch.map((c: any) => c.ErrorEquals)).toEqual([['AnalysisInputError'], ['States.ALL']]);
    expect(states['Record decision'].Parameters.Item.predictionId).toEqual({ S: 'analysis#churn' });
    expect(states['Publish results and test'].Resource).toBe('arn:aws:states:::aws-sdk:cloudwatch:putMetricData');
    // The model is pinned: an execution input cannot point the analysis at another model's data.
    expect(states['Merge input over defaults'].Parameters['config.$']).toContain(`States.StringToJson('{"model":"churn"}')`);
    // The function may only query the byModel index.
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Action: 'dynamodb:Query', Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [stack.getLogicalId(log.table.node.defaultChild as any), 'Arn'] }, '/index/byModel']] } }),
        ]),
      },
    });
  });

  test('is clean under cdk-nag', () => {
    const { app } = build();
    app.synth();
    expect(nagFindings(app).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('refuses a binary effect of 1 or more and identical arms', () => {
    expect(() => build({ minimumDetectableEffect: 1.5 })).toThrow('minimumDetectableEffect: must be > 0 and < 1 (a difference in rates); got 1.5');
    expect(() => build({ variantA: 'x', variantB: 'x' })).toThrow("variantB: must differ from variantA ('x')");
  });
});

describe('PredictionLog', () => {
  test('is encrypted with the key, recoverable to a point in time, expiring by TTL and retained', () => {
    const { stack, key } = experimentStack();
    new PredictionLog(stack, 'Log', { encryptionKey: key });
    Template.fromStack(stack).hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({
        SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        DeletionProtectionEnabled: true,
        GlobalSecondaryIndexes: [Match.objectLike({ IndexName: 'byModel' })],
      }),
    });
  });
});
