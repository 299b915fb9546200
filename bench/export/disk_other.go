//go:build unix && !linux

package main

import "errors"

func writeZeros(string, int64) error {
	return errors.New("the disk case needs Linux (O_DIRECT)")
}
