#!/usr/bin/env bash
# Builds the image of deploy/Dockerfile with podman and runs it, as ops would:
#   bash deploy/smoke.sh BINARY
# BINARY is the gateway binary the image carries (the Dockerfile's `prebuilt` stage; CI
# passes its production build, without the demo backend). The base image is Debian
# bookworm made here with debootstrap (no image registry is reachable from CI), the build
# reaches Debian's mirror for ca-certificates. Then the container runs with a config of
# this script's own against a SeaweedFS started here: /readyz answers, an object is served
# byte for byte, the process runs as user 10001, SIGTERM lets a download in flight finish
# and the container exits 0. Prints the image's size. Needs root, podman, runc and
# debootstrap (.ci/run installs them), curl, and .venv from tests/servers/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${1:?usage: deploy/smoke.sh BINARY}
work=$(mktemp -d)
name=assetgate-smoke-$$
weed_pid=
podman_args=(--runtime runc)
cleanup() {
  podman "${podman_args[@]}" rm -f "$name" >/dev/null 2>&1 || true
  if [ -n "$weed_pid" ]; then kill "$weed_pid" 2>/dev/null; wait "$weed_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# podman as this machine runs it: runc (crun refuses its cgroups), no default ulimits (a
# refused RLIMIT_NOFILE otherwise).
printf '[containers]\ndefault_ulimits = []\n' > "$work/containers.conf"
export CONTAINERS_CONF="$work/containers.conf"

base=localhost/debian:bookworm-slim
if ! podman "${podman_args[@]}" image exists "$base"; then
  # The Debian mirror apt uses here (deb822 or one-line sources), else debootstrap's default.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -oE 'https?://[^ ]+/debian/?$|https?://[^ ]+/debian ' | head -n 1 | tr -d ' ' || true)
  echo "debootstrap bookworm from ${mirror:-the default mirror}"
  debootstrap --variant=minbase bookworm "$work/rootfs" ${mirror:+"$mirror"} >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log"; exit 1; }
  rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/*
  tar -C "$work/rootfs" -c . | podman "${podman_args[@]}" import - "$base" >/dev/null
fi

# A build context of the binary and the config the image carries, nothing else.
mkdir -p "$work/context/target/release" "$work/context/config"
cp "$binary" "$work/context/target/release/assetgate"
cp config/assetgate.toml "$work/context/config/"
podman "${podman_args[@]}" build --format docker --network=host -q -f deploy/Dockerfile \
  --build-arg BINARY=prebuilt --build-arg RUNTIME_IMAGE="$base" \
  -t localhost/assetgate:smoke "$work/context" >/dev/null
size=$(podman "${podman_args[@]}" image inspect --format '{{.Size}}' localhost/assetgate:smoke)
echo "image localhost/assetgate:smoke: $((size / 1024 / 1024)) MiB"

# SeaweedFS with one identity, and an object of 8 MiB.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3=$(free_port); data=$(free_port); admin=$(free_port)
printf '{"identities":[{"name":"smoke","credentials":[{"accessKey":"SMOKEKEY","secretKey":"smoke-secret-0123456789"}],"actions":["Admin","Read","List","Write"]}]}' \
  > "$work/s3.json"
ports=()
for flag in s3.port.grpc master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc admin.port admin.port.grpc metricsPort; do
  ports+=("-$flag=$(free_port)")
done
mkdir -p "$work/weed"
weed mini -dir="$work/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false -admin.ui=false \
  -webdav=false -s3.port.iceberg=0 -s3.port.lance=0 -s3.port="$s3" "${ports[@]}" \
  -s3.config="$work/s3.json" -master.volumeSizeLimitMB=64 >"$work/weed.log" 2>&1 &
weed_pid=$!
head -c $((8 << 20)) /dev/urandom > "$work/object.bin"
.venv/bin/python - "$s3" "$work/object.bin" <<'PY'
import sys, time, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1",
                  aws_access_key_id="SMOKEKEY", aws_secret_access_key="smoke-secret-0123456789")
deadline = time.time() + 60
while True:
    try:
        s3.create_bucket(Bucket="smoke")
        s3.upload_file(sys.argv[2], "smoke", "scan.bin")
        break
    except Exception:
        if time.time() > deadline:
            raise
        time.sleep(0.5)
PY

cat > "$work/assetgate.toml" <<EOF
[server]
listen = "127.0.0.1:$data"
[admin]
listen = "127.0.0.1:$admin"
token = "smoke-admin-token-0123456789"
[auth]
keys = [{ kid = "k1", alg = "HS256", secret = "smoke-token-key-0123456789abcdef0123" }]
[[orgs]]
id = "acme"
[[orgs.storages]]
id = "main"
provider = "s3_compatible"
endpoint = "http://127.0.0.1:$s3"
buckets = ["smoke"]
path_style = true
credentials = { type = "access_key", access_key_id = "SMOKEKEY", secret_access_key = "smoke-secret-0123456789" }
EOF
chmod 644 "$work/assetgate.toml"
# No systemd here to time the image's HEALTHCHECK: its command is run by hand below.
podman "${podman_args[@]}" run -d --name "$name" --network=host --no-healthcheck \
  -v "$work/assetgate.toml:/etc/assetgate/assetgate.toml:ro" localhost/assetgate:smoke >/dev/null

for _ in $(seq 1 150); do
  curl -fsS "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "http://127.0.0.1:$admin/readyz" || { podman "${podman_args[@]}" logs "$name" | tail -n 20; exit 1; }
echo
podman "${podman_args[@]}" exec "$name" /usr/local/bin/assetgate probe "http://127.0.0.1:$admin/readyz" >/dev/null
echo "the image's health check command passes"
pid=$(podman "${podman_args[@]}" inspect --format '{{.State.Pid}}' "$name")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
[ "$uid" = 10001 ] || { echo "the gateway runs as uid $uid, not 10001"; exit 1; }
echo "the gateway runs as uid $uid"

token=$(curl -fsS -X POST -H "Authorization: Bearer smoke-admin-token-0123456789" \
  -d '{"ttl":"5m"}' "http://127.0.0.1:$admin/admin/v1/orgs/acme/tokens" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
url="http://127.0.0.1:$data/v1/orgs/acme/storages/main/objects/smoke/scan.bin"
curl -fsS -H "Authorization: Bearer $token" -o "$work/served.bin" "$url"
cmp "$work/object.bin" "$work/served.bin"
echo "an object of 8 MiB served byte for byte"

# SIGTERM with a download in flight (2 MiB/s: four seconds of it).
curl -fsS --limit-rate 2M -H "Authorization: Bearer $token" -o "$work/draining.bin" "$url" &
download=$!
sleep 1
podman "${podman_args[@]}" kill --signal TERM "$name" >/dev/null
wait "$download"
cmp "$work/object.bin" "$work/draining.bin"
status=$(podman "${podman_args[@]}" wait "$name")
[ "$status" = 0 ] || { echo "the container exited $status"; podman "${podman_args[@]}" logs "$name" | tail -n 20; exit 1; }
echo "SIGTERM: the download in flight finished, the container exited 0"
