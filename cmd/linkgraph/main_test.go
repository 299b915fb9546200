package main

import (
	"os"
	"testing"
)

// TestMain lets tests run this test binary as the linkgraph command in a
// child process (see startCLI), so that it can be killed with SIGKILL.
func TestMain(m *testing.M) {
	if os.Getenv("LINKGRAPH_AS_MAIN") == "1" {
		main()
		return
	}
	code := m.Run()
	// The nats-server some tests build lives in a directory of its own.
	if natsServer.dir != "" {
		os.RemoveAll(natsServer.dir)
	}
	os.Exit(code)
}
