#!/usr/bin/env bash
# Container images and the compose file with Podman, the same way on every machine:
#   scripts/containers.sh base                  a Debian base image built locally (no registry)
#   scripts/containers.sh build [BASE]          the movierec image (BASE: default the local one)
#   scripts/containers.sh standins [BASE]       local stand-ins for Kafka, nginx and Prometheus
#   scripts/containers.sh compose ARGS...       podman-compose ARGS on compose.yaml; with
#                                               STANDINS=1 the stand-ins replace public images
# Images: localhost/debian-base:bookworm, localhost/movierec, localhost/movierec-standins.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
# runc and no default ulimits: what this kind of kernel needs (deploy/podman/containers.conf).
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/deploy/podman/containers.conf}"
local_base=localhost/debian-base:bookworm
# Builds reach the host's package registries through its network and trust store, and keep
# the HEALTHCHECK (the OCI image format has no field for it).
build_flags=(--network host --format docker)
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  build_flags+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
fi

need() { command -v "$1" >/dev/null 2>&1 || { echo "containers: $1 is not installed ($2)" >&2; exit 3; }; }
have_image() { podman image exists "$1"; }

base() {
  if have_image "$local_base"; then
    echo "containers: $local_base already exists" >&2
    return
  fi
  need mmdebstrap "scripts/setup.sh installs it from Debian's packages"
  # The mirror apt already uses here; deb.debian.org elsewhere.
  mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  echo "containers: building $local_base from $mirror" >&2
  mmdebstrap --quiet --variant=apt --include=python3,python3-venv,ca-certificates \
    bookworm "$work/base.tar" "$mirror"
  podman import --quiet "$work/base.tar" "$local_base" >/dev/null
}

build() {
  local from=${1:-$local_base}
  [ "$from" != "$local_base" ] || base
  echo "containers: building localhost/movierec from $from" >&2
  podman build --quiet "${build_flags[@]}" --build-arg "BASE=$from" -t localhost/movierec . >/dev/null
}

standins() {
  local from=${1:-$local_base}
  [ "$from" != "$local_base" ] || base
  libs=$(.venv/bin/python -c 'import sys; sys.path.insert(0, "scripts"); import kafka; print(kafka.fetch(kafka.DEFAULT_VERSION))')
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  cp deploy/compose/standins/Containerfile deploy/compose/standins/kafka_run.py "$work/"
  cp -r "$libs" "$work/libs"
  echo "containers: building localhost/movierec-standins from $from" >&2
  podman build --quiet "${build_flags[@]}" --build-arg "BASE=$from" \
    -t localhost/movierec-standins "$work" >/dev/null
}

compose() {
  if [ -n "${STANDINS:-}" ]; then
    export KAFKA_IMAGE=localhost/movierec-standins NGINX_IMAGE=localhost/movierec-standins \
      PROMETHEUS_IMAGE=localhost/movierec-standins
  fi
  exec .venv/bin/podman-compose -f compose.yaml "$@"
}

need podman "scripts/setup.sh installs it from Debian's packages"
command=${1:-}
shift || true
case "$command" in
  base) base ;;
  build) build "$@" ;;
  standins) standins "$@" ;;
  compose) compose "$@" ;;
  *) echo "usage: scripts/containers.sh base|build [BASE]|standins [BASE]|compose ARGS..." >&2; exit 2 ;;
esac
