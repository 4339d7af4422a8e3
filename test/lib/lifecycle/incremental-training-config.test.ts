// lifecycle.incrementalTraining in the config and the blueprint: staging and prod stream churn's labelled events
// into incremental updates, with the guard rails as configured, the delivery stream's name as an output and a
// dashboard section; bad settings are all named at once, and the feature needs the family's data validation.
import { loadConfig } from '../../../config';
import { prod } from '../../../config/prod';
import { staging } from '../../../config/staging';
import { expectValidStateMachines } from '../../support/asl';
import { configProblems } from '../../support/config-problems';
import { synthesizePlatform } from '../../support/platform';

describe.each([
  ['staging', { minRecords: 5000, cooldownSeconds: 12 * 3600, schedule: 'rate(15 minutes)', retained: false }],
  ['prod', { minRecords: 20_000, cooldownSeconds: 72 * 3600, schedule: 'rate(30 minutes)', retained: true }],
] as const)('incremental training of churn in %s', (env, expected) => {
  const platform = synthesizePlatform(env);
  const churn = platform.stacks.families.find((family) => family.modelName === 'churn')!;
  const template = platform.templates[churn.stackName];
  const json = template.toJSON();
  const incremental = churn.lifecycle!.incremental!;

  test('the workflow is valid ASL with the guard rails as configured, and fine-tunes with 50 more rounds', () => {
    const machine = expectValidStateMachines(json).find((candidate) => candidate.logicalId.startsWith('Incrementalchurn'))!;
    const defaults = (machine.definition as any).States['Load defaults'].Parameters;
    expect(defaults).toMatchObject({ constraintsKey: 'churn/constraints/constraints.json', settings: { minRecords: expected.minRecords, cooldownSeconds: expected.cooldownSeconds } });
    expect(defaults.fineTuneHyperparameters).toMatchObject({ objective: 'binary:logistic', num_round: '50' });
    const schedules = Object.values<any>(template.findResources('AWS::Scheduler::Schedule')).filter((schedule) => JSON.stringify(schedule.Properties.Target.Arn).includes(machine.logicalId));
    expect(schedules.map((schedule) => schedule.Properties.ScheduleExpression)).toEqual([expected.schedule]);
    expect(json.Outputs).toHaveProperty('IncrementalWorkflowchurn');
    expect(json.Outputs.EventStreamchurn.Value).toEqual({ Ref: churn.getLogicalId(incremental.deliveryStream) });
  });

  test('keeps its state with point-in-time recovery, retained and protected from deletion where the environment retains data', () => {
    const table = json.Resources[churn.getLogicalId(incremental.table.node.defaultChild as any)];
    expect(table).toMatchObject({
      DeletionPolicy: expected.retained ? 'Retain' : 'Delete',
      Properties: { DeletionProtectionEnabled: expected.retained, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true }, SSESpecification: { SSEEnabled: true, SSEType: 'KMS' } },
    });
  });

  test('shows the stream and the updates on the family dashboard, with the alarms', () => {
    const body = JSON.stringify(Object.values<any>(template.findResources('AWS::CloudWatch::Dashboard')).map((dashboard) => dashboard.Properties.DashboardBody));
    for (const text of ['Incremental training: streamed records', 'Incremental training: updates', 'RecordsArrived', 'RecordsValidated', 'RecordsQuarantined', 'UpdatesTriggered', 'UpdatesRefused', 'UpdatesRegistered', 'versions deployed (any source)']) {
      expect(body).toContain(text);
    }
    expect(body).toContain(churn.getLogicalId(incremental.rejectedBatchesAlarm!.node.defaultChild as any));
  });
});

test('dev has no incremental training; its defaults are 1 000 records, a day of cooldown and a check every 15 minutes', () => {
  expect(loadConfig('dev').models[0].lifecycle?.incrementalTraining).toBeUndefined();
  const config = loadConfig('staging');
  const churn = config.models.find((model) => model.name === 'churn')!;
  expect(churn.lifecycle!.incrementalTraining).toEqual({ minRecords: 5000, cooldownMinutes: 720, checkSchedule: 'rate(15 minutes)', hyperparameters: { num_round: '50' }, bufferingSeconds: 300, bufferingMiB: 5 });
});

test('bad incremental-training settings are all named, with their paths', () => {
  const problems = configProblems(prod, (config) => {
    const churn = config.models[0].lifecycle;
    churn.incrementalTraining = { minRecords: 0, cooldownMinutes: -1, checkSchedule: 'every 15 minutes', bufferingSeconds: 1000, bufferingMiB: 0, hyperparameters: { num_round: 50 } };
  });
  for (const path of ['minRecords', 'cooldownMinutes', 'checkSchedule', 'bufferingSeconds', 'bufferingMiB', 'hyperparameters.num_round']) {
    expect(problems.some((problem) => problem.startsWith(`models[0].lifecycle.incrementalTraining.${path}: `))).toBe(true);
  }
});

test('incremental training needs the family to validate its datasets', () => {
  const problems = configProblems(staging, (config) => {
    delete config.models[0].lifecycle.dataValidation;
  });
  expect(problems).toContain("models[0].lifecycle.incrementalTraining: needs lifecycle.dataValidation: its constraints judge each micro-batch, and its format is the windows'");
});
