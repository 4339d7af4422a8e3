"""moto_server with three things moto 5.2 lacks: SageMaker's UpdateEndpoint, DynamoDB's atomic writes, and
Lambda function errors without Docker.

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

Without Docker, moto's "simple" Lambda backend (moto-api config `{"lambda": {"use_docker": false}}`) answers
each Invoke with the next result queued at /moto-api/static/lambda-simple/response, always as a success.
Here a queued result that is a JSON object with `errorType` and `errorMessage` is answered as Lambda answers a
function that threw (the `X-Amz-Function-Error: Unhandled` header, that object as the payload), so a Step
Functions Lambda task sees the function's error name and its Retry and Catch apply, as they do on AWS.

Everything else is moto as installed. Usage: python3 moto_server_ext.py -H 127.0.0.1 -p PORT
"""
import functools
import json
import sys
import threading

from moto.awslambda_simple.models import LambdaSimpleBackend
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

# Re-entrant: moto's TransactWriteItems applies its items through put_item and update_item, which take it again.
ITEM_WRITES = threading.RLock()


def atomic(write):
    @functools.wraps(write)
    def locked(*args, **kwargs):
        with ITEM_WRITES:
            return write(*args, **kwargs)

    return locked


for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
    setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))


def invoke_simple(self, function_name, qualifier, body, headers, response_headers):
    if not self.lambda_simple_results_queue:
        return str.encode(body or "Simple Lambda happy path OK")
    result = self.lambda_simple_results_queue.pop(0)
    try:
        answer = json.loads(result)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and "errorType" in answer and "errorMessage" in answer:
        response_headers["x-amz-function-error"] = "Unhandled"
    return str.encode(result)


LambdaSimpleBackend.invoke = invoke_simple

if __name__ == "__main__":
    main(sys.argv[1:])
