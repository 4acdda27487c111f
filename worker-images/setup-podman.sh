#!/usr/bin/env bash
# Installs what `worker-images/build.sh --debootstrap` and `npm run test:images` need on a
# Debian 12 (bookworm) machine, as root: podman (with runc), debootstrap, and the tools the
# image test uses to give the container a loopback-only network namespace (iproute2 for
# `ip netns`, util-linux for setpriv), git and openssl (the test's HTTPS git server).
#
#   sudo worker-images/setup-podman.sh          # idempotent; prints the versions at the end
#
# Nothing is configured globally: build.sh and the test pass podman the flags this kind of
# machine needs on every call (see PODMAN_FLAGS in build.sh):
#   podman --runtime runc --cgroup-manager cgroupfs ... --ulimit nofile=N:N --ulimit nproc=M:M
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
  echo "setup-podman.sh: run as root (it installs Debian packages)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-podman.sh: needs apt-get (Debian/Ubuntu); install podman, runc and debootstrap with your package manager" >&2
  exit 1
fi

packages=(podman runc debootstrap iproute2 util-linux git openssl ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-podman.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # With recommends: podman needs them for builds (netavark for RUN networking, buildah,
  # catatonit, fuse-overlayfs, slirp4netns).
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
podman --version
runc --version | head -n1
echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap)"
