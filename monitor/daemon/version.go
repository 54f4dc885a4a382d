package daemon

import "runtime/debug"

// Version names the running build for `version` commands and the
// build_info metric. A release sets it at link time (-ldflags
// "-X main.version=1.4.0"), which wins; otherwise the Go toolchain's
// build information says which module version or commit was built, so
// that a bug report from a `go install` or `make build` is traceable and
// never just "dev".
func Version(linked string) string {
	if linked != "" && linked != "dev" {
		return linked
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "-dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	return "dev-" + rev + modified
}
