package dashboards

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestPrometheusExampleConfig: docs/examples/prometheus.yml with the
// generated rule file next to it passes promtool check config, which also
// checks the rule file it loads.
func TestPrometheusExampleConfig(t *testing.T) {
	dir := t.TempDir()
	for src, dst := range map[string]string{
		"../docs/examples/prometheus.yml":               "prometheus.yml",
		filepath.Join("generated", PrometheusRulesFile): PrometheusRulesFile,
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := runPromtool(t, "check", "config", filepath.Join(dir, "prometheus.yml"))
	if !strings.Contains(out, "SUCCESS: 1 rule files found") {
		t.Fatalf("promtool check config: %s", out)
	}
}

// TestGrafanaProvisioningExamples: the provisioning examples parse and
// agree with the names the generated rules use.
func TestGrafanaProvisioningExamples(t *testing.T) {
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
		} `yaml:"datasources"`
	}
	readYAML(t, "../docs/examples/grafana-datasource.yaml", &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].UID != DatasourceUID || ds.Datasources[0].Type != "prometheus" {
		t.Errorf("grafana-datasource.yaml: %+v, want one prometheus datasource with uid %s", ds, DatasourceUID)
	}
	var dash struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			FolderUID string `yaml:"folderUid"`
			Type      string `yaml:"type"`
			Options   struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "../docs/examples/grafana-dashboards.yaml", &dash)
	if dash.APIVersion != 1 || len(dash.Providers) != 1 || dash.Providers[0].FolderUID != FolderUID ||
		dash.Providers[0].Type != "file" || dash.Providers[0].Options.Path == "" {
		t.Errorf("grafana-dashboards.yaml: %+v", dash)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
