// lifecycle.dataValidation in the config and the blueprint: staging and prod validate churn's datasets
// before preprocessing, the family dashboard shows the validator, and a bad constraints key is named.
import { loadConfig } from '../../../config';
import { dev } from '../../../config/dev';
import { expectValidStateMachines } from '../../support/asl';
import { configProblems } from '../../support/config-problems';
import { synthesizePlatform } from '../../support/platform';

describe.each(['staging', 'prod'] as const)('the %s churn pipeline', (envName) => {
  const platform = synthesizePlatform(envName);
  const churn = platform.stacks.families.find((family) => family.modelName === 'churn')!;
  const template = platform.templates[churn.stackName];

  test('validates each dataset against churn/constraints/constraints.json before preprocessing', () => {
    expect(loadConfig(envName).models[0].lifecycle?.dataValidation).toEqual({ format: 'csv' });
    const training = expectValidStateMachines(template.toJSON()).find((machine) => machine.logicalId.startsWith('Trainingchurn'))!;
    const states = (training.definition as any).States;
    expect(states['Dataset versioned'].Next).toBe('Start validation');
    expect(states['Dataset valid?'].Choices.map((choice: any) => choice.Next)).toEqual(['Validate dataset', 'Preprocess']);
    expect(states['Dataset valid?'].Default).toBe('Invalid dataset verdict');
    expect(churn.lifecycle!.training.defaults.constraintsKey).toBe('churn/constraints/constraints.json');
  });

  test("the run-artifacts bucket expires the validator's resume state a week after it is written", () => {
    const artifacts = platform.templates[platform.stacks.lifecycle!.stackName].toJSON().Resources[platform.stacks.lifecycle!.getLogicalId(platform.stacks.lifecycle!.artifactsBucket.node.defaultChild as any)];
    expect(artifacts.Properties.LifecycleConfiguration.Rules).toEqual(
      expect.arrayContaining([
        { Id: 'expire-validation-resume-state', Status: 'Enabled', ExpirationInDays: 7, NoncurrentVersionExpiration: { NoncurrentDays: 1 }, TagFilters: [{ Key: 'ml-platform:purpose', Value: 'validation-resume-state' }] },
      ]),
    );
  });

  test('shows the validator on the family dashboard, with its alarm', () => {
    const body = JSON.stringify(Object.values<any>(template.findResources('AWS::CloudWatch::Dashboard')).map((dashboard) => dashboard.Properties.DashboardBody));
    expect(body).toContain('Training data validation: records validated and quarantined');
    expect(body).toContain('RecordsQuarantined');
    const alarm = churn.lifecycle!.training.dataValidation!.violationsAlarm!;
    expect(body).toContain(churn.getLogicalId(alarm.node.defaultChild as any));
  });
});

test('dev does not validate; a constraints key outside <family>/constraints/ is named', () => {
  expect(loadConfig('dev').models[0].lifecycle?.dataValidation).toBeUndefined();
  expect(
    configProblems(dev, (config) => {
      config.models[0].lifecycle.dataValidation = { constraintsKey: 'shared/constraints.json' };
    }),
  ).toEqual(["models[0].lifecycle.dataValidation.constraintsKey: must be an object key under churn/constraints/ in the training-data bucket; got 'shared/constraints.json'"]);
  expect(
    configProblems(dev, (config) => {
      config.models[0].lifecycle.dataValidation = { format: 'parquet' };
    }),
  ).toEqual([expect.stringMatching(/^models\[0\]\.lifecycle\.dataValidation\.format: .*csv.*jsonl/)]);
});
