#!/usr/bin/env bash
# Re-fetches the vendored browser libraries named in web/vendor/VERSIONS from
# the npm registry and copies their dist files (and licences) into web/vendor/.
# The page loads nothing from any other origin, so these copies are the only
# source of its JavaScript, CSS and basemap. Run it after changing VERSIONS,
# then review and commit the diff.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
vendor="$here/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

specs=()
while read -r name version; do
	case "$name" in ''|'#'*) continue ;; esac
	specs+=("$name@$version")
done < "$vendor/VERSIONS"

echo '{"private":true}' > "$tmp/package.json"
(cd "$tmp" && npm install --no-audit --no-fund --ignore-scripts --save-exact "${specs[@]}" >&2)
nm="$tmp/node_modules"

# copy SRC DEST: fails loudly when a package moved a file, so a version bump
# that changes the dist layout is noticed here rather than in the browser.
copy() {
	mkdir -p "$(dirname "$2")"
	cp "$1" "$2"
}

rm -rf "$vendor/leaflet" "$vendor/topojson-client" "$vendor/world-atlas" "$vendor/uplot"

copy "$nm/leaflet/dist/leaflet.js" "$vendor/leaflet/leaflet.js"
copy "$nm/leaflet/dist/leaflet.css" "$vendor/leaflet/leaflet.css"
mkdir -p "$vendor/leaflet/images"
cp "$nm"/leaflet/dist/images/*.png "$vendor/leaflet/images/"
copy "$nm/leaflet/LICENSE" "$vendor/leaflet/LICENSE"

copy "$nm/topojson-client/dist/topojson-client.min.js" "$vendor/topojson-client/topojson-client.min.js"
copy "$nm/topojson-client/LICENSE" "$vendor/topojson-client/LICENSE"

copy "$nm/world-atlas/countries-110m.json" "$vendor/world-atlas/countries-110m.json"
copy "$nm/world-atlas/LICENSE" "$vendor/world-atlas/LICENSE"

copy "$nm/uplot/dist/uPlot.iife.min.js" "$vendor/uplot/uPlot.iife.min.js"
copy "$nm/uplot/dist/uPlot.min.css" "$vendor/uplot/uPlot.min.css"
copy "$nm/uplot/LICENSE" "$vendor/uplot/LICENSE"

# Record what npm actually resolved, so a reviewer sees the versions copied.
for s in "${specs[@]}"; do
	name="${s%@*}"
	got="$(node -p "require('$nm/$name/package.json').version")"
	[ "$s" = "$name@$got" ] || { echo "refresh-vendor: $name resolved to $got, not ${s#*@}" >&2; exit 1; }
done
echo "refresh-vendor: copied ${specs[*]} into $vendor" >&2
