package dashboards

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestGeneratedFilesUpToDate fails when dashboards/generated/ differs
// from what the code generates: run make dashboards and commit.
func TestGeneratedFilesUpToDate(t *testing.T) {
	files := generated(t)
	entries, err := os.ReadDir("generated")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			t.Errorf("generated/%s is not generated any more: delete it", e.Name())
		}
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join("generated", name))
		if err != nil {
			t.Errorf("generated/%s: %v (run make dashboards)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("generated/%s is stale: run make dashboards and commit the result", name)
		}
	}
}

// TestFilesDeterministic: two generations are byte-identical, or the
// staleness check would flap.
func TestFilesDeterministic(t *testing.T) {
	a, b := generated(t), generated(t)
	for name := range a {
		if !bytes.Equal(a[name], b[name]) {
			t.Errorf("%s differs between two generations", name)
		}
	}
}
