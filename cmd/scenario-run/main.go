// Command scenario-run runs tgsafety's behaviour scenarios and serves the
// test server to other processes. Its commands arrive with the testserver
// and scenarios issues; until then it only reports its version.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println("scenario-run", version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: scenario-run version\n(serve, run and list are not built yet; see docs/architecture.md)")
	os.Exit(2)
}
