// Package scenarios makes client behaviour against Telegram's anti-abuse
// system a readable, repeatable test. A scenario is a YAML file
// (docs/scenarios.md): the accounts (age, language, contacts, premium,
// guard, probes), what they do (log in, write to contacts or strangers,
// resolve, join, invite, import, ask SpamBot, wait) and what the server
// does to them (freeze, ban, limit, faults), and what must hold (states,
// signal counts, SpamBot's answer, risk, guard refusals).
//
// Parse and Load read files strictly: unknown fields are errors, and every
// error names the file, the line and the field. A Runner runs a Scenario:
// real gotd clients, through the guard and the monitor middleware, over
// MTProto to the test server, on virtual time, so a simulated week takes
// well under a second and gives the same outcome on every run. Its Report
// says what happened per step and per account, and which expectation
// failed and why. Hooks run a team's own client code inside a scenario.
//
// library/ holds the scenarios every release is tested against; the
// Ginkgo suite (go test ./scenarios/) has one spec per library file, and
// `scenario-run run` runs any file or folder. The package also holds the
// integration tests of the monitor, probes and guard.
package scenarios
