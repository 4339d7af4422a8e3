/**
 * The typed definition of a SageMaker feature group, and the rules it must satisfy. Pure TypeScript
 * with no CDK imports: the `FeatureGroup` construct checks definitions at synth, and the ingestion
 * and lookup handlers (bundled from `lambda/`) use the same definition to check each record.
 */

/** SageMaker Feature Store's feature types. */
export type FeatureType = 'string' | 'integral' | 'fractional';

export const FEATURE_TYPES: readonly FeatureType[] = ['string', 'integral', 'fractional'];

/** The CloudFormation / API spelling of each type. */
export const FEATURE_TYPE_NAMES: Record<FeatureType, 'String' | 'Integral' | 'Fractional'> = {
  string: 'String',
  integral: 'Integral',
  fractional: 'Fractional',
};

export interface FeatureSpec {
  /** 1-64 letters, digits, hyphens or underscores, starting and ending with a letter or digit. */
  readonly name: string;
  readonly type: FeatureType;
  /** What the feature means and how it is computed; shown in the feature catalogue. */
  readonly description: string;
}

export interface FeatureGroupDefinition {
  /** Feature group name, unique in the account and region. */
  readonly name: string;
  readonly description: string;
  /** Team that owns the group and answers for its features. */
  readonly owner: string;
  /** The feature that identifies a record (the entity id), e.g. `customer_id`. */
  readonly recordIdentifier: string;
  /** The feature that says when the values were true: an ISO-8601 string or fractional epoch seconds. */
  readonly eventTime: string;
  readonly features: readonly FeatureSpec[];
  /**
   * Hours after which online records expire (online store TTL).
   * @default - records never expire
   */
  readonly onlineTtlHours?: number;
}

export interface DefinitionIssue {
  readonly path: ReadonlyArray<string | number>;
  readonly message: string;
}

export const FEATURE_NAME_PATTERN = /^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$/;
export const FEATURE_GROUP_NAME_PATTERN = /^[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}$/;
/** Names Feature Store adds to offline records itself. */
export const RESERVED_FEATURE_NAMES: readonly string[] = ['is_deleted', 'write_time', 'api_invocation_time'];
export const MAX_FEATURES = 2500;

/** Every rule the definition breaks; an empty list means SageMaker will accept it. */
export function checkFeatureGroupDefinition(definition: FeatureGroupDefinition): DefinitionIssue[] {
  const issues: DefinitionIssue[] = [];
  if (!FEATURE_GROUP_NAME_PATTERN.test(definition.name)) {
    issues.push({ path: ['name'], message: `must be 1-64 letters, digits, hyphens or underscores, starting and ending with a letter or digit; got '${definition.name}'` });
  }
  if (!definition.owner?.trim()) issues.push({ path: ['owner'], message: 'must name the owning team' });
  if (definition.features.length === 0 || definition.features.length > MAX_FEATURES) {
    issues.push({ path: ['features'], message: `must hold 1 to ${MAX_FEATURES} features; got ${definition.features.length}` });
  }
  const seen = new Map<string, number>();
  definition.features.forEach((feature, index) => {
    const at = ['features', index];
    if (!FEATURE_NAME_PATTERN.test(feature.name)) {
      issues.push({ path: [...at, 'name'], message: `must be 1-64 letters, digits, hyphens or underscores, starting and ending with a letter or digit; got '${feature.name}'` });
    }
    if (RESERVED_FEATURE_NAMES.includes(feature.name.toLowerCase())) {
      issues.push({ path: [...at, 'name'], message: `'${feature.name}' is reserved by Feature Store (${RESERVED_FEATURE_NAMES.join(', ')})` });
    }
    // Feature Store treats names case-insensitively in the offline store's Glue table.
    const key = feature.name.toLowerCase();
    const previous = seen.get(key);
    if (previous !== undefined) {
      issues.push({ path: [...at, 'name'], message: `'${feature.name}' duplicates features[${previous}] ('${definition.features[previous].name}'); feature names must be unique, ignoring case` });
    } else {
      seen.set(key, index);
    }
    if (!(FEATURE_TYPES as readonly string[]).includes(feature.type)) {
      issues.push({ path: [...at, 'type'], message: `must be one of ${FEATURE_TYPES.join(', ')}; got '${feature.type}'` });
    }
    if (!feature.description?.trim()) issues.push({ path: [...at, 'description'], message: 'must say what the feature means' });
  });
  const find = (name: string) => definition.features.find((feature) => feature.name === name);
  const identifier = find(definition.recordIdentifier);
  if (!identifier) {
    issues.push({ path: ['recordIdentifier'], message: `'${definition.recordIdentifier}' is not one of the features` });
  } else if (identifier.type === 'fractional') {
    issues.push({ path: ['recordIdentifier'], message: `'${identifier.name}' must be a string or integral feature; got fractional` });
  }
  const eventTime = find(definition.eventTime);
  if (!eventTime) {
    issues.push({ path: ['eventTime'], message: `'${definition.eventTime}' is not one of the features; every feature group needs an event-time feature` });
  } else if (eventTime.type === 'integral') {
    issues.push({ path: ['eventTime'], message: `'${eventTime.name}' must be a string (ISO-8601) or fractional (epoch seconds) feature; got integral` });
  }
  if (definition.recordIdentifier === definition.eventTime) {
    issues.push({ path: ['eventTime'], message: 'must differ from recordIdentifier' });
  }
  const ttl = definition.onlineTtlHours;
  if (ttl !== undefined && !(Number.isInteger(ttl) && ttl >= 1 && ttl <= 24 * 365 * 10)) {
    issues.push({ path: ['onlineTtlHours'], message: `must be a whole number of hours from 1 to 87600; got ${ttl}` });
  }
  return issues;
}

