package scenarios

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"go.uber.org/zap"
)

// On staging (no virtual clock) a panicking hook is an error of its step,
// as on the test server, not a crash of scenario-run.
func TestCallRecoversPanicsOnStaging(t *testing.T) {
	w := &world{} // no virtual clock: the staging path
	err := w.call(context.Background(), func(context.Context) error { panic("boom") })
	if err == nil || !strings.Contains(err.Error(), "panic in client code: boom") {
		t.Fatalf("call: %v, want the panic as an error", err)
	}
}

// ConfigureClient runs after the runner's options; on staging the test
// DCs are set again afterwards, so Go code cannot point a staging run at
// Telegram's production DCs.
func TestConfigureClientCannotLeaveTheTestDCsOnStaging(t *testing.T) {
	cfg := StagingConfig{AppID: 1, AppHash: "x", Phone: "9996611234"} // test DC 1
	var called bool
	opts := Options{Target: TargetStaging, Staging: cfg, ConfigureClient: func(account string, o *telegram.Options) {
		called = true
		o.DC, o.DCList = 4, dcs.Prod()
		o.Device.DeviceModel = "kept"
	}}
	w := &world{r: &Runner{opts: opts}, log: zap.NewNop()}
	a := &acctRun{w: w, spec: &Account{Name: "alice"}}
	o := cfg.clientOptions(nil)
	a.configure(&o)
	if !called {
		t.Fatal("ConfigureClient was not called")
	}
	if o.DC != 1 || !reflect.DeepEqual(o.DCList, dcs.Test()) {
		t.Fatalf("after ConfigureClient: DC %d, DC list %+v; want test DC 1 and dcs.Test()", o.DC, o.DCList.Options[:1])
	}
	if o.Device.DeviceModel != "kept" {
		t.Fatalf("ConfigureClient's other settings were lost: %+v", o.Device)
	}
}
