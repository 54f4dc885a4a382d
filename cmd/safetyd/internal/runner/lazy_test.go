package runner

import (
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// countedField counts how often zap encodes it.
type countedField struct{ n *int }

func (f countedField) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	*f.n++
	enc.AddString("msg_id", "42")
	return nil
}

// gotd derives a logger for every message; the fields of those that never
// write a line must not be encoded, and those that do must carry them all.
func TestLazyFieldsEncodeOnlyWhatIsWritten(t *testing.T) {
	var n int
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	var out strings.Builder
	base := zapcore.NewCore(enc, zapcore.AddSync(&out), zapcore.WarnLevel)
	log := zap.New(base).WithOptions(zap.WrapCore(lazyFields))

	for range 100 {
		log.With(zap.Object("msg", countedField{&n})).With(zap.String("type", "ping")).Debug("sent")
	}
	if n != 0 {
		t.Fatalf("fields of 100 debug lines that were not written were encoded %d times", n)
	}
	log.With(zap.Object("msg", countedField{&n})).With(zap.String("type", "rpc_error")).Warn("failed")
	if n != 1 {
		t.Errorf("the written line's fields were encoded %d times, want 1", n)
	}
	if got := out.String(); !strings.Contains(got, `"msg":{"msg_id":"42"}`) || !strings.Contains(got, `"type":"rpc_error"`) || strings.Count(got, "\n") != 1 {
		t.Errorf("written: %s", got)
	}

	// Observed the same way as without the wrapper.
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).WithOptions(zap.WrapCore(lazyFields)).With(zap.String("account", "a")).Info("x")
	if e := logs.All(); len(e) != 1 || e[0].ContextMap()["account"] != "a" {
		t.Errorf("observed %+v", e)
	}
}
