import { ConfigError, parseConfig, type PlatformConfigInput } from '../../config';

/** Parses a copy of a shipped config after `mutate`, returning the error lines (empty when valid). */
export function configProblems(base: PlatformConfigInput, mutate: (config: any) => void): string[] {
  const config = structuredClone(base);
  mutate(config);
  try {
    parseConfig(config, 'test');
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return [...error.problems];
  }
}
