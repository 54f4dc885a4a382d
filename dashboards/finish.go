package dashboards

//lint:file-ignore SA1019 dashboard v1 is deprecated in favour of v2, but v1 JSON is what Grafana import, file provisioning and /api/dashboards/db take (docs/dashboards.md).

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// finish builds a dashboard and repairs what the SDK (v0.0.18) leaves
// wrong, so that the JSON is valid against its own schemas and behaves in
// Grafana:
//   - panel ids are unset and rows get "id": 0: every panel and row gets a
//     unique id, in layout order (Grafana keys panel state and links by id);
//   - range queries get no refId: each target gets A, B, … in its panel,
//     which transformations and overrides refer to;
//   - dashboard links default to placement "inControlsMenu", which hides
//     them in Grafana 12.4+: the placement is cleared.
//
// The invalid enum defaults (stat orientation, state-timeline tooltip,
// table footer reducer) are set explicitly by the factories in common.go.
func finish(b *dashboard.DashboardBuilder) (dashboard.Dashboard, error) {
	d, err := b.Build()
	if err != nil {
		return d, err
	}
	var id uint32
	next := func() *uint32 { id++; v := id; return &v }
	for i := range d.Panels {
		p := &d.Panels[i]
		switch {
		case p.Panel != nil:
			p.Panel.Id = next()
			refIDs(p.Panel)
		case p.RowPanel != nil:
			p.RowPanel.Id = *next()
			for j := range p.RowPanel.Panels {
				p.RowPanel.Panels[j].Id = next()
				refIDs(&p.RowPanel.Panels[j])
			}
		}
	}
	for i := range d.Links {
		d.Links[i].Placement = nil
	}
	return d, nil
}

// refIDs names a panel's unnamed queries A, B, … by position.
func refIDs(p *dashboard.Panel) {
	for i, t := range p.Targets {
		if q, ok := t.(prometheus.Dataquery); ok && q.RefId == nil {
			q.RefId = cog.ToPtr(string(rune('A' + i)))
			p.Targets[i] = q
		}
	}
}

// toMap turns an SDK value into plain JSON data.
func toMap(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%T is not a JSON object: %w", v, err)
	}
	return m, nil
}
