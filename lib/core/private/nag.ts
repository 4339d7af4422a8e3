import { Stack, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Flattens a resolved CloudFormation value the way cdk-nag names wildcard findings
 * (`AwsSolutions-IAM5[Resource::<Bucket1234.Arn>/prefix/*]`): strings as they are, `Ref` as
 * `<Id>`, `Fn::GetAtt` as `<Id.Attr>`, joins concatenated.
 */
function flatten(node: unknown): string {
  if (node === undefined) return '';
  if (typeof node === 'string') return node.replace(/\$\{/g, '<').replace(/\}/g, '>');
  if (typeof node === 'object' && node !== null) {
    const value = node as Record<string, any>;
    if (value['Fn::Join']) {
      const [delimiter, items] = value['Fn::Join'] as [string, unknown[]];
      return items.map(flatten).join(delimiter);
    }
    if (value['Fn::Sub']) return flatten(value['Fn::Sub']);
    if (value['Fn::GetAtt']) {
      const [resource, attribute] = value['Fn::GetAtt'] as [unknown, unknown];
      return `<${flatten(resource)}.${flatten(attribute)}>`;
    }
    if (value['Fn::ImportValue']) return flatten(value['Fn::ImportValue']);
    if (value.Ref) return `<${flatten(value.Ref)}>`;
  }
  return JSON.stringify(node);
}

/** The cdk-nag finding id of a wildcard resource in an IAM policy, e.g. `AwsSolutions-IAM5[Resource::...]`. */
function wildcardResourceFinding(scope: IConstruct, resource: string): string {
  return `AwsSolutions-IAM5[Resource::${flatten(Stack.of(scope).resolve(resource))}]`;
}

/**
 * Acknowledges one wildcard-resource finding on the construct that holds the policy. A resource that
 * names another stack's resource only takes its final form (`Fn::GetStackOutput`) when the app
 * resolves cross-stack references, after construction: the finding is named again then.
 */
export function acknowledgeWildcardResource(policy: IConstruct, resource: string, reason: string): void {
  const id = wildcardResourceFinding(policy, resource);
  Validations.of(policy).acknowledge({ id, reason });
  policy.node.addValidation({
    validate: () => {
      const resolved = wildcardResourceFinding(policy, resource);
      if (resolved !== id) Validations.of(policy).acknowledge({ id: resolved, reason });
      return [];
    },
  });
}

/**
 * Acknowledges every wildcard resource of a policy that aws-cdk-lib writes itself (for example the
 * Distributed Map's child-execution policy), where the wildcard is the only way to name what it grants.
 */
export function acknowledgeWildcardResourcesOf(policy: IConstruct & { document: { toJSON(): any } }, reason: string): void {
  const statements = (Stack.of(policy).resolve(policy.document.toJSON())?.Statement ?? []) as Array<{ Resource?: unknown }>;
  for (const statement of statements) {
    for (const resource of [statement.Resource ?? []].flat()) {
      const finding = `AwsSolutions-IAM5[Resource::${flatten(resource)}]`;
      if (finding.includes('*')) Validations.of(policy).acknowledge({ id: finding, reason });
    }
  }
}
