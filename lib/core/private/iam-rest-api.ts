import { Names, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as apigateway from 'aws-cdk-lib/aws-apigateway';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

/**
 * The regional web ACL of the platform's APIs (`WebAcl` in `scope`): AWS's common and known-bad-input
 * rule groups, and a per-IP rate limit over 5 minutes.
 */
export function managedRulesWebAcl(scope: Construct, metricName: string, ratePerIpPer5Minutes: number): wafv2.CfnWebACL {
  const visibility = (name: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({ cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName: name });
  const managed = (name: string, priority: number): wafv2.CfnWebACL.RuleProperty => ({
    name,
    priority,
    overrideAction: { none: {} },
    statement: { managedRuleGroupStatement: { vendorName: 'AWS', name } },
    visibilityConfig: visibility(name),
  });
  return new wafv2.CfnWebACL(scope, 'WebAcl', {
    defaultAction: { allow: {} },
    scope: 'REGIONAL',
    visibilityConfig: visibility(metricName),
    rules: [
      managed('AWSManagedRulesCommonRuleSet', 1),
      managed('AWSManagedRulesKnownBadInputsRuleSet', 2),
      {
        name: 'RatePerIp',
        priority: 3,
        action: { block: {} },
        statement: { rateBasedStatement: { limit: ratePerIpPer5Minutes, aggregateKeyType: 'IP' } },
        visibilityConfig: visibility('RatePerIp'),
      },
    ],
  });
}

/**
 * The compliance notes of a REST API whose methods require SigV4 IAM auth and whose only backend is a
 * Lambda proxy integration: the account-level logging role, no Cognito, no stage cache, no client
 * certificate.
 */
export function acknowledgeIamLambdaApi(api: apigateway.RestApi, notes: { readonly grantedWith: string; readonly whyNoCache: string }): void {
  const role = api.node.tryFindChild('CloudWatchRole');
  if (role) {
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
      reason: "API Gateway's account-level logging role must let the service create and write any API's log groups; AWS documents this managed policy for it.",
    });
  }
  Validations.of(api).acknowledge({
    id: 'AwsSolutions-COG4',
    reason: `Callers are services, not end users: every method requires SigV4 IAM authorization (AuthorizationType AWS_IAM), granted with ${notes.grantedWith}.`,
  });
  const stage = Validations.of(api.deploymentStage);
  stage.acknowledge(
    { id: 'HIPAA.Security-APIGWCacheEnabledAndEncrypted', reason: notes.whyNoCache },
    { id: 'NIST.800.53.R5-APIGWCacheEnabledAndEncrypted', reason: notes.whyNoCache },
  );
  const certReason = 'The only backend is a Lambda proxy integration, which API Gateway calls through the Lambda API; a client certificate only authenticates HTTP backends.';
  stage.acknowledge({ id: 'HIPAA.Security-APIGWSSLEnabled', reason: certReason }, { id: 'NIST.800.53.R5-APIGWSSLEnabled', reason: certReason });
}

export interface IamLambdaApiProps {
  readonly description: string;
  readonly stageName: string;
  readonly accessLogs: logs.ILogGroup;
  readonly throttlingRateLimit: number;
  readonly throttlingBurstLimit: number;
  /** Whether this API sets API Gateway's account-level logging role (one API per account needs to). */
  readonly cloudWatchRole: boolean;
  /** The compliance notes that differ between APIs. */
  readonly notes: { readonly grantedWith: string; readonly whyNoCache: string };
}

/**
 * A regional REST API (`Resource` in `scope`) whose every method requires SigV4 IAM auth: JSON access
 * logs, INFO execution logs without bodies (they may hold personal data), metrics, X-Ray and stage
 * throttling, with its compliance notes.
 */
export function iamLambdaRestApi(scope: Construct, props: IamLambdaApiProps): apigateway.RestApi {
  const api = new apigateway.RestApi(scope, 'Resource', {
    restApiName: Names.uniqueResourceName(scope, { maxLength: 64 }),
    description: props.description,
    endpointTypes: [apigateway.EndpointType.REGIONAL],
    cloudWatchRole: props.cloudWatchRole,
    // The role is account-wide (AWS::ApiGateway::Account): keep it when one environment's stack is
    // deleted, or the other environments' APIs in the account would lose their execution logs.
    ...(props.cloudWatchRole ? { cloudWatchRoleRemovalPolicy: RemovalPolicy.RETAIN } : {}),
    deployOptions: {
      stageName: props.stageName,
      accessLogDestination: new apigateway.LogGroupLogDestination(props.accessLogs),
      accessLogFormat: apigateway.AccessLogFormat.jsonWithStandardFields(),
      loggingLevel: apigateway.MethodLoggingLevel.INFO,
      dataTraceEnabled: false,
      metricsEnabled: true,
      tracingEnabled: true,
      throttlingRateLimit: props.throttlingRateLimit,
      throttlingBurstLimit: props.throttlingBurstLimit,
    },
    defaultMethodOptions: { authorizationType: apigateway.AuthorizationType.IAM },
  });
  acknowledgeIamLambdaApi(api, props.notes);
  return api;
}
