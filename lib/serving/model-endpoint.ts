import { type CustomResource, Duration, Names, type RemovalPolicy, Tags, Token, Validations } from 'aws-cdk-lib';
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import { DataKey } from '../core/data-key';
import { acknowledgeWildcardResource } from '../core/private/nag';
import { checkOneOf, checkPropType, invalidProps, isType, resolveRemovalPolicy } from '../core/private/props';
import { SecureBucket } from '../core/secure-bucket';
import { SageMakerExecutionRole } from '../core/sagemaker-execution-role';
import { EndpointAlarms, type EndpointAlarmOptions } from './endpoint-alarms';
import { ModelData } from './model-data';
import { EndpointWeights } from './private/endpoint-weights';
import { checkModelContainers, containersOf, isSerialPipeline } from './private/serial-pipeline-rules';
import {
  checkEndpointSpec,
  formatPath,
  MODEL_NAME_PATTERN,
  MODEL_NAME_RULE,
  MODEL_VERSION_PATTERN,
  MODEL_VERSION_RULE,
  VARIANT_NAME_PATTERN,
  type InstanceCapacitySpec,
  type ServerlessCapacitySpec,
  type VariantSpec,
} from './private/variant-rules';

/** Instance-based capacity: a fixed or autoscaled fleet of ML instances. */
export type InstanceCapacity = InstanceCapacitySpec;
/** Serverless capacity: scales to zero; one production variant, no VPC, no data capture. */
export type ServerlessCapacity = ServerlessCapacitySpec;
export type VariantCapacity = InstanceCapacity | ServerlessCapacity;

/**
 * One container of a serial inference pipeline: SageMaker passes each request through the containers in
 * order (e.g. preprocess, model, postprocess), each container's response being the next one's request,
 * and returns the last container's response.
 */
export interface ContainerDefinition {
  /**
   * Amazon ECR image URI of the container, pinned by tag or digest
   * (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`).
   */
  readonly image: string;
  /**
   * The container's artifact.
   * @default - none; the container holds what it needs
   */
  readonly modelData?: ModelData;
  /**
   * Environment variables of the container. The environment variables of all the containers of a model
   * take at most 32 KB together.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * Name of the container in the pipeline's logs and metrics: 1-63 letters, digits or hyphens, unique in
   * the pipeline. Name every container of the pipeline or none.
   * @default - SageMaker names the containers by their position in the pipeline
   */
  readonly containerHostname?: string;
}

/**
 * One version of a model: one container (`image`, with `modelData` and `environment`), or a serial
 * inference pipeline of 2-15 containers (`containers`).
 */
export interface ModelVersionProps {
  /**
   * Version label; recorded in the model's tags and returned by the inference API. 1-128 letters, digits,
   * dots, underscores, plus or hyphens, starting with a letter or digit.
   */
  readonly version: string;
  /**
   * Amazon ECR image URI of the inference container, pinned by tag or digest
   * (`<account>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>`). Images from other registries
   * (Docker Hub, a private registry) are not supported: copy them into ECR.
   * @default - none; required unless `containers` is given
   */
  readonly image?: string;
  /**
   * The model artifact of the container given by `image`.
   * @default - none; the container holds the model
   */
  readonly modelData?: ModelData;
  /**
   * Environment variables of the container given by `image`.
   * @default - none
   */
  readonly environment?: Record<string, string>;
  /**
   * The containers of a serial inference pipeline, in the order a request passes through them: 2 to 15,
   * in place of `image`, `modelData` and `environment`. Not available for serverless variants nor on an
   * endpoint with a shadow variant.
   * @default - one container, given by `image`
   */
  readonly containers?: ContainerDefinition[];
}

/** What production and shadow variants have in common. */
export interface VariantBaseProps {
  /** Variant name, unique on the endpoint; 1-63 letters, digits or hyphens. */
  readonly name: string;
  /** The model version this variant serves. */
  readonly model: ModelVersionProps;
  /** How the variant is hosted. */
  readonly capacity: VariantCapacity;
}

export interface ProductionVariantProps extends VariantBaseProps {
  /**
   * Relative traffic weight; each variant receives weight / sum(weights) of the traffic that names no
   * variant. A weight of 0 takes no share: the variant serves only requests that name it (`targetVariant`).
   * The weights must not all be 0.
   * @default 1
   */
  readonly weight?: number;
}

export interface ShadowVariantProps extends VariantBaseProps {
  /**
   * Percentage of the production variant's requests that SageMaker copies to this variant.
   * Its responses are captured but never returned to callers.
   * @default 100
   */
  readonly samplingPercentage?: number;
}

