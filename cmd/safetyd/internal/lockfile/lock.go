package lockfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Lock is an exclusive lock that keeps a second daemon off the
// same store and the same session files: two daemons writing one history
// would interleave it, and two clients on one session are what Telegram
// answers with AUTH_KEY_DUPLICATED. The lock is flock(2) on a file beside
// what it guards, so the kernel releases it when the holder dies, even by
// SIGKILL; the file keeps the holder's pid for the error message.
type Lock struct {
	f *os.File
}

// Take takes the lock at path (created 0600 if missing), or says who
// holds it.
func Take(path, what string) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s %s: %w", what, path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" (pid %d)", pid)
			}
		}
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s %s is in use by another safetyd%s: one daemon per store and session directory", what, path, holder)
		}
		return nil, fmt.Errorf("lock %s %s: %w", what, path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release drops the lock (the file stays: removing it would race a
// daemon that just opened it).
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
		_ = l.f.Close()
	}
}
