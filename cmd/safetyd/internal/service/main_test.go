package service

import (
	"testing"

	"github.com/tgsafety/tgsafety/monitor/testbin"
)

// TestMain removes the binaries testbin built for this package's tests.
func TestMain(m *testing.M) { testbin.Main(m) }
