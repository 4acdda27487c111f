#!/usr/bin/env bash
# Builds Paddock's worker images and tags them as worker-images/images.json says
# (<registry>/<name>:<tag>, the references the constructs use by default):
#
#   runner         the base: Debian bookworm, Node, git, ca-certificates, the paddock CLI
#   controller     the runner + the optional Kubernetes client (only the controller needs it)
#   codex claude-code gemini-cli opencode copilot
#                  one per harness preset: the runner + that CLI (pinned) + its default config
#   egress-proxy   when worker-images/egress-proxy/Dockerfile exists
#
# Usage: worker-images/build.sh [options]
#   --only LIST        comma-separated subset, e.g. --only base,codex ("base" = runner).
#                      A preset image needs the runner image: built in the same run, or
#                      already present with its tag.
#   --builder NAME     podman | docker | buildah   [env PADDOCK_BUILDER; default: the first
#                      that works, in that order]
#   --base-image REF   the Debian bookworm image the runner (and the egress proxy) start from
#                      [env PADDOCK_BASE_IMAGE; default docker.io/library/debian:bookworm-slim]
#   --debootstrap      make that base image here instead of pulling it: debootstrap
#                      --variant=minbase + import as localhost/paddock-debian:bookworm (root;
#                      podman or docker). Kept and reused by later runs.
#   --refresh-base     with --debootstrap: make the base again even if it exists
#   --registry REG     instead of images.json's registry
#   --tag TAG          instead of images.json's tag
#   --ca-file FILE     CA bundle npm needs inside the build, passed as a build secret (never
#                      stored in a layer) [default: $NODE_EXTRA_CA_CERTS, else npm's cafile]
#   --no-sizes         skip the size / payload table at the end
#   -h, --help
#
# Needs node and npm (it packs this repository with `npm pack`, after `npm run build`) and,
# with podman on hosts like this project's CI machine, runs podman as
#   podman --runtime runc --cgroup-manager cgroupfs build --ulimit nofile=N:N --ulimit nproc=M:M
# (crun fails on cgroup v1 hosts; the default rlimits cannot be set). Override with
# PADDOCK_PODMAN_FLAGS and PADDOCK_ULIMITS. worker-images/setup-podman.sh installs podman,
# runc and debootstrap on Debian.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
PRESETS=(codex claude-code gemini-cli opencode copilot)
DEBOOTSTRAP_IMAGE="localhost/paddock-debian:bookworm"

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "build.sh: $*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

only=""
builder="${PADDOCK_BUILDER:-}"
base_image="${PADDOCK_BASE_IMAGE:-}"
use_debootstrap=0
refresh_base=0
registry=""
tag=""
ca_file=""
show_sizes=1
while [ $# -gt 0 ]; do
  case "$1" in
    --only) only="${2:?--only needs a list, e.g. --only base,codex}"; shift 2 ;;
    --only=*) only="${1#*=}"; shift ;;
    --builder) builder="${2:?--builder needs podman, docker or buildah}"; shift 2 ;;
    --builder=*) builder="${1#*=}"; shift ;;
    --base-image) base_image="${2:?--base-image needs an image reference}"; shift 2 ;;
    --base-image=*) base_image="${1#*=}"; shift ;;
    --debootstrap) use_debootstrap=1; shift ;;
    --refresh-base) refresh_base=1; shift ;;
    --registry) registry="${2:?--registry needs a value, e.g. registry.example.com/paddock}"; shift 2 ;;
    --registry=*) registry="${1#*=}"; shift ;;
    --tag) tag="${2:?--tag needs a value, e.g. 0.1.0}"; shift 2 ;;
    --tag=*) tag="${1#*=}"; shift ;;
    --ca-file) ca_file="${2:?--ca-file needs a file}"; shift 2 ;;
    --ca-file=*) ca_file="${1#*=}"; shift ;;
    --no-sizes) show_sizes=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option \"$1\"; see --help" ;;
  esac
done
if [ "$use_debootstrap" = 1 ] && [ -n "$base_image" ]; then
  die "give either --debootstrap or --base-image, not both"
fi

command -v node >/dev/null || die "node is not on PATH (it reads images.json and packs the repository)"
command -v npm >/dev/null || die "npm is not on PATH (it packs the repository and fetches the Node runtime)"

