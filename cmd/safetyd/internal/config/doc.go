// Package config is safetyd's configuration: the YAML file's types and
// defaults, strict decoding with every problem reported at once (file,
// line, key), validation, the secrets the file points to (environment
// variables and files, held as Secret so that printing never shows them),
// the paths the daemon will need, and the plan a SIGHUP reload applies.
//
// It knows nothing of the running daemon: the service, the API and the
// commands take a *Config and never parse YAML themselves, so that
// `safetyd check-config` sees exactly what `safetyd run` would.
package config
