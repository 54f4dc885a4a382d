// Command gen writes tgsafety's dashboards and alert rules into
// dashboards/generated/ (make dashboards). A test fails when the committed
// files differ from what it would write.
package main

import (
	"fmt"
	"os"

	"github.com/tgsafety/tgsafety/dashboards"
)

func main() {
	dir := "dashboards/generated"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	names, err := dashboards.Write(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	for _, n := range names {
		fmt.Println(dir + "/" + n)
	}
}
