// lifecycle.federated in the config and the blueprint: staging runs churn's federation across two silos,
// one client stack per silo in the silo's account and region, the coordinator and its dashboard section in
// churn's stack; bad federation settings are all named at once.
import { loadConfig } from '../../../config';
import { churnFederated } from '../../../config/churn-federated';
import { staging } from '../../../config/staging';
import { expectValidStateMachines } from '../../support/asl';
import { configProblems } from '../../support/config-problems';
import { nagFindings, synthesizePlatform } from '../../support/platform';

describe('the staging federation of churn', () => {
  const platform = synthesizePlatform('staging');
  const churn = platform.stacks.families.find((family) => family.modelName === 'churn')!;
  const template = platform.templates[churn.stackName];

  test('has one client stack per silo, in the silo\'s account and region, with the access role the coordinator assumes', () => {
    expect(platform.stacks.silos.map((silo) => [silo.stackName, silo.account, silo.region])).toEqual([
      ['MlPlatform-staging-churn-Silo-north-america', '444455556666', 'us-east-1'],
      ['MlPlatform-staging-churn-Silo-europe', '777788889999', 'eu-west-1'],
    ]);
    expect(churn.resolve(churn.lifecycle!.federated!.clientRoleArns)).toEqual(
      ['arn:aws:iam::444455556666:role/churn-federated-coordinator', 'arn:aws:iam::777788889999:role/churn-federated-coordinator'],
    );
    for (const silo of platform.stacks.silos) {
      const roles = platform.templates[silo.stackName].findResources('AWS::IAM::Role', { Properties: { RoleName: 'churn-federated-coordinator' } });
      expect(Object.keys(roles)).toHaveLength(1);
      expect(JSON.stringify(roles)).toContain(':iam::111122223333:root');
    }
    // The silo of north-america creates its data bucket; europe's is an existing one, imported.
    expect(platform.stacks.silos[0].dataBucket).toBeDefined();
    expect(platform.stacks.silos[1].dataBucket).toBeUndefined();
    expect(JSON.stringify(platform.templates['MlPlatform-staging-churn-Silo-europe'].toJSON())).toContain('europe-customer-churn-data');
  });

  test('the coordinator workflow is valid ASL, with the federation as configured', () => {
    const machine = expectValidStateMachines(template.toJSON()).find((candidate) => candidate.logicalId.startsWith('Federatedchurn'))!;
    const spec = (machine.definition as any).States['Start federation'].Parameters.Payload.federation;
    expect(spec.clients.map((client: any) => client.name)).toEqual(['north-america', 'europe']);
    expect(spec.clients[1].trainingImage).toBe(churnFederated.clients![1]!.trainingImage);
    expect(spec).toMatchObject({ minClients: 2, roundTimeoutSeconds: 7200, metric: { name: 'auc', direction: 'higher-is-better' }, convergence: { maxRounds: 20, patience: 3, minDelta: 0.001 } });
    expect(template.toJSON().Outputs).toHaveProperty('FederatedWorkflowchurn');
  });

  test('shows the rounds on the family dashboard, with the alarms', () => {
    const body = JSON.stringify(Object.values<any>(template.findResources('AWS::CloudWatch::Dashboard')).map((dashboard) => dashboard.Properties.DashboardBody));
    for (const text of ['Federated training: global metric', 'Federated training: clients per round', 'ClientsFailed', 'GlobalMetric', 'RoundsAggregated']) expect(body).toContain(text);
    const alarm = churn.lifecycle!.federated!.clientFailuresAlarm!;
    expect(body).toContain(churn.getLogicalId(alarm.node.defaultChild as any));
  });

  test("the silos' stacks pass cdk-nag", () => {
    for (const silo of platform.stacks.silos) expect(nagFindings(silo)).toEqual([]);
  });
});

test('dev and prod have no federation', () => {
  expect(loadConfig('dev').models[0].lifecycle?.federated).toBeUndefined();
  expect(loadConfig('prod').models[0].lifecycle?.federated).toBeUndefined();
});

test('bad federation settings are all named, with their paths', () => {
  const problems = configProblems(staging, (config) => {
    const federated = config.models[0].lifecycle.federated;
    delete federated.coordinatorAccount;
    federated.clients[1].name = 'north-america';
    delete federated.clients[1].trainingImage;
    federated.minClients = 3;
    federated.aggregation = { aggregator: 'median', trimFraction: 0.1, privacy: { clipNorm: 1, noiseMultiplier: 1 } };
    federated.pollIntervalMinutes = 500;
    federated.training.instanceType = 'ml.t2.nano';
  });
  expect(problems).toEqual(
    expect.arrayContaining([
      'models[0].lifecycle.federated.coordinatorAccount: is required when the environment has no account: the silos trust the coordinator by its account',
      "models[0].lifecycle.federated.clients[1].name: repeats clients[0].name ('north-america')",
      'models[0].lifecycle.federated.clients[1]: the training image is in us-east-1, the silo in eu-west-1: SageMaker pulls a job\'s image from its own region; set trainingImage to the image in eu-west-1',
      'models[0].lifecycle.federated.minClients: must be at most the number of clients (2); got 3',
      'models[0].lifecycle.federated.aggregation.trimFraction: is only used by the trimmed-mean aggregator',
      'models[0].lifecycle.federated.aggregation.privacy: is only available with the fedavg aggregator (the noise is calibrated to the mean of clipped updates)',
      'models[0].lifecycle.federated.pollIntervalMinutes: must be at most roundTimeoutMinutes (120); got 500',
    ]),
  );
  expect(problems.some((problem) => problem.startsWith('models[0].lifecycle.federated.training.instanceType: must be a SageMaker training instance type'))).toBe(true);
});
