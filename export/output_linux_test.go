//go:build linux

package export

import (
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"
)

// TestAsideFileDirect writes files past the page cache (O_DIRECT) in
// writes of odd sizes: each is published whole, whatever its length's
// remainder to the alignment, and a write after the file is finished
// fails instead of being lost.
func TestAsideFileDirect(t *testing.T) {
	dir := t.TempDir()
	for _, total := range []int{0, 1, directAlign, directBuf - 1, directBuf*directBufs*2 + directAlign + 17} {
		f, err := createAside(dir)
		if err != nil {
			t.Fatal(err)
		}
		if f.direct == nil {
			f.discard()
			t.Skipf("the file system of %s has no O_DIRECT", dir)
		}
		want := make([]byte, total)
		for i := range want {
			want[i] = byte(i * 31 >> 8)
		}
		for off, n := 0, 1; off < total; off, n = off+n, n*3+1 {
			n = min(n, total-off)
			if k, err := f.Write(want[off : off+n]); k != n || err != nil {
				t.Fatalf("%d bytes: Write at %d: %d, %v", total, off, k, err)
			}
		}
		path := filepath.Join(dir, "out")
		if err := f.publish(path); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte("x")); err == nil {
			t.Errorf("%d bytes: Write after publish succeeded", total)
		}
		f.Close()
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != total || crc32.ChecksumIEEE(got) != crc32.ChecksumIEEE(want) {
			t.Errorf("published %d bytes (crc %08x), wrote %d (crc %08x)", len(got), crc32.ChecksumIEEE(got), total, crc32.ChecksumIEEE(want))
		}
	}
}
