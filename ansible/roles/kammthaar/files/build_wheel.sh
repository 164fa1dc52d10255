#!/bin/sh
# Build the kammthaar wheel on the controller: out of the source tree (nothing is
# written into it) and reproducibly (SOURCE_DATE_EPOCH: the same source gives the
# same bytes, so an unchanged tree changes nothing on the Pis).
#
# usage: build_wheel.sh PYTHON SRC DEST
# prints the wheel's path in DEST, then "changed" or "unchanged".
set -eu
python=$1 src=$2 dest=$3
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
printf '[build]\nbuild_base = %s/build\n\n[egg_info]\negg_base = %s\n' "$stage" "$stage" >"$stage/out-of-tree.cfg"
DIST_EXTRA_CONFIG="$stage/out-of-tree.cfg" SOURCE_DATE_EPOCH=315532800 \
    "$python" -m pip wheel --quiet --no-deps --disable-pip-version-check \
    --wheel-dir "$stage/dist" "$src" >&2
set -- "$stage"/dist/*.whl
if [ $# -ne 1 ] || [ ! -f "$1" ]; then
    echo "build_wheel.sh: expected one wheel from $src, got: $*" >&2
    exit 1
fi
name=$(basename "$1")
mkdir -p "$dest"
if cmp -s "$1" "$dest/$name"; then
    printf '%s\nunchanged\n' "$dest/$name"
else
    cp "$1" "$dest/.$name.tmp"
    mv "$dest/.$name.tmp" "$dest/$name"
    printf '%s\nchanged\n' "$dest/$name"
fi
