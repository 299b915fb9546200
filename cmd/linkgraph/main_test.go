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
	os.Exit(m.Run())
}
