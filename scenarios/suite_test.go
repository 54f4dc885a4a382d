package scenarios_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	sc "github.com/tgsafety/tgsafety/scenarios"
)

// TestScenarios runs the Ginkgo suite: one spec per library file plus the
// specs written in Go. Select with labels, e.g.
//
//	go test ./scenarios/ -ginkgo.label-filter='sim && !slow'
//
// and get JUnit with -ginkgo.junit-report=scenarios.xml.
func TestScenarios(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Scenarios")
}

// suiteRunner is shared by every spec: one test-server key for the suite.
var suiteRunner *sc.Runner

var _ = BeforeSuite(func() {
	var err error
	suiteRunner, err = sc.NewRunner(sc.Options{Progress: GinkgoWriter, Timeout: time.Minute})
	Expect(err).NotTo(HaveOccurred())
})

// runFile loads and runs a scenario file with the suite's runner.
func runFile(r *sc.Runner, path string) *sc.Report {
	GinkgoHelper()
	s, err := sc.Load(path)
	Expect(err).NotTo(HaveOccurred())
	rep, err := r.Run(context.Background(), s)
	Expect(err).NotTo(HaveOccurred())
	return rep
}
