package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PathProblems checks the files and directories `safetyd run` will need,
// so that check-config finds before a start what would stop it (a missing
// store directory fails the start with "no such file or directory") or
// leave an account unmonitored (no session file). Errors are what stops
// a start; warnings what a start survives.
func (c *Config) PathProblems() (errs, warnings []Problem) {
	if dir := filepath.Dir(c.Store.Path); c.Store.Driver != DriverPostgres && !isWritableDir(dir) {
		errs = append(errs, Problem{Path: "store.path", Msg: fmt.Sprintf(
			"directory %s does not exist or is not writable by this user: create it (install -d -o tgsafety -m 0700 %s)", showPath(dir), showPath(dir))})
	}
	if !isWritableDir(c.SessionsDir) {
		if parent := filepath.Dir(c.SessionsDir); !isWritableDir(parent) {
			errs = append(errs, Problem{Path: "sessions_dir", Msg: fmt.Sprintf(
				"directory %s does not exist and cannot be created here: create it (install -d -o tgsafety -m 0700 %s)", showPath(c.SessionsDir), showPath(c.SessionsDir))})
			return errs, warnings
		}
	}
	for i, a := range c.Accounts {
		p := c.SessionPath(a.Name)
		fi, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			warnings = append(warnings, Problem{Path: fmt.Sprintf("accounts[%d]", i), Msg: fmt.Sprintf(
				"no session for account %s: it will not be monitored until you sign in with `safetyd login --account %s`", a.Name, a.Name)})
		case err != nil:
			errs = append(errs, Problem{Path: fmt.Sprintf("accounts[%d]", i), Msg: fmt.Sprintf("session file of %s: %v", a.Name, err)})
		case fi.Mode().Perm()&0o077 != 0:
			warnings = append(warnings, Problem{Path: fmt.Sprintf("accounts[%d]", i), Msg: fmt.Sprintf(
				"session file of %s has mode %04o; safetyd narrows it to 0600 when it loads it", a.Name, fi.Mode().Perm())})
		}
	}
	return errs, warnings
}

// isWritableDir reports whether dir is a directory this process can
// create files in.
func isWritableDir(dir string) bool {
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return false
	}
	f, err := os.CreateTemp(dir, ".safetyd-check-*")
	if err != nil {
		return false
	}
	name := f.Name()
	_ = f.Close()
	_ = os.Remove(name)
	return true
}
