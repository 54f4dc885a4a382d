package scenarios_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	sc "github.com/tgsafety/tgsafety/scenarios"
)

// One spec per file in library/, generated from the files when the spec
// tree is built: adding a file adds a spec, with the file's labels.
var _ = Describe("library", func() {
	files, err := sc.Find("library")
	if err != nil {
		It("lists the library", func() { Fail(err.Error()) })
		return
	}
	names := map[string]string{}
	for _, f := range files {
		s, err := sc.Load(f)
		if err != nil {
			It(filepath.Base(f), Label(sc.LabelSim), func() { Fail(err.Error()) })
			continue
		}
		if prev, dup := names[s.Name]; dup {
			It(s.Name, func() { Fail("scenario name " + s.Name + " is used by " + prev + " and " + f) })
			continue
		}
		names[s.Name] = f
		It(s.Name, Label(s.Labels...), func() {
			rep, err := suiteRunner.Run(context.Background(), s)
			Expect(err).NotTo(HaveOccurred())
			Expect(rep).To(Pass())
		})
	}
	It("has at least 12 scenarios", func() {
		Expect(len(names)).To(BeNumerically(">=", 12))
	})
})

// The staging copy of every scenario labelled staging: it runs only when
// the test-DC credentials are in the environment (docs/scenarios.md).
var _ = Describe("library on staging", Label(sc.LabelStaging), func() {
	files, _ := sc.Find("library")
	for _, f := range files {
		s, err := sc.Load(f)
		if err != nil || !s.HasLabel(sc.LabelStaging) {
			continue
		}
		It(s.Name, func() {
			cfg, err := sc.StagingFromEnv(os.Getenv)
			if err != nil {
				Skip(err.Error())
			}
			r, err := sc.NewRunner(sc.Options{Target: sc.TargetStaging, Staging: cfg, Progress: GinkgoWriter})
			Expect(err).NotTo(HaveOccurred())
			rep, err := r.Run(context.Background(), s)
			Expect(err).NotTo(HaveOccurred())
			Expect(rep).To(Pass())
		})
	}
})
