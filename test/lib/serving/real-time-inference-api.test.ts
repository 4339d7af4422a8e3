import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { AlarmSeverity, AlarmTopic, DataKey, ModelEndpoint, RealTimeInferenceApi, type RealTimeInferenceApiProps } from '../../../lib';
import { lambdaBundleDir } from '../../../lib/core/private/lambda-asset';
import { PredictionLog } from '../../../lib/experiments/prediction-log';
import { FeatureGroup } from '../../../lib/features/feature-group';
import type { FeatureGroupDefinition } from '../../../lib/features/feature-definition';
import { customerChurnFeatures } from '../../../config/feature-groups';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { nagFindings } from '../../support/platform';

const IMAGE = '683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1';

function build(props: RealTimeInferenceApiProps = {}) {
  const app = new App();
  const stack = new Stack(app, 'Api', { env: { account: '111111111111', region: 'us-east-1' } });
  const endpoint = new ModelEndpoint(stack, 'Churn', {
    modelName: 'churn',
    variants: [
      { name: 'champion', weight: 9, model: { version: '1.0.0', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } },
      { name: 'challenger', weight: 1, model: { version: '1.1.0', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } },
    ],
  });
  const api = new RealTimeInferenceApi(stack, 'Inference', { endpoints: [endpoint], ...props });
  const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
  api.grantInvoke(caller);
  return { app, stack, endpoint, api, template: Template.fromStack(stack) };
}

