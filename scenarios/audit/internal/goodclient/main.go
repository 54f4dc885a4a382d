// Command goodclient is the audit tests' careful gotd client
// (behave.Good), run by `scenario-run audit` as any program would be.
package main

import (
	"github.com/tgsafety/tgsafety/scenarios/audit/internal/behave"
	"github.com/tgsafety/tgsafety/scenarios/audit/internal/clientmain"
)

func main() { clientmain.Main(behave.Good) }
