"""moto_server with two things moto 5.2 lacks: SageMaker's UpdateEndpoint, and DynamoDB's atomic writes.

The lifecycle workflows deploy a model version with UpdateEndpoint. moto implements CreateEndpoint,
DescribeEndpoint and UpdateEndpointWeightsAndCapacities but not UpdateEndpoint, so this script adds
it to moto's SageMaker backend, with the contract of the real call as far as the tests rely on it:
the endpoint and the new endpoint configuration must exist (otherwise a ValidationException), the
endpoint then serves the configuration's variants and data capture, and it is InService again
(moto does not model the Updating phase; the workflows' wait loops handle both).

DynamoDB checks a write's condition and applies the write atomically; moto's server answers each request
in its own thread with no lock, so two concurrent conditional writes to one item can both pass their
check. Here every item write (PutItem, UpdateItem, DeleteItem, TransactWriteItems) holds one lock, which
gives the guarantee the handlers rely on (for example, only one of two concurrent outcomes is recorded).

Everything else is moto as installed. Usage: python3 moto_server_ext.py -H 127.0.0.1 -p PORT
"""
import functools
import sys
import threading

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.dynamodb.models import DynamoDBBackend
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import FakeEndpoint, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.server import main


def update_endpoint(self, endpoint_name, endpoint_config_name):
    endpoint = self.endpoints.get(endpoint_name)
    if endpoint is None:
        arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find endpoint '{arn}'.")
    config = self.describe_endpoint_config(endpoint_config_name)
    endpoint.endpoint_config_name = endpoint_config_name
    endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
    endpoint.data_capture_config = config["DataCaptureConfig"]
    endpoint.endpoint_status = "InService"
    endpoint.last_modified_time = utcnow()
    return endpoint.arn


def update_endpoint_response(self):
    arn = self.sagemaker_backend.update_endpoint(
        endpoint_name=self._get_param("EndpointName"),
        endpoint_config_name=self._get_param("EndpointConfigName"),
    )
    return ActionResult({"EndpointArn": arn})


SageMakerModelBackend.update_endpoint = update_endpoint
SageMakerResponse.update_endpoint = update_endpoint_response

ITEM_WRITES = threading.Lock()


def atomic(write):
    @functools.wraps(write)
    def locked(*args, **kwargs):
        with ITEM_WRITES:
            return write(*args, **kwargs)

    return locked


for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))

if __name__ == "__main__":
    main(sys.argv[1:])
