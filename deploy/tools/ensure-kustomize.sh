#!/usr/bin/env bash
# Build kustomize from the Go module proxy into the git-ignored cache, once.
# Idempotent: when the pinned version is already there it only prints its path.
# Usage: deploy/tools/ensure-kustomize.sh   -> prints the absolute path of the binary
set -euo pipefail

KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.7.1}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${TANDEM_CACHE_DIR:-$root/.cache/tandem}/bin"
target="$bin_dir/kustomize-$KUSTOMIZE_VERSION"

if [[ -x "$target" ]]; then
  echo "$target"
  exit 0
fi

if ! command -v go >/dev/null 2>&1; then
  echo "ensure-kustomize: the go command is needed to build kustomize $KUSTOMIZE_VERSION" >&2
  exit 1
fi

mkdir -p "$bin_dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "ensure-kustomize: building kustomize $KUSTOMIZE_VERSION (first run only)" >&2
GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" \
  go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
mv "$tmp/kustomize" "$target"
ln -sfn "kustomize-$KUSTOMIZE_VERSION" "$bin_dir/kustomize"
echo "$target"
