"""moto's server, serving TLS, with two corrections for the apply test.

1. Bucket policies.
moto evaluates bucket policies with `StringEquals` conditions only and without request
context; a statement with any other condition applies as if it had none. The pipeline
buckets' policies deny requests whose `aws:SecureTransport` is false (a `Bool` condition),
so moto would refuse every PutObject into them, even over TLS. This server serves TLS only
(`-s` is added), so every request it answers was made over TLS: its policy evaluation gets
`aws:SecureTransport = true`, evaluates `Bool` as AWS does (case-insensitive equality with
any listed value), and skips a statement whose condition does not hold (moto would read it
as a Deny).

2. EventBridge targets moto does not deliver to. moto's rules deliver to SQS queues, log
groups and event buses only (it would run Lambda functions in Docker, which the test
machines do not have), and a PutEvents that matches a rule with any other target, such as
a Lambda function or an SNS topic, fails as a whole (NotImplementedError). Here those
targets are skipped: the rule's other targets still get the event, which is how the test
observes matches (it adds SQS targets).

Everything else is moto as installed. Usage: python moto_server.py -H HOST -p PORT.
"""

import sys

from moto.events import models as events_models
from moto.iam import access_control, policy_conditions
from moto.server import main


def _bool(expected, actual):
    values = expected if isinstance(expected, list) else [expected]
    return str(actual).lower() in [str(v).lower() for v in values]


policy_conditions.CONDITION_OPERATIONS["Bool"] = _bool

_original = access_control.IAMPolicyStatement.is_action_permitted


def _is_action_permitted(
    self, action, resource="*", principal=None, incoming_condition_values=None
):
    context = {"aws:SecureTransport": "true", **(incoming_condition_values or {})}
    # A statement whose condition does not hold does not apply (moto answers Deny).
    if self._statement.get("Condition") and not self._check_conditions(context):
        return access_control.PermissionResult.NEUTRAL
    return _original(self, action, resource, principal, context)


access_control.IAMPolicyStatement.is_action_permitted = _is_action_permitted

_send_to_targets = events_models.Rule.send_to_targets


def _delivered_by_moto(target):
    return target["Arn"].split(":")[2] in ("sqs", "logs", "events")


def _send_to_deliverable_targets(self, *args, **kwargs):
    targets = self.targets
    self.targets = [t for t in targets if _delivered_by_moto(t)]
    try:
        return _send_to_targets(self, *args, **kwargs)
    finally:
        self.targets = targets


events_models.Rule.send_to_targets = _send_to_deliverable_targets

if __name__ == "__main__":
    main([*sys.argv[1:], "-s"])
