"""Prepares a moto server for the gateway tests, then turns its auth checks on.

Usage: moto_setup.py PORT < spec.json
       MOTO_ADMIN_KEY=... MOTO_ADMIN_SECRET=... moto_setup.py PORT --add-role NAME EXTERNAL_ID

spec: {"buckets": {"name": {"key": "text", ...}},
       "roles": {"role-name": "external id required by its trust policy"}}
Prints the gateway user's keys, an IAM admin's keys and the role ARNs as JSON. Runs while
moto's auth is still off (see shared TESTING.md): creates the IAM users and their keys, the
buckets and objects, and only then switches signature and IAM checks on. With --add-role,
moto's auth is on: the admin creates one more role trusting the gateway user, requiring
EXTERNAL_ID (an org's external ID, which the gateway generates), and its ARN is printed.
"""

import json
import sys
import urllib.request

import boto3
from botocore.config import Config

import os

port = sys.argv[1]
endpoint = f"http://127.0.0.1:{port}"


def clients(access_key, secret):
    common = dict(
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret,
        config=Config(s3={"addressing_style": "path"}),
    )
    return boto3.client("iam", **common), boto3.client("s3", **common)


def create_role(iam, role, external_id, user_arn):
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
    return arn


if len(sys.argv) > 2 and sys.argv[2] == "--add-role":
    iam, _ = clients(os.environ["MOTO_ADMIN_KEY"], os.environ["MOTO_ADMIN_SECRET"])
    user_arn = iam.get_user(UserName="gateway")["User"]["Arn"]
    print(json.dumps({"role_arn": create_role(iam, sys.argv[3], sys.argv[4], user_arn)}))
    sys.exit(0)

spec = json.load(sys.stdin)
iam, s3 = clients("setup", "setup")

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
    role_arns[role] = create_role(iam, role, external_id, user_arn)

iam.create_user(UserName="roles-admin")
iam.put_user_policy(
    UserName="roles-admin",
    PolicyName="iam",
    PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}
    ),
)
admin = iam.create_access_key(UserName="roles-admin")["AccessKey"]

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
        {
            "access_key_id": key["AccessKeyId"],
            "secret_access_key": key["SecretAccessKey"],
            "admin": {"access_key_id": admin["AccessKeyId"], "secret_access_key": admin["SecretAccessKey"]},
            "roles": role_arns,
        }
    )
)
