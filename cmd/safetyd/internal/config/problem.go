package config

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path is the key in YAML path form (accounts[2].name, http.listen);
	// empty for the file as a whole.
	Path string
	// Line is the line in the file, 0 when unknown.
	Line int
	// Msg says what is wrong and how to fix it. It never contains a
	// secret's value.
	Msg string
}

// String formats the problem as "line: path: message".
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct {
	// File is the configuration's name (usually its path).
	File string
	// Problems are in file order; those without a line come last.
	Problems []Problem
}

// Lines returns one line per problem, "file:line: path: message", the
// form compilers use so editors can jump to it.
func (e *ConfigError) Lines() []string {
	out := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = FormatProblem(e.File, p, "")
	}
	return out
}

// formatProblem writes "file:line: kind: path: message", leaving out what
// is unknown or empty.
func FormatProblem(file string, p Problem, kind string) string {
	var b strings.Builder
	if file != "" {
		b.WriteString(file)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	} else if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if kind != "" {
		b.WriteString(kind + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Error returns Lines joined by newlines.
func (e *ConfigError) Error() string { return strings.Join(e.Lines(), "\n") }

var profileLine = regexp.MustCompile(`\bline (\d+)\b`)

// profileField is the field path a profile's validation error starts
// with (actions.dm_contact.penalty, flood.factors[2]).
var profileField = regexp.MustCompile(`^[a-z_]+(\[[0-9]+\])?(\.[a-z_]+(\[[0-9]+\])?)*$`)

// profileProblem says why limits.Load failed without quoting the file:
// limits_profile may name any file by mistake (/etc/shadow), and the YAML
// decoder's messages quote its lines and keys. What is left is where to
// look: the lines, or the field that failed validation.
func profileProblem(path string, err error) string {
	const why = "its content is not quoted here, in case the path names another file by mistake; see docs/limits.md"
	var pe *fs.PathError
	if errors.As(err, &pe) {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "not found"
		case errors.Is(err, fs.ErrPermission):
			return "permission denied"
		}
		return "cannot read it: " + pe.Err.Error()
	}
	msg := strings.TrimPrefix(err.Error(), path+": ")
	var lines []string
	for _, m := range profileLine.FindAllStringSubmatch(msg, 5) {
		if !slices.Contains(lines, m[1]) {
			lines = append(lines, m[1])
		}
	}
	if len(lines) > 0 {
		return fmt.Sprintf("not a limits profile (YAML problems at line %s); %s", strings.Join(lines, ", "), why)
	}
	if field, _, ok := strings.Cut(msg, ": "); ok && profileField.MatchString(field) && showKey(field) {
		return fmt.Sprintf("%s is missing or not valid; %s", field, why)
	}
	return "not a valid limits profile; " + why
}