# ---------------------------------------------------------------- images.json, runtime.json
json() { node -e 'const v = process.argv[2].split(".").reduce((o, k) => (o == null ? o : o[k]), require(process.argv[1])); if (v === undefined) process.exit(1); console.log(typeof v === "object" ? Object.keys(v).join(" ") : v);' "$@"; }
registry="${registry:-$(json "$here/images.json" registry)}"
registry="${registry%/}"
tag="${tag:-$(json "$here/images.json" tag)}"
catalog_names=" $(json "$here/images.json" images) "
ref_of() {
  local name
  name="$(json "$here/images.json" "images.$1")" || die "images.json has no image \"$1\""
  echo "$registry/$name:$tag"
}

# ---------------------------------------------------------------- what to build
want=()
if [ -z "$only" ]; then
  want=(runner controller "${PRESETS[@]}")
  [ -f "$here/egress-proxy/Dockerfile" ] && want+=(egress-proxy)
else
  IFS=',' read -r -a requested <<<"$only"
  for name in "${requested[@]}"; do
    name="${name// /}"
    [ -z "$name" ] && continue
    [ "$name" = base ] && name=runner
    case "$catalog_names" in *" $name "*) ;; *) die "--only: unknown image \"$name\"; use base or one of:$(echo "$catalog_names" | tr -s ' ' | tr ' ' ',' | sed 's/^,/ /; s/,$//')" ;; esac
    [ "$name" = egress-proxy ] && [ ! -f "$here/egress-proxy/Dockerfile" ] && die "--only egress-proxy: worker-images/egress-proxy/Dockerfile does not exist"
    want+=("$name")
  done
  [ "${#want[@]}" -gt 0 ] || die "--only: nothing to build"
fi
wants() { local n; for n in "${want[@]}"; do [ "$n" = "$1" ] && return 0; done; return 1; }

# ---------------------------------------------------------------- the builder
podman_flags=()
if [ -n "${PADDOCK_PODMAN_FLAGS+x}" ]; then
  read -r -a podman_flags <<<"$PADDOCK_PODMAN_FLAGS"
else
  command -v runc >/dev/null && podman_flags+=(--runtime runc)
  podman_flags+=(--cgroup-manager cgroupfs)
fi
ulimits=()
if [ -n "${PADDOCK_ULIMITS+x}" ]; then
  read -r -a ulimits <<<"$PADDOCK_ULIMITS"
else
  nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
  nproc="$(ulimit -Hu)"; [ "$nproc" = unlimited ] || [ "$nproc" -gt 16384 ] && nproc=16384
  ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc")
fi

builder_works() {
  case "$1" in
    podman) command -v podman >/dev/null && podman "${podman_flags[@]}" info >/dev/null 2>&1 ;;
    docker) command -v docker >/dev/null && docker info >/dev/null 2>&1 ;;
    buildah) command -v buildah >/dev/null && buildah version >/dev/null 2>&1 ;;
    *) die "--builder \"$1\": use podman, docker or buildah" ;;
  esac
}
if [ -z "$builder" ]; then
  for candidate in podman docker buildah; do
    if builder_works "$candidate"; then builder="$candidate"; break; fi
  done
  [ -n "$builder" ] || die "no working OCI builder: install podman (worker-images/setup-podman.sh), docker or buildah"
else
  builder_works "$builder" || die "--builder $builder does not work here (is it installed, and its daemon running?)"
fi
case "$builder" in
  podman) B=(podman "${podman_flags[@]}") ;;
  docker) B=(docker); export DOCKER_BUILDKIT=1 ;;
  buildah) B=(buildah) ;;
esac

image_exists() {
  case "$builder" in
    podman) podman "${podman_flags[@]}" image exists "$1" ;;
    docker) docker image inspect "$1" >/dev/null 2>&1 ;;
    buildah) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
  esac
}
image_size() {
  case "$builder" in
    podman) podman "${podman_flags[@]}" image inspect --format '{{.Size}}' "$1" ;;
    docker) docker image inspect --format '{{.Size}}' "$1" ;;
    buildah) buildah images --noheading --format '{{.Size}}' "$1" ;;
  esac
}

