// Package sessionfile stores an account's gotd session (its auth key) in a
// file, mode 0600, replaced atomically, so that neither a crash nor a
// careless chmod costs the account a new login or leaks the key.
package sessionfile
