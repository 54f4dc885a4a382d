package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gotd/td/session"
)

// sessionFile is an account's gotd session on disk. Unlike gotd's
// session.FileStorage it replaces the file atomically (write a temporary
// file, fsync, rename), so a crash while gotd saves a new auth key cannot
// leave a truncated session that forces a new login, and it keeps the mode
// 0600 even when an older file was created with a wider one.
type sessionFile struct {
	path string
}

// errNoSession is returned by LoadSession when the account has never
// signed in; the daemon reports it instead of starting a client that
// would create an unauthorised key.
var errNoSession = session.ErrNotFound

// LoadSession implements session.Storage.
func (s sessionFile) LoadSession(context.Context) ([]byte, error) {
	info, err := os.Stat(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session file %s: %w", s.path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		// Someone widened it by hand; the auth key is as good as a password.
		if err := os.Chmod(s.path, 0o600); err != nil {
			return nil, fmt.Errorf("session file %s is readable by others (mode %v) and cannot be restricted: %w", s.path, info.Mode().Perm(), err)
		}
	}
	data, err := os.ReadFile(s.path)
	if err != nil {
		return nil, fmt.Errorf("session file %s: %w", s.path, err)
	}
	if len(data) == 0 {
		return nil, errNoSession
	}
	return data, nil
}

// StoreSession implements session.Storage.
func (s sessionFile) StoreSession(_ context.Context, data []byte) error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sessions directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".session-*")
	if err != nil {
		return fmt.Errorf("sessions directory %s: %w", dir, err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			_ = tmp.Close()
			_ = os.Remove(name)
		}
	}()
	// CreateTemp makes the file 0600 already; say it for the reader.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("session file %s: %w", s.path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("session file %s: %w", s.path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("session file %s: %w", s.path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("session file %s: %w", s.path, err)
	}
	if err := os.Rename(name, s.path); err != nil {
		return fmt.Errorf("session file %s: %w", s.path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
