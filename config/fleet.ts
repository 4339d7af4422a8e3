import type { ModelConfigInput, ModelFamilyInput, PlatformConfigInput } from './schema';

/** Name of the `index`-th family cloned from `name`: `churn` -> `churn-7`. */
export function fleetFamilyName(name: string, index: number): string {
  return `${name}-${index}`;
}

/**
 * The environment's config with `count` model families cloned from its first one, each under its
 * own name (`<name>-<n>`, and its model-data keys under `<name>-<n>/`): how the blueprint behaves with
 * a fleet of that size, for the scale test and the synth benchmark. Nothing else changes.
 */
export function fleetConfig(config: PlatformConfigInput, count: number): PlatformConfigInput {
  if (!Number.isInteger(count) || count < 1 || count > 500) throw new Error(`fleetConfig: count: must be a whole number from 1 to 500; got ${count}`);
  const template = config.models[0];
  if (template === undefined) throw new Error('fleetConfig: the config has no model family to clone');
  const models = Array.from({ length: count }, (_, index) => renamed(template, fleetFamilyName(template.name, index)));
  return { ...config, models };
}

function renamed(family: ModelConfigInput | ModelFamilyInput, name: string): ModelFamilyInput {
  const prefix = `${family.name}/`;
  const rewrite = (value: unknown): unknown => {
    if (typeof value === 'string') return value.startsWith(prefix) ? `${name}/${value.slice(prefix.length)}` : value;
    if (Array.isArray(value)) return value.map(rewrite);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, rewrite(inner)]));
    return value;
  };
  return { ...(rewrite(family) as ModelFamilyInput), name };
}
