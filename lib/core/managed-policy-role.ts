import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { assertRequiredProps } from './private/props';

export interface ManagedPolicyRoleProps extends iam.RoleProps {}

/**
 * An IAM role whose grants land in one customer-managed policy attached to it, instead of the
 * inline `DefaultPolicy` that CDK grants normally create. Inline policies are what HIPAA and
 * NIST 800-53 checks reject (they cannot be audited or reused on their own); this keeps every
 * `grantX()` least-privilege and still compliant.
 */
export class ManagedPolicyRole extends iam.Role {
  /** The customer-managed policy that receives every statement added to this role. */
  public readonly grantsPolicy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: ManagedPolicyRoleProps) {
    // Before iam.Role reads them: its own error for a missing principal names no construct.
    assertRequiredProps(scope.node.path ? `${scope.node.path}/${id}` : id, 'ManagedPolicyRole', props, { assumedBy: 'object' });
    super(scope, id, props);
    this.grantsPolicy = new iam.ManagedPolicy(this, 'Grants', { description: props.description ? `Grants of: ${props.description}` : undefined });
    this.addManagedPolicy(this.grantsPolicy);
  }

  public override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.grantsPolicy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.grantsPolicy };
  }
}
