import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { ModelMonitor, MonitoringFrequency } from '../../../lib/monitoring/model-monitor';
import { ModelEndpoint } from '../../../lib/serving/model-endpoint';
import { nagFindings } from '../../support/platform';
import { allMonitors, HEADERS, IMAGE, monitorWorld } from './monitor-fixtures';

const MODEL_MONITOR_IMAGE = '156813124566.dkr.ecr.us-east-1.amazonaws.com/sagemaker-model-monitor-analyzer:latest';
const CLARIFY_IMAGE = '205585389593.dkr.ecr.us-east-1.amazonaws.com/sagemaker-clarify-processing:1.0';

describe('ModelMonitor', () => {
  test('attaches the four monitors to the endpoint, KMS-encrypted, with metrics published', () => {
    const world = monitorWorld();
    const monitor = allMonitors(world, { dataQuality: { schedule: MonitoringFrequency.hourly() }, modelQuality: { problemType: 'BinaryClassification', probabilityAttribute: '0', probabilityThreshold: 0.5, schedule: MonitoringFrequency.daily(3) } });
    const template = Template.fromStack(world.stack);
    const keyArn = { 'Fn::GetAtt': [Match.stringLikeRegexp('^Key'), 'Arn'] };
    const cluster = { ClusterConfig: { InstanceCount: 1, InstanceType: 'ml.m5.xlarge', VolumeSizeInGB: 20, VolumeKmsKeyId: keyArn } };
    template.hasResourceProperties('AWS::SageMaker::DataQualityJobDefinition', {
      DataQualityAppSpecification: { ImageUri: MODEL_MONITOR_IMAGE, Environment: { publish_cloudwatch_metrics: 'Enabled' } },
      DataQualityBaselineConfig: {
        ConstraintsResource: { S3Uri: { 'Fn::Join': ['', ['s3://', { Ref: Match.anyValue() }, '/model-monitor/churn/baselines/data-quality/constraints.json']] } },
        StatisticsResource: { S3Uri: { 'Fn::Join': ['', ['s3://', { Ref: Match.anyValue() }, '/model-monitor/churn/baselines/data-quality/statistics.json']] } },
      },
      DataQualityJobOutputConfig: { KmsKeyId: keyArn, MonitoringOutputs: [{ S3Output: Match.objectLike({ S3Uri: Match.objectLike({}) }) }] },
      JobResources: cluster,
      NetworkConfig: { EnableInterContainerTrafficEncryption: true, EnableNetworkIsolation: false },
      StoppingCondition: { MaxRuntimeInSeconds: 3600 },
    });
    template.hasResourceProperties('AWS::SageMaker::ModelQualityJobDefinition', {
      ModelQualityAppSpecification: { ImageUri: MODEL_MONITOR_IMAGE, ProblemType: 'BinaryClassification', Environment: { publish_cloudwatch_metrics: 'Enabled' } },
      ModelQualityJobInput: {
        EndpointInput: Match.objectLike({ ProbabilityAttribute: '0', ProbabilityThresholdAttribute: 0.5, StartTimeOffset: '-PT25H', EndTimeOffset: '-PT1H' }),
        GroundTruthS3Input: { S3Uri: { 'Fn::Join': ['', ['s3://', { Ref: Match.anyValue() }, '/model-monitor/churn/ground-truth']] } },
      },
      JobResources: cluster,
    });
    template.hasResourceProperties('AWS::SageMaker::ModelBiasJobDefinition', {
      ModelBiasAppSpecification: { ImageUri: CLARIFY_IMAGE, ConfigUri: { 'Fn::Join': ['', ['s3://', { Ref: Match.anyValue() }, '/model-monitor/churn/config/bias/analysis_config.json']] }, Environment: Match.anyValue() },
      ModelBiasBaselineConfig: { ConstraintsResource: { S3Uri: { 'Fn::Join': ['', ['s3://', { Ref: Match.anyValue() }, '/model-monitor/churn/baselines/bias/analysis.json']] } } },
    });
    template.hasResourceProperties('AWS::SageMaker::ModelExplainabilityJobDefinition', { ModelExplainabilityAppSpecification: Match.objectLike({ ImageUri: CLARIFY_IMAGE }) });
    template.resourceCountIs('AWS::SageMaker::MonitoringSchedule', 4);
    template.hasResourceProperties('AWS::SageMaker::MonitoringSchedule', {
      MonitoringScheduleConfig: { MonitoringType: 'ModelQuality', ScheduleConfig: { ScheduleExpression: 'cron(0 3 ? * * *)' }, MonitoringJobDefinitionName: monitor.monitor('modelQuality').jobDefinitionName },
      EndpointName: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Churn'), 'EndpointName'] },
    });
    template.hasResourceProperties('AWS::SageMaker::MonitoringSchedule', { MonitoringScheduleConfig: Match.objectLike({ MonitoringType: 'DataQuality', ScheduleConfig: { ScheduleExpression: 'cron(0 * ? * * *)' } }) });
    for (const deployed of monitor.monitors) {
      expect(deployed.scheduleName).toMatch(/^[a-z0-9](-*[a-z0-9]){0,62}$/);
      expect(deployed.jobDefinitionName).toMatch(/^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/);
    }
    expect(new Set(monitor.monitors.map((m) => m.scheduleName)).size).toBe(4);
  });

  test('names a job definition after its settings, so that a change creates a new one instead of failing the update', () => {
    const names = (threshold: number) => {
      const world = monitorWorld();
      const monitor = allMonitors(world, { modelQuality: { problemType: 'BinaryClassification', probabilityAttribute: '0', probabilityThreshold: threshold } });
      return { quality: monitor.monitor('modelQuality').jobDefinitionName, data: monitor.monitor('dataQuality').jobDefinitionName };
    };
    expect(names(0.5)).toEqual(names(0.5));
    expect(names(0.6).quality).not.toBe(names(0.5).quality);
    expect(names(0.6).data).toBe(names(0.5).data);
  });

  test('grants read on the captured data, baselines and ground truth, write on the reports only', () => {
    const world = monitorWorld();
    allMonitors(world);
    const policies = JSON.stringify(Object.entries(Template.fromStack(world.stack).findResources('AWS::IAM::ManagedPolicy')).filter(([id]) => id.startsWith('MonitorRole')));
    expect(policies).toContain('/model-monitor/churn/reports/*');
    expect(policies).toContain('/model-monitor/churn/baselines/*');
    expect(policies).toContain('/model-monitor/churn/ground-truth/*');
    expect(policies).toContain('sagemaker-model-monitor-analyzer');
    expect(policies).toContain('sagemaker-clarify-processing');
    expect(policies).toContain('endpoint/sm-clarify-*');
    expect(policies).not.toMatch(/"s3:\*"|"s3:DeleteObject"|AmazonSageMakerFullAccess/);
    const puts = [...policies.matchAll(/"Action":"s3:PutObject","Effect":"Allow","Resource":\{"Fn::Join":\["",\[\{"Fn::GetAtt":\["[A-Za-z0-9]+","Arn"\]\},"([^"]+)"\]\]\}/g)].map((m) => m[1]);
    expect(puts).toEqual(['/model-monitor/churn/reports/*']);
  });

  test('runs the jobs in the endpoint\'s VPC, with its security group and subnets', () => {
    const world = monitorWorld({ vpc: true });
    allMonitors(world);
    Template.fromStack(world.stack).hasResourceProperties('AWS::SageMaker::DataQualityJobDefinition', {
      NetworkConfig: {
        EnableInterContainerTrafficEncryption: true,
        EnableNetworkIsolation: false,
        VpcConfig: { SecurityGroupIds: [{ 'Fn::GetAtt': [Match.stringLikeRegexp('^ChurnSecurityGroup'), 'GroupId'] }], Subnets: [{ Ref: Match.stringLikeRegexp('^VpcisolatedSubnet1') }, { Ref: Match.stringLikeRegexp('^VpcisolatedSubnet2') }] },
      },
    });
  });

  test('publishes per-feature drift and model-quality metrics with the Endpoint and MonitoringSchedule dimensions', () => {
    const world = monitorWorld();
    const monitor = allMonitors(world);
    const drift = world.stack.resolve(monitor.metricFeatureDrift('age').toMetricConfig().metricStat);
    expect(drift).toMatchObject({
      namespace: 'aws/sagemaker/Endpoints/data-metrics',
      metricName: 'feature_baseline_drift_age',
      statistic: 'Maximum',
      dimensions: [
        { name: 'Endpoint', value: { 'Fn::GetAtt': [expect.stringMatching(/^Churn/), 'EndpointName'] } },
        { name: 'MonitoringSchedule', value: monitor.monitor('dataQuality').scheduleName },
      ],
    });
    expect(world.stack.resolve(monitor.metricModelQuality('f1').toMetricConfig().metricStat)).toMatchObject({ namespace: 'aws/sagemaker/Endpoints/model-metrics', metricName: 'f1' });
  });

  test('writes Clarify analysis configurations from the props', () => {
    const world = monitorWorld();
    const monitor = allMonitors(world);
    const bias = world.stack.resolve(monitor.baselineOf('bias').analysisConfig);
    expect(bias).toMatchObject({
      headers: [...HEADERS, 'churned'],
      label: 'churned',
      label_values_or_threshold: [1],
      facet: [{ name_or_index: 'age', value_or_threshold: [40] }],
      methods: { post_training_bias: { methods: 'all' } },
      predictor: { model_name: { 'Fn::GetAtt': [expect.stringMatching(/^ChurnModelchampion/), 'ModelName'] }, instance_type: 'ml.m5.large', probability_threshold: 0.5, probability: 0 },
    });
    expect(world.stack.resolve(monitor.baselineOf('explainability').analysisConfig)).toMatchObject({ methods: { shap: { baseline: [[12, 70, 'month-to-month', 45]], num_samples: 100 } } });
  });

  test('is clean under cdk-nag, in a VPC and outside one', () => {
    for (const vpc of [false, true]) {
      const world = monitorWorld({ vpc });
      allMonitors(world);
      world.app.synth();
      const ours = nagFindings(world.app).filter((f) => f.resource.includes('/Monitor/'));
      expect(ours.map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
    }
  });

  test('refuses bad props, naming each one and the construct', () => {
    const world = monitorWorld();
    expect(() =>
      new ModelMonitor(world.stack, 'Bad', {
        endpoint: world.endpoint,
        bucket: world.bucket,
        headers: ['a', 'a'],
        instanceType: 'ml.t2.nano',
        maxRuntime: Duration.hours(2),
        modelQuality: { problemType: 'Ranking' },
        bias: { label: 'y', labelValuesOrThreshold: [], facets: [{ name: 'gender' }], inferenceAttribute: '0' },
      }),
    ).toThrow(
      [
        'Monitoring/Bad (ModelMonitor): invalid props:',
        "  - instanceType: must be a SageMaker processing instance type such as ml.m5.xlarge (AWS SDK ProcessingInstanceType); got 'ml.t2.nano'",
        '  - maxRuntime: must be from 1 second to 1 hour; got 7200 s',
        "  - modelQuality.problemType: must be one of BinaryClassification, MulticlassClassification, Regression (AWS SDK MonitoringProblemType); got 'Ranking'",
        '  - modelQuality: give inferenceAttribute or probabilityAttribute (where the prediction is in the captured output)',
        '  - headers: must be unique; got a, a',
        "  - bias.facets[0].name: 'gender' is not one of headers (a, a)",
        '  - bias.labelValuesOrThreshold: give the favourable label values or one threshold',
      ].join('\n'),
    );
    expect(() => new ModelMonitor(world.stack, 'None', { endpoint: world.endpoint, bucket: world.bucket })).toThrow('dataQuality, modelQuality, bias, explainability: switch on at least one monitor');
    const noCapture = monitorWorld({ capture: false });
    expect(() => new ModelMonitor(noCapture.stack, 'M', { endpoint: noCapture.endpoint, bucket: noCapture.bucket, dataQuality: {} })).toThrow(
      "Monitoring/M (ModelMonitor): endpoint: 'churn' has no data capture; Model Monitor reads captured requests, turn on dataCapture",
    );
    expect(() => MonitoringFrequency.daily(24)).toThrow('MonitoringFrequency.daily: hourUtc must be a whole hour from 0 to 23; got 24');
  });

  test('needs a known region for AWS\'s images, or the image passed in', () => {
    const app = new App();
    const stack = new Stack(app, 'Agnostic');
    const endpoint = new ModelEndpoint(stack, 'E', {
      modelName: 'churn',
      variants: [{ name: 'champion', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
      dataCapture: { samplingPercentage: 100 },
    });
    expect(() => new ModelMonitor(stack, 'M', { endpoint, bucket: new s3.Bucket(stack, 'B'), dataQuality: {} })).toThrow(
      "Agnostic/M (ModelMonitor): modelMonitorImage: the stack's region is not known at synth (set env.region on the stack) and no image was given",
    );
    const far = new Stack(app, 'Far', { env: { region: 'mars-north-1' } });
    const farEndpoint = new ModelEndpoint(far, 'E', {
      modelName: 'churn',
      variants: [{ name: 'champion', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
      dataCapture: { samplingPercentage: 100 },
    });
    const bucket = new s3.Bucket(far, 'B');
    expect(() => new ModelMonitor(far, 'M', { endpoint: farEndpoint, bucket, dataQuality: {} })).toThrow('no sagemaker-model-monitor-analyzer image is known for region mars-north-1; pass the image URI for that region');
    const own = new ModelMonitor(far, 'Own', { endpoint: farEndpoint, bucket, dataQuality: {}, modelMonitorImage: '111122223333.dkr.ecr.mars-north-1.amazonaws.com/analyzer:1' });
    expect(own.modelMonitorImage).toBe('111122223333.dkr.ecr.mars-north-1.amazonaws.com/analyzer:1');
  });
});
