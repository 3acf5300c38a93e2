"""What the apply test asks of the moto account (boto3, the AWS SDK, against moto_server.py).

Subcommands, each printing one JSON document:

  observe ENDPOINT BUCKET FIXTURE KEY...
      Which keys each EventBridge rule matches. The test adds an SQS queue as a target of
      every rule with an event pattern, puts one "Object Created" event per key (the shape
      of AWS's published sample, FIXTURE, with the bucket and key replaced; EventBridge
      carries keys as they are, not URL-encoded), then reads every queue. Output:
      {"rules": {rule: [keys]}, "queues": {dead-letter queue: [keys]}}. The observer
      targets and queues are removed again, so that `terraform destroy` meets only its own.
  put ENDPOINT BUCKET FILE KEY
      Uploads FILE as KEY; prints {"etag": ...}.
  list ENDPOINT BUCKET PREFIX
      {"keys": [...]} under PREFIX.
  put-image ENDPOINT REPOSITORY TAG
      Registers an image manifest under TAG in the ECR repository (what `docker push` ends
      with); prints {"digest": ...}.
  inventory ENDPOINT
      Every resource of the kinds the AWS modules create: {kind: [names]}. KMS keys count
      only while not pending deletion (AWS deletes a key after a waiting period, at least
      7 days) and not AWS-managed; only the account's own IAM policies count.
"""

import json
import sys
import time

import boto3
import urllib3

urllib3.disable_warnings()

REGION = "us-east-1"


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        # moto_server.py serves TLS with a self-signed certificate.
        verify=False,
    )


def event_entry(fixture, bucket, key):
    """An S3 "Object Created" event for `key`; `KEY #size=N` sets the object's size."""
    detail = json.loads(json.dumps(fixture["detail"]))
    detail["bucket"]["name"] = bucket
    if " #size=" in key:
        key, size = key.rsplit(" #size=", 1)
        detail["object"]["size"] = int(size)
    detail["object"]["key"] = key
    return {
        "Source": fixture["source"],
        "DetailType": fixture["detail-type"],
        "Detail": json.dumps(detail),
        "Resources": [f"arn:aws:s3:::{bucket}"],
    }


def drain(sqs, url):
    keys = []
    while True:
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            return sorted(keys)
        for message in got:
            body = json.loads(message["Body"])
            keys.append(body["detail"]["object"]["key"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def observe(endpoint, bucket, fixture_path, keys):
    events = client(endpoint, "events")
    sqs = client(endpoint, "sqs")
    with open(fixture_path, encoding="utf-8") as f:
        fixture = json.load(f)
    rules = [r for r in events.list_rules()["Rules"] if r.get("EventPattern")]
    observers = {}
    for rule in rules:
        url = sqs.create_queue(QueueName=f"observe-{rule['Name']}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events.put_targets(
            Rule=rule["Name"], Targets=[{"Id": "observe", "Arn": arn}]
        )
        observers[rule["Name"]] = url
    entries = [event_entry(fixture, bucket, k) for k in keys]
    for i in range(0, len(entries), 10):
        result = events.put_events(Entries=entries[i : i + 10])
        if result["FailedEntryCount"]:
            raise SystemExit(f"PutEvents failed: {result['Entries']}")
    out = {"rules": {}, "queues": {}}
    for name, url in observers.items():
        out["rules"][name] = drain(sqs, url)
        events.remove_targets(Rule=name, Ids=["observe"])
        sqs.delete_queue(QueueUrl=url)
    for url in sqs.list_queues().get("QueueUrls", []):
        name = url.rsplit("/", 1)[-1]
        if name.endswith("-dlq"):
            out["queues"][name] = drain(sqs, url)
    return out


def put(endpoint, bucket, path, key):
    s3 = client(endpoint, "s3")
    with open(path, "rb") as f:
        response = s3.put_object(Bucket=bucket, Key=key, Body=f.read())
    return {"etag": response["ETag"]}


def put_image(endpoint, repository, tag):
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 7023,
            "digest": "sha256:" + "0" * 64,
        },
        "layers": [],
    }
    image = client(endpoint, "ecr").put_image(
        repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag
    )["image"]
    return {"digest": image["imageId"]["imageDigest"]}


def list_keys(endpoint, bucket, prefix):
    s3 = client(endpoint, "s3")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix
    ):
        keys.extend(o["Key"] for o in page.get("Contents", []))
    return {"keys": sorted(keys)}


def inventory(endpoint):
    c = lambda service: client(endpoint, service)  # noqa: E731
    kms = c("kms")
    aliases = kms.list_aliases()["Aliases"]
    # moto creates AWS-managed keys (alias/aws/dynamodb, ...) on first use and labels
    # them CUSTOMER: they are the service's, not the configuration's.
    managed = {
        a.get("TargetKeyId") for a in aliases if a["AliasName"].startswith("alias/aws/")
    }
    live_keys = []
    for key in kms.list_keys()["Keys"]:
        meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
        if meta["KeyState"] != "PendingDeletion" and key["KeyId"] not in managed:
            live_keys.append(key["KeyId"])
    groups = c("ec2").describe_security_groups()["SecurityGroups"]
    return {
        "s3 buckets": [b["Name"] for b in c("s3").list_buckets()["Buckets"]],
        "sqs queues": c("sqs").list_queues().get("QueueUrls", []),
        "sns topics": [t["TopicArn"] for t in c("sns").list_topics()["Topics"]],
        "sns subscriptions": [
            s["SubscriptionArn"] for s in c("sns").list_subscriptions()["Subscriptions"]
        ],
        "lambda functions": [
            f["FunctionName"] for f in c("lambda").list_functions()["Functions"]
        ],
        "eventbridge rules": [r["Name"] for r in c("events").list_rules()["Rules"]],
        "iam roles": [r["RoleName"] for r in c("iam").list_roles()["Roles"]],
        "iam policies": [
            p["PolicyName"] for p in c("iam").list_policies(Scope="Local")["Policies"]
        ],
        "iam instance profiles": [
            p["InstanceProfileName"]
            for p in c("iam").list_instance_profiles()["InstanceProfiles"]
        ],
        "kms keys": live_keys,
        "kms aliases": [
            a["AliasName"] for a in aliases if not a["AliasName"].startswith("alias/aws/")
        ],
        "dynamodb tables": c("dynamodb").list_tables()["TableNames"],
        "cloudwatch alarms": [
            a["AlarmName"] for a in c("cloudwatch").describe_alarms()["MetricAlarms"]
        ],
        "log groups": [
            g["logGroupName"] for g in c("logs").describe_log_groups()["logGroups"]
        ],
        "ecr repositories": [
            r["repositoryName"] for r in c("ecr").describe_repositories()["repositories"]
        ],
        "security groups": [g["GroupName"] for g in groups if g["GroupName"] != "default"],
    }


def main(argv):
    command, endpoint, *rest = argv
    started = time.monotonic()
    if command == "observe":
        out = observe(endpoint, rest[0], rest[1], rest[2:])
    elif command == "put":
        out = put(endpoint, *rest)
    elif command == "put-image":
        out = put_image(endpoint, *rest)
    elif command == "list":
        out = list_keys(endpoint, *rest)
    elif command == "inventory":
        out = inventory(endpoint)
    else:
        raise SystemExit(f"unknown command {command!r}")
    out["seconds"] = round(time.monotonic() - started, 2)
    json.dump(out, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main(sys.argv[1:])
