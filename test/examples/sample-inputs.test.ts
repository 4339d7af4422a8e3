import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { renderStateMachineDefinitions } from '../support/asl';
import { sdkTestConfig, startMoto, type MotoServer } from '../support/moto';
import { synthesizePlatform } from '../support/platform';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../support/stepfunctions';

/**
 * The sample inputs operators paste into the Step Functions console, run against the workflows
 * of the real blueprint in moto: each must pass input validation and reach the first real step.
 */
const sample = (name: string) => JSON.parse(readFileSync(join(__dirname, '..', '..', 'examples', 'inputs', name), 'utf8'));
const staging = synthesizePlatform('staging');
const prod = synthesizePlatform('prod');
/** A family's stack: churn's experiment, lifecycle and monitoring workflows, offers' online allocation (staging). */
const family = (name: string) => (platform: ReturnType<typeof synthesizePlatform>) => platform.templates[platform.stacks.families.find((candidate) => candidate.modelName === name)!.stackName].toJSON();
const churn = family('churn');
const offers = family('offers');
const experiments = churn;
const lifecycle = churn;
const features = (platform: ReturnType<typeof synthesizePlatform>) => platform.templates[platform.stacks.features!.stackName].toJSON();

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

test.each([
  ['promote-challenger.json', staging, /^Promotionchurn/, 'Read latest AB test decision'],
  ['promote-challenger-two-steps.json', staging, /^Promotionchurn/, 'Read latest AB test decision'],
  ['analyze-ab-test.json', staging, /^AbTestchurn/, 'Analyze experiment'],
  ['compare-shadow.json', prod, /^ShadowComparisonchurn/, 'Observe both variants'],
  ['ingest-features.json', staging, /^IngestionBatchWorkflow/, 'Ingest chunks'],
  ['train-model.json', prod, /^Trainingchurn/, 'List dataset'],
  ['deploy-model.json', prod, /^Deploymentchurn/, 'Describe model version'],
  ['rollback-model.json', prod, /^Deploymentchurn/, 'List approved versions'],
  ['retire-model.json', prod, /^Retirementchurn/, 'Describe model version'],
  ['batch-inference.json', prod, /^BatchInferencechurn/, 'Find latest approved version'],
  ['federated-training.json', staging, /^Federatedchurn/, 'Start federation'],
  ['online-allocation.json', staging, /^Banditoffers/, 'Describe endpoint'],
  ['incremental-training.json', prod, /^Incrementalchurn/, 'Validate micro-batches'],
])('the sample input %s passes validation and starts the work', async (file, platform, machine, firstStep) => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const template = file.startsWith('ingest-') ? features(platform) : file.startsWith('online-') ? offers(platform) : /^(train|deploy|rollback|retire|batch|incremental)-/.test(file) ? lifecycle(platform) : experiments(platform);
  const definition = renderForMoto(template, machine, {});
  const result = await runExecution(moto, definition, sample(file), 30_000, firstStep);
  expect(result.states).toContain(firstStep);
  expect(result.states.filter((state) => /^Invalid |^Missing |^No traffic steps/.test(state))).toEqual([]);
});

test('a sample with a mistake is stopped at validation with the field named', async () => {
  await moto.reset();
  await enableStepFunctionsExecution(moto);
  const definition = renderForMoto(experiments(staging), /^AbTestchurn/, {});
  const result = await runExecution(moto, definition, { ...sample('analyze-ab-test.json'), windowEnd: 'next week' });
  expect(result).toMatchObject({ status: 'FAILED', error: 'InvalidInput', cause: 'config.windowEnd: must be a timestamp' });
});

test("moto's Amazon States Language parser accepts every state machine of the blueprint", async () => {
  await moto.reset();
  const sfn = new SFNClient(sdkTestConfig(moto.endpoint));
  const machines = [staging, prod].flatMap((platform) => Object.values(platform.templates).flatMap((template) => renderStateMachineDefinitions(template.toJSON())));
  // Both: batch features, five lifecycle workflows (training, deployment, retirement, batch inference, incremental
  // training), Model Monitor baselining and its retraining trigger; staging adds promotion, A/B, federated training
  // and the offers family's online allocation, prod the shadow comparison.
  expect(machines.length).toBe(12 + 9);
  for (const machine of machines) {
    const created = await sfn.send(
      new CreateStateMachineCommand({ name: `${machine.logicalId}-${machines.indexOf(machine)}`, definition: JSON.stringify(machine.definition), roleArn: 'arn:aws:iam::123456789012:role/sfn' }),
    );
    expect(created.stateMachineArn).toContain(machine.logicalId);
  }
});