# ---------------------------------------------------------------- the Debian base
debootstrap_base() {
  [ "$(id -u)" = 0 ] || die "--debootstrap needs root (debootstrap); or pass --base-image"
  command -v debootstrap >/dev/null || die "--debootstrap needs debootstrap (worker-images/setup-podman.sh)"
  [ "$builder" != buildah ] || die "--debootstrap imports with podman or docker; not with buildah alone"
  local mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
  local security="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
  local rootfs
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/paddock-debian.XXXXXX")"
  say "debootstrap --variant=minbase bookworm from $mirror"
  if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    tail -n 30 "$rootfs.log" >&2
    rm -rf "$rootfs" "$rootfs.log"
    die "debootstrap failed"
  fi
  rm -f "$rootfs.log"
  # Like the official debian:bookworm-slim: deb822 sources with updates and security, no
  # docs / man pages / translations, apt keeps no caches or lists.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf '%s\n' \
    'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/groff/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/lintian/*' 'path-exclude /usr/share/linda/*' 'path-exclude /usr/share/locale/*' \
    >"$rootfs/etc/dpkg/dpkg.cfg.d/docker"
  printf '%s\n' \
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };' \
    'Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";' \
    >"$rootfs/etc/apt/apt.conf.d/docker-clean"
  echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  # Security and point-release updates, then the same clean-up as the slim image.
  say "apt-get upgrade inside the new root (bookworm-updates, bookworm-security)"
  chroot "$rootfs" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get update -qq && apt-get -y -qq upgrade >/dev/null && apt-get clean' ||
    { rm -rf "$rootfs"; die "apt-get upgrade in the debootstrap root failed"; }
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/usr/share/groff/* "$rootfs"/usr/share/lintian/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old \
    "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/root/.bash_history
  : >"$rootfs/etc/machine-id"
  rm -f "$rootfs/etc/hostname" "$rootfs/etc/resolv.conf"
  say "import as $DEBOOTSTRAP_IMAGE"
  tar --numeric-owner --xattrs -C "$rootfs" -c . |
    "${B[@]}" import --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$DEBOOTSTRAP_IMAGE" >/dev/null
  rm -rf "$rootfs"
}

if [ "$use_debootstrap" = 1 ]; then
  base_image="$DEBOOTSTRAP_IMAGE"
  if [ "$refresh_base" = 1 ] || ! image_exists "$base_image"; then
    if wants runner || wants controller || wants egress-proxy; then debootstrap_base; fi
  else
    say "Debian base: $base_image (kept from an earlier run; --refresh-base makes it again)"
  fi
fi
base_image="${base_image:-docker.io/library/debian:bookworm-slim}"

# ---------------------------------------------------------------- the build context
ctx="$(mktemp -d "${TMPDIR:-/tmp}/paddock-images.XXXXXX")"
trap 'rm -rf "$ctx"' EXIT
cache="${PADDOCK_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/paddock-images}"
mkdir -p "$cache"

if [ -z "$ca_file" ]; then
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -s "$NODE_EXTRA_CA_CERTS" ]; then
    ca_file="$NODE_EXTRA_CA_CERTS"
  else
    cafile="$(npm config get cafile 2>/dev/null || true)"
    if [ -n "$cafile" ] && [ "$cafile" != null ] && [ "$cafile" != undefined ] && [ -s "$cafile" ]; then ca_file="$cafile"; fi
  fi
fi
[ -z "$ca_file" ] || [ -s "$ca_file" ] || die "--ca-file $ca_file: no such file"
npm_registry="$(npm config get registry 2>/dev/null || echo https://registry.npmjs.org/)"

# A package from the npm registry, checked against the integrity pinned in runtime.json.
fetch_pinned() {
  local what="$1" out="$2" package version integrity file
  package="$(json "$here/runtime.json" "$what.package")"
  version="$(json "$here/runtime.json" "$what.version")"
  integrity="$(json "$here/runtime.json" "$what.integrity")"
  file="$cache/$package-$version.tgz"
  if [ ! -s "$file" ] || [ "$(tgz_integrity "$file")" != "$integrity" ]; then
    say "npm pack $package@$version"
    (cd "$cache" && npm pack --silent "$package@$version" >/dev/null)
    [ -s "$file" ] || die "npm pack $package@$version made no $file"
  fi
  [ "$(tgz_integrity "$file")" = "$integrity" ] || die "$file does not match the integrity pinned in runtime.json"
  cp "$file" "$out"
}
tgz_integrity() { node -e 'const h = require("crypto").createHash("sha512"); h.update(require("fs").readFileSync(process.argv[1])); console.log("sha512-" + h.digest("base64"))' "$1"; }

if wants runner || wants controller; then
  fetch_pinned node "$ctx/node.tgz"
  fetch_pinned npm "$ctx/npm.tgz"
  [ -d "$root/node_modules" ] || die "run npm ci in $root first (the package is built with its dev dependencies)"
  say "npm run build + npm pack (the paddock package)"
  (cd "$root" && npm run --silent build >/dev/null && npm pack --silent --ignore-scripts --pack-destination "$ctx" >/dev/null)
  mv "$ctx"/paddock-*.tgz "$ctx/paddock.tgz"
  cp "$root/package-lock.json" "$ctx/package-lock.json"
fi
for preset in "${PRESETS[@]}"; do
  wants "$preset" || continue
  mkdir -p "$ctx/agents/$preset"
  cp "$here/$preset/package.json" "$here/$preset/package-lock.json" "$ctx/agents/$preset/"
done
cp "$here/bake-defaults.js" "$ctx/"

build_args=(--build-arg "NPM_CONFIG_REGISTRY=$npm_registry")
secret_args=()
[ -n "$ca_file" ] && secret_args=(--secret "id=extra_ca,src=$ca_file")
build() { # build TAG DOCKERFILE CONTEXT [args...]
  local ref="$1" dockerfile="$2" context="$3" title
  shift 3
  title="${ref##*/}"
  title="${title%:*}"
  local extra=()
  [ "$builder" = docker ] || extra=("${ulimits[@]}")
  [ "$builder" = podman ] && extra+=(--layers)
  "${B[@]}" build "${extra[@]}" "${secret_args[@]}" "${build_args[@]}" \
    --label "org.opencontainers.image.title=$title" --label "org.opencontainers.image.version=$tag" \
    "$@" -f "$dockerfile" -t "$ref" "$context"
}

