package scenarios

import "github.com/prometheus/client_golang/prometheus"

// constCollector exposes one gathered value to testutil.ToFloat64.
type constCollector struct{ v float64 }

var constDesc = prometheus.NewDesc("scenarios_test_value", "a gathered value", nil, nil)

func (c *constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- constDesc }
func (c *constCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(constDesc, prometheus.GaugeValue, c.v)
}
