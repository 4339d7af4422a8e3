// Federated learning in an application team's own stacks: each data silo deploys a FederatedClient in its own
// account and region; the platform account deploys the FederatedCoordinator, which runs the rounds and registers
// the global model. The README shows both functions; the tests type-check and synthesize them. In your project,
// import from 'cdk-ml-patterns'.
import { Duration } from 'aws-cdk-lib';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { FederatedAggregator, FederatedClient, FederatedCoordinator, type ModelPackageGroup } from '../lib';

const TRAIN_IMAGE = '111122223333.dkr.ecr.eu-west-1.amazonaws.com/fraud-federated-train:2.1.0';

/** In each bank's account (its stack's env): the data stays in `records`, the coordinator gets an exchange bucket. */
export function fraudSilo(scope: Construct, records: s3.IBucket): FederatedClient {
  return new FederatedClient(scope, 'FraudSilo', {
    federationName: 'fraud',
    coordinatorAccount: '111122223333',
    accessRoleName: 'fraud-federated-coordinator', // the same in every silo
    data: { bucket: records, prefix: 'transactions/labelled/' },
    trainingImage: TRAIN_IMAGE,
  });
}

/** In the platform account: rounds over three banks, a robust aggregate, differential privacy off. */
export function fraudFederation(scope: Construct, registry: ModelPackageGroup, state: s3.IBucket, key: kms.IKey, topic: sns.ITopic): FederatedCoordinator {
  return new FederatedCoordinator(scope, 'FraudFederation', {
    name: 'fraud',
    clients: [
      { name: 'bank-a', account: '444455556666', region: 'eu-west-1' },
      { name: 'bank-b', account: '777788889999', region: 'eu-west-1' },
      { name: 'bank-c', account: '222233334444', region: 'eu-west-1' },
    ],
    accessRoleName: 'fraud-federated-coordinator',
    training: { image: TRAIN_IMAGE, instanceType: 'ml.m5.xlarge', hyperparameters: { local_epochs: '1' } },
    // One bank with bad labels cannot drag the model: the coordinate-wise median of the three updates.
    aggregation: { aggregator: FederatedAggregator.MEDIAN },
    minClients: 2, // a bank that fails a round is left out of it
    metric: { name: 'pr_auc', direction: 'higher-is-better' },
    maxRounds: 30,
    patience: 4,
    roundTimeout: Duration.hours(2),
    modelPackageGroup: registry,
    inferenceImage: TRAIN_IMAGE,
    stateBucket: state,
    statePrefix: 'fraud/federated/',
    encryptionKey: key,
    notificationTopic: topic,
  });
}