export interface DataCaptureOptions {
  /**
   * Bucket that receives the captured requests and responses.
   * @default - a new SecureBucket owned by the endpoint, encrypted with its key
   */
  readonly bucket?: s3.IBucket;
  /**
   * Access-log bucket of the capture bucket the endpoint creates.
   * @default - the stack's shared access-log bucket
   */
  readonly accessLogsBucket?: s3.IBucket;
  /**
   * What happens to the capture bucket the endpoint creates when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Retain the capture bucket the endpoint creates when it leaves the stack.
   * @deprecated use removalPolicy (`retain: false` is `RemovalPolicy.DESTROY`)
   * @default true
   */
  readonly retain?: boolean;
  /**
   * Key prefix of the captured data; SageMaker appends `<endpoint>/<variant>/yyyy/mm/dd/hh/`.
   * @default 'data-capture/<modelName>'
   */
  readonly prefix?: string;
  /**
   * Percentage of requests captured.
   * @default 100
   */
  readonly samplingPercentage?: number;
  /**
   * Capture request payloads.
   * @default true
   */
  readonly captureRequests?: boolean;
  /**
   * Capture response payloads.
   * @default true
   */
  readonly captureResponses?: boolean;
}

/** How SageMaker shifts traffic from the old fleet to the new one when the endpoint is updated. */
export type TrafficShifting =
  | { readonly mode: 'all-at-once' }
  | { readonly mode: 'canary'; /** Share of capacity that takes traffic first, 1-99. */ readonly canaryPercent: number; /** Bake before the rest. */ readonly wait: Duration }
  | { readonly mode: 'linear'; /** Share of capacity moved per step, 1-99. */ readonly stepPercent: number; /** Bake between steps. */ readonly wait: Duration };

/**
 * SageMaker's own deployment guardrails for new model versions: a blue/green update with canary or
 * linear traffic shifting, baked while alarms are watched, rolled back automatically if one fires.
 */
export interface DeploymentGuardrails {
  readonly trafficShifting: TrafficShifting;
  /**
   * How long the old fleet stays up after all traffic has moved, for a fast manual rollback.
   * @default Duration.minutes(10)
   */
  readonly terminationWait?: Duration;
  /**
   * Longest the whole deployment may take before SageMaker rolls it back.
   * @default - SageMaker's default
   */
  readonly maximumExecutionTimeout?: Duration;
  /**
   * Roll back when any of the endpoint's own alarms fires (needs `alarms`); more can be named here.
   * @default true
   */
  readonly rollbackOnEndpointAlarms?: boolean;
  /**
   * Further alarms, by name, that roll the deployment back.
   * @default - none
   */
  readonly rollbackAlarmNames?: string[];
}

/** What an update of the endpoint configuration does to traffic weights that changed at run time. */
export enum WeightsOnUpdate {
  /**
   * The endpoint keeps the weights it runs with (a promotion's, a rollback's, an operator's) through every
   * update of its configuration: a new model version, an instance type, data capture. The variants'
   * `weight` props are applied when they change, and only then: changing a weight in the props is how
   * to set the traffic split from code.
   */
  KEEP_DEPLOYED = 'keep-deployed',
  /**
   * Every update of the endpoint configuration puts the variants' `weight` props back, whatever the
   * endpoint ran with: the behaviour of a plain `AWS::SageMaker::Endpoint`.
   */
  APPLY_PROPS = 'apply-props',
}

export interface ModelEndpointProps {
  /** Model family name, e.g. `churn`; recorded in tags and used by the inference API's routes. */
  readonly modelName: string;
  /** 1 to 10 production variants. With a shadow variant, exactly one. */
  readonly variants: ProductionVariantProps[];
  /**
   * Shadow variants (at most one): receive a copy of production traffic, never answer callers.
   * @default - none
   */
  readonly shadowVariants?: ShadowVariantProps[];
  /**
   * Key that encrypts the instances' ML storage volumes and the captured data.
   * @default - a new customer-managed key with rotation
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Capture requests and responses for monitoring. Not available for serverless variants.
   * @default - no data capture
   */
  readonly dataCapture?: DataCaptureOptions;
  /**
   * Run the model containers in this VPC. Not available for serverless variants.
   * @default - SageMaker's own network
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets of the VPC for the model containers.
   * @default - the VPC's isolated subnets
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Block all network traffic to and from the model containers.
   * @default - true for instance-based variants, false for serverless ones (which do not support it)
   */
  readonly networkIsolation?: boolean;
  /**
   * Execution role of the models.
   * @default - a new least-privilege SageMakerExecutionRole
   */
  readonly role?: SageMakerExecutionRole;
  /**
   * Physical endpoint name. Leave unset so that CloudFormation can name it.
   * @default - generated by CloudFormation
   */
  readonly endpointName?: string;
  /**
   * Alarms on the endpoint's variants, sent to an SNS topic.
   * @default - no alarms
   */
  readonly alarms?: EndpointAlarmOptions;
  /**
   * Blue/green updates with canary or linear traffic shifting and automatic rollback on alarms.
   * @default - SageMaker's default blue/green update, all at once, without alarms
   */
  readonly deploymentGuardrails?: DeploymentGuardrails;
  /**
   * What an update of the endpoint configuration does to weights changed at run time, for example by
   * `ChampionChallengerPromotion` (UpdateEndpointWeightsAndCapacities). With `KEEP_DEPLOYED` the endpoint
   * updates with RetainAllVariantProperties and a `Custom::EndpointWeights` resource (one function per
   * stack) applies the `weight` props when, and only when, they change.
   * @default WeightsOnUpdate.KEEP_DEPLOYED
   */
  readonly weightsOnUpdate?: WeightsOnUpdate;
  /**
   * Removal policy of the log group of the stack's endpoint-weights function (`WeightsOnUpdate.KEEP_DEPLOYED`),
   * which the stack's first such endpoint creates.
   * @default RemovalPolicy.RETAIN
   */
  readonly logRemovalPolicy?: RemovalPolicy;
}

