import type { PlatformConfigInput } from './schema';

type FederatedInput = NonNullable<NonNullable<PlatformConfigInput['models'][number]['lifecycle']>['federated']>;

/**
 * Federated training of the churn model across two regional subsidiaries whose customer data may not leave
 * their accounts: a logistic model (a parameter vector, which FedAvg averages) trained by the platform's own
 * image, replicated to each silo's region and shared with the silos' accounts by its repository policy.
 * The silos deploy `MlPlatform-staging-churn-Silo-<name>` with their own credentials; the accounts are the
 * subsidiaries' staging accounts.
 */
export const churnFederated: FederatedInput = {
  accessRoleName: 'churn-federated-coordinator',
  coordinatorAccount: '111122223333',
  clients: [
    // The data lands in a bucket the silo's stack creates.
    { name: 'north-america', account: '444455556666', region: 'us-east-1', data: { prefix: 'churn/train/' } },
    // An existing bucket of the silo; the image from the ECR replica in its region.
    {
      name: 'europe',
      account: '777788889999',
      region: 'eu-west-1',
      data: { bucketName: 'europe-customer-churn-data', prefix: 'train/' },
      trainingImage: '111122223333.dkr.ecr.eu-west-1.amazonaws.com/churn-federated-train:1.0.0',
    },
  ],
  training: {
    image: '111122223333.dkr.ecr.us-east-1.amazonaws.com/churn-federated-train:1.0.0',
    instanceType: 'ml.m5.large',
    maxRuntimeMinutes: 60,
    hyperparameters: { epochs: '2', learning_rate: '0.05', batch_size: '256' },
  },
  // Both silos must report each round; the global metric is their held-out AUC, weighted by sample count.
  aggregation: { aggregator: 'fedavg' },
  metric: { name: 'auc', direction: 'higher-is-better' },
  maxRounds: 20,
  patience: 3,
  minDelta: 0.001,
  roundTimeoutMinutes: 120,
  pollIntervalMinutes: 5,
};
