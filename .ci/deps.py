#!/usr/bin/env python3
"""Dependency policy over `cargo metadata`: what ships in the binary (normal and build
dependencies, all features of the default build) may only carry allowed licences, and a crate
in two incompatible versions must be listed below with the reason it cannot be one.

Usage: python3 .ci/deps.py   (run from the repository root; exits 1 on a violation)
"""
import json
import re
import subprocess
import sys

# SPDX identifiers a shipped crate may be offered under (any one of an OR suffices).
ALLOWED_LICENCES = {
    "MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception", "BSD-2-Clause", "BSD-3-Clause",
    "ISC", "Zlib", "Unicode-3.0", "Unicode-DFS-2016", "CC0-1.0", "MPL-2.0", "0BSD",
    "Unlicense", "BSL-1.0", "CDLA-Permissive-2.0", "OpenSSL",
}
# ring's licence file predates SPDX expressions in its manifest for some versions.
LICENCE_BY_NAME = {"ring": "Apache-2.0 AND ISC"}

# Crates allowed in two semver-incompatible versions, with the reason. Anything else fails.
DUPLICATES_ALLOWED = {
    "base64": "0.23 by hyper-util; 0.22 by jsonwebtoken, pem and postgres-protocol (and us, to stay on theirs)",
    "const-oid": "0.10 by the RustCrypto 0.11 digests; 0.9 by x509-cert under tokio-postgres-rustls",
    "crypto-common": "0.2 by hmac 0.13 (aws-sigv4, postgres-protocol); 0.1 by crc-fast's digest 0.10 (s3s)",
    "digest": "0.11 by hmac 0.13 (aws-sigv4, postgres-protocol); 0.10 by crc-fast (s3s)",
    "getrandom": "0.2 by ring; 0.4 by rand 0.10 (postgres-protocol) and tempfile",
    "hashbrown": "0.17 by indexmap (h2), 0.16 by governor, 0.14 by dashmap",
    "syn": "3 by async-trait (deadpool-postgres, s3s); 2 by every other derive",
}


def major(version):
    parts = version.split("-")[0].split(".")
    if parts[0] != "0":
        return parts[0]
    if parts[1] != "0":
        return "0." + parts[1]
    return "0.0." + parts[2]


def licence_ok(expr):
    expr = expr.replace("/", " OR ")
    for alternative in re.split(r"\s+OR\s+", expr.strip("() ")):
        terms = [t.strip("() ") for t in re.split(r"\s+AND\s+", alternative)]
        if all(t in ALLOWED_LICENCES for t in terms):
            return True
    return False


def shipped(meta):
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    seen, todo = set(), list(meta["workspace_members"])
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        for dep in nodes[pid]["deps"]:
            kinds = {k["kind"] for k in dep["dep_kinds"]}
            if kinds & {None, "build"}:
                todo.append(dep["pkg"])
    return seen


def main():
    host = re.search(r"^host: (\S+)$", subprocess.check_output(["rustc", "-vV"], text=True), re.M)[1]
    meta = json.loads(subprocess.check_output(
        ["cargo", "metadata", "--locked", "--format-version", "1", "--filter-platform", host]))
    packages = {p["id"]: p for p in meta["packages"]}
    ids = shipped(meta) - set(meta["workspace_members"])
    failures = []
    versions = {}
    for pid in sorted(ids):
        p = packages[pid]
        licence = p.get("license") or LICENCE_BY_NAME.get(p["name"])
        if not licence or not licence_ok(licence):
            failures.append(f"licence: {p['name']} {p['version']} is offered under {licence!r}")
        versions.setdefault(p["name"], set()).add(major(p["version"]))
    for name, majors in sorted(versions.items()):
        if len(majors) > 1 and name not in DUPLICATES_ALLOWED:
            failures.append(f"duplicate: {name} in {', '.join(sorted(majors))}")
    for name in sorted(DUPLICATES_ALLOWED):
        if len(versions.get(name, ())) < 2:
            failures.append(f"duplicate: {name} is allowed twice but is in the tree once: drop it from the list")
    print(f"{len(ids)} shipped crates; {sum(len(m) > 1 for m in versions.values())} in two majors"
          f" ({len(DUPLICATES_ALLOWED)} allowed)")
    for failure in failures:
        print(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
