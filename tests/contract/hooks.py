"""A check of our own for the admin API's schemathesis run (tests/gateway/contract.rs): no
answer ever holds a secret. The secrets are every value sent in a secret field during the
run (a storage's keys, SAS, key file) and the ones the test names in
ASSETGATE_CONTRACT_SECRETS (the admin token, the master key, the token key, a stored
storage's secret key), separated by newlines."""

import json
import os

import schemathesis

SECRET_FIELDS = {
    "secretAccessKey", "secret_access_key", "privateKey", "accountKey", "account_key",
    "sasToken", "sas_token", "sas", "serviceAccountKey", "service_account_key", "keyJson",
    "private_key",
}


def plausible(secret):
    """Long and varied enough that an answer cannot hold it by chance."""
    return len(secret) >= 12 and len(set(secret)) >= 6


def secrets_in(value, out):
    if isinstance(value, dict):
        for name, item in value.items():
            if name in SECRET_FIELDS and isinstance(item, str):
                out.add(item)
            secrets_in(item, out)
    elif isinstance(value, list):
        for item in value:
            secrets_in(item, out)
    elif isinstance(value, str) and value.startswith("{"):
        # A key file given as its JSON text.
        try:
            secrets_in(json.loads(value), out)
        except ValueError:
            pass


@schemathesis.check
class no_secret_in_any_answer:
    """Fails when an answer holds a secret sent earlier in the run, or a configured one."""

    def __init__(self):
        named = os.environ.get("ASSETGATE_CONTRACT_SECRETS", "")
        self.secrets = {s for s in named.split("\n") if s}

    def after_response(self, ctx, response, case):
        sent = set()
        secrets_in(case.body, sent)
        self.secrets.update(s for s in sent if plausible(s))
        text = response.text_lossy() + "".join(f"{k}: {v}" for k, v in response.headers.items())
        for secret in self.secrets:
            if secret in text:
                raise AssertionError(
                    f"the answer of {case.operation.label} ({response.status_code}) holds a secret"
                )
