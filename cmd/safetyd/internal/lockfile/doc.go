// Package lockfile keeps a second safetyd off the same store and session
// files with an flock(2) that the kernel releases when its holder dies.
package lockfile
