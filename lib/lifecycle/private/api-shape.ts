/**
 * A CloudFormation property object (camelCase keys in aws-cdk-lib's L1 types) in the shape of the
 * SageMaker API (PascalCase), for passing the same settings to a Step Functions SDK call. SageMaker's
 * CloudFormation properties carry the API's names, so only the first letter of each key changes.
 */
export function toApiShape(value: unknown): any {
  if (Array.isArray(value)) return value.map(toApiShape);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>)
        .filter(([, entry]) => entry !== undefined)
        .map(([key, entry]) => [key.charAt(0).toUpperCase() + key.slice(1), toApiShape(entry)]),
    );
  }
  return value;
}
