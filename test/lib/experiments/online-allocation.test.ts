// OnlineAllocation by structure: the allocation function's grants, the workflow's states and the requests it
// sends SageMaker and CloudWatch, the schedule, the alarm, cdk-nag and cfn-lint, and bad props. The workflow
// runs in moto in online-allocation-execution.test.ts; the function in test/lambda/bandit-allocation.test.ts.
import { Duration } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import type { MlFunction } from '../../../lib/core/ml-function';
import { BanditStrategy, ONLINE_ALLOCATION_METRICS_NAMESPACE } from '../../../lib/experiments/online-allocation';
import { expectValidStateMachines } from '../../support/asl';
import { botocoreShapeMembers, cfnLintTemplate, unknownParameters } from '../../support/cli';
import { nagFindings } from '../../support/platform';
import { onlineAllocation } from './fixtures';
import { thrownLines } from '../../support/assertions';

describe('OnlineAllocation', () => {
  const world = onlineAllocation();
  const template = Template.fromStack(world.stack).toJSON();
  const [machine] = expectValidStateMachines(template).filter((candidate) => candidate.logicalId.startsWith('BanditWorkflow'));
  const states: Record<string, any> = (machine!.definition as any).States;
  const allocator = world.allocation.node.findChild('Allocator') as MlFunction;
  const grants = template.Resources[world.stack.getLogicalId(allocator.role.grantsPolicy.node.defaultChild as any)].Properties.PolicyDocument.Statement;
  const id = (construct: any) => world.stack.getLogicalId(construct.node.defaultChild ?? construct);

  test("the function queries the log by model and reads and writes the model's bandit items only; its settings come from the workflow", () => {
    expect(JSON.stringify(grants)).toContain('/index/byModel');
    const state = grants.find((statement: any) => JSON.stringify(statement.Action) === JSON.stringify(['dynamodb:GetItem', 'dynamodb:PutItem']));
    expect(state.Resource).toEqual({ 'Fn::GetAtt': [id(world.log.table), 'Arn'] });
    expect(state.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['bandit#churn', 'bandit#churn#*'] } });
    const env = template.Resources[id(world.allocation.function)].Properties.Environment.Variables;
    expect(Object.keys(env).sort()).toEqual(['POWERTOOLS_LOG_LEVEL', 'POWERTOOLS_METRICS_NAMESPACE', 'POWERTOOLS_SERVICE_NAME', 'PREDICTION_LOG_TABLE']);
    expect(env).toMatchObject({ POWERTOOLS_METRICS_NAMESPACE: ONLINE_ALLOCATION_METRICS_NAMESPACE, POWERTOOLS_SERVICE_NAME: 'online-allocation-churn', PREDICTION_LOG_TABLE: { Ref: id(world.log.table) } });
  });

  test('reads the endpoint, decides only while it is in service, applies a change, bakes, and reads the rollback alarms', () => {
    expect(machine!.definition).toMatchObject({ StartAt: 'Load defaults' });
    expect(states['Load defaults'].Parameters).toEqual({
      outcomeType: 'binary',
      settings: { strategy: 'thompson', higherIsBetter: true, draws: 10000, exploration: 1, guardRails: { minShare: 0.05, maxStep: 0.1, minObservations: 30 } },
      outcomeDelaySeconds: 3600,
      firstWindowHours: 24,
      bakeSeconds: 900,
    });
    expect(states['Endpoint in service?'].Choices).toEqual([{ Variable: '$.endpoint.status', StringEquals: 'InService', Next: 'Decide allocation' }]);
    expect(states['Endpoint in service?'].Default).toBe('Endpoint busy');
    expect(states['Decide allocation'].Parameters.Payload).toMatchObject({ action: 'decide', model: 'churn', 'variants.$': '$.endpoint.variants', 'settings.$': '$.config.settings', 'now.$': '$$.State.EnteredTime' });
    expect(states['Weights change?'].Choices).toEqual([{ Variable: '$.decision.change', BooleanEquals: true, Next: 'Apply weights' }]);
    expect(states['Weights change?'].Default).toBe('Record unchanged');
    expect(states['Apply weights'].Parameters['DesiredWeightsAndCapacities.$']).toBe('$.decision.desiredWeights');
    expect(states['Restore previous weights'].Parameters['DesiredWeightsAndCapacities.$']).toBe('$.decision.previousWeights');
    expect(states['Apply: endpoint in service?'].Choices[0].Next).toBe('Bake');
    expect(states.Bake).toMatchObject({ Type: 'Wait', SecondsPath: '$.config.bakeSeconds', Next: 'Read rollback alarms' });
    const alarms = [...world.endpoint.alarms!.bySeverity.critical, ...world.endpoint.alarms!.bySeverity.warning];
    expect(states['Read rollback alarms'].Parameters.AlarmNames).toHaveLength(alarms.length);
    expect(states['Roll back?'].Choices).toEqual([{ Variable: '$.alarms.firing', BooleanEquals: true, Next: 'Restore previous weights' }]);
    expect(states['Roll back?'].Default).toBe('Record deployed');
    expect(states['Allocation rolled back']).toMatchObject({ Type: 'Fail', Error: 'AllocationRolledBack' });
    expect(states['Decide allocation'].Retry[0]).toEqual({ ErrorEquals: ['BanditInputError', 'ConfigError'], MaxAttempts: 0 });
  });

  test("sends UpdateEndpointWeightsAndCapacities and DescribeAlarms members of their requests only, as botocore's models define them", () => {
    const update = botocoreShapeMembers('sagemaker', '2017-07-24', 'UpdateEndpointWeightsAndCapacitiesInput');
    expect(unknownParameters(states['Apply weights'].Parameters, update)).toEqual([]);
    expect(unknownParameters(states['Restore previous weights'].Parameters, update)).toEqual([]);
    const describe = botocoreShapeMembers('sagemaker', '2017-07-24', 'DescribeEndpointInput');
    expect(unknownParameters(states['Describe endpoint'].Parameters, describe)).toEqual([]);
    const alarms = botocoreShapeMembers('cloudwatch', '2010-08-01', 'DescribeAlarmsInput');
    expect(unknownParameters(states['Read rollback alarms'].Parameters, alarms)).toEqual([]);
  });

  test('runs hourly from EventBridge Scheduler, alarms on a rollback, passes cdk-nag and cfn-lint', () => {
    const schedule = Object.values<any>(template.Resources).find((resource) => resource.Type === 'AWS::Scheduler::Schedule');
    expect(schedule.Properties).toMatchObject({ ScheduleExpression: 'rate(1 hour)', Target: { Arn: { Ref: machine!.logicalId } } });
    const alarm = template.Resources[id(world.allocation.rollbackAlarm!)].Properties;
    expect(alarm).toMatchObject({ MetricName: 'UpdatesRolledBack', Namespace: ONLINE_ALLOCATION_METRICS_NAMESPACE, Threshold: 0 });
    world.app.synth();
    expect(nagFindings(world.stack)).toEqual([]);
    const lint = cfnLintTemplate('online-allocation', template);
    expect(lint.stdout + lint.stderr).toBe('');
    expect(lint.status).toBe(0);
  });

  test('without alarms to watch, new weights are deployed after the bake; UCB and a custom schedule reach the defaults', () => {
    const other = onlineAllocation({ strategy: BanditStrategy.UCB, higherIsBetter: false, schedule: scheduler.ScheduleExpression.rate(Duration.minutes(15)), rollbackAlarms: [], bakeTime: Duration.minutes(5) });
    const otherTemplate = Template.fromStack(other.stack).toJSON();
    const [otherMachine] = expectValidStateMachines(otherTemplate).filter((candidate) => candidate.logicalId.startsWith('BanditWorkflow'));
    const otherStates = (otherMachine!.definition as any).States;
    expect(otherStates.Bake.Next).toBe('Record deployed');
    expect(otherStates['Read rollback alarms']).toBeUndefined();
    expect(otherStates['Load defaults'].Parameters).toMatchObject({ settings: { strategy: 'ucb', higherIsBetter: false }, bakeSeconds: 300 });
    expect(Object.values<any>(otherTemplate.Resources).find((resource) => resource.Type === 'AWS::Scheduler::Schedule').Properties.ScheduleExpression).toBe('rate(15 minutes)');
  });

  test('names every bad prop at once, and refuses an endpoint with one production variant', () => {
    const problems = thrownLines(() => onlineAllocation({ outcomeType: 'rating' as never, strategy: 'greedy' as never, minShare: 0.6, maxStep: 0.1234567, minObservations: 0, firstWindow: Duration.minutes(30), bakeTime: Duration.seconds(5) }));
    const text = problems.join('\n');
    for (const field of ['outcomeType:', 'strategy:', 'minShare:', 'maxStep:', 'minObservations:', 'firstWindow:', 'bakeTime:']) expect(text).toContain(field);
    const one = thrownLines(() =>
      onlineAllocation({}, { variants: [{ name: 'champion', weight: 1, model: { version: '1.0.0', image: '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1' }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }] }),
    );
    expect(one.join('\n')).toContain('endpoint: must have 2 to 10 production variants');
  });
});
