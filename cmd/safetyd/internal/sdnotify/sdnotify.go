package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Env names the socket the service manager listens on.
const Env = "NOTIFY_SOCKET"

// Notify sends state ("READY=1", "STOPPING=1", "STATUS=...") to the socket
// $NOTIFY_SOCKET names, as systemd's sd_notify does; without the variable
// it does nothing. An address starting with '@' is in the abstract
// namespace.
func Notify(state string) error {
	path := os.Getenv(Env)
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}