/** A feature value as a client sends it. */
export type FeatureValue = string | number | boolean | null | undefined;

export interface RecordIssue {
  readonly feature: string;
  readonly message: string;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})$/;
const INTEGRAL = /^-?\d+$/;
const MIN_INT64 = -(2n ** 63n);
const MAX_INT64 = 2n ** 63n - 1n;

/**
 * Checks one record against the definition and returns it in Feature Store's wire form (every value a
 * string), or the list of problems, each naming the feature. Unknown features are refused rather than
 * dropped, so a misspelt feature is never silently lost; missing features other than the identifier
 * and event time are allowed (Feature Store stores them as absent).
 */
export function toFeatureStoreRecord(
  definition: FeatureGroupDefinition,
  record: Record<string, FeatureValue>,
): { ok: true; record: Array<{ FeatureName: string; ValueAsString: string }> } | { ok: false; issues: RecordIssue[] } {
  const issues: RecordIssue[] = [];
  const byName = new Map(definition.features.map((feature) => [feature.name, feature]));
  for (const name of Object.keys(record)) {
    if (!byName.has(name)) issues.push({ feature: name, message: `is not a feature of ${definition.name}` });
  }
  const out: Array<{ FeatureName: string; ValueAsString: string }> = [];
  for (const feature of definition.features) {
    const value = record[feature.name];
    const required = feature.name === definition.recordIdentifier || feature.name === definition.eventTime;
    if (value === undefined || value === null || value === '') {
      if (required) issues.push({ feature: feature.name, message: feature.name === definition.eventTime ? 'is the event time and is required' : 'is the record identifier and is required' });
      continue;
    }
    const text = typeof value === 'string' ? value.trim() : typeof value === 'number' ? String(value) : undefined;
    if (text === undefined) {
      issues.push({ feature: feature.name, message: `must be a ${feature.type} value; got ${typeof value}` });
      continue;
    }
    if (feature.type === 'integral') {
      if (typeof value === 'number' ? !Number.isSafeInteger(value) : !INTEGRAL.test(text) || BigInt(text) < MIN_INT64 || BigInt(text) > MAX_INT64) {
        issues.push({ feature: feature.name, message: `must be a whole number (64-bit); got ${JSON.stringify(value)}` });
        continue;
      }
    } else if (feature.type === 'fractional') {
      const number = Number(text);
      if (text === '' || !Number.isFinite(number)) {
        issues.push({ feature: feature.name, message: `must be a finite number; got ${JSON.stringify(value)}` });
        continue;
      }
    }
    if (feature.name === definition.eventTime) {
      const valid = feature.type === 'string' ? ISO_8601.test(text) && Number.isFinite(Date.parse(text)) : Number.isFinite(Number(text)) && Number(text) >= 0;
      if (!valid) {
        issues.push({ feature: feature.name, message: `must be an ISO-8601 timestamp with a time zone or epoch seconds; got ${JSON.stringify(value)}` });
        continue;
      }
    }
    if (text.length > 350_000) {
      issues.push({ feature: feature.name, message: 'is longer than Feature Store accepts (350 KB)' });
      continue;
    }
    out.push({ FeatureName: feature.name, ValueAsString: text });
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, record: out };
}
