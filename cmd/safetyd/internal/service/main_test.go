package service

import (
	"os"
	"testing"

	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// TestMain removes the binaries testbin built for this package's tests
// and stops the throwaway PostgreSQL, if a test started one.
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	pgtest.Cleanup()
	os.Exit(code)
}
