// The SSM side of the routing table: each model family's route is the parameter `<prefix><model>`
// (see lambda/shared/routes.ts for the cache in front of it). Used by the invoke and record-outcome
// handlers, which read the same routes.
//
// Environment:
//   ROUTES_PARAMETER_PREFIX            parameter-name prefix of the routes, e.g. /cdk-ml-patterns/<api>/routes/
//   ROUTE_CACHE_TTL_SECONDS            optional, how long a route is served from memory (default 60)
//   AWS_ENDPOINT_URL_SSM / AWS_ENDPOINT_URL, AWS_MAX_ATTEMPTS, AWS_REGION: read by the SDK itself
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { ConfigError, type RouteSource } from './inference';
import { parseTtlSeconds, RouteCache, type RouteStore } from './routes';

/** Default seconds a route is served from memory before it is read again. */
export const DEFAULT_ROUTE_CACHE_TTL_SECONDS = 60;
/** "No such model" is remembered for at most this long, so that a new family is served soon after its deploy. */
const MAX_NOT_FOUND_TTL_SECONDS = 10;

/** A parameter prefix: starts and ends with `/`, SSM's name characters only. */
const PREFIX_PATTERN = /^\/[a-zA-Z0-9_.\-/]*\/$/;

export interface RouteParametersOptions {
  /** Per-attempt limit of a GetParameter, in ms. @default 1000 */
  readonly requestTimeoutMs?: number;
  /** Told when a refresh failed and the last good route was served. */
  readonly onStale?: (model: string, error: unknown) => void;
}

/** A route store over SSM Parameter Store. */
export function ssmRouteStore(prefix: string, client: Pick<SSMClient, 'send'>): RouteStore {
  return {
    describe: (model) => `SSM parameter ${prefix}${model}`,
    read: async (model) => {
      try {
        const answer = await client.send(new GetParameterCommand({ Name: `${prefix}${model}` }));
        return answer.Parameter?.Value;
      } catch (error) {
        if ((error as { name?: unknown })?.name === 'ParameterNotFound') return undefined;
        throw error;
      }
    },
  };
}

/**
 * The routes of the environment's handler, from ROUTES_PARAMETER_PREFIX and ROUTE_CACHE_TTL_SECONDS.
 * Throws {@link ConfigError} naming the variable when either is unusable.
 */
export function routeParametersFromEnv(env: NodeJS.ProcessEnv, options: RouteParametersOptions = {}): RouteSource {
  const prefix = env.ROUTES_PARAMETER_PREFIX?.trim();
  if (prefix === undefined || prefix.length === 0) {
    throw new ConfigError('ROUTES_PARAMETER_PREFIX: is not set');
  }
  if (!PREFIX_PATTERN.test(prefix)) {
    throw new ConfigError(`ROUTES_PARAMETER_PREFIX: must start and end with '/' and hold only letters, digits and _ . - /; got ${JSON.stringify(prefix)}`);
  }
  const ttlSeconds = parseTtlSeconds(env.ROUTE_CACHE_TTL_SECONDS, 'ROUTE_CACHE_TTL_SECONDS', DEFAULT_ROUTE_CACHE_TTL_SECONDS);
  const client = new SSMClient({ requestHandler: { requestTimeout: options.requestTimeoutMs ?? 1_000, throwOnRequestTimeout: true } });
  return new RouteCache(ssmRouteStore(prefix, client), {
    ttlMs: ttlSeconds * 1000,
    negativeTtlMs: Math.min(ttlSeconds, MAX_NOT_FOUND_TTL_SECONDS) * 1000,
    onStale: options.onStale,
  });
}
