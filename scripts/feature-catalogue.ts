// Regenerates the README's feature catalogue from the feature groups of every environment's config.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENVIRONMENT_NAMES, loadConfig } from '../config';
import type { FeatureGroupDefinition } from '../lib/features/feature-definition';
import { renderFeatureCatalogue, replaceCatalogue } from '../lib/features/feature-catalogue';

/** Every feature group of every environment, once per name (the prod definition wins). */
export function configuredFeatureGroups(): FeatureGroupDefinition[] {
  const byName = new Map<string, FeatureGroupDefinition>();
  for (const envName of ENVIRONMENT_NAMES) {
    for (const group of loadConfig(envName).featureStore?.groups ?? []) {
      byName.set(group.name, group as FeatureGroupDefinition);
    }
  }
  return [...byName.values()];
}

if (require.main === module) {
  const path = join(__dirname, '..', 'README.md');
  writeFileSync(path, replaceCatalogue(readFileSync(path, 'utf8'), renderFeatureCatalogue(configuredFeatureGroups())));
  console.log('README.md: feature catalogue updated');
}
