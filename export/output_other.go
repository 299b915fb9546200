//go:build !linux

package export

import (
	"errors"
	"os"
)

func openUnnamed(string) (*os.File, error) { return nil, errors.ErrUnsupported }

func linkUnnamed(*os.File, string) error { return errors.ErrUnsupported }

func exchange(a, b string) error { return exchangeByRenames(a, b) }

// The system writes back on its own here.
func startWriteBack(*os.File, int64, int64)  {}
func finishWriteBack(*os.File, int64, int64) {}

// directWriter is Linux's (see direct_linux.go); elsewhere files go
// through the system's cache.
type directWriter struct{}

func newDirectWriter(*os.File) *directWriter { return nil }

func (*directWriter) Write([]byte) (int, error) { return 0, errors.ErrUnsupported }
func (*directWriter) finish() error             { return errors.ErrUnsupported }
func (*directWriter) stop()                     {}