runner_ref="$(ref_of runner)"
toolchain_ref="localhost/paddock-toolchain:$tag"
built=()
started=$SECONDS
if wants runner; then
  say "build $runner_ref from $base_image ($builder)"
  build "$toolchain_ref" "$here/runner/Dockerfile" "$ctx" --build-arg "BASE_IMAGE=$base_image" --target toolchain
  build "$runner_ref" "$here/runner/Dockerfile" "$ctx" --build-arg "BASE_IMAGE=$base_image"
  built+=("$runner_ref")
fi
if wants controller; then
  # The runner image plus the optional Kubernetes client, which only the controller needs.
  ref="$(ref_of controller)"
  say "build $ref from $base_image ($builder)"
  build "$ref" "$here/runner/Dockerfile" "$ctx" --build-arg "BASE_IMAGE=$base_image" --build-arg PADDOCK_CONTROLLER=1 \
    --label "org.opencontainers.image.description=Paddock's controller: the runner base plus the Kubernetes client"
  built+=("$ref")
fi
for preset in "${PRESETS[@]}"; do
  wants "$preset" || continue
  image_exists "$runner_ref" || die "$preset needs $runner_ref: build it too (--only base,$preset)"
  image_exists "$toolchain_ref" || die "$preset needs $toolchain_ref (the runner's build toolchain): build the runner in this run or an earlier one"
  ref="$(ref_of "$preset")"
  # The preset's CLI: command, executable and title from the "paddock" field of its package.json.
  mapfile -t cli < <(node -e 'const c = require(process.argv[1]).paddock; console.log([c.command, c.bin, c.title].join("\n"))' "$here/$preset/package.json")
  say "build $ref"
  build "$ref" "$here/harness/Dockerfile" "$ctx" \
    --build-arg "BASE_IMAGE=$runner_ref" --build-arg "BUILDER_IMAGE=$toolchain_ref" \
    --build-arg "PRESET=$preset" --build-arg "CLI_COMMAND=${cli[0]}" --build-arg "CLI_BIN=${cli[1]}" --build-arg "CLI_TITLE=${cli[2]}" \
    --build-arg "PADDOCK_IMAGE_REGISTRY=$registry" --build-arg "PADDOCK_IMAGE_TAG=$tag"
  built+=("$ref")
done
if wants egress-proxy; then
  ref="$(ref_of egress-proxy)"
  say "build $ref from $base_image"
  build "$ref" "$here/egress-proxy/Dockerfile" "$here/egress-proxy" --build-arg "BASE_IMAGE=$base_image"
  built+=("$ref")
fi
say "built ${#built[@]} image(s) in $((SECONDS - started)) s"

# ---------------------------------------------------------------- sizes
if [ "$show_sizes" = 1 ]; then
  if [ "$builder" = buildah ]; then
    for ref in "${built[@]}"; do
      printf '%-55s %s\n' "$ref" "$(image_size "$ref")"
    done
  else
    "$here/measure.sh" --builder "$builder" "${built[@]}"
  fi
fi
