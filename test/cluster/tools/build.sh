#!/usr/bin/env bash
# Builds the cluster tests' tools from the Go module proxy (never a downloaded binary) into
# ~/.cache/paddock/bin/<name>-<version> (or $PADDOCK_TOOLS_BIN), one at a time (2 cores):
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, kubeconform,
# kube-score, pulumi, pulumi-language-nodejs and pulumi-resource-kubernetes.
# A binary that is already there is skipped, so a warm run takes a second.
#
#   bash test/cluster/tools/build.sh           build what is missing
#   bash test/cluster/tools/build.sh --list    print "name path" for every tool (nothing built)
#   bash test/cluster/tools/build.sh NAME...   build only these
#
# The wrapper modules beside this script pin every version (go.mod + go.sum); this table
# names the binaries. Logs: ~/.cache/paddock/logs/<name>-<version>.log
set -euo pipefail

TOOLS="$(cd "$(dirname "$0")" && pwd)"
BIN="${PADDOCK_TOOLS_BIN:-$HOME/.cache/paddock/bin}"
LOGS="$(dirname "$BIN")/logs"

K8S=v1.36.3
ETCD=v3.6.16
KWOK=v0.8.0
KUBECONFORM=v0.8.0
KUBE_SCORE=v1.20.0
PULUMI=v3.274.1
# The provider module is served only at this pseudo-version; it reports the version of the
# @pulumi/kubernetes SDK in package-lock.json, so the engine finds it and never downloads one.
PULUMI_K8S_MODULE=v4.0.0-20260115033456-f47bc2d6f199
PULUMI_K8S=v4.34.2

K8S_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$K8S -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=$K8S -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=36"

# name | version | wrapper module dir | package | extra -X flags
TABLE="
etcd|$ETCD|etcd|.|-X go.etcd.io/etcd/api/v3/version.GitSHA=module
kube-apiserver|$K8S|kubernetes|k8s.io/kubernetes/cmd/kube-apiserver|$K8S_LDFLAGS
kube-controller-manager|$K8S|kubernetes|k8s.io/kubernetes/cmd/kube-controller-manager|$K8S_LDFLAGS
kube-scheduler|$K8S|kubernetes|k8s.io/kubernetes/cmd/kube-scheduler|$K8S_LDFLAGS
kwok|$KWOK|kwok|sigs.k8s.io/kwok/cmd/kwok|-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK
kubectl|$K8S|kubernetes|k8s.io/kubernetes/cmd/kubectl|$K8S_LDFLAGS
kubeconform|$KUBECONFORM|linters|github.com/yannh/kubeconform/cmd/kubeconform|-X main.version=$KUBECONFORM
kube-score|$KUBE_SCORE|linters|github.com/zegl/kube-score/cmd/kube-score|-X main.version=$KUBE_SCORE
pulumi|$PULUMI|pulumi|github.com/pulumi/pulumi/pkg/v3/cmd/pulumi|-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI
pulumi-language-nodejs|$PULUMI|pulumi|./language-nodejs|-X main.version=${PULUMI#v}
pulumi-resource-kubernetes|$PULUMI_K8S|pulumi-kubernetes|.|-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=${PULUMI_K8S#v}
"

list() {
  while IFS='|' read -r name version _; do
    if [ -n "$name" ]; then echo "$name $BIN/$name-$version"; fi
  done <<<"$TABLE"
}

# The provider's main embeds schema-embed.json and terraform-mapping-embed.json, which its
# release build generates (cmd/pulumi-resource-kubernetes/generate.go) and the module does not
# hold; -overlay may not replace files beneath GOMODCACHE. So pulumi-kubernetes/main.go (the same
# ten lines) embeds them from its own directory, and they are generated the same way (schema.json
# with "version" set; the mapping minified) outside the repository and given through -overlay.
provider_overlay() {
  local src out="$1"
  src="$(cd "$TOOLS/pulumi-kubernetes" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4)/cmd/pulumi-resource-kubernetes"
  mkdir -p "$out"
  node -e '
    const fs = require("fs"); const [src, dst, out, version] = process.argv.slice(1);
    const schema = JSON.parse(fs.readFileSync(src + "/schema.json", "utf8")); schema.version = version;
    fs.writeFileSync(out + "/schema-embed.json", JSON.stringify(schema));
    fs.writeFileSync(out + "/terraform-mapping-embed.json", JSON.stringify(JSON.parse(fs.readFileSync(src + "/terraform-mapping.json", "utf8"))));
    fs.writeFileSync(out + "/overlay.json", JSON.stringify({ Replace: {
      [dst + "/schema-embed.json"]: out + "/schema-embed.json",
      [dst + "/terraform-mapping-embed.json"]: out + "/terraform-mapping-embed.json" } }));
  ' "$src" "$TOOLS/pulumi-kubernetes" "$out" "${PULUMI_K8S#v}"
  echo "$out/overlay.json"
}

build() {
  local name="$1" version="$2" dir="$3" pkg="$4" ldflags="$5"
  local out="$BIN/$name-$version" log="$LOGS/$name-$version.log" extra=()
  if [ -x "$out" ]; then
    echo "ok    $name $version (cached: $out)"
    return 0
  fi
  mkdir -p "$BIN" "$LOGS"
  if [ "$name" = pulumi-resource-kubernetes ]; then
    extra=(-overlay "$(provider_overlay "$(dirname "$BIN")/overlay/$name-$version")")
  fi
  echo "build $name $version (go build in test/cluster/tools/$dir, log: $log)"
  local start=$SECONDS
  if ! (cd "$TOOLS/$dir" && CGO_ENABLED=0 go build -trimpath "${extra[@]}" -ldflags "-s -w $ldflags" -o "$out.tmp" "$pkg") >"$log" 2>&1; then
    rm -f "$out.tmp"
    echo "FAILED $name $version; the last lines of $log:" >&2
    tail -20 "$log" >&2
    return 1
  fi
  mv "$out.tmp" "$out"
  echo "built $name $version in $((SECONDS - start)) s ($(du -h "$out" | cut -f1))"
}

if [ "${1:-}" = --list ]; then
  list
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: go is not on PATH (the cluster tests build their tools with Go >= 1.26)" >&2; exit 1; }
export GOFLAGS="${GOFLAGS:--buildvcs=false} -mod=readonly"
failed=()
total=$SECONDS
while IFS='|' read -r name version dir pkg ldflags; do
  [ -n "$name" ] || continue
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  build "$name" "$version" "$dir" "$pkg" "$ldflags" || failed+=("$name")
done <<<"$TABLE"
if [ ${#failed[@]} -gt 0 ]; then
  echo "build.sh: could not build: ${failed[*]}" >&2
  exit 1
fi
echo "build.sh: all tools in $BIN ($((SECONDS - total)) s)"
