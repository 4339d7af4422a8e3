import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import { AlarmSeverity, hasLocalInstanceStorage, ModelData, ModelEndpoint, type ModelEndpointProps, type ProductionVariantProps } from '../../../lib';
import { nagFindings } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';
const instance = (instanceType = 'ml.m5.large', initialInstanceCount = 1) => ({ kind: 'instance' as const, instanceType, initialInstanceCount });
const variant = (name: string, weight: number, version = '1.0.0', capacity: ProductionVariantProps['capacity'] = instance()): ProductionVariantProps => ({
  name,
  weight,
  model: { version, image: IMAGE },
  capacity,
});

function build(props: Partial<ModelEndpointProps> = {}, configure?: (stack: Stack) => Partial<ModelEndpointProps>) {
  const app = new App();
  const stack = new Stack(app, 'Test', { env: { account: '111111111111', region: 'us-east-1' } });
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    variants: [variant('champion', 0.9), variant('challenger', 0.1, '1.1.0')],
    ...configure?.(stack),
    ...props,
  });
  return { app, stack, endpoint, template: Template.fromStack(stack) };
}

describe('ModelEndpoint', () => {
  test('splits traffic between production variants by weight, one model per variant', () => {
    const { template } = build();
    template.resourceCountIs('AWS::SageMaker::Model', 2);
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [
        Match.objectLike({ VariantName: 'champion', InitialVariantWeight: 0.9, InstanceType: 'ml.m5.large', InitialInstanceCount: 1 }),
        Match.objectLike({ VariantName: 'challenger', InitialVariantWeight: 0.1 }),
      ],
      KmsKeyId: Match.anyValue(),
    });
  });

  test('records the model family, version and variant in tags', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::SageMaker::Model', {
      Tags: Match.arrayWith([{ Key: 'ml:model-version', Value: '1.1.0' }, { Key: 'ml:variant', Value: 'challenger' }]),
    });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      Tags: Match.arrayWith([{ Key: 'ml:model-versions', Value: 'champion=1.0.0 challenger=1.1.0' }]),
    });
  });

  test('isolates model containers from the network by default and lets CloudFormation name the endpoint', () => {
    const { template } = build();
    template.allResourcesProperties('AWS::SageMaker::Model', { EnableNetworkIsolation: true });
    template.hasResourceProperties('AWS::SageMaker::Endpoint', { EndpointName: Match.absent() });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', { EndpointConfigName: Match.absent() });
  });

  test('runs a shadow variant with the sampling percentage expressed as its weight', () => {
    const { template, endpoint } = build({
      variants: [variant('champion', 2)],
      shadowVariants: [{ name: 'candidate', samplingPercentage: 25, model: { version: '2.0.0', image: IMAGE }, capacity: instance() }],
    });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({ VariantName: 'champion', InitialVariantWeight: 2 })],
      ShadowProductionVariants: [Match.objectLike({ VariantName: 'candidate', InitialVariantWeight: 0.5 })],
    });
    expect(endpoint.variants.map((v) => `${v.kind}:${v.name}@${v.modelVersion}`)).toEqual(['production:champion@1.0.0', 'shadow:candidate@2.0.0']);
  });

  test('serves a serverless variant without a volume key and acknowledges why', () => {
    const { template, app } = build({
      variants: [variant('champion', 1, '1.0.0', { kind: 'serverless', memorySizeInMb: 2048, maxConcurrency: 5, provisionedConcurrency: 1 })],
    });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      ProductionVariants: [Match.objectLike({ ServerlessConfig: { MemorySizeInMB: 2048, MaxConcurrency: 5, ProvisionedConcurrency: 1 }, InstanceType: Match.absent() })],
      KmsKeyId: Match.absent(),
    });
    template.allResourcesProperties('AWS::SageMaker::Model', { EnableNetworkIsolation: false });
    app.synth();
    expect(nagFindings(app).filter((f) => /SM2|KMSKeyConfigured/.test(f.rule))).toEqual([]);
  });

  test('omits the volume key for instance types with local NVMe storage, which SageMaker rejects', () => {
    expect(['ml.g5.xlarge', 'ml.m5d.large', 'ml.p4d.24xlarge', 'ml.g4dn.xlarge'].every(hasLocalInstanceStorage)).toBe(true);
    expect(['ml.m5.large', 'ml.c5.xlarge', 'ml.inf1.xlarge'].some(hasLocalInstanceStorage)).toBe(false);
    const { template } = build({ variants: [variant('champion', 1, '1.0.0', instance('ml.g5.xlarge'))] });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', { KmsKeyId: Match.absent() });
  });

  test('captures requests and responses as text into its own encrypted, retained bucket', () => {
    const { template } = build({ dataCapture: { samplingPercentage: 20 } });
    template.hasResourceProperties('AWS::SageMaker::EndpointConfig', {
      DataCaptureConfig: {
        EnableCapture: true,
        InitialSamplingPercentage: 20,
        CaptureOptions: [{ CaptureMode: 'Input' }, { CaptureMode: 'Output' }],
        CaptureContentTypeHeader: { JsonContentTypes: ['application/json'], CsvContentTypes: ['text/csv'] },
        KmsKeyId: Match.anyValue(),
        DestinationS3Uri: Match.anyValue(),
      },
    });
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: Match.objectLike({ BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) })] } }),
    });
    // SageMaker may only put objects under the endpoint's prefix.
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 's3:PutObject', Resource: { 'Fn::Join': ['', [Match.anyValue(), '/data-capture/churn/*']] } })]) },
    });
  });

  test('autoscales instance variants by invocations per instance and keeps the count across updates', () => {
    const { template } = build({
      variants: [variant('champion', 1, '1.0.0', { ...instance('ml.c5.xlarge', 2), autoscaling: { minCapacity: 2, maxCapacity: 8, targetInvocationsPerInstance: 750 } })],
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 2,
      MaxCapacity: 8,
      ScalableDimension: 'sagemaker:variant:DesiredInstanceCount',
      ServiceNamespace: 'sagemaker',
    });
    template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        TargetValue: 750,
        PredefinedMetricSpecification: { PredefinedMetricType: 'SageMakerVariantInvocationsPerInstance' },
        ScaleInCooldown: 300,
        ScaleOutCooldown: 60,
      }),
    });
    // Autoscaling owns the instance count and the run-time weights are kept (WeightsOnUpdate.KEEP_DEPLOYED): nothing is excluded.
    const endpoint = Object.values(template.findResources('AWS::SageMaker::Endpoint'))[0];
    expect(endpoint.Properties.RetainAllVariantProperties).toBe(true);
    expect(endpoint.Properties.ExcludeRetainedVariantProperties).toBeUndefined();
  });

  test('places models in the isolated subnets of a VPC with their own security group', () => {
    const { template } = build({}, (stack) => ({
      vpc: new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }),
    }));
    const models = Object.values(template.findResources('AWS::SageMaker::Model'));
    expect(models).toHaveLength(2);
    for (const model of models) {
      expect(model.Properties.VpcConfig.SecurityGroupIds).toEqual([{ 'Fn::GetAtt': [expect.stringMatching(/^ChurnSecurityGroup/), 'GroupId'] }]);
      expect(model.Properties.VpcConfig.Subnets).toEqual(expect.arrayContaining([{ Ref: expect.stringMatching(/^VpcisolatedSubnet1/) }]));
    }
  });

  test('gives the models a least-privilege role: no SageMaker full access, one ECR repository, one model artifact', () => {
    const { template, stack } = build({}, (s) => ({
      variants: [{ ...variant('champion', 1), model: { version: '1', image: IMAGE, modelData: ModelData.fromBucket(new s3.Bucket(s, 'Artifacts'), 'churn/1/model.tar.gz') } }],
    }));
    const policies = JSON.stringify(template.findResources('AWS::IAM::ManagedPolicy'));
    expect(JSON.stringify(template.toJSON())).not.toContain('AmazonSageMakerFullAccess');
    expect(policies).toContain(':ecr:us-east-1:683313688378:repository/sagemaker-xgboost');
    expect(policies).toContain('/churn/1/model.tar.gz');
    template.resourceCountIs('AWS::IAM::Policy', 0);
    // Actions are never wildcards.
    for (const policy of Object.values(template.findResources('AWS::IAM::ManagedPolicy'))) {
      for (const statement of policy.Properties.PolicyDocument.Statement) {
        expect([statement.Action].flat().filter((action: string) => action.includes('*') && !/^kms:GenerateDataKey\*$/.test(action))).toEqual([]);
      }
    }
    expect(stack).toBeDefined();
  });

  test('grantInvoke allows InvokeEndpoint on this endpoint only', () => {
    const app = new App();
    const stack = new Stack(app, 'Grant', { env: { account: '111111111111', region: 'us-east-1' } });
    const endpoint = new ModelEndpoint(stack, 'Churn', { modelName: 'churn', variants: [variant('champion', 1)] });
    const role = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    endpoint.grantInvoke(role);
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [{ Action: 'sagemaker:InvokeEndpoint', Effect: 'Allow', Resource: { Ref: stack.getLogicalId(endpoint.endpoint) } }] },
    });
  });

  test('exposes per-variant metrics with documented defaults and refuses unknown variants', () => {
    const { endpoint } = build();
    const latency = endpoint.metricModelLatency('challenger');
    expect(latency).toMatchObject({ namespace: 'AWS/SageMaker', metricName: 'ModelLatency', statistic: 'p99' });
    expect(latency.dimensions).toMatchObject({ VariantName: 'challenger' });
    expect(endpoint.metricInvocations('champion').statistic).toBe('Sum');
    expect(endpoint.metric5xxErrors('champion').metricName).toBe('Invocation5XXErrors');
    expect(endpoint.metric4xxErrors('champion').metricName).toBe('Invocation4XXErrors');
    expect(endpoint.metricOverheadLatency('champion').metricName).toBe('OverheadLatency');
    expect(() => endpoint.metricInvocations('shadow')).toThrow("Test/Churn: no variant named 'shadow'; variants: champion, challenger");
  });

  test('creates alarms per variant keyed by severity and wired to the given actions', () => {
    const { stack, template, endpoint } = build({}, (s) => ({
      alarms: { actions: { [AlarmSeverity.CRITICAL]: new actions.SnsAction(new sns.Topic(s, 'Pager')) }, modelLatencyP99Ms: 250 },
    }));
    expect(endpoint.alarms!.alarms(AlarmSeverity.CRITICAL)).toHaveLength(2);
    expect(endpoint.alarms!.alarms(AlarmSeverity.WARNING)).toHaveLength(4);
    template.resourceCountIs('AWS::CloudWatch::Alarm', 6);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ModelLatency', Threshold: 250_000, ExtendedStatistic: 'p99' });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('^\\[CRITICAL\\] churn/champion'),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('Pager') }],
    });
    expect(stack).toBeDefined();
  });

  test('deploys new versions as canaries that roll back on the endpoint alarms, without a dependency cycle', () => {
    const { template, app } = build({}, (s) => ({
      alarms: { actions: { [AlarmSeverity.CRITICAL]: new actions.SnsAction(new sns.Topic(s, 'Pager')) } },
      deploymentGuardrails: { trafficShifting: { mode: 'canary', canaryPercent: 10, wait: Duration.minutes(10) } },
    }));
    const endpoint = Object.values(template.findResources('AWS::SageMaker::Endpoint'))[0];
    expect(endpoint.Properties.DeploymentConfig).toMatchObject({
      BlueGreenUpdatePolicy: {
        TrafficRoutingConfiguration: { Type: 'CANARY', CanarySize: { Type: 'CAPACITY_PERCENT', Value: 10 }, WaitIntervalInSeconds: 600 },
        TerminationWaitInSeconds: 600,
      },
    });
    const rollbackNames = endpoint.Properties.DeploymentConfig.AutoRollbackConfiguration.Alarms.map((alarm: any) => alarm.AlarmName);
    const alarmNames = Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((alarm: any) => alarm.Properties.AlarmName);
    expect(rollbackNames).toHaveLength(6);
    expect([...rollbackNames].sort()).toEqual([...alarmNames].sort());
    expect(() => app.synth()).not.toThrow();
  });

  test('refuses guardrails it cannot honour, naming the prop', () => {
    expect(() => build({ deploymentGuardrails: { trafficShifting: { mode: 'linear', stepPercent: 0, wait: Duration.minutes(1) } }, alarms: undefined })).toThrow(
      'deploymentGuardrails.trafficShifting.stepPercent: must be a whole percentage from 1 to 99; got 0',
    );
    expect(() => build({ deploymentGuardrails: { trafficShifting: { mode: 'all-at-once' } } })).toThrow(
      'deploymentGuardrails.rollbackOnEndpointAlarms: the endpoint has no alarms; set alarms, or rollbackOnEndpointAlarms: false with rollbackAlarmNames',
    );
    expect(() => build({ variants: [variant('a', 1, '1', instance('ml.inf1.xlarge'))], deploymentGuardrails: { trafficShifting: { mode: 'all-at-once' }, rollbackOnEndpointAlarms: false } })).toThrow(
      'deploymentGuardrails: SageMaker does not apply deployment guardrails to Inf1 instances',
    );
  });

  test('adds anomaly-detection alarms and pages once per incident through a composite alarm', () => {
    const { template, app } = build({}, (s) => {
      const pager = new actions.SnsAction(new sns.Topic(s, 'Pager'));
      return { alarms: { actions: { [AlarmSeverity.CRITICAL]: pager, [AlarmSeverity.WARNING]: pager }, anomalyDetection: { standardDeviations: 2 }, pageOncePerIncident: true } };
    });
    // Two anomaly alarms per production variant, on invocations and on p99 latency.
    const anomalies = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter((alarm: any) => alarm.Properties.ThresholdMetricId);
    expect(anomalies).toHaveLength(4);
    expect(JSON.stringify(anomalies)).toContain('ANOMALY_DETECTION_BAND(m0, 2)');
    template.hasResourceProperties('AWS::CloudWatch::CompositeAlarm', {
      AlarmRule: Match.anyValue(),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('Pager') }],
      AlarmDescription: Match.stringLikeRegexp('^\\[CRITICAL\\] churn is failing'),
    });
    // The critical symptoms are silent: the composite alarm pages.
    const critical = Object.values(template.findResources('AWS::CloudWatch::Alarm')).filter((alarm: any) => /^\[CRITICAL\]/.test(alarm.Properties.AlarmDescription));
    expect(critical).toHaveLength(2);
    for (const alarm of critical) expect((alarm as any).Properties.AlarmActions).toBeUndefined();
    app.synth();
    expect(nagFindings(app).filter((f) => f.resource.includes('/Alarms/')).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('without alarms props it creates no alarm', () => {
    build().template.resourceCountIs('AWS::CloudWatch::Alarm', 0);
  });

  describe('rejects bad props with the prop and the construct path', () => {
    const cases: Array<[string, Partial<ModelEndpointProps>, string]> = [
      ['no variant', { variants: [] }, 'Test/Churn (ModelEndpoint): variants: must hold at least one production variant'],
      [
        'a shadow variant without a production variant',
        { variants: [], shadowVariants: [{ name: 's', model: { version: '1', image: IMAGE }, capacity: instance() }] },
        'Test/Churn (ModelEndpoint): variants: must hold at least one production variant',
      ],
      ['a negative weight', { variants: [variant('a', -1), variant('b', 1)] }, 'variants[0].weight: must be a finite number >= 0; got -1'],
      ['weights that are all zero', { variants: [variant('a', 0), variant('b', 0)] }, "variants: the production variants' weights must not all be 0"],
      ['eleven variants', { variants: Array.from({ length: 11 }, (_, i) => variant(`v${i}`, 1)) }, 'variants: must hold 1 to 10 production variants; got 11'],
      ['a bad instance type', { variants: [variant('a', 1, '1', instance('m5.large'))] }, "variants[0].capacity.instanceType: must be a SageMaker hosting instance type"],
      ['a bad variant name', { variants: [variant('-a', 1)] }, "variants[0].name: must be 1-63 letters"],
      [
        'a shadow variant beside two production variants',
        { shadowVariants: [{ name: 's', model: { version: '1', image: IMAGE }, capacity: instance() }] },
        'shadowVariants: an endpoint with a shadow variant must have exactly one production variant to copy traffic from; got 2',
      ],
      [
        'data capture on a serverless variant',
        { variants: [variant('a', 1, '1', { kind: 'serverless', memorySizeInMb: 1024, maxConcurrency: 1 })], dataCapture: {} },
        "dataCapture: serverless inference does not support data capture (variant 'a' is serverless)",
      ],
      ['a bad memory size', { variants: [variant('a', 1, '1', { kind: 'serverless', memorySizeInMb: 1000, maxConcurrency: 1 })] }, 'variants[0].capacity.memorySizeInMb: must be one of 1024, 2048'],
      ['a capture percentage over 100', { variants: [variant('a', 1)], dataCapture: { samplingPercentage: 101 } }, 'dataCapture.samplingPercentage: must be a whole number from 1 to 100; got 101'],
      ['an upper-case model name', { modelName: 'Churn' }, "modelName: must be 2-32 lowercase letters"],
      [
        'an empty model version',
        { variants: [{ ...variant('a', 1), model: { version: '', image: IMAGE } }] },
        'variants[0].model.version: must be 1-128 letters, digits, dots, underscores, plus or hyphens, starting with a letter or digit; got ""',
      ],
      [
        'an image from outside Amazon ECR, named by its prop',
        { variants: [variant('a', 1)], shadowVariants: [{ name: 's', model: { version: '2', image: 'nginx:latest' }, capacity: instance() }] },
        'shadowVariants[0].model.image: must be an Amazon ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag> or @sha256:<digest>); got "nginx:latest"',
      ],
      // What a JavaScript caller, without the type checker, can get wrong.
      ['no model name', { modelName: undefined }, 'modelName: is required'],
      ['a variant without capacity', { variants: [{ name: 'a', model: { version: '1', image: IMAGE } } as unknown as ProductionVariantProps] }, 'variants[0].capacity: is required'],
      [
        'a capacity kind that does not exist',
        { variants: [variant('a', 1, '1', { kind: 'gpu', memorySizeInMb: 1024, maxConcurrency: 1 } as never)] },
        "variants[0].capacity.kind: must be one of 'instance', 'serverless'; got the string \"gpu\"",
      ],
      ['a weight given as a string', { variants: [{ ...variant('a', 1), weight: '1' as never }] }, 'variants[0].weight: must be a number; got the string "1"'],
    ];
    test.each(cases)('%s', (_name, props, message) => {
      expect(() => build(props)).toThrow(message);
      expect(() => build(props)).toThrow(/^Test\/Churn \(ModelEndpoint\): /);
    });
  });

  test('produces no warning annotations', () => {
    const { stack } = build();
    Annotations.fromStack(stack).hasNoWarning('*', Match.anyValue());
  });
});
