import { RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { PlatformConfig } from '../../config/schema';
import { AlarmTopic } from '../core/alarm-topic';
import { DataKey } from '../core/data-key';
import { ManagedPolicyRole } from '../core/managed-policy-role';
import { AccessLogsBucket, SecureBucket } from '../core/secure-bucket';

export interface FoundationStackProps extends StackProps {
  readonly config: PlatformConfig;
}

/**
 * What every pattern of an environment shares: the data key, the model-artifact and inference-data
 * buckets (with their access-log bucket), the alarm topic and, where the environment has one, the VPC.
 */
export class FoundationStack extends Stack {
  public readonly dataKey: kms.Key;
  public readonly accessLogsBucket: s3.Bucket;
  /** Model artifacts (`model.tar.gz`), training outputs and baselines. Captured inference data lives with each endpoint. */
  public readonly artifactsBucket: s3.Bucket;
  public readonly alarmTopic: AlarmTopic;
  public readonly vpc?: ec2.Vpc;

  constructor(scope: Construct, id: string, props: FoundationStackProps) {
    super(scope, id, props);
    const { config } = props;
    const retain = config.retainData;
    const removalPolicy = retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.dataKey = new DataKey(this, 'DataKey', {
      description: `cdk-ml-patterns ${config.envName} data key`,
      removalPolicy,
    }).key;
    this.accessLogsBucket = new AccessLogsBucket(this, 'AccessLogs', { removalPolicy }).bucket;
    this.artifactsBucket = new SecureBucket(this, 'ModelArtifacts', {
      encryptionKey: this.dataKey,
      serverAccessLogsBucket: this.accessLogsBucket,
      removalPolicy,
    }).bucket;
    this.alarmTopic = new AlarmTopic(this, 'Alarms', { encryptionKey: this.dataKey, emails: config.alarmEmails });

    if (config.network.vpc) {
      this.vpc = this.createVpc(config, retain);
    }
  }

  private createVpc(config: PlatformConfig, retain: boolean): ec2.Vpc {
    const flowLogs = new logs.LogGroup(this, 'VpcFlowLogs', {
      encryptionKey: this.dataKey,
      retention: config.logRetentionDays as logs.RetentionDays,
      removalPolicy: retain ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    // Isolated subnets only: models and functions reach AWS through VPC endpoints, never the internet.
    const flowLogsRole = new ManagedPolicyRole(this, 'VpcFlowLogsRole', {
      assumedBy: new iam.ServicePrincipal('vpc-flow-logs.amazonaws.com'),
      description: 'Delivers VPC flow logs to CloudWatch Logs',
    });
    const vpc = new ec2.Vpc(this, 'Network', {
      ipAddresses: ec2.IpAddresses.cidr(config.network.cidr),
      ...(config.network.availabilityZones ? { availabilityZones: config.network.availabilityZones } : { maxAzs: config.network.maxAzs }),
      natGateways: 0,
      subnetConfiguration: [{ name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 22 }],
      flowLogs: { all: { destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs, flowLogsRole), trafficType: ec2.FlowLogTrafficType.ALL } },
      // The isolated subnets reach S3 and DynamoDB through gateway endpoints (no charge): the prediction log,
      // the inference state table (cache, breakers, precomputed answers) and the A/B analysis read DynamoDB.
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 }, DynamoDb: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB } },
    });
    const endpointSecurityGroup = new ec2.SecurityGroup(this, 'VpcEndpointSecurityGroup', {
      vpc,
      description: 'HTTPS from inside the VPC to AWS service endpoints',
      allowAllOutbound: false,
    });
    endpointSecurityGroup.addIngressRule(ec2.Peer.ipv4(config.network.cidr), ec2.Port.tcp(443), 'HTTPS from the VPC');
    for (const [id, service] of [
      ['SageMakerRuntime', ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME],
      ['SageMakerApi', ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API],
      ['CloudWatchLogs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
      ['XRay', ec2.InterfaceVpcEndpointAwsService.XRAY],
      // The inference handlers read each model's route from Parameter Store.
      ['Ssm', ec2.InterfaceVpcEndpointAwsService.SSM],
      // Entity enrichment and the speed layer read and write the online store.
      ...(config.featureStore ? ([['FeatureStoreRuntime', ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME]] as const) : []),
    ] as const) {
      vpc.addInterfaceEndpoint(id, { service, privateDnsEnabled: true, securityGroups: [endpointSecurityGroup], open: false });
    }
    if (config.models.some((model) => model.modelMonitor)) this.addMetricsEndpoint(vpc, config.network.cidr);
    return vpc;
  }

  /** Model Monitor's containers publish CloudWatch metrics; in isolated subnets they need this endpoint. */
  private addMetricsEndpoint(vpc: ec2.IVpc, cidr: string): void {
    const securityGroup = new ec2.SecurityGroup(this, 'MetricsEndpointSecurityGroup', {
      vpc,
      description: 'HTTPS from inside the VPC to the CloudWatch metrics endpoint (Model Monitor jobs)',
      allowAllOutbound: false,
    });
    // The literal range from the config (not the VPC's token), so that compliance checks can read it.
    securityGroup.addIngressRule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), 'HTTPS from the VPC');
    new ec2.InterfaceVpcEndpoint(this, 'MetricsEndpoint', {
      vpc,
      service: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_MONITORING,
      privateDnsEnabled: true,
      securityGroups: [securityGroup],
      open: false,
      subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
    });
  }
}
