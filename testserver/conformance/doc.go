// Package conformance is the conformance suite of the simulated Telegram:
// real MTProto client libraries other than gotd — Telethon (Python),
// GramJS and mtcute (JavaScript) — run against `scenario-run serve` with a
// fresh key exchange each, and TestConformance reports a matrix of client
// × step (docs/clients.md).
//
// The package holds no code: clients/ has one small program per library,
// which is also the documented example of pointing that library at the
// server, and the npm package.json and lockfile that pin the JavaScript
// libraries. `make deps` installs them (Debian's python3-telethon, `npm ci`).
package conformance
