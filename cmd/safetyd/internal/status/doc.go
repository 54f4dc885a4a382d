// Package status is the daemon's status page (docs/api.md, "Status
// page"): server-rendered HTML for a person, next to the JSON API for
// programs. `/` shows the fleet at a glance, `/accounts/{name}` one
// account with its timeline (package timeline lays it out), its next step
// and its recent events. It only reads, uses no JavaScript and no
// external assets, and its HTML and CSS are embedded files
// (status.html.tmpl, status.css).
package status
