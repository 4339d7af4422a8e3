// The isolated subnets have no route to the internet: every AWS service a function in them calls needs
// a VPC endpoint. The inference handler calls SageMaker Runtime, Parameter Store, DynamoDB (prediction log,
// state table) and Feature Store's online store; the loaders and jobs read S3 and write DynamoDB.
import { synthesizePlatform } from '../../support/platform';

/** `com.amazonaws.<region>.<service>` (or its Fn::Join over AWS::Region) → `<service>`. */
function serviceOf(name: unknown): string {
  if (typeof name === 'string') return name.replace(/^com\.amazonaws\.[a-z0-9-]+\./, '');
  const parts = (name as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
  return String(parts[parts.length - 1]).replace(/^\./, '');
}

describe.each(['staging', 'prod'] as const)('the %s network', (envName) => {
  const platform = synthesizePlatform(envName);
  const endpoints = Object.values<any>(platform.templates[platform.stacks.foundation.stackName].findResources('AWS::EC2::VPCEndpoint')).map((endpoint) => ({
    type: endpoint.Properties.VpcEndpointType ?? 'Interface',
    service: serviceOf(endpoint.Properties.ServiceName),
  }));

  test('reaches S3 and DynamoDB through gateway endpoints', () => {
    expect(endpoints.filter((endpoint) => endpoint.type === 'Gateway').map((endpoint) => endpoint.service).sort()).toEqual(['dynamodb', 's3']);
  });

  test('reaches what the inference handler calls through interface endpoints', () => {
    const interfaces = endpoints.filter((endpoint) => endpoint.type === 'Interface').map((endpoint) => endpoint.service);
    expect(interfaces).toEqual(expect.arrayContaining(['sagemaker.runtime', 'ssm', 'logs', 'sagemaker.featurestore-runtime']));
  });
});
