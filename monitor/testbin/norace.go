//go:build !race

package testbin

// raceBuild: see race.go.
const raceBuild = false
