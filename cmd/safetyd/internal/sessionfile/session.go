package sessionfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gotd/td/session"
)

// File is an account's gotd session on disk. Unlike gotd's
// session.FileStorage it replaces the file atomically (write a temporary
// file, fsync, rename), so a crash while gotd saves a new auth key cannot
// leave a truncated session that forces a new login, and it keeps the mode
// 0600 even when an older file was created with a wider one.
type File struct {
	Path string
}

// ErrNoSession is returned by LoadSession when the account has never
// signed in; the daemon reports it instead of starting a client that
// would create an unauthorised key.
var ErrNoSession = session.ErrNotFound

// LoadSession implements session.Storage.
func (s File) LoadSession(context.Context) ([]byte, error) {
	info, err := os.Stat(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("session file %s: %w", s.Path, err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		// Someone widened it by hand; the auth key is as good as a password.
		if err := os.Chmod(s.Path, 0o600); err != nil {
			return nil, fmt.Errorf("session file %s is readable by others (mode %v) and cannot be restricted: %w", s.Path, info.Mode().Perm(), err)
		}
	}
	data, err := os.ReadFile(s.Path)
	if err != nil {
		return nil, fmt.Errorf("session file %s: %w", s.Path, err)
	}
	if len(data) == 0 {
		return nil, ErrNoSession
	}
	return data, nil
}

// StoreSession implements session.Storage.
func (s File) StoreSession(_ context.Context, data []byte) error {
	dir := filepath.Dir(s.Path)
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
		return fmt.Errorf("session file %s: %w", s.Path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("session file %s: %w", s.Path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("session file %s: %w", s.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("session file %s: %w", s.Path, err)
	}
	if err := os.Rename(name, s.Path); err != nil {
		return fmt.Errorf("session file %s: %w", s.Path, err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
