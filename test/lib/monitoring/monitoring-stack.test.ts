import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { loadConfig } from '../../../config';
import { buildPlatform } from '../../../lib/stacks/platform';
import { buildModelMonitoring, monitoringFrequency } from '../../../lib/stacks/monitoring-stack';
import type { ModelConfig } from '../../../config/schema';
import type { ModelMonitorConfig } from '../../../config/model-monitor';
import { startMoto, type MotoServer } from '../../support/moto';
import { synthesizePlatform } from '../../support/platform';
import { enableStepFunctionsExecution, renderForMoto, runExecution } from '../../support/stepfunctions';

const prod = synthesizePlatform('prod');
const churn = prod.stacks.families.find((family) => family.modelName === 'churn')!;
const monitoringTemplate = prod.templates[churn.stackName];

let moto: MotoServer;
beforeAll(async () => {
  moto = await startMoto();
}, 30_000);
afterAll(async () => moto?.stop());

describe('the model monitoring of a family in the blueprint', () => {
  test('exists where a model has modelMonitor (staging, prod) and not in dev', () => {
    expect(churn.monitoring?.monitor).toBeDefined();
    const app = new App();
    expect(buildPlatform(app, loadConfig('dev')).families.map((family) => family.monitoring)).toEqual([undefined]);
  });

  test('monitors prod churn with all four monitors, a baselining workflow, the trigger, alarms and a model card', () => {
    const template = monitoringTemplate;
    template.resourceCountIs('AWS::SageMaker::MonitoringSchedule', 4);
    template.resourceCountIs('AWS::SageMaker::ModelCard', 1);
    // The baselining workflow and the trigger's, next to the family's lifecycle and experiment workflows.
    for (const workflow of [churn.monitoring!.baselineWorkflow.stateMachine, churn.monitoring!.trigger.workflow.stateMachine]) {
      expect(template.toJSON().Resources[churn.getLogicalId(workflow.node.defaultChild as any)].Type).toBe('AWS::StepFunctions::StateMachine');
    }
    template.hasResourceProperties('AWS::DynamoDB::Table', { PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } });
    template.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    // The jobs run in the VPC, which gets the CloudWatch metrics endpoint the analyzer publishes through.
    prod.templates['MlPlatform-prod-Foundation'].hasResourceProperties('AWS::EC2::VPCEndpoint', { ServiceName: 'com.amazonaws.us-east-1.monitoring', PrivateDnsEnabled: true });
    const definition = Object.values(template.findResources('AWS::SageMaker::DataQualityJobDefinition'))[0] as any;
    expect(definition.Properties.NetworkConfig.VpcConfig.Subnets).toHaveLength(3);
    // Per-feature drift alarms from the config thresholds, and the quality minimums.
    for (const feature of ['tenure_months', 'monthly_charges', 'support_tickets_30d', 'contract_type']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: `feature_baseline_drift_${feature}`, Namespace: 'aws/sagemaker/Endpoints/data-metrics' });
    }
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'recall', Threshold: 0.6, ComparisonOperator: 'LessThanThreshold' });
  });

  test('adds the monitored model to its family dashboard', () => {
    const body = JSON.stringify(monitoringTemplate.findResources('AWS::CloudWatch::Dashboard'));
    expect(body).toContain('Model monitoring `churn`');
    expect(body).toContain('Performance of churn against ground truth');
    expect(body).toContain('feature_baseline_drift_contract_type');
  });

  test('starts the retraining workflow it is given for the model', () => {
    const app = new App({ context: require('../../../cdk.json').context });
    const config = loadConfig('prod');
    const stacks = buildPlatform(app, config);
    const wired = new Stack(app, 'Wired', { env: { account: config.account, region: config.region } });
    const pipeline = new sfn.StateMachine(wired, 'Pipeline', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(wired, 'Train')) });
    const model = config.models.find((candidate) => candidate.name === 'churn') as ModelConfig & { modelMonitor: ModelMonitorConfig };
    const endpoint = stacks.families.find((family) => family.modelName === 'churn')!.endpoint;
    buildModelMonitoring(wired, { config, model, foundation: stacks.foundation, endpoint, retrainingWorkflow: pipeline });
    const definition = JSON.stringify(Template.fromStack(wired).findResources('AWS::StepFunctions::StateMachine'));
    expect(definition).toContain('states:startExecution');
    expect(definition).toContain('\\"modelFamily\\":\\"churn\\"');
  });

  test('maps the config schedules onto Model Monitor cron expressions', () => {
    expect(monitoringFrequency('hourly').expression).toBe('cron(0 * ? * * *)');
    expect(monitoringFrequency('daily').expression).toBe('cron(0 0 ? * * *)');
    expect(monitoringFrequency('daily@07').expression).toBe('cron(0 7 ? * * *)');
    expect(() => monitoringFrequency('weekly')).toThrow("modelMonitor schedule: must be hourly, daily or daily@HH; got 'weekly'");
  });

  test('the sample console input of the baselining workflow passes validation and starts the work (run in moto)', async () => {
    await moto.reset();
    await enableStepFunctionsExecution(moto);
    const sample = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'examples', 'inputs', 'suggest-monitoring-baselines.json'), 'utf8'));
    const definition = renderForMoto(monitoringTemplate.toJSON(), /^Baselineschurn/, {});
    const result = await runExecution(moto, definition, sample, 30_000, 'Name the run');
    expect(result.states).toContain('Name the run');
    expect(result.states.filter((state) => /^Invalid /.test(state))).toEqual([]);
  }, 60_000);
});
