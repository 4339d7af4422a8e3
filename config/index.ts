import { dev } from './dev';
import { prod } from './prod';
import { staging } from './staging';
import { ENVIRONMENT_NAMES, parseConfig, type EnvironmentName, type PlatformConfig, type PlatformConfigInput } from './schema';

export * from './schema';

const RAW_CONFIGS: Record<EnvironmentName, PlatformConfigInput> = { dev, staging, prod };

export function isEnvironmentName(name: string): name is EnvironmentName {
  return (ENVIRONMENT_NAMES as readonly string[]).includes(name);
}

/** Loads and validates the config of one environment; an unknown name fails with the list of valid ones. */
export function loadConfig(envName: string): PlatformConfig {
  if (!isEnvironmentName(envName)) {
    throw new Error(`Unknown environment '${envName}'. Valid environments: ${ENVIRONMENT_NAMES.join(', ')} (pass one with -c env=<name>).`);
  }
  const config = parseConfig(RAW_CONFIGS[envName], `config/${envName}.ts`);
  if (config.envName !== envName) {
    throw new Error(`config/${envName}.ts: envName is '${config.envName}' but the file configures '${envName}'.`);
  }
  return config;
}
