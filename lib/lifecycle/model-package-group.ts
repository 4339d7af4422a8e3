import { Names, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sagemaker from 'aws-cdk-lib/aws-sagemaker';
import { Construct } from 'constructs';
import { checkOneOf, checkPropType, invalidProps } from '../core/private/props';
import { MODEL_NAME_PATTERN, MODEL_NAME_RULE } from '../serving/private/variant-rules';

/** The approval status a newly registered model version gets. */
export enum ModelApprovalPolicy {
  /** A person approves each version in SageMaker Studio or with UpdateModelPackage (staging, prod). */
  MANUAL = 'PendingManualApproval',
  /** Every version that passes the evaluation gate is approved at once, which deploys it (dev). */
  AUTOMATIC = 'Approved',
}

export interface ModelPackageGroupProps {
  /** Model family, e.g. `churn`; one group holds every version of the family. */
  readonly modelFamily: string;
  /**
   * @default - names the family
   */
  readonly description?: string;
  /**
   * Physical name of the group. Leave unset to get one generated from the construct path.
   * @default - generated, unique in the account and region
   */
  readonly modelPackageGroupName?: string;
  /**
   * How new versions are approved.
   * @default ModelApprovalPolicy.MANUAL
   */
  readonly approvalPolicy?: ModelApprovalPolicy;
  /**
   * What happens to the group (and the record of every version) when it leaves the stack.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

const GROUP_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$/;

/**
 * A SageMaker Model Registry model package group: the versioned record of one model family. Each
 * training run registers a version with its evaluation metrics and lineage; approving a version
 * (by hand, or automatically where the approval policy allows) deploys it.
 */
export class ModelPackageGroup extends Construct {
  public readonly resource: sagemaker.CfnModelPackageGroup;
  public readonly modelFamily: string;
  public readonly modelPackageGroupName: string;
  public readonly modelPackageGroupArn: string;
  public readonly approvalPolicy: ModelApprovalPolicy;

  constructor(scope: Construct, id: string, props: ModelPackageGroupProps) {
    super(scope, id);
    const where = `${this.node.path} (ModelPackageGroup)`;
    const shape = checkPropType(props, 'props', 'object');
    if (shape.length > 0) throw invalidProps(where, shape);
    const problems = [
      ...checkPropType(props.modelFamily, 'modelFamily', 'string'),
      ...checkPropType(props.description, 'description', 'string', { optional: true }),
      ...checkPropType(props.modelPackageGroupName, 'modelPackageGroupName', 'string', { optional: true }),
      ...(props.approvalPolicy === undefined ? [] : checkOneOf(props.approvalPolicy, 'approvalPolicy', Object.values(ModelApprovalPolicy))),
    ];
    if (typeof props.modelFamily === 'string' && !Token.isUnresolved(props.modelFamily) && !MODEL_NAME_PATTERN.test(props.modelFamily)) {
      problems.push(`modelFamily: ${MODEL_NAME_RULE}; got '${props.modelFamily}'`);
    }
    const name = props.modelPackageGroupName ?? Names.uniqueResourceName(this, { maxLength: 63, separator: '-' }).replace(/[^a-zA-Z0-9-]/g, '');
    if (typeof name === 'string' && !Token.isUnresolved(name) && !GROUP_NAME.test(name)) {
      problems.push(`modelPackageGroupName: must be 1-63 letters, digits or single hyphens, starting and ending with a letter or digit; got '${name}'`);
    }
    if (problems.length > 0) throw invalidProps(where, problems);
    this.modelFamily = props.modelFamily;
    this.approvalPolicy = props.approvalPolicy ?? ModelApprovalPolicy.MANUAL;
    this.resource = new sagemaker.CfnModelPackageGroup(this, 'Resource', {
      modelPackageGroupName: name,
      modelPackageGroupDescription: props.description ?? `Versions of the ${props.modelFamily} model`,
    });
    this.resource.applyRemovalPolicy(props.removalPolicy ?? RemovalPolicy.RETAIN);
    Tags.of(this.resource).add('ml:model-family', props.modelFamily);
    this.modelPackageGroupName = name;
    this.modelPackageGroupArn = this.resource.attrModelPackageGroupArn;
  }

  /** ARN pattern of every version in the group (`.../model-package/<group>/*`). */
  public get modelPackageArns(): string {
    const stack = Stack.of(this);
    return `arn:${stack.partition}:sagemaker:${stack.region}:${stack.account}:model-package/${this.modelPackageGroupName.toLowerCase()}/*`;
  }

  /** Lets the grantee register versions in this group and tag them. */
  public grantRegister(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['sagemaker:CreateModelPackage', 'sagemaker:AddTags'],
      resourceArns: [this.modelPackageGroupArn, this.modelPackageArns],
    });
  }

  /**
   * Lets the grantee describe the group and its versions. (Listing versions, `ListModelPackages`,
   * has no resource-level permission; grant it separately on `*`.)
   */
  public grantRead(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['sagemaker:DescribeModelPackage', 'sagemaker:DescribeModelPackageGroup', 'sagemaker:ListTags'],
      resourceArns: [this.modelPackageGroupArn, this.modelPackageArns],
    });
  }

  /** Lets the grantee change a version's approval status (approve, reject, retire). */
  public grantApprove(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({ grantee, actions: ['sagemaker:UpdateModelPackage'], resourceArns: [this.modelPackageArns] });
  }
}