/** How an update of the endpoint (by CloudFormation, or by a deployment workflow) treats the variants' properties. */
export interface VariantRetention {
  readonly retainAllVariantProperties: boolean;
  /** The properties taken from the new endpoint configuration all the same. */
  readonly excludeRetainedVariantProperties: ReadonlyArray<'DesiredInstanceCount' | 'DesiredWeight'>;
}

/** A variant as deployed, with the model version it serves. */
export interface DeployedVariant {
  readonly name: string;
  readonly kind: 'production' | 'shadow';
  readonly modelVersion: string;
  /** Initial traffic weight of a production variant (shadow variants: the weight that sets their sampling). */
  readonly weight: number;
  /** Name of the SageMaker model behind the variant. */
  readonly sagemakerModelName: string;
  /** How many containers the model runs: 1, or 2-15 in a serial inference pipeline. */
  readonly containerCount: number;
  readonly capacity: VariantCapacity;
}

export interface VariantMetricOptions extends cloudwatch.MetricOptions {}

/** Instance families with local NVMe storage, for which SageMaker rejects an endpoint-config KmsKeyId. */
const LOCAL_STORAGE_FAMILY = /^ml\.([a-z]+\d+[a-z]*d[a-z]*|g5|g6e?|p5e?n?|trn1n?)\./;

/** True when SageMaker encrypts the instance's storage itself and will not accept a KMS key for it. */
export function hasLocalInstanceStorage(instanceType: string): boolean {
  return LOCAL_STORAGE_FAMILY.test(instanceType);
}

/**
 * A SageMaker real-time endpoint serving one model family through 1-10 production variants
 * (A/B, champion/challenger) and an optional shadow variant, each instance-based (with optional
 * target-tracking autoscaling) or serverless, with optional data capture, VPC placement and network
 * isolation, encrypted with a customer-managed key, and with per-variant metrics and opt-in alarms.
 *
 * Updating a weight, an instance count or a model version creates new models and a new endpoint
 * configuration (both immutable in SageMaker) and updates the endpoint in place. Weights changed at run
 * time (a promotion, a rollback) survive such an update unless the `weight` props changed: see
 * `weightsOnUpdate`.
 */
export class ModelEndpoint extends Construct implements iam.IGrantable {
  public readonly endpoint: sagemaker.CfnEndpoint;
  public readonly endpointConfig: sagemaker.CfnEndpointConfig;
  /** The endpoint's name, generated by CloudFormation unless `endpointName` was given. */
  public readonly endpointName: string;
  /** The endpoint's ARN. */
  public readonly endpointArn: string;
  public readonly modelName: string;
  public readonly role: SageMakerExecutionRole;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly encryptionKey: kms.IKey;
  public readonly variants: readonly DeployedVariant[];
  /** The alarms, when `alarms` was given. */
  public readonly alarms?: EndpointAlarms;
  /** Where captured requests and responses are written, when data capture is on. */
  public readonly dataCaptureBucket?: s3.IBucket;
  /** S3 URI of the captured data (`s3://bucket/prefix`), when data capture is on. */
  public readonly dataCaptureS3Uri?: string;
  /**
   * Key prefix under which SageMaker writes this endpoint's captured data, when data capture is on:
   * `<prefix>/<endpoint name>/`, followed by `<variant>/yyyy/mm/dd/hh/`.
   */
  public readonly dataCaptureKeyPrefix?: string;
  /** The security group of the model containers, when placed in a VPC. */
  public readonly securityGroup?: ec2.SecurityGroup;
  /** Whether the model containers run with network isolation; new model versions deploy the same way. */
  public readonly networkIsolation: boolean;
  /** The VPC placement of the models, when placed in a VPC; new model versions deploy the same way. */
  public readonly modelVpcConfig?: sagemaker.CfnModel.VpcConfigProperty;
  /** How endpoint updates shift traffic, when `deploymentGuardrails` was given; deployments of new versions use it too. */
  public readonly deploymentConfig?: sagemaker.CfnEndpoint.DeploymentConfigProperty;
  /** Whether updates keep the variants' instance counts (autoscaling owns them). */
  public readonly retainsInstanceCounts: boolean;
  /** What updates do to run-time weights (`weightsOnUpdate`). */
  public readonly weightsOnUpdate: WeightsOnUpdate;
  /** What an update keeps of the running variants; a deployment workflow's UpdateEndpoint passes the same. */
  public readonly variantRetention: VariantRetention;
  /** The custom resource that applies changed `weight` props, with `WeightsOnUpdate.KEEP_DEPLOYED`. */
  public readonly declaredWeights?: CustomResource;
  /** The subnets of the model containers, when placed in a VPC (jobs that work on the endpoint, such as Model Monitor's, run there too). */
  public readonly vpcSubnetIds?: string[];

