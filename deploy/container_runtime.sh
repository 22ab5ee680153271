#!/usr/bin/env bash
# Whether containers can be built and run here (make test-deploy asks first): podman, runc and mmdebstrap
# installed, and a container of the Debian base started. Exit 0 if so; otherwise 1, saying why on stderr.
set -uo pipefail
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install podman runc mmdebstrap)" >&2; exit 1; }
done
if ! out="$("$(dirname "$0")/debian_base.sh" 2>&1)"; then
  echo "the Debian base could not be built: $(tail -n 3 <<<"$out")" >&2
  exit 1
fi
if ! out="$(podman --runtime runc run --rm --network none localhost/kerasreg-base:bookworm true 2>&1)"; then
  echo "podman cannot run a container here: $(tail -n 3 <<<"$out")" >&2
  exit 1
fi
