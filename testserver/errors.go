package testserver

import "strings"

// ErrorCode is the code Telegram sends with an RPC error message
// (docs/signals.md): 420 for flood waits and
// FROZEN_METHOD_INVALID, 401 for deactivated accounts and dead sessions,
// 403 for *_FORBIDDEN, 500 for server-side failures, 400 for the rest
// (PEER_FLOOD among them). Clients pick their error types by it: mtcute
// handles flood waits by code, Telethon and GramJS by message.
func ErrorCode(message string) int {
	switch {
	case strings.HasPrefix(message, "FLOOD_"), strings.HasPrefix(message, "SLOWMODE_WAIT"), message == "FROZEN_METHOD_INVALID":
		return 420
	case strings.HasPrefix(message, "USER_DEACTIVATED"), strings.HasPrefix(message, "AUTH_KEY_"), strings.HasPrefix(message, "SESSION_"):
		return 401
	case strings.HasSuffix(message, "_FORBIDDEN"):
		return 403
	case message == "INTERNAL" || strings.HasSuffix(message, "_RETRY") || message == "RPC_CALL_FAIL" || message == "TIMEOUT":
		return 500
	}
	return 400
}
