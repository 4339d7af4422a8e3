import { expectValidStateMachines } from '../../support/asl';
import { ENVIRONMENT_NAMES, synthesizePlatform } from '../../support/platform';

describe.each(ENVIRONMENT_NAMES)('the %s lifecycle of the churn family', (envName) => {
  const platform = synthesizePlatform(envName);
  const family = platform.stacks.families.find((stack) => stack.modelName === 'churn')!;
  const template = platform.templates[family.stackName];
  const machines = expectValidStateMachines(template.toJSON());
  const states = (logicalIdPrefix: string) => (machines.find((machine) => machine.logicalId.startsWith(logicalIdPrefix))!.definition as any).States;

  test('registers versions for manual approval, except in dev, where approval is automatic', () => {
    const status = states('Trainingchurn')['Register model version'].Parameters.ModelApprovalStatus;
    expect(status).toBe(envName === 'dev' ? 'Approved' : 'PendingManualApproval');
  });

  test('keeps the registry in prod only', () => {
    const [group] = Object.values(template.findResources('AWS::SageMaker::ModelPackageGroup')) as any[];
    expect(group.DeletionPolicy).toBe(envName === 'prod' ? 'Retain' : 'Delete');
  });

  test('deploys approved versions to the configured variant, and keeps artifacts on retirement in prod only', () => {
    expect(states('Deploymentchurn')['Load defaults'].Result.defaults.targetVariant).toBe(envName === 'staging' ? 'challenger' : 'champion');
    expect(Object.keys(states('Retirementchurn'))).toEqual(envName === 'prod' ? expect.not.arrayContaining(['Delete artifact']) : expect.arrayContaining(['Delete artifact']));
  });

  if (envName !== 'dev') {
    test('Model Monitor violations start this family\'s training pipeline, in the same stack', () => {
      const trainingLogicalId = family.getLogicalId(family.lifecycle!.training.workflow.stateMachine.node.defaultChild as any);
      const triggerLogicalId = family.getLogicalId(family.monitoring!.trigger.workflow.stateMachine.node.defaultChild as any);
      const trigger = JSON.stringify(template.toJSON().Resources[triggerLogicalId]);
      expect(trigger).toContain(`{"Ref":"${trainingLogicalId}"}`);
      // No cross-stack export: the lifecycle and the monitor deploy together.
      expect(trigger).not.toContain('Fn::ImportValue');
    });
  }
});
