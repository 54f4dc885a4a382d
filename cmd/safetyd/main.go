// Command safetyd is the tgsafety account-health daemon.
//
// Commands:
//
//	safetyd run --config FILE
//	safetyd login --config FILE --account NAME
//	safetyd check-config --config FILE [--resolve-secrets] [--print]
//	safetyd demo [--listen ADDR] [--accounts N] [--speed X] [--for DURATION]
//	safetyd version
//
// The configuration is described in docs/configuration.md, operations in
// docs/operations.md and the HTTP interface in docs/api.md.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
	"github.com/tgsafety/tgsafety/monitor/daemon"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it, the build's module version or commit (daemon.Version).
var version = "dev"

func init() { version = daemon.Version(version) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: safetyd <command> [flags]

commands:
  run --config FILE
                 monitor the configured accounts until SIGTERM (SIGHUP reloads)
  login --config FILE --account NAME
                 sign an account in from the terminal and store its session
  check-config --config FILE [--resolve-secrets] [--print]
                 validate a configuration file and explain its problems
  demo [--listen ADDR] [--accounts N] [--speed X] [--for DURATION]
                 simulated accounts on an in-process test server, monitored
                 by the daemon's own code, on sped-up time
  version        print the version

configuration: docs/configuration.md   operations: docs/operations.md
`

// run is the whole program: it dispatches args (without the program name)
// and returns the exit status: 0 success, 1 failure, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd := args[0]; cmd {
	case "version":
		if len(args) > 1 {
			fmt.Fprintln(stderr, "usage: safetyd version")
			return 2
		}
		fmt.Fprintln(stdout, "safetyd", version)
		return 0
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "run":
		return runDaemon(args[1:], stdout, stderr)
	case "demo":
		return demoCommand(args[1:], stdout, stderr)
	case "login":
		return loginCommand(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "safetyd: unknown command %s\n%s", config.Quote(cmd), usage)
		return 2
	}
}
