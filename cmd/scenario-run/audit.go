package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tgsafety/tgsafety/monitor/limits"
	"github.com/tgsafety/tgsafety/scenarios/audit"
)

// auditConfig is the parsed `audit` command line.
type auditConfig struct {
	opts    audit.Options
	jsonOut string
	junit   string
}

const auditUsage = `usage: scenario-run audit [flags] -- COMMAND [ARGS...]

Runs COMMAND against the simulated Telegram (on loopback) with the
connection details and ready sessions in its environment (docs/audit.md),
provokes Telegram's reactions by a fault plan, and judges what the client
did by rules. Progress and the report go to stdout. Exit status: 0 when no
rule at error severity broke, 1 when one did, 2 for a usage or setup error.

flags:
`

func parseAudit(args []string, stdout, stderr io.Writer) (*auditConfig, error) {
	fs := flag.NewFlagSet("scenario-run audit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := &auditConfig{}
	planPath := fs.String("plan", "default", "fault plan: a YAML `file`, default (each reaction once) or none (only observe)")
	fs.DurationVar(&cfg.opts.For, "for", audit.DefaultFor, "stop the command after this much real time")
	accounts := fs.Int("accounts", 1, "how many accounts to create when the plan lists none (acct-1, acct-2, ...)")
	age := fs.String("age", "730d", "the created accounts' age (younger than the profile's young_account_age: the young limits)")
	lang := fs.String("lang", "en", "the created accounts' language: en or ru")
	contacts := fs.Int("contacts", 5, "mutual contacts per created account (0-100)")
	premium := fs.Bool("premium", false, "the created accounts have Telegram Premium")
	profilePath := fs.String("profile", "", "limits profile YAML `file` (default: the embedded default profile)")
	fs.IntVar(&cfg.opts.Users, "users", 1000, "size of the simulated population")
	fs.Uint64Var(&cfg.opts.Seed, "seed", 1, "seed of the population and the simulated spam reports")
	fs.IntVar(&cfg.opts.MaxRecords, "max-records", audit.DefaultMaxRecords, "keep at most this many calls and connection events; the report counts the rest")
	fs.StringVar(&cfg.jsonOut, "json", "", "write the report as JSON to this `file`")
	fs.StringVar(&cfg.junit, "junit", "", "write a JUnit XML report (one case per rule per account) to this `file`")
	showOutput := fs.Bool("client-output", false, "copy the command's output to stderr as it comes (the report keeps its last lines either way)")
	listRules := fs.Bool("rules", false, "list the rules with their severity and reason, and exit")
	printPlan := fs.Bool("print-plan", false, "print the default plan (a starting point for --plan FILE), and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), auditUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	switch {
	case *listRules:
		for _, r := range audit.Rules() {
			fmt.Fprintf(stdout, "%-22s %-7s %s\n", r.ID, r.Severity, r.Reason)
		}
		return nil, flag.ErrHelp
	case *printPlan:
		_, _ = stdout.Write(audit.DefaultPlanYAML())
		return nil, flag.ErrHelp
	}
	cfg.opts.Command = fs.Args()
	if len(cfg.opts.Command) == 0 {
		return nil, usagef("audit: name the command to audit after --, e.g. scenario-run audit -- ./mybot --config bot.yaml")
	}
	plan, err := audit.LoadPlan(*planPath)
	if err != nil {
		return nil, usagef("--plan: %v", err)
	}
	cfg.opts.Plan = plan
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range []string{"accounts", "age", "lang", "contacts", "premium"} {
		if set[name] && plan.Accounts != nil {
			return nil, usagef("--%s: the plan %s lists its accounts; change them there", name, plan.File)
		}
	}
	if plan.Accounts == nil {
		if *accounts < 1 || *accounts > 100 {
			return nil, usagef("--accounts must be within 1-100, got %d", *accounts)
		}
		d, err := limits.ParseDuration(*age)
		if err != nil || d < 0 {
			return nil, usagef("--age: %q is not a duration such as 730d or 30d", *age)
		}
		if *lang != "en" && *lang != "ru" {
			return nil, usagef("--lang must be en or ru, got %q", *lang)
		}
		if *contacts < 0 || *contacts > 100 {
			return nil, usagef("--contacts must be within 0-100, got %d", *contacts)
		}
		for i := 0; i < *accounts; i++ {
			cfg.opts.Accounts = append(cfg.opts.Accounts, audit.AccountSpec{Name: fmt.Sprintf("acct-%d", i+1),
				Age: d.D(), Lang: *lang, Contacts: *contacts, Premium: *premium})
		}
	}
	if cfg.opts.For <= 0 || cfg.opts.For > audit.MaxFor {
		return nil, usagef("--for must be within 1s-24h, got %s", cfg.opts.For)
	}
	if cfg.opts.MaxRecords < 1 {
		return nil, usagef("--max-records must be at least 1, got %d", cfg.opts.MaxRecords)
	}
	if *profilePath != "" {
		p, err := limits.Load(*profilePath)
		if err != nil {
			return nil, usagef("--profile: %v", err)
		}
		cfg.opts.Profile = p
	}
	if *showOutput {
		cfg.opts.ClientOutput = stderr
	}
	return cfg, nil
}

// auditCommand runs `scenario-run audit`.
func auditCommand(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseAudit(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return failCmd(stderr, "audit", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := runAudit(ctx, cfg, stdout)
	if err != nil {
		return failCmd(stderr, "audit", err)
	}
	if !ok {
		return 1
	}
	return 0
}

// runAudit runs the audit and writes the reports; it reports whether
// the client passed. A setup error is a usage error (exit 2).
func runAudit(ctx context.Context, cfg *auditConfig, out io.Writer) (bool, error) {
	cfg.opts.Progress = out
	rep, err := audit.Run(ctx, cfg.opts)
	if err != nil {
		var se *audit.SetupError
		if errors.As(err, &se) {
			return false, usagef("%v", se.Err)
		}
		return false, err
	}
	mark := "✔"
	if !rep.Passed {
		mark = "✘"
	}
	fmt.Fprintf(out, "%s audit %s (wall %s)\n\n", mark, rep.Verdict(), rep.Wall.Round(time.Millisecond))
	if err := rep.WriteText(out); err != nil {
		return false, err
	}
	if cfg.jsonOut != "" {
		if err := writeJSONFile(cfg.jsonOut, rep); err != nil {
			return false, err
		}
	}
	if cfg.junit != "" {
		var b bytes.Buffer
		if err := rep.WriteJUnit(&b); err != nil {
			return false, err
		}
		if err := os.WriteFile(cfg.junit, b.Bytes(), 0o644); err != nil {
			return false, err
		}
	}
	return rep.Passed, nil
}
