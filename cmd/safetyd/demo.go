package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	ossignal "os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/demo"
)

// demoCommand is "safetyd demo": the test server in-process with simulated
// accounts, monitored through the daemon's own wiring (service), with
// virtual time running --speed times faster than real time.
func demoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := demo.Options{Version: version}
	fs.StringVar(&o.Listen, "listen", config.DefaultListen, "HTTP `ADDR` for the status page, API and /metrics")
	fs.IntVar(&o.Accounts, "accounts", demo.DefaultAccounts, "simulated accounts (`N`); account i runs behaviour i mod 12")
	fs.Float64Var(&o.Speed, "speed", demo.DefaultSpeed, "virtual seconds per real second (`X`)")
	fs.DurationVar(&o.For, "for", 0, "stop after this much virtual time (`DURATION`, e.g. 24h); 0 runs until Ctrl-C")
	fs.StringVar(&o.Store, "store", "", "history database `FILE` (default: a temporary one, removed at exit)")
	fs.BoolVar(&o.Traffic, "traffic", true, "run the simulated applications (false: probes only)")
	fs.BoolVar(&o.Quiet, "quiet", false, "no live summary on stdout")
	fs.StringVar(&o.Token, "token", "", "API token for the mutating endpoints (default: from TGSAFETY_API_TOKEN; none: read-only API)")
	fs.Uint64Var(&o.Seed, "seed", 1, "simulation seed")
	var cpuProfile string
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to `FILE` (go tool pprof): where a large demo's time goes")
	if code, ok := parseFlags(fs, args, "usage: safetyd demo [--listen ADDR] [--accounts N] [--speed X] [--for DURATION]", stderr); !ok {
		return code
	}
	if o.Accounts < 1 || o.Accounts > demo.MaxAccounts {
		fmt.Fprintf(stderr, "demo: --accounts %d: want 1 to %d\n", o.Accounts, demo.MaxAccounts)
		return 2
	}
	if o.Speed < 1 || o.Speed > 100000 {
		fmt.Fprintf(stderr, "demo: --speed %g: want 1 to 100000\n", o.Speed)
		return 2
	}
	if ok, err := config.ListenLoopback(o.Listen); err != nil {
		fmt.Fprintf(stderr, "demo: --listen %s: %v\n", config.Quote(o.Listen), err)
		return 2
	} else if !ok {
		fmt.Fprintf(stderr, "demo: --listen %s: the demo serves loopback addresses only\n", config.Quote(o.Listen))
		return 2
	}
	if o.Token == "" {
		o.Token = os.Getenv("TGSAFETY_API_TOKEN")
	}
	if cpuProfile != "" {
		f, err := os.OpenFile(cpuProfile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(stderr, "demo: --cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "demo: --cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := ossignal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := demo.Run(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "demo:", err)
		if errors.Is(err, syscall.EADDRINUSE) {
			fmt.Fprintf(stderr, "demo: something (another demo or safetyd?) already listens on %s; pick another address with --listen, e.g. make demo DEMOFLAGS=\"--listen 127.0.0.1:9465\"\n", o.Listen)
		}
		return 1
	}
	return 0
}
