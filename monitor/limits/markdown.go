package limits

import (
	"fmt"
	"strings"
)

// Markdown renders a profile as the tables of docs/limits.md, so the page
// is generated from the embedded profile and cannot drift from it.
func (p *Profile) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "## Profile `%s`\n\n%s\n\n", p.Name, p.Description)
	fmt.Fprintf(&b, "Accounts younger than **%s** use the *young* limits where an action has them.\n\n", p.YoungAccountAge)
	b.WriteString("| action | methods | penalty | limit | young | source |\n|---|---|---|---|---|---|\n")
	for _, a := range p.ActionNames() {
		ap := p.Actions[a]
		for i, l := range ap.Limits {
			name, methods, pen := "", "", ""
			if i == 0 {
				name = "`" + string(a) + "`"
				methods = strings.Join(ap.Methods, ", ")
				pen = string(ap.Penalty)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %d per %s | | %s |\n", name, methods, pen, l.Max, l.Window, escape(l.Source))
		}
		for _, l := range ap.Young {
			fmt.Fprintf(&b, "| | | | | %d per %s | %s |\n", l.Max, l.Window, escape(l.Source))
		}
	}
	f := p.Flood
	fmt.Fprintf(&b, "\n### Flood-wait escalation\n\nWithin %s, the n-th violation of a flood-wait limit waits the time until the limit frees up multiplied by %s; the next one is locked out for **%s**.\n\nSource: %s\n",
		f.EscalationWindow, joinFloats(f.Factors), f.Lockout, f.Source)
	r := p.Restrictions
	ds := make([]string, len(r.Durations))
	for i, d := range r.Durations {
		ds[i] = d.String()
	}
	fmt.Fprintf(&b, "\n### Restrictions\n\nSuccessive limits last %s, then permanent; %d violations while limited move to the next step; after the permanent limit: **%s** (a frozen account is deleted %s after the freeze).\n\nSource: %s\n",
		strings.Join(ds, ", "), r.ViolationsToEscalate, r.AfterPermanent, r.FreezeFor, r.Source)
	rep := p.Reports
	fmt.Fprintf(&b, "\n### Spam reports\n\nEach DM to a non-contact is reported with probability %v (deterministic, seeded); %d reports within %s limit the account.\n\nSource: %s\n",
		rep.Probability, rep.Threshold, rep.Window, rep.Source)
	return b.String()
}

func escape(s string) string { return strings.ReplaceAll(s, "|", "\\|") }

func joinFloats(fs []float64) string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = fmt.Sprintf("×%g", f)
	}
	return strings.Join(out, ", ")
}
