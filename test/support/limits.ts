// Deploy-time limits a `cdk synth` does not enforce, checked on a synthesized template.
//
//   expect(deployLimitProblems('MlPlatform-prod-churn', template)).toEqual([]);
//
// Sizes of values that hold CloudFormation intrinsics (Fn::Join, Ref, ...) are measured on their
// JSON, which is close to (ARNs and names resolve to about as many characters as the intrinsics
// that build them) but not exactly the deployed size; the limits below keep a margin for that.

/** CloudFormation: a template uploaded through S3 may be 1 MB. */
export const MAX_TEMPLATE_BYTES = 1_048_576;
/** CloudFormation allows 500 resources per stack; we stop at 400 to leave room for what a family adds next. */
export const MAX_RESOURCES = 400;
/** CloudFormation allows 200 outputs per stack. */
export const MAX_OUTPUTS = 200;
/** Lambda: all environment variables of a function together (keys and values) may be 4 KB. */
export const MAX_LAMBDA_ENVIRONMENT_BYTES = 4_096;
/** IAM: a managed policy document may be 6,144 characters (whitespace excluded). */
export const MAX_MANAGED_POLICY_CHARS = 6_144;
/** IAM: the inline policies of one role together may be 10,240 characters. */
export const MAX_ROLE_INLINE_POLICY_CHARS = 10_240;

type Resources = Record<string, { Type: string; Properties?: Record<string, any> }>;

const size = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

/** Every limit the template breaks, one line each naming the stack, the resource and the figure. */
export function deployLimitProblems(stackName: string, template: { Resources?: Resources; Outputs?: Record<string, unknown> }): string[] {
  const problems: string[] = [];
  const resources: Resources = template.Resources ?? {};
  const bytes = size(template);
  if (bytes > MAX_TEMPLATE_BYTES) problems.push(`${stackName}: template is ${bytes} bytes; CloudFormation takes at most ${MAX_TEMPLATE_BYTES}`);
  const count = Object.keys(resources).length;
  if (count > MAX_RESOURCES) problems.push(`${stackName}: ${count} resources; the budget is ${MAX_RESOURCES} (CloudFormation: 500)`);
  const outputs = Object.keys(template.Outputs ?? {}).length;
  if (outputs > MAX_OUTPUTS) problems.push(`${stackName}: ${outputs} outputs; CloudFormation takes at most ${MAX_OUTPUTS}`);

  const inlineByRole = new Map<string, number>();
  for (const [logicalId, resource] of Object.entries(resources)) {
    const properties = resource.Properties ?? {};
    if (resource.Type === 'AWS::Lambda::Function') {
      const variables: Record<string, unknown> = properties.Environment?.Variables ?? {};
      const envBytes = Object.entries(variables).reduce((sum, [key, value]) => sum + Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : size(value)), 0);
      if (envBytes > MAX_LAMBDA_ENVIRONMENT_BYTES) problems.push(`${stackName}/${logicalId}: Lambda environment is ${envBytes} bytes; Lambda takes at most ${MAX_LAMBDA_ENVIRONMENT_BYTES}`);
    }
    if (resource.Type === 'AWS::IAM::ManagedPolicy') {
      const chars = size(properties.PolicyDocument);
      if (chars > MAX_MANAGED_POLICY_CHARS) problems.push(`${stackName}/${logicalId}: managed policy is ${chars} characters; IAM takes at most ${MAX_MANAGED_POLICY_CHARS}`);
    }
    if (resource.Type === 'AWS::IAM::Policy') {
      for (const role of properties.Roles ?? []) {
        const key = JSON.stringify(role);
        inlineByRole.set(key, (inlineByRole.get(key) ?? 0) + size(properties.PolicyDocument));
      }
    }
  }
  for (const [role, chars] of inlineByRole) {
    if (chars > MAX_ROLE_INLINE_POLICY_CHARS) problems.push(`${stackName}: inline policies of role ${role} are ${chars} characters; IAM takes at most ${MAX_ROLE_INLINE_POLICY_CHARS}`);
  }
  return problems;
}
