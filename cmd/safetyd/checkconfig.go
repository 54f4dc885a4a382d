package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tgsafety/tgsafety/cmd/safetyd/internal/config"
)

// checkConfig is "safetyd check-config": it loads and validates a
// configuration file and, with --resolve-secrets, reads the secrets it
// points to. It prints one line per problem, prefixed with the file name
// (and line), and returns 1 when there is any; warnings do not fail.
func checkConfig(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the configuration `FILE` (required)")
	resolve := fs.Bool("resolve-secrets", false, "also read api_id, api_hash, token and phone numbers from their environment variables and files (values are never printed)")
	checkPaths := fs.Bool("check-paths", false, "also check, on this host, the store and session directories and each account's session file")
	printCfg := fs.Bool("print", false, "print the effective configuration (defaults filled in, secrets redacted)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: safetyd check-config --config FILE [--resolve-secrets] [--check-paths] [--print]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *path == "" {
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "check-config: unexpected argument %s\n", config.Quote(fs.Arg(0)))
		} else {
			fmt.Fprintln(stderr, "check-config: --config FILE is required")
		}
		fs.Usage()
		return 2
	}

	cfg, err := config.LoadConfig(*path)
	if err != nil {
		return reportConfigError(stderr, *path, err)
	}
	var pathErrs, pathWarnings []config.Problem
	if *checkPaths {
		pathErrs, pathWarnings = cfg.PathProblems()
	}
	for _, w := range append(cfg.Warnings(), pathWarnings...) {
		fmt.Fprintln(stderr, config.FormatProblem(*path, w, "warning"))
	}
	if len(pathErrs) > 0 {
		return reportConfigError(stderr, *path, &config.ConfigError{File: *path, Problems: pathErrs})
	}
	secrets := ""
	if *resolve {
		s, err := cfg.ResolveSecrets(os.Getenv)
		if err != nil {
			return reportConfigError(stderr, *path, err)
		}
		secrets = fmt.Sprintf(", secrets resolved (api_id, api_hash, %d phone numbers", len(s.Phones))
		if !s.Token.IsZero() {
			secrets += ", API token"
		}
		secrets += ")"
	}
	fmt.Fprintf(stdout, "ok: %s%s\n", cfg.Summary(), secrets)
	if *printCfg {
		fmt.Fprint(stdout, cfg.Redacted())
	}
	return 0
}

// reportConfigError prints each problem on its own line and returns 1.
func reportConfigError(w io.Writer, path string, err error) int {
	var ce *config.ConfigError
	if !errors.As(err, &ce) {
		ce = &config.ConfigError{File: path, Problems: []config.Problem{{Msg: err.Error()}}}
	}
	for _, l := range ce.Lines() {
		fmt.Fprintln(w, l)
	}
	return 1
}
