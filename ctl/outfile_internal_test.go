package ctl

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFileWhole: an export that fails part way (a full disk, found by
// a black-box run: a truncated file was left, its last line cut) leaves no
// file, and no earlier file changed; one that succeeds is in place whole.
func TestWriteFileWhole(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "incidents.jsonl")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("no space left on device")
	err := writeFileWhole(path, func(w io.Writer) error {
		_, _ = io.WriteString(w, `{"id":"a"}`+"\n"+`{"id":`)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the write's", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "earlier\n" {
		t.Errorf("the earlier file became %q", b)
	}
	if err := writeFileWhole(path, func(w io.Writer) error {
		_, err := io.WriteString(w, `{"id":"a"}`+"\n")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"id":"a"}`+"\n" {
		t.Errorf("file = %q", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v; want 0644", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files in the directory, want 1 (no partial file left)", len(entries))
	}
}