  constructor(scope: Construct, id: string, props: ModelEndpointProps) {
    super(scope, id);
    this.validate(props);

    const shadowVariants = props.shadowVariants ?? [];
    const allVariants = [...props.variants, ...shadowVariants];
    const serverless = allVariants.some((variant) => variant.capacity.kind === 'serverless');
    const networkIsolation = props.networkIsolation ?? !serverless;
    this.networkIsolation = networkIsolation;

    this.modelName = props.modelName;
    this.encryptionKey = props.encryptionKey ?? new DataKey(this, 'Key', { description: `Model endpoint ${props.modelName}` }).key;
    this.role = props.role ?? new SageMakerExecutionRole(this, 'ExecutionRole', { allowVpcAccess: props.vpc !== undefined });
    this.grantPrincipal = this.role.grantPrincipal;

    let vpcConfig: sagemaker.CfnModel.VpcConfigProperty | undefined;
    if (props.vpc) {
      this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
        vpc: props.vpc,
        description: `Model containers of endpoint ${props.modelName}`,
        allowAllOutbound: true,
      });
      const subnets = props.vpc.selectSubnets(props.vpcSubnets ?? { subnetType: ec2.SubnetType.PRIVATE_ISOLATED });
      vpcConfig = { securityGroupIds: [this.securityGroup.securityGroupId], subnets: subnets.subnetIds };
      this.vpcSubnetIds = subnets.subnetIds;
    }
    this.modelVpcConfig = vpcConfig;

    const deployed: DeployedVariant[] = [];
    const createModel = (variant: VariantBaseProps, kind: DeployedVariant['kind'], weight: number) => {
      // The role must pull every container's image and read every artifact, in the pipeline's order.
      const containers = containersOf(variant.model).map((container) => {
        this.role.grantPullImage(container.image);
        const modelDataUrl = container.modelData?.bind(this, this.role);
        return { image: container.image, modelDataUrl, environment: container.environment, containerHostname: container.containerHostname };
      });
      const model = new sagemaker.CfnModel(this, `Model-${variant.name}`, {
        executionRoleArn: this.role.role.roleArn,
        ...(isSerialPipeline(variant.model)
          ? { containers, inferenceExecutionConfig: { mode: 'Serial' } }
          : { primaryContainer: { image: containers[0].image, modelDataUrl: containers[0].modelDataUrl, environment: containers[0].environment } }),
        enableNetworkIsolation: networkIsolation,
        vpcConfig,
      });
      Tags.of(model).add('ml:model-family', props.modelName);
      Tags.of(model).add('ml:model-version', variant.model.version);
      Tags.of(model).add('ml:variant', variant.name);
      deployed.push({
        name: variant.name,
        kind,
        modelVersion: variant.model.version,
        weight,
        sagemakerModelName: model.attrModelName,
        capacity: variant.capacity,
        containerCount: containers.length,
      });
      return model;
    };

    const productionWeight = props.variants[0]?.weight ?? 1;
    const toVariant = (variant: VariantBaseProps, weight: number, kind: DeployedVariant['kind']): sagemaker.CfnEndpointConfig.ProductionVariantProperty => {
      const model = createModel(variant, kind, weight);
      const base = { variantName: variant.name, modelName: model.attrModelName, initialVariantWeight: weight };
      if (variant.capacity.kind === 'serverless') {
        return {
          ...base,
          serverlessConfig: {
            memorySizeInMb: variant.capacity.memorySizeInMb,
            maxConcurrency: variant.capacity.maxConcurrency,
            provisionedConcurrency: variant.capacity.provisionedConcurrency,
          },
        };
      }
      return { ...base, instanceType: variant.capacity.instanceType, initialInstanceCount: variant.capacity.initialInstanceCount };
    };

    const productionVariants = props.variants.map((variant) => toVariant(variant, variant.weight ?? 1, 'production'));
    // A shadow variant's weight relative to the production variant's sets the share of requests copied to it.
    const shadowProductionVariants = shadowVariants.map((variant) =>
      toVariant(variant, (productionWeight * (variant.samplingPercentage ?? 100)) / 100, 'shadow'),
    );
    this.variants = deployed;

    const instanceTypes = allVariants.flatMap((variant) => (variant.capacity.kind === 'instance' ? [variant.capacity.instanceType] : []));
    // SageMaker rejects a volume key for serverless variants and for instances with local NVMe storage,
    // which it encrypts itself.
    const volumeKeySupported = !serverless && !instanceTypes.some(hasLocalInstanceStorage);

    let dataCaptureConfig: sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | undefined;
    let capturePrefix: string | undefined;
    if (props.dataCapture) {
      const capture = props.dataCapture;
      const prefix = (capture.prefix ?? `data-capture/${props.modelName}`).replace(/^\/+|\/+$/g, '');
      const bucket =
        capture.bucket ??
        new SecureBucket(this, 'DataCapture', {
          encryptionKey: this.encryptionKey,
          serverAccessLogsBucket: capture.accessLogsBucket,
          removalPolicy: resolveRemovalPolicy(`${this.node.path} (ModelEndpoint) dataCapture`, capture),
        }).bucket;
      this.dataCaptureBucket = bucket;
      const objects = bucket.arnForObjects(`${prefix}/*`);
      iam.Grant.addToPrincipal({ grantee: this.role, actions: ['s3:PutObject'], resourceArns: [objects] });
      this.encryptionKey.grant(this.role, 'kms:GenerateDataKey', 'kms:Encrypt');
      acknowledgeWildcardResource(
        this.role.role.grantsPolicy,
        objects,
        'SageMaker writes one object per capture file under <prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/, names it chooses at run time; the grant is put-only and limited to this endpoint\'s prefix.',
      );
      const captureOptions = [
        ...(capture.captureRequests ?? true ? [{ captureMode: 'Input' }] : []),
        ...(capture.captureResponses ?? true ? [{ captureMode: 'Output' }] : []),
      ];
      this.dataCaptureS3Uri = bucket.s3UrlForObject(prefix);
      capturePrefix = prefix;
      dataCaptureConfig = {
        enableCapture: true,
        initialSamplingPercentage: capture.samplingPercentage ?? 100,
        destinationS3Uri: bucket.s3UrlForObject(prefix),
        kmsKeyId: this.encryptionKey.keyArn,
        captureOptions,
        // Capture JSON and CSV as text rather than base64, so monitors and drift detectors can read it.
        captureContentTypeHeader: { jsonContentTypes: ['application/json'], csvContentTypes: ['text/csv'] },
      };
    }

    this.endpointConfig = new sagemaker.CfnEndpointConfig(this, 'EndpointConfig', {
      productionVariants,
      shadowProductionVariants: shadowProductionVariants.length > 0 ? shadowProductionVariants : undefined,
      kmsKeyId: volumeKeySupported ? this.encryptionKey.keyArn : undefined,
      dataCaptureConfig,
    });
    Tags.of(this.endpointConfig).add('ml:model-family', props.modelName);
    Tags.of(this.endpointConfig).add(
      'ml:model-versions',
      deployed.map((variant) => `${variant.name}=${variant.modelVersion}`).join(' '),
    );
    if (!volumeKeySupported) {
      const reason = serverless
        ? 'Serverless variants have no ML storage volume to encrypt and SageMaker rejects a KmsKeyId for them; SageMaker encrypts serverless endpoints with its own keys.'
        : 'The instance type has local NVMe storage, which SageMaker encrypts with a hardware key and for which it rejects a KmsKeyId.';
      Validations.of(this.endpointConfig).acknowledge(
        { id: 'AwsSolutions-SM2', reason },
        { id: 'HIPAA.Security-SageMakerEndpointConfigurationKMSKeyConfigured', reason },
        { id: 'NIST.800.53.R5-SageMakerEndpointConfigurationKMSKeyConfigured', reason },
      );
    }

    // Rollback alarms are named in the endpoint, and the alarms name the endpoint: give them names
    // generated from their construct paths so neither waits on the other.
    const guardrails = props.deploymentGuardrails;
    const alarmNamePrefix = guardrails && props.alarms && (guardrails.rollbackOnEndpointAlarms ?? true) ? Names.uniqueResourceName(this, { maxLength: 160 }) : undefined;
    const autoscaled = allVariants.some((variant) => variant.capacity.kind === 'instance' && variant.capacity.autoscaling);
    this.retainsInstanceCounts = autoscaled === true;
    this.weightsOnUpdate = props.weightsOnUpdate ?? WeightsOnUpdate.KEEP_DEPLOYED;
    // Kept across updates: the instance counts when Application Auto Scaling owns them, the weights
    // unless the props' weights are to win every time. SageMaker documents no retention of data capture
    // (its VariantProperty `DataCaptureConfig` is "not currently supported"): it follows the new configuration.
    const keepWeights = this.weightsOnUpdate === WeightsOnUpdate.KEEP_DEPLOYED;
    const excluded = [...(autoscaled ? [] : ['DesiredInstanceCount' as const]), ...(keepWeights ? [] : ['DesiredWeight' as const])];
    this.variantRetention = { retainAllVariantProperties: autoscaled || keepWeights, excludeRetainedVariantProperties: excluded };
    this.deploymentConfig = guardrails && this.renderDeploymentConfig(guardrails, alarmNamePrefix, props);
    this.endpoint = new sagemaker.CfnEndpoint(this, 'Resource', {
      endpointConfigName: this.endpointConfig.attrEndpointConfigName,
      endpointName: props.endpointName,
      ...(this.variantRetention.retainAllVariantProperties
        ? {
          retainAllVariantProperties: true,
          excludeRetainedVariantProperties: excluded.length > 0 ? excluded.map((variantPropertyType) => ({ variantPropertyType })) : undefined,
        }
        : {}),
      deploymentConfig: this.deploymentConfig,
    });
    Tags.of(this.endpoint).add('ml:model-family', props.modelName);
    // The models only start when the endpoint does: make sure the role can pull and read by then.
    this.endpoint.node.addDependency(this.role);
    this.endpointName = this.endpoint.attrEndpointName;
    this.endpointArn = this.endpoint.ref;
    if (keepWeights) {
      this.declaredWeights = new EndpointWeights(this, 'DeclaredWeights', {
        endpointName: this.endpointName,
        endpointArn: this.endpointArn,
        weights: props.variants.map((variant) => ({ variantName: variant.name, weight: variant.weight ?? 1 })),
        encryptionKey: this.encryptionKey,
        logRemovalPolicy: props.logRemovalPolicy,
      }).resource;
    }
    if (capturePrefix !== undefined) this.dataCaptureKeyPrefix = `${capturePrefix}/${this.endpointName}/`;

    for (const variant of allVariants) {
      if (variant.capacity.kind === 'instance' && variant.capacity.autoscaling) {
        const scaling = variant.capacity.autoscaling;
        const target = new appscaling.ScalableTarget(this, `Scaling-${variant.name}`, {
          serviceNamespace: appscaling.ServiceNamespace.SAGEMAKER,
          scalableDimension: 'sagemaker:variant:DesiredInstanceCount',
          resourceId: `endpoint/${this.endpointName}/variant/${variant.name}`,
          minCapacity: scaling.minCapacity,
          maxCapacity: scaling.maxCapacity,
        });
        target.scaleToTrackMetric('InvocationsPerInstance', {
          predefinedMetric: appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
          targetValue: scaling.targetInvocationsPerInstance,
          scaleInCooldown: Duration.seconds(scaling.scaleInCooldownSeconds ?? 300),
          scaleOutCooldown: Duration.seconds(scaling.scaleOutCooldownSeconds ?? 60),
        });
      }
    }

    if (props.alarms) {
      this.alarms = new EndpointAlarms(this, 'Alarms', { endpoint: this, ...props.alarms, alarmNamePrefix });
    }
  }

  private renderDeploymentConfig(
    guardrails: DeploymentGuardrails,
    alarmNamePrefix: string | undefined,
    props: ModelEndpointProps,
  ): sagemaker.CfnEndpoint.DeploymentConfigProperty {
    const shifting = guardrails.trafficShifting;
    const routing: sagemaker.CfnEndpoint.TrafficRoutingConfigProperty =
      shifting.mode === 'all-at-once'
        ? { type: 'ALL_AT_ONCE' }
        : shifting.mode === 'canary'
          ? { type: 'CANARY', canarySize: { type: 'CAPACITY_PERCENT', value: shifting.canaryPercent }, waitIntervalInSeconds: shifting.wait.toSeconds() }
          : { type: 'LINEAR', linearStepSize: { type: 'CAPACITY_PERCENT', value: shifting.stepPercent }, waitIntervalInSeconds: shifting.wait.toSeconds() };
    const endpointAlarmNames = alarmNamePrefix
      ? EndpointAlarms.alarmNames(alarmNamePrefix, this.variants.map((variant) => variant.name))
      : [];
    const alarmNames = [...endpointAlarmNames, ...(guardrails.rollbackAlarmNames ?? [])];
    if (alarmNames.length > 10) {
      throw new Error(`${this.node.path} (ModelEndpoint): deploymentGuardrails: SageMaker watches at most 10 rollback alarms; these settings name ${alarmNames.length}`);
    }
    if ((guardrails.rollbackOnEndpointAlarms ?? true) && !props.alarms) {
      throw new Error(`${this.node.path} (ModelEndpoint): deploymentGuardrails.rollbackOnEndpointAlarms: the endpoint has no alarms; set alarms, or rollbackOnEndpointAlarms: false with rollbackAlarmNames`);
    }
    return {
      blueGreenUpdatePolicy: {
        trafficRoutingConfiguration: routing,
        terminationWaitInSeconds: (guardrails.terminationWait ?? Duration.minutes(10)).toSeconds(),
        maximumExecutionTimeoutInSeconds: guardrails.maximumExecutionTimeout?.toSeconds(),
      },
      autoRollbackConfiguration: alarmNames.length > 0 ? { alarms: alarmNames.map((alarmName) => ({ alarmName })) } : undefined,
    };
  }

  /** Lets the grantee call InvokeEndpoint (any variant) on this endpoint only. */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['sagemaker:InvokeEndpoint'], resourceArns: [this.endpointArn] });
  }

  /** A variant by name; throws with the list of variants when there is none. */
  public variant(name: string): DeployedVariant {
    const found = this.variants.find((variant) => variant.name === name);
    if (!found) {
      throw new Error(`${this.node.path}: no variant named '${name}'; variants: ${this.variants.map((v) => v.name).join(', ')}`);
    }
    return found;
  }

  /** Requests served by a variant. Default: sum over 5 minutes. */
  public metricInvocations(variantName: string, props?: VariantMetricOptions): cloudwatch.Metric {
    return this.variantMetric('Invocations', variantName, { statistic: 'Sum', ...props });
  }

  /** Time the model container took to answer, in microseconds. Default: p99 over 5 minutes. */
  public metricModelLatency(variantName: string, props?: VariantMetricOptions): cloudwatch.Metric {
    return this.variantMetric('ModelLatency', variantName, { statistic: 'p99', ...props });
  }

  /** Time SageMaker added on top of the model, in microseconds. Default: p99 over 5 minutes. */
  public metricOverheadLatency(variantName: string, props?: VariantMetricOptions): cloudwatch.Metric {
    return this.variantMetric('OverheadLatency', variantName, { statistic: 'p99', ...props });
  }

  /** Requests the variant answered with a 4xx. Default: sum over 5 minutes. */
  public metric4xxErrors(variantName: string, props?: VariantMetricOptions): cloudwatch.Metric {
    return this.variantMetric('Invocation4XXErrors', variantName, { statistic: 'Sum', ...props });
  }

  /** Requests the variant answered with a 5xx. Default: sum over 5 minutes. */
  public metric5xxErrors(variantName: string, props?: VariantMetricOptions): cloudwatch.Metric {
    return this.variantMetric('Invocation5XXErrors', variantName, { statistic: 'Sum', ...props });
  }

  /** A SageMaker endpoint metric of one variant, from the AWS/SageMaker namespace. */
  public variantMetric(metricName: string, variantName: string, props?: VariantMetricOptions): cloudwatch.Metric {
    this.variant(variantName);
    return new cloudwatch.Metric({
      namespace: 'AWS/SageMaker',
      metricName,
      dimensionsMap: { EndpointName: this.endpointName, VariantName: variantName },
      period: Duration.minutes(5),
      ...props,
    });
  }

  private validate(props: ModelEndpointProps): void {
    const where = `${this.node.path} (ModelEndpoint)`;
    const problems: string[] = [];
    const resolved = (value: unknown) => !Token.isUnresolved(value);
    // What the type checker tells a TypeScript caller, for a JavaScript one; the rules below read these props.
    const shape = [...checkPropType(props, 'props', 'object')];
    if (shape.length === 0) {
      shape.push(...checkPropType(props.modelName, 'modelName', 'string'), ...checkPropType(props.variants, 'variants', 'array'));
      shape.push(...checkPropType(props.shadowVariants, 'shadowVariants', 'array', { optional: true }));
      for (const [key, list] of [['variants', props.variants], ['shadowVariants', props.shadowVariants]] as const) {
        if (!Array.isArray(list)) continue;
        list.forEach((variant: Partial<ProductionVariantProps & ShadowVariantProps> | undefined, index) => {
          const at = `${key}[${index}]`;
          const problemsOfVariant = checkPropType(variant, at, 'object');
          if (problemsOfVariant.length === 0 && variant) {
            problemsOfVariant.push(...checkPropType(variant.name, `${at}.name`, 'string'), ...checkPropType(variant.model, `${at}.model`, 'object'), ...checkPropType(variant.capacity, `${at}.capacity`, 'object'));
            if (isType(variant.model, 'object')) problemsOfVariant.push(...modelShapeProblems(variant.model!, `${at}.model`));
            if (isType(variant.capacity, 'object')) problemsOfVariant.push(...checkOneOf(variant.capacity?.kind, `${at}.capacity.kind`, ['instance', 'serverless']));
            if (variant.weight !== undefined) problemsOfVariant.push(...checkPropType(variant.weight, `${at}.weight`, 'number'));
          }
          shape.push(...problemsOfVariant);
        });
      }
      if (props.weightsOnUpdate !== undefined) shape.push(...checkOneOf(props.weightsOnUpdate, 'weightsOnUpdate', Object.values(WeightsOnUpdate)));
      const guardrails = props.deploymentGuardrails as Partial<DeploymentGuardrails> | undefined;
      if (guardrails !== undefined) {
        const problemsOfGuardrails = checkPropType(guardrails, 'deploymentGuardrails', 'object');
        if (problemsOfGuardrails.length === 0) problemsOfGuardrails.push(...checkPropType(guardrails.trafficShifting, 'deploymentGuardrails.trafficShifting', 'object'));
        const shifting = guardrails.trafficShifting as Partial<{ mode: string; wait: unknown }> | undefined;
        if (problemsOfGuardrails.length === 0 && shifting) {
          problemsOfGuardrails.push(...checkOneOf(shifting.mode, 'deploymentGuardrails.trafficShifting.mode', ['all-at-once', 'canary', 'linear']));
          if (shifting.mode === 'canary' || shifting.mode === 'linear') problemsOfGuardrails.push(...checkPropType(shifting.wait, 'deploymentGuardrails.trafficShifting.wait', 'object'));
        }
        shape.push(...problemsOfGuardrails);
      }
    }
    if (shape.length > 0) throw invalidProps(where, shape);
    if (props.variants.length === 0) {
      throw new Error(`${where}: variants: must hold at least one production variant`);
    }
    const spec = (variant: ProductionVariantProps & ShadowVariantProps): VariantSpec => ({
      name: variant.name,
      weight: variant.weight,
      samplingPercentage: variant.samplingPercentage,
      capacity: variant.capacity,
    });
    const issues = checkEndpointSpec({
      variants: props.variants.filter((variant) => resolved(variant.name) && resolved(variant.weight)).map(spec),
      shadowVariants: (props.shadowVariants ?? []).filter((variant) => resolved(variant.name)).map(spec),
      dataCaptureEnabled: props.dataCapture !== undefined,
      inVpc: props.vpc !== undefined,
      networkIsolation: props.networkIsolation === true,
    });
    problems.push(...issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`));
    const endpointHasShadow = (props.shadowVariants ?? []).length > 0;
    for (const [key, list] of [['variants', props.variants], ['shadowVariants', props.shadowVariants ?? []]] as const) {
      list.forEach((variant, index) => {
        const at = `${key}[${index}].model`;
        const model = variant.model ?? {};
        if (resolved(model.version) && !(typeof model.version === 'string' && MODEL_VERSION_PATTERN.test(model.version))) {
          problems.push(`${at}.version: ${MODEL_VERSION_RULE}; got ${JSON.stringify(model.version)}`);
        }
        problems.push(...checkModelContainers(model, { at, variantName: variant.name, serverless: variant.capacity.kind === 'serverless', endpointHasShadow }));
      });
    }
    const pct = props.dataCapture?.samplingPercentage;
    if (pct !== undefined && resolved(pct) && (!Number.isInteger(pct) || pct < 1 || pct > 100)) {
      problems.push(`dataCapture.samplingPercentage: must be a whole number from 1 to 100; got ${pct}`);
    }
    if (props.dataCapture && props.dataCapture.captureRequests === false && props.dataCapture.captureResponses === false) {
      problems.push('dataCapture: captureRequests and captureResponses are both false; capture at least one or omit dataCapture');
    }
    if (resolved(props.modelName) && !MODEL_NAME_PATTERN.test(props.modelName)) {
      problems.push(`modelName: ${MODEL_NAME_RULE}; got '${props.modelName}'`);
    }
    if (props.endpointName !== undefined && resolved(props.endpointName) && !VARIANT_NAME_PATTERN.test(props.endpointName)) {
      problems.push(`endpointName: must be 1-63 letters, digits or hyphens; got '${props.endpointName}'`);
    }
    const shifting = props.deploymentGuardrails?.trafficShifting;
    if (shifting && shifting.mode !== 'all-at-once') {
      const [name, value] = shifting.mode === 'canary' ? ['canaryPercent', shifting.canaryPercent] : ['stepPercent', shifting.stepPercent];
      if (!(Number.isInteger(value) && value >= 1 && value <= 99)) {
        problems.push(`deploymentGuardrails.trafficShifting.${name}: must be a whole percentage from 1 to 99; got ${value}`);
      }
      const wait = shifting.wait.toSeconds();
      if (wait < 0 || wait > 3600) problems.push(`deploymentGuardrails.trafficShifting.wait: must be at most 1 hour; got ${wait} s`);
    }
    if (props.deploymentGuardrails && allInstanceTypes(props).some((type) => type.startsWith('ml.inf1.'))) {
      problems.push('deploymentGuardrails: SageMaker does not apply deployment guardrails to Inf1 instances (it would silently shift all traffic at once)');
    }
    if (problems.length > 0) throw invalidProps(where, problems);
  }
}

function allInstanceTypes(props: ModelEndpointProps): string[] {
  return [...props.variants, ...(props.shadowVariants ?? [])].flatMap((variant) => (variant.capacity.kind === 'instance' ? [variant.capacity.instanceType] : []));
}

/** What the type checker tells a TypeScript caller about a model version, for a JavaScript one. */
function modelShapeProblems(model: Partial<ModelVersionProps>, at: string): string[] {
  const problems = [
    ...checkPropType(model.version, `${at}.version`, 'string'),
    ...checkPropType(model.image, `${at}.image`, 'string', { optional: true }),
    ...checkPropType(model.containers, `${at}.containers`, 'array', { optional: true }),
  ];
  if (Array.isArray(model.containers)) {
    model.containers.forEach((container: Partial<ContainerDefinition> | undefined, index) => {
      const path = `${at}.containers[${index}]`;
      const problemsOfContainer = checkPropType(container, path, 'object');
      if (problemsOfContainer.length === 0 && container) {
        problemsOfContainer.push(...checkPropType(container.image, `${path}.image`, 'string'), ...checkPropType(container.containerHostname, `${path}.containerHostname`, 'string', { optional: true }));
      }
      problems.push(...problemsOfContainer);
    });
  }
  return problems;
}
