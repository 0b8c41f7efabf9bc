#!/usr/bin/env bash
# Refresh the vendored layout library of `pt2serde view` (src/pt2serde/cli/static/):
#   tools/refresh_dagre.sh [VERSION]      (default: the registry's latest @dagrejs/dagre)
# `npm pack` fetches the package tarballs from the npm registry into a temporary folder (nothing is
# installed, no package script runs); the browser bundle dist/dagre.min.js (which includes
# @dagrejs/graphlib) and the licenses of both packages are copied, and VENDORED.md is rewritten with
# the versions, tarball URLs and sha256 of the tarballs and of the copied files.
# tests/repo/test_vendored.py checks the copied files against VENDORED.md.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=src/pt2serde/cli/static
SPEC="@dagrejs/dagre${1:+@$1}"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

pack() {  # pack PACKAGE@VERSION -> prints the tarball's path; the tarball is unpacked into $TMP/<name>
    local spec=$1 name=$2 tgz
    tgz=$(cd "$TMP" && npm pack --silent --ignore-scripts "$spec" | tail -n 1)
    mkdir -p "$TMP/$name"
    tar -xzf "$TMP/$tgz" -C "$TMP/$name" --strip-components=1
    echo "$TMP/$tgz"
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
check_integrity() {  # check_integrity TARBALL PACKAGE@VERSION: the registry's sha512 integrity
    local want got
    want=$(npm view "$2" dist.integrity)
    got="sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
    [ "$want" = "$got" ] || { echo "integrity mismatch for $2: registry $want, tarball $got" >&2; exit 1; }
}

DAGRE_TGZ=$(pack "$SPEC" dagre)
DAGRE_VERSION=$(node -p 'require(process.argv[1]).version' "$TMP/dagre/package.json")
GRAPHLIB_VERSION=$(node -p 'require(process.argv[1]).dependencies["@dagrejs/graphlib"]' "$TMP/dagre/package.json")
GRAPHLIB_TGZ=$(pack "@dagrejs/graphlib@$GRAPHLIB_VERSION" graphlib)
check_integrity "$DAGRE_TGZ" "@dagrejs/dagre@$DAGRE_VERSION"
check_integrity "$GRAPHLIB_TGZ" "@dagrejs/graphlib@$GRAPHLIB_VERSION"
echo "vendoring @dagrejs/dagre $DAGRE_VERSION (bundles @dagrejs/graphlib $GRAPHLIB_VERSION) into $DEST"

cp "$TMP/dagre/dist/dagre.min.js" "$DEST/dagre.min.js"
cp "$TMP/dagre/LICENSE" "$DEST/LICENSE-dagre"
cp "$TMP/graphlib/LICENSE" "$DEST/LICENSE-graphlib"

url() { npm view "$1" dist.tarball; }
cat > "$DEST/VENDORED.md" <<MD
# Vendored files

The layout library of \`pt2serde view\`, copied unmodified from the npm registry by
\`tools/refresh_dagre.sh\` (run it again, with a version or none for the latest, to refresh).
\`view_page.render_page\` inlines \`dagre.min.js\` into each page (its source-map comment left out).
\`tests/repo/test_vendored.py\` checks the files' sha256 below.

| package | version | license | tarball | tarball sha256 |
|---|---|---|---|---|
| @dagrejs/dagre | $DAGRE_VERSION | MIT | $(url "@dagrejs/dagre@$DAGRE_VERSION") | $(sha "$DAGRE_TGZ") |
| @dagrejs/graphlib | $GRAPHLIB_VERSION | MIT | $(url "@dagrejs/graphlib@$GRAPHLIB_VERSION") | $(sha "$GRAPHLIB_TGZ") |

| file | copied from | sha256 |
|---|---|---|
| dagre.min.js | @dagrejs/dagre $DAGRE_VERSION: dist/dagre.min.js (includes graphlib) | $(sha "$DEST/dagre.min.js") |
| LICENSE-dagre | @dagrejs/dagre $DAGRE_VERSION: LICENSE | $(sha "$DEST/LICENSE-dagre") |
| LICENSE-graphlib | @dagrejs/graphlib $GRAPHLIB_VERSION: LICENSE | $(sha "$DEST/LICENSE-graphlib") |
MD
echo "wrote $DEST/VENDORED.md"
