package main

import (
	"strings"
	"testing"
)

// The cluster commands refuse bad flags with exit code 2 and say what is
// wrong, before connecting to anything.
func TestClusterUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"shard"}, "--shards is required"},
		{[]string{"shard", "--shards", "0-64"}, "0 <= FIRST <= LAST < 64"},
		{[]string{"shard", "--shards", "9-3"}, "0 <= FIRST <= LAST"},
		{[]string{"shard", "--shards", "all"}, "want FIRST-LAST"},
		{[]string{"shard", "--shards", "auto"}, "needs --shard-nodes"},
		{[]string{"shard", "--shards", "auto", "--shard-nodes", "4", "--ordinal", "4"}, "--ordinal 4"},
		{[]string{"shard", "--shards", "0-3", "--shard-nodes", "4"}, "go with --shards auto"},
		{[]string{"shard", "--shards", "0-3", "--shard-count", "0"}, "--shard-count 0"},
		{[]string{"shard", "--shards", "0-3", "--replicas", "7"}, "--replicas 7"},
		{[]string{"shard", "--shards", "0-3", "--scope", "planet"}, "scope"},
		{[]string{"shard", "--shards", "0-3", "extra"}, `unexpected argument "extra"`},
		{[]string{"shard", "--shards", "0-3", "--cache-size", "64KiB"}, "--cache-size 64KiB: must be at least 1MiB"},
		{[]string{"shard", "--shards", "0-3", "--zstd-level", "-3"}, "--zstd-level -3: must be from 1 to 19"},
		{[]string{"worker", "--workers", "0"}, "--workers 0"},
		{[]string{"worker", "--nats-tls-cert", "c.pem"}, "--nats-tls-cert and --nats-tls-key together"},
		{[]string{"worker", "--nats-creds", "/nonexistent/creds"}, "--nats-creds"},
		{[]string{"worker", "--shutdown-grace", "0s"}, "--shutdown-grace 0s"},
		{[]string{"gateway", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key together"},
		{[]string{"gateway", "--auth-token-file", "/nonexistent/token"}, "--auth-token-file"},
		{[]string{"gateway", "--rank-every", "-1h"}, "--rank-every -1h0m0s: must not be negative"},
		{[]string{"rank", "--nats", "nats://127.0.0.1:1", "--data", "x"}, "give one of --data, --server, --nats and --graph"},
		{[]string{"rank", "--nats", "nats://127.0.0.1:1", "--nats-tls-cert", "c.pem"}, "--nats-tls-cert and --nats-tls-key together"},
		{[]string{"seed"}, "at least one seed URL"},
		{[]string{"seed", "ftp://example.com/"}, "absolute http:// or https:// URL"},
	} {
		code, _, errOut := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr:\n%s\nwant exit 2 and %q", c.args, code, errOut, c.want)
		}
	}
}

func TestShardRangeByOrdinal(t *testing.T) {
	for _, c := range []struct {
		nodes, ordinal, lo, hi int
	}{
		{1, 0, 0, 64}, {2, 0, 0, 32}, {2, 1, 32, 64}, {3, 0, 0, 21}, {3, 2, 42, 64},
	} {
		lo, hi, err := shardRange("auto", c.nodes, c.ordinal, 64)
		if err != nil || lo != c.lo || hi != c.hi {
			t.Errorf("%d nodes, ordinal %d: [%d, %d) %v, want [%d, %d)", c.nodes, c.ordinal, lo, hi, err, c.lo, c.hi)
		}
	}
}

// A role that cannot reach NATS says so and exits 1.
func TestSeedWithoutNATS(t *testing.T) {
	code, _, errOut := runCLI(t, "seed", "--nats", "nats://127.0.0.1:1", "--timeout", "500ms", "http://example.com/")
	if code != 1 || !strings.Contains(errOut, "not reachable") {
		t.Errorf("exit %d, stderr %q; want 1 and 'not reachable'", code, errOut)
	}
}
