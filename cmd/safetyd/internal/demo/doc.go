// Package demo is `safetyd demo`: the simulated Telegram (testserver) in
// the same process with accounts that behave like real applications
// (behaviour.go: careful bots, cold-DM senders, resolve bursts, channel
// joiners...), monitored through the daemon's own wiring (package
// service), on a virtual clock running --speed times faster than real
// time. The pacer lets time move only while every application waits for
// it, so a slow machine slows the demo down instead of changing what it
// shows.
package demo
