#!/usr/bin/env bash
# Crawls a 1,000-page synthetic site served on loopback with the real
# all-in-one pipeline, then asks who links to one of its pages. Needs only Go
# and no network beyond loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
trap 'kill "$site_pid" 2>/dev/null || true; rm -rf "$data"' EXIT

go build -o "$data/linkgraph" ./cmd/linkgraph
go build -o "$data/site" ./bench/site
"$data/site" -addr 127.0.0.1:8089 -pages 1000 &
site_pid=$!
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/8089) 2>/dev/null && break; sleep 0.1; done

# Loopback is private, so the crawler must be told it may go there.
"$data/linkgraph" crawl --data "$data/index" --allow-private-networks --delay 0 \
  --per-host-concurrency 8 http://127.0.0.1:8089/
echo
echo "Who links to http://127.0.0.1:8089/p/42.html (first 10):"
"$data/linkgraph" backlinks --data "$data/index" --limit 10 http://127.0.0.1:8089/p/42.html
