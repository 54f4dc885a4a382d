// Package testserver will be an in-process MTProto server, built on gotd's
// tgtest, that answers like Telegram's anti-abuse system on a virtual clock
// (issue: testserver). It is empty until then.
package testserver
