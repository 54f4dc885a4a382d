//go:build race

package testbin

// raceBuild: these tests run with the race detector, so the programs they
// build are built with it too and share every compiled package with them
// (a cold machine then compiles gotd once, not twice).
const raceBuild = true
