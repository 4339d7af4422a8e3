// What the Lambda bundles use in place of @aws-sdk/credential-provider-node (scripts/build-lambdas.mjs
// aliases the package to this file; tests that run a handler from source still get the SDK's own chain).
//
// Every SDK client's runtime config imports the SDK's default chain, which carries providers a Lambda
// function never uses (shared ini files, SSO, credential_process, web identity, console login) and the
// STS, SSO and sign-in clients they need: about 95 KiB per bundle, loaded on every cold start. A function
// gets its role's credentials from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN) or, where the runtime serves them over HTTP, from the container credentials
// endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI). Those two stay, in that order, with the
// SDK's own memoization and refresh rules; nothing else is tried.
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@aws-sdk/types';
import { fromEnv } from '@aws-sdk/credential-provider-env';
import { fromHttp } from '@aws-sdk/credential-provider-http';
import { chain, CredentialsProviderError, memoize } from '@smithy/core/config';
import { ENV_CMDS_FULL_URI, ENV_CMDS_RELATIVE_URI, fromContainerMetadata } from '@smithy/credential-provider-imds';

/** The options the SDK passes to `credentialDefaultProvider`; only the logger is used here. */
export interface DefaultProviderInit {
  readonly logger?: { debug?: (...content: unknown[]) => void };
  readonly [key: string]: unknown;
}

/** Whether credentials carry an expiry, so that they will have to be fetched again (as the SDK's chain). */
export const credentialsWillNeedRefresh = (credentials?: AwsCredentialIdentity): boolean => credentials?.expiration !== undefined;

/** Credentials that expire within five minutes are fetched again before use (as the SDK's chain). */
export const credentialsTreatedAsExpired = (credentials?: AwsCredentialIdentity): boolean =>
  credentials?.expiration !== undefined && credentials.expiration.getTime() - Date.now() < 300_000;

function containerProvider(init: DefaultProviderInit): AwsCredentialIdentityProvider {
  return async () => {
    if (process.env[ENV_CMDS_FULL_URI] === undefined && process.env[ENV_CMDS_RELATIVE_URI] === undefined) {
      throw new CredentialsProviderError(
        `Could not load credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor ${ENV_CMDS_FULL_URI}/${ENV_CMDS_RELATIVE_URI} is set (a Lambda bundle reads only these)`,
        { logger: init.logger as never, tryNextLink: false },
      );
    }
    return chain(fromHttp(init as never), fromContainerMetadata(init as never))();
  };
}

/** The credential chain of a Lambda bundle: environment variables, then the container credentials endpoint. */
export function defaultProvider(init: DefaultProviderInit = {}): AwsCredentialIdentityProvider {
  return memoize(chain(fromEnv(init as never), containerProvider(init)), credentialsTreatedAsExpired, credentialsWillNeedRefresh);
}