describe('RealTimeInferenceApi', () => {
  test('serves POST /models/{model}/predict behind IAM auth with a body validator', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::ApiGateway::Method', {
      HttpMethod: 'POST',
      AuthorizationType: 'AWS_IAM',
      RequestValidatorId: Match.anyValue(),
      RequestModels: { 'application/json': Match.anyValue() },
    });
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'predict' });
    template.hasResourceProperties('AWS::ApiGateway::Model', { Schema: Match.objectLike({ required: ['payload'], additionalProperties: false }) });
    template.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'BAD_REQUEST_BODY',
      ResponseTemplates: { 'application/json': Match.stringLikeRegexp('validationErrorString') },
    });
  });

  test('logs access, traces and throttles the stage without logging request bodies', () => {
    const { template } = build({ throttlingRateLimit: 30, throttlingBurstLimit: 60 });
    template.hasResourceProperties('AWS::ApiGateway::Stage', {
      TracingEnabled: true,
      AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }),
      MethodSettings: [Match.objectLike({ DataTraceEnabled: false, LoggingLevel: 'INFO', ThrottlingRateLimit: 30, ThrottlingBurstLimit: 60 })],
    });
  });

  test('runs the pre-built handler bundle and writes each route to a parameter beside its endpoint', () => {
    const { template, stack, endpoint, api } = build();
    const fn = Object.values(template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('invokes SageMaker') } }))[0];
    expect(fn.Properties).toMatchObject({ Runtime: 'nodejs24.x', Handler: 'index.handler', ReservedConcurrentExecutions: 10, TracingConfig: { Mode: 'Active' } });
    expect(fn.Properties.Environment.Variables).toMatchObject({ ROUTES_PARAMETER_PREFIX: api.routeParameterPrefix, ROUTE_CACHE_TTL_SECONDS: '60' });
    expect(fn.Properties.Environment.Variables).not.toHaveProperty('MODEL_ROUTES');
    expect(api.routeParameterPrefix).toMatch(/^\/cdk-ml-patterns\/ApiInference[0-9A-F]{8}\/routes\/$/);
    const parameters = template.findResources('AWS::SSM::Parameter');
    expect(Object.keys(parameters)).toHaveLength(1);
    const parameter = Object.values(parameters)[0] as { Properties: { Name: string; Type: string; Value: unknown } };
    expect(parameter.Properties).toMatchObject({ Name: `${api.routeParameterPrefix}churn`, Type: 'String' });
    const rendered = JSON.stringify(stack.resolve(parameter.Properties.Value));
    expect(rendered).toContain('\\"variants\\":{\\"champion\\":{\\"modelVersion\\":\\"1.0.0\\",\\"weight\\":9},\\"challenger\\":{\\"modelVersion\\":\\"1.1.0\\",\\"weight\\":1}}');
    expect(rendered).toContain(stack.getLogicalId(endpoint.endpoint));
    // The route parameter lives in the endpoint's scope (its stack), not the API's.
    expect(endpoint.node.tryFindChild('InferenceRoute')).toBeDefined();
    // The code is the esbuild bundle shipped in assets/, not a bundling step at synth.
    expect(fn.Properties.Code.S3Key).toMatch(/^[a-f0-9]{64}\.zip$/);
    expect(existsSync(join(lambdaBundleDir('invoke'), 'index.js'))).toBe(true);
  });

  test('lets the handler invoke only endpoints tagged for this API, with one statement whatever their number', () => {
    const { template, api } = build();
    template.hasResourceProperties('AWS::SageMaker::Endpoint', { Tags: Match.arrayWith([{ Key: api.endpointAccessTag.key, Value: api.endpointAccessTag.value }]) });
    const invokeStatements = Object.values(template.findResources('AWS::IAM::ManagedPolicy')).flatMap((policy: any) =>
      policy.Properties.PolicyDocument.Statement.filter((statement: any) => statement.Action === 'sagemaker:InvokeEndpoint'),
    );
    expect(invokeStatements).toEqual([
      {
        Action: 'sagemaker:InvokeEndpoint',
        Effect: 'Allow',
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sagemaker:us-east-1:111111111111:endpoint/*']] },
        Condition: { StringEquals: { [`aws:ResourceTag/${api.endpointAccessTag.key}`]: api.endpointAccessTag.value } },
      },
    ]);
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Action: 'ssm:GetParameter',
            Effect: 'Allow',
            Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:ssm:us-east-1:111111111111:parameter${api.routeParameterPrefix}*`]] },
          },
        ]),
      },
    });
  });

  test('keeps the API stack the same for 100 endpoints in other stacks as for one', () => {
    const apiStack = (count: number) => {
      const app = new App();
      const env = { account: '111111111111', region: 'us-east-1' };
      const stack = new Stack(app, 'Api', { env });
      const api = new RealTimeInferenceApi(stack, 'Inference');
      const families: Stack[] = [];
      for (let index = 0; index < count; index++) {
        // Ten families to a stack keeps each under the resource limit.
        if (index % 10 === 0) families.push(new Stack(app, `Families${index / 10}`, { env }));
        const endpoint = new ModelEndpoint(families[families.length - 1], `Model${index}`, {
          modelName: `family-${index}`,
          variants: [{ name: 'a', model: { version: '1', image: IMAGE }, capacity: { kind: 'serverless', memorySizeInMb: 2048, maxConcurrency: 5 } }],
        });
        api.addEndpoint(endpoint);
      }
      const routes = families.reduce((sum, family) => sum + Object.keys(Template.fromStack(family).findResources('AWS::SSM::Parameter')).length, 0);
      return { template: JSON.stringify(Template.fromStack(stack).toJSON()), routes, dependencies: stack.dependencies.length };
    };
    const one = apiStack(1);
    const hundred = apiStack(100);
    expect(hundred.routes).toBe(100);
    // Byte for byte: no policy statement, environment variable or reference grows with the fleet.
    expect(hundred.template).toBe(one.template);
    expect(hundred.dependencies).toBe(0);
  });

  test('grantInvoke allows execute-api:Invoke on the predict route only', () => {
    const { template } = build();
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [Match.objectLike({ Action: 'execute-api:Invoke', Resource: { 'Fn::Join': ['', Match.arrayWith(['/v1/POST/models/*/predict'])] } })],
      },
    });
  });

  test('attaches a WAF web ACL with managed rules, a rate limit and redacted logs when asked', () => {
    const { template } = build({ waf: true, wafRateLimitPer5Minutes: 500 });
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Scope: 'REGIONAL',
      Rules: Match.arrayWith([Match.objectLike({ Name: 'RatePerIp', Statement: { RateBasedStatement: { Limit: 500, AggregateKeyType: 'IP' } } })]),
    });
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 1);
    template.hasResourceProperties('AWS::WAFv2::LoggingConfiguration', { RedactedFields: [{ SingleHeader: { Name: 'authorization' } }] });
    template.hasResourceProperties('AWS::Logs::LogGroup', { LogGroupName: Match.stringLikeRegexp('^aws-waf-logs-') });
  });

  test('is clean under cdk-nag with and without WAF', () => {
    for (const waf of [true, false]) {
      const app = new App();
      const stack = new Stack(app, 'Nag', { env: { account: '111111111111', region: 'us-east-1' } });
      const key = new DataKey(stack, 'Key').key;
      const topic = new AlarmTopic(stack, 'Alarms', { encryptionKey: key });
      const endpoint = new ModelEndpoint(stack, 'Churn', {
        modelName: 'churn',
        encryptionKey: key,
        variants: [{ name: 'a', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
      });
      new RealTimeInferenceApi(stack, 'Inference', {
        endpoints: [endpoint],
        encryptionKey: key,
        waf,
        alarmActions: { [AlarmSeverity.CRITICAL]: topic.alarmAction, [AlarmSeverity.WARNING]: topic.alarmAction },
      });
      app.synth();
      expect(nagFindings(app).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
    }
  });

  test('refuses to serve two endpoints under one model name', () => {
    const { api, endpoint } = build();
    expect(() => api.addEndpoint(endpoint)).toThrow("Api/Inference (RealTimeInferenceApi): addEndpoint: a model named 'churn' is already served");
  });

  test('rejects out-of-range limits with the prop and the construct path', () => {
    expect(() => build({ reservedConcurrency: 0 })).toThrow('Api/Inference (RealTimeInferenceApi): invalid props:\n  - reservedConcurrency: must be from 1 to 1000; got 0');
    expect(() => build({ throttlingRateLimit: -5 })).toThrow('throttlingRateLimit: must be from 1 to 10000; got -5');
    // Every problem at once, the prediction log's retention too.
    expect(() => build({ throttlingRateLimit: 0, predictionLogRetentionDays: 0.5, routeParameterPrefix: 'routes', routeCacheTtl: Duration.days(2) })).toThrow(
      "Api/Inference (RealTimeInferenceApi): invalid props:\n  - throttlingRateLimit: must be from 1 to 10000; got 0\n  - predictionLogRetentionDays: must be a whole number >= 1; got 0.5\n  - routeParameterPrefix: must be a plain string that starts and ends with '/', holds only letters, digits and _ . - /, and does not start with /aws or /ssm; got 'routes'\n  - routeCacheTtl: must be from 0 seconds to 1 day; got 172800 seconds",
    );
  });

  describe('the endpoints prop', () => {
    const twoVariants = (stack: Stack, id: string, modelName: string) =>
      new ModelEndpoint(stack, id, {
        modelName,
        variants: [
          { name: 'champion', weight: 1, model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } },
          { name: 'challenger', weight: 1, model: { version: '2', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } },
        ],
      });
    const oneVariant = (stack: Stack, id: string, modelName: string) =>
      new ModelEndpoint(stack, id, {
        modelName,
        variants: [{ name: 'only', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
      });

    test('routes an entry sticky as addEndpoint would', () => {
      const stack = new Stack(new App(), 'Sticky');
      const api = new RealTimeInferenceApi(stack, 'Inference', {
        endpoints: [{ modelEndpoint: twoVariants(stack, 'Churn', 'churn'), stickyRouting: true, stickySalt: 'spring' }, twoVariants(stack, 'Fraud', 'fraud')],
      });
      expect(api.modelNames).toEqual(['churn', 'fraud']);
      const values = Object.values(Template.fromStack(stack).findResources('AWS::SSM::Parameter')).map((parameter: any) => JSON.stringify(stack.resolve(parameter.Properties.Value)));
      expect(values.filter((value) => value.includes('\\"sticky\\":{\\"salt\\":\\"spring\\"}'))).toHaveLength(1);
      expect(values.filter((value) => !value.includes('sticky'))).toHaveLength(1);
    });

    test('reports every bad entry at once, with its index', () => {
      const stack = new Stack(new App(), 'Bad');
      const churn = twoVariants(stack, 'Churn', 'churn');
      expect(
        () =>
          new RealTimeInferenceApi(stack, 'Inference', {
            reservedConcurrency: 0,
            endpoints: [churn, { modelEndpoint: churn }, { modelEndpoint: oneVariant(stack, 'Fraud', 'fraud'), stickyRouting: true, stickySalt: '' }, { stickyRouting: true } as any],
          }),
      ).toThrow(
        "Bad/Inference (RealTimeInferenceApi): invalid props:\n  - reservedConcurrency: must be from 1 to 1000; got 0\n  - endpoints[1]: a model named 'churn' is already served by endpoints[0]\n  - endpoints[2].stickyRouting needs at least two production variants; 'fraud' has 1\n  - endpoints[2].stickySalt: must be 1-256 characters; got 0\n  - endpoints[3].modelEndpoint: is required",
      );
    });
  });

  test('creates the account-wide API Gateway logging role unless told another API of the account has', () => {
    build().template.resourceCountIs('AWS::ApiGateway::Account', 1);
    const { template, app } = build({ cloudWatchRole: false });
    template.resourceCountIs('AWS::ApiGateway::Account', 0);
    // Still logging, and nothing of the API's for cdk-nag to report.
    template.hasResourceProperties('AWS::ApiGateway::Stage', { AccessLogSetting: Match.objectLike({ DestinationArn: Match.anyValue() }) });
    app.synth();
    expect(nagFindings(app).filter((f) => f.resource.startsWith('Api/Inference/')).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('with a prediction log, logs predictions and serves the outcomes route with its own function', () => {
    const app = new App();
    const stack = new Stack(app, 'Log', { env: { account: '111111111111', region: 'us-east-1' } });
    const key = new DataKey(stack, 'Key').key;
    const log = new PredictionLog(stack, 'Predictions', { encryptionKey: key });
    const variant = (name: string, weight: number) => ({ name, weight, model: { version: '1', image: IMAGE }, capacity: { kind: 'instance' as const, instanceType: 'ml.m5.large', initialInstanceCount: 1 } });
    const endpoint = new ModelEndpoint(stack, 'Churn', { modelName: 'churn', encryptionKey: key, variants: [variant('champion', 9), variant('challenger', 1)] });
    const api = new RealTimeInferenceApi(stack, 'Inference', { encryptionKey: key, predictionLog: log, predictionLogRetentionDays: 30 });
    api.addEndpoint(endpoint, { stickyRouting: true, stickySalt: 'spring-test' });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: 'outcomes' });
    // The inference and outcome functions, and the endpoint's weights function (lib/serving/private/endpoint-weights.ts).
    template.resourceCountIs('AWS::Lambda::Function', 3);
    const invoke = template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('invokes SageMaker') } });
    const env = Object.values(invoke)[0].Properties.Environment.Variables;
    expect(env).toMatchObject({ PREDICTION_LOG_TABLE: { Ref: stack.getLogicalId(log.table.node.defaultChild as any) }, PREDICTION_LOG_TTL_DAYS: '30' });
    const route = Object.values(template.findResources('AWS::SSM::Parameter'))[0] as { Properties: { Value: unknown } };
    expect(JSON.stringify(stack.resolve(route.Properties.Value))).toContain('\\"sticky\\":{\\"salt\\":\\"spring-test\\"}');
    const outcomes = template.findResources('AWS::Lambda::Function', { Properties: { Description: Match.stringLikeRegexp('Records business outcomes') } });
    expect(Object.values(outcomes)[0].Properties.Environment.Variables).toMatchObject({ ROUTES_PARAMETER_PREFIX: api.routeParameterPrefix });
    template.hasResourceProperties('AWS::ApiGateway::Model', { Schema: Match.objectLike({ required: ['predictionId', 'outcome'] }) });
    template.hasResourceProperties('AWS::ApiGateway::Model', { Schema: Match.objectLike({ properties: Match.objectLike({ callerId: Match.objectLike({ maxLength: 256 }) }) }) });
    // The inference function may only add predictions; the outcome function may only update them.
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', { PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'dynamodb:PutItem' })]) } });
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', { PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: 'dynamodb:UpdateItem' })]) } });
    app.synth();
    expect(nagFindings(app).map((f) => `${f.rule} ${f.resource}`)).toEqual([]);
  });

  test('serves online feature lookups and lets the prediction handler enrich requests from them', () => {
    const stack = new Stack(new App(), 'Api', { env: { account: '111111111111', region: 'us-east-1' } });
    const api = new RealTimeInferenceApi(stack, 'Inference');
    const key = new DataKey(stack, 'FeatureKey').key;
    const group = new FeatureGroup(stack, 'Customers', {
      definition: customerChurnFeatures as FeatureGroupDefinition,
      encryptionKey: key,
      offlineStoreBucket: new s3.Bucket(stack, 'Offline', { encryptionKey: key }),
    });
    api.addFeatureLookup([group]);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::ApiGateway::Resource', { PathPart: '{recordId}' });
    template.hasResourceProperties('AWS::ApiGateway::Method', { HttpMethod: 'GET', AuthorizationType: 'AWS_IAM' });
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    const withGroups = functions.filter((fn: any) => fn.Properties.Environment?.Variables?.FEATURE_GROUPS);
    expect(withGroups).toHaveLength(2);
    template.hasResourceProperties('AWS::IAM::ManagedPolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Action: ['sagemaker:GetRecord', 'sagemaker:BatchGetRecord'] })]) },
    });
    expect(() => api.addFeatureLookup([group])).toThrow('Api/Inference (RealTimeInferenceApi): addFeatureLookup: feature lookup is already served; pass every group in one call');
  });

  test('refuses sticky routing for an endpoint with one production variant', () => {
    const app = new App();
    const stack = new Stack(app, 'One');
    const endpoint = new ModelEndpoint(stack, 'Churn', {
      modelName: 'churn',
      variants: [{ name: 'only', model: { version: '1', image: IMAGE }, capacity: { kind: 'instance', instanceType: 'ml.m5.large', initialInstanceCount: 1 } }],
    });
    const api = new RealTimeInferenceApi(stack, 'Inference');
    expect(() => api.addEndpoint(endpoint, { stickyRouting: true })).toThrow("One/Churn/InferenceRoute (InferenceRoute): stickyRouting needs at least two production variants; 'churn' has 1");
  });

  test('creates critical and warning alarms when given actions', () => {
    const { template } = build({ alarmActions: {} });
    template.resourceCountIs('AWS::CloudWatch::Alarm', 3);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmDescription: Match.stringLikeRegexp('^\\[CRITICAL\\] inference function crashed') });
  });
});
