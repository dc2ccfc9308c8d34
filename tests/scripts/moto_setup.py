"""Prepares a moto server for the gateway tests, then turns its auth checks on.

Usage: moto_setup.py PORT < spec.json

spec: {"buckets": {"name": {"key": "text", ...}},
       "roles": {"role-name": "external id required by its trust policy"}}
Prints the gateway user's keys and the role ARNs as JSON. Runs while moto's auth is still off (see
shared TESTING.md): creates the IAM user and its keys, the buckets and objects, and only
then switches signature and IAM checks on.
"""

import json
import sys
import urllib.request

import boto3
from botocore.config import Config

port = sys.argv[1]
spec = json.load(sys.stdin)
endpoint = f"http://127.0.0.1:{port}"
common = dict(
    endpoint_url=endpoint,
    region_name="us-east-1",
    aws_access_key_id="setup",
    aws_secret_access_key="setup",
    config=Config(s3={"addressing_style": "path"}),
)
iam = boto3.client("iam", **common)
s3 = boto3.client("s3", **common)

iam.create_user(UserName="gateway")
iam.put_user_policy(
    UserName="gateway",
    PolicyName="read-everything",
    PolicyDocument=json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sts:AssumeRole"], "Resource": "*"}],
        }
    ),
)
key = iam.create_access_key(UserName="gateway")["AccessKey"]
user_arn = iam.get_user(UserName="gateway")["User"]["Arn"]

role_arns = {}
for role, external_id in spec.get("roles", {}).items():
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": user_arn},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=role,
        PolicyName="labeling-read",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    role_arns[role] = arn

for bucket, objects in spec.get("buckets", {}).items():
    s3.create_bucket(Bucket=bucket)
    for name, text in objects.items():
        s3.put_object(Bucket=bucket, Key=name, Body=text.encode())
    stored = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    if stored != sorted(objects):
        sys.exit(f"moto stored {stored}, expected {sorted(objects)}")

request = urllib.request.Request(
    f"{endpoint}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST"
)
urllib.request.urlopen(request).read()
print(
    json.dumps(
        {"access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"], "roles": role_arns}
    )
)
