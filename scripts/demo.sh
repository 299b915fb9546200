#!/usr/bin/env bash
# Crawls a 1,000-page synthetic site served on loopback with the real
# all-in-one pipeline, then asks who links to one of its pages. Needs only Go
# and no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
site_pid=
trap 'if [ -n "$site_pid" ]; then kill "$site_pid" 2>/dev/null || true; fi; rm -rf "$data"' EXIT

go build -o "$data/linkgraph" ./cmd/linkgraph
go build -o "$data/site" ./bench/site
# A port the system picks, so that nothing else listening here is crawled;
# the site names it in its first line.
"$data/site" -addr 127.0.0.1:0 -pages 1000 2>"$data/site.log" &
site_pid=$!
site=
for _ in $(seq 100); do
  site=$(sed -n 's|^site: .* on \(http://[^ ]*/\)$|\1|p' "$data/site.log")
  [ -n "$site" ] && break
  if ! kill -0 "$site_pid" 2>/dev/null; then
    echo "demo: the test site did not start:" >&2
    cat "$data/site.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$site" ]; then
  echo "demo: the test site did not say where it listens:" >&2
  cat "$data/site.log" >&2
  exit 1
fi

# Loopback is private, so the crawler must be told it may go there.
"$data/linkgraph" crawl --data "$data/index" --allow-private-networks --delay 0 \
  --per-host-concurrency 8 "$site"
echo
echo "Who links to ${site}p/42.html (first 10):"
"$data/linkgraph" backlinks --data "$data/index" --limit 10 "${site}p/42.html"
