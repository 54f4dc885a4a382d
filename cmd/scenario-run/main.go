// Command scenario-run runs tgsafety's behaviour scenarios and serves the
// test server to other processes.
//
//	scenario-run run [--target testserver|staging] [--junit FILE] [--json FILE] [--label-filter EXPR] [--allow-empty] PATH...
//	                                               run scenario files or folders (docs/scenarios.md)
//	scenario-run list PATH...                      list the scenarios in files or folders
//	scenario-run serve --key-out key.pem [--key server.pem] [flags]   serve the simulated Telegram over TCP
//	scenario-run audit [flags] -- COMMAND [ARGS...]   run a client program against it and judge
//	                                                  how it reacts (docs/audit.md)
//	scenario-run version                           print the version
//
// Exit status: 0 on success (for run: every expectation held), 2 for a
// usage or setup error (unknown command, bad flag, unreadable file named by
// a flag, a production target, --target staging without its environment
// variables, a run in which no scenario ran unless --allow-empty, an
// audit that cannot start), 1 for any other failure (a failed
// expectation, a scenario that could not run, an invalid scenario file,
// an audited client that broke a rule at error severity).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tgsafety/tgsafety/monitor/daemon"
)

// version is set at build time with -ldflags "-X main.version=..."; without
// it, the build's module version or commit (daemon.Version).
var version = "dev"

func init() { version = daemon.Version(version) }

const usage = `usage: scenario-run <command> [flags]

commands:
  run      run scenario files or folders and report (docs/scenarios.md)
  list     list the scenarios in files or folders
  serve    serve the simulated Telegram (testserver) over TCP until SIGINT/SIGTERM
  audit    run a client program against the simulated Telegram and judge it (docs/audit.md)
  version  print the version

Run "scenario-run run -h", "scenario-run serve -h" or "scenario-run audit -h" for their flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the exit status. stdout carries
// only a command's result (serve's ready line, the version), so that other
// programs can parse it; everything else goes to stderr.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "run":
		return runCommand(rest, stdout, stderr)
	case "list":
		return listCommand(rest, stdout, stderr)
	case "serve":
		return serveCommand(rest, stdout, stderr)
	case "audit":
		return auditCommand(rest, stdout, stderr)
	case "version":
		if len(rest) != 0 {
			fmt.Fprintf(stderr, "scenario-run version: unexpected argument %q\n", rest[0])
			return 2
		}
		fmt.Fprintln(stdout, "scenario-run", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "scenario-run: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}
