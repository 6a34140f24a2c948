#!/usr/bin/env bash
# Renders a range-demo HTML report to PNG with headless Chromium, to check
# by eye that the page draws (timeline, outages, PUBACK latency).
#
#   scripts/render-report.sh                 # a fresh 40 s run on the awful link
#   scripts/render-report.sh run.html        # an existing report
#
# Writes the PNG next to the report (run.png) and prints its path. Installs
# Debian's chromium when it is missing (needs root and apt).
set -euo pipefail
cd "$(dirname "$0")/.."

report=${1:-}
if [[ -z $report ]]; then
	report=$(mktemp -d)/range.html
	go run ./cmd/range-demo -link awful -seed 3 -duration 40s -interval 1s -report "$report" >/dev/null
fi
[[ -f $report ]] || { echo "render-report: no such report: $report" >&2; exit 1; }

if ! command -v chromium >/dev/null; then
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

png=${report%.html}.png
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The background-networking flags keep Chromium from reaching for Google's
# services, which a closed network refuses.
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
	--disable-background-networking --disable-component-update --disable-sync \
	--user-data-dir="$profile" --hide-scrollbars --window-size=1100,800 \
	--screenshot="$png" "file://$(realpath "$report")" 2>/dev/null
[[ -s $png ]] || { echo "render-report: chromium wrote no screenshot" >&2; exit 1; }
echo "$png"
