#!/usr/bin/env bash
# The images' bases where no registry is reachable: Debian bookworm's Python 3.11 from Debian's own packages,
# built with mmdebstrap and imported into podman (make image calls this):
#
#   localhost/kerasreg-base:bookworm        what the images run on (python:3.11-slim's place elsewhere)
#   localhost/kerasreg-base:bookworm-build  the same and binutils, where the venv is made and its libraries
#                                           stripped (python:3.11's place elsewhere)
#
# The essential variant (no apt) plus python3 and libstdc++ (which onnxruntime, grpcio and TensorFlow link to);
# no documentation, manual pages or locales. /usr is merged by mmdebstrap's own hook rather than by the
# usrmerge package, which would bring 47 MB of Perl.
set -euo pipefail
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
build() {  # IMAGE PACKAGES
  if podman image exists "$1"; then
    echo "$1: already built (podman rmi $1 to build it again)"
    return
  fi
  mmdebstrap --quiet --variant=essential --include="$2" --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$work/${1//[:\/]/_}.tar"
  podman import --quiet "$work/${1//[:\/]/_}.tar" "$1" >/dev/null
  echo "$1: built"
}
build localhost/kerasreg-base:bookworm python3,libstdc++6 &
build localhost/kerasreg-base:bookworm-build python3,libstdc++6,binutils &
wait -n
wait -n
