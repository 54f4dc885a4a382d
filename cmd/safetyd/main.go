// Command safetyd is the tgsafety account-health daemon. Its commands
// (run, login, check-config, demo) arrive with the daemon issue; until then
// it only reports its version.
package main

import (
	"fmt"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) == 2 && os.Args[1] == "version" {
		fmt.Println("safetyd", version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: safetyd version\n(the daemon's commands are not built yet; see docs/architecture.md)")
	os.Exit(2)
}
