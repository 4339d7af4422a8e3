// experiments.bandit in the config and the blueprint: staging's offers family has its traffic allocated online,
// with the workflow, the schedule and the dashboard section in its stack and the posterior in the shared
// reports bucket; a bandit that does not fit the family is named.
import { loadConfig } from '../../../config';
import { staging } from '../../../config/staging';
import { expectValidStateMachines } from '../../support/asl';
import { configProblems } from '../../support/config-problems';
import { synthesizePlatform } from '../../support/platform';

describe('the staging offers family', () => {
  const platform = synthesizePlatform('staging');
  const offers = platform.stacks.families.find((family) => family.modelName === 'offers')!;
  const template = offers && platform.templates[offers.stackName];

  test('has a bandit over its two rankers, deciding hourly from binary outcomes that arrive within a day', () => {
    expect(loadConfig('staging').models[1]!.experiments.bandit).toMatchObject({ outcomeType: 'binary', strategy: 'thompson', minShare: 0.1, maxStep: 0.1, minObservations: 200, outcomeDelayMinutes: 1440 });
    const bandit = offers.experiments.bandit!;
    expect(bandit.variantNames).toEqual(['ranker-a', 'ranker-b']);
    const machine = expectValidStateMachines(template.toJSON()).find((candidate) => candidate.logicalId.startsWith('Banditoffers'))!;
    expect((machine.definition as any).States['Load defaults'].Parameters).toMatchObject({ outcomeType: 'binary', outcomeDelaySeconds: 86400, firstWindowHours: 48, settings: { guardRails: { minShare: 0.1, maxStep: 0.1, minObservations: 200 } } });
    expect(Object.values<any>(template.findResources('AWS::Scheduler::Schedule'))[0].Properties.ScheduleExpression).toBe('rate(1 hour)');
    // The posterior and the decisions lie in the prediction log, as offers' bandit items.
    const allocator = Object.values<any>(template.findResources('AWS::Lambda::Function')).find((fn) => fn.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME === 'online-allocation-offers')!;
    expect(JSON.stringify(allocator.Properties.Environment.Variables.PREDICTION_LOG_TABLE)).toContain('PredictionLog');
    expect(JSON.stringify(template.toJSON())).toContain('bandit#offers#*');
  });

  test('shows the weights per variant and the decisions on the family dashboard, with the rollback alarm', () => {
    const body = JSON.stringify(Object.values<any>(template.findResources('AWS::CloudWatch::Dashboard')).map((dashboard) => dashboard.Properties.DashboardBody));
    for (const text of ['Online allocation: weight per variant', 'ArmWeight', 'ranker-a', 'ranker-b', 'UpdatesTriggered', 'UpdatesRefused', 'UpdatesDeployed', 'UpdatesRolledBack', 'OutcomesRead']) expect(body).toContain(text);
    expect(body).toContain(offers.getLogicalId(offers.experiments.bandit!.rollbackAlarm!.node.defaultChild as any));
  });
});

test('a bandit that does not fit its family is named, every problem at once', () => {
  expect(
    configProblems(staging, (config) => {
      const offers = config.models[1];
      offers.experiments.abTest = { outcomeType: 'binary', minimumDetectableEffect: 0.02, variantA: 'ranker-a', variantB: 'ranker-b' };
      offers.experiments.promotion = { championVariant: 'ranker-a', challengerVariant: 'ranker-b' };
      offers.experiments.bandit.minShare = 0.5;
      offers.variants.push({ ...offers.variants[0], name: 'ranker-c' });
    }),
  ).toEqual(
    expect.arrayContaining([
      "models[1].experiments.bandit: cannot run with abTest: the bandit moves the weights that the A/B test's analysis assumes fixed; choose one",
      'models[1].experiments.bandit: cannot run with promotion: the bandit moves the weights that the promotion shifts step by step; choose one',
      'models[1].experiments.bandit.minShare: 0.5 for each of 3 variants is more than all the traffic',
    ]),
  );
  expect(
    configProblems(staging, (config) => {
      config.models[1].variants.pop();
    }),
  ).toEqual(expect.arrayContaining(['models[1].experiments.bandit: needs 2 to 10 production variants (its arms); offers has 1']));
});
