// Command badclient is the audit tests' misbehaving gotd client
// (behave.Bad): it retries FLOOD_WAIT at once, ignores PEER_FLOOD and
// reconnects in a loop.
package main

import (
	"github.com/tgsafety/tgsafety/scenarios/audit/internal/behave"
	"github.com/tgsafety/tgsafety/scenarios/audit/internal/clientmain"
)

func main() { clientmain.Main(behave.Bad) }
