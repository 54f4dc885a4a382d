// Package signal turns the errors of Telegram RPC calls into safety signals.
//
// Telegram tells an account it is being throttled, limited, frozen or banned
// only through RPC errors, and several of them look alike: a 420 is usually a
// flood wait but FROZEN_METHOD_INVALID is also a 420, a 401 is usually a dead
// session but SESSION_PASSWORD_NEEDED is a login step. Classify encodes those
// rules once so that every other part of tgsafety reads the same Kind for the
// same error. The rules and their sources are listed in docs/signals.md.
package signal
