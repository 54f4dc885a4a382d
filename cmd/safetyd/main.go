// Command safetyd is the tgsafety account-health daemon.
//
// Commands:
//
//	safetyd version
//	safetyd check-config --config FILE [--resolve-secrets] [--print]
//
// run, login and demo arrive with the daemon issue; until then they exit
// with status 2. The configuration is described in docs/configuration.md.
package main

import (
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: safetyd <command> [flags]

commands:
  check-config --config FILE [--resolve-secrets] [--print]
                 validate a configuration file and explain its problems
  version        print the version

not implemented yet: run, login, demo (see docs/architecture.md)
configuration: docs/configuration.md
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
	case "run", "login", "demo":
		// The daemon issue adds these commands.
		fmt.Fprintf(stderr, "safetyd %s: not implemented yet\n", cmd)
		return 2
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "safetyd: unknown command %s\n%s", quote(cmd), usage)
		return 2
	}
}
