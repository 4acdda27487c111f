#!/usr/bin/env bash
# Prints the size of Paddock images and their ratio to the unavoidable payload: the agent
# CLI package as installed + the Node runtime + git (with the packages apt added for it),
# measured inside each image by measure-payload.js. Target: ratio <= 1.2.
#
#   worker-images/measure.sh [--builder podman|docker] [--json] IMAGE...
#
# --json prints one JSON object per image instead of the table. Images without Node (the
# egress proxy) get their size only.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
builder="${PADDOCK_BUILDER:-}"
as_json=0
images=()
while [ $# -gt 0 ]; do
  case "$1" in
    --builder) builder="$2"; shift 2 ;;
    --builder=*) builder="${1#*=}"; shift ;;
    --json) as_json=1; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "measure.sh: unknown option $1" >&2; exit 2 ;;
    *) images+=("$1"); shift ;;
  esac
done
[ "${#images[@]}" -gt 0 ] || { echo "measure.sh: name at least one image" >&2; exit 2; }
if [ -z "$builder" ]; then
  if command -v podman >/dev/null; then builder=podman; else builder=docker; fi
fi
case "$builder" in
  podman)
    if [ -n "${PADDOCK_PODMAN_FLAGS+x}" ]; then read -r -a flags <<<"$PADDOCK_PODMAN_FLAGS"; else
      flags=(--cgroup-manager cgroupfs); command -v runc >/dev/null && flags=(--runtime runc "${flags[@]}"); fi
    if [ -n "${PADDOCK_ULIMITS+x}" ]; then read -r -a ulimits <<<"$PADDOCK_ULIMITS"; else
      nofile="$(ulimit -Hn)"; [ "$nofile" = unlimited ] || [ "$nofile" -gt 65536 ] && nofile=65536
      nproc="$(ulimit -Hu)"; [ "$nproc" = unlimited ] || [ "$nproc" -gt 16384 ] && nproc=16384
      ulimits=(--ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc"); fi
    C=(podman "${flags[@]}") ;;
  docker) C=(docker); ulimits=() ;;
  *) echo "measure.sh: --builder must be podman or docker (it runs the images)" >&2; exit 2 ;;
esac

[ "$as_json" = 1 ] || printf '%-48s %9s %9s %8s %8s %9s %7s\n' IMAGE SIZE_MB CLI_MB NODE_MB GIT_MB PAYLOAD_MB RATIO
for image in "${images[@]}"; do
  size="$("${C[@]}" image inspect --format '{{.Size}}' "$image")"
  payload="$("${C[@]}" run --rm -i "${ulimits[@]}" --network none --read-only --cap-drop ALL --user 10001:10001 \
    --entrypoint /usr/local/bin/node "$image" - <"$here/measure-payload.js" 2>/dev/null || true)"
  node -e '
    const [image, size, payload, asJson] = process.argv.slice(1);
    const mb = (b) => (b / 1e6).toFixed(1);
    const out = { image, size: Number(size) };
    if (payload) {
      const p = JSON.parse(payload);
      Object.assign(out, p, { payload: p.cli + p.node + p.git });
      out.ratio = Number((out.size / out.payload).toFixed(3));
    }
    if (asJson === "1") console.log(JSON.stringify(out));
    else if (!payload) console.log(`${image.padEnd(48)} ${mb(out.size).padStart(9)} ${"-".padStart(9)} ${"-".padStart(8)} ${"-".padStart(8)} ${"-".padStart(9)} ${"-".padStart(7)}`);
    else console.log(`${image.padEnd(48)} ${mb(out.size).padStart(9)} ${mb(out.cli).padStart(9)} ${mb(out.node).padStart(8)} ${mb(out.git).padStart(8)} ${mb(out.payload).padStart(9)} ${out.ratio.toFixed(2).padStart(7)}`);
  ' "$image" "$size" "$payload" "$as_json"
done
