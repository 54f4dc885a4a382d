package scenarios_test

import (
	"context"
	"errors"
	"strings"

	"github.com/gotd/td/tg"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	sc "github.com/tgsafety/tgsafety/scenarios"
)

var _ = Describe("a wrong expectation", Label(sc.LabelSim), func() {
	It("fails, saying what was expected and what happened", func() {
		rep := runFile(suiteRunner, "testdata/wrong-expectation.yaml")
		Expect(rep).NotTo(Pass())
		Expect(rep.Failures).To(HaveLen(2))
		msg := rep.Failures[0].Error()
		Expect(msg).To(HavePrefix("testdata/wrong-expectation.yaml:12: expect[0].state (account alice): expected state ok, got limited"))
		Expect(msg).To(ContainSubstring("states: unknown → ok at +0s → limited at +2h18m"))
		Expect(rep.Failures[1].Error()).To(ContainSubstring("expected peer_flood signals 0, got 1"))
		var text strings.Builder
		Expect(rep.WriteText(&text)).To(Succeed())
		Expect(text.String()).To(ContainSubstring("FAILED"))
		Expect(text.String()).To(ContainSubstring("failures:"))
	})
})

var _ = Describe("custom matchers on a report", Label(sc.LabelSim), func() {
	It("see the resolve storm's escalation", func() {
		rep := runFile(suiteRunner, "library/resolve-storm-escalates.yaml")
		bot := rep.Account("bot")
		Expect(bot).To(BeInState("throttled"))
		Expect(bot).To(HaveFloodWaitOn("contacts.resolveUsername"))
		Expect(bot).NotTo(HaveFloodWaitOn("messages.sendMessage"))
		Expect(bot).To(HaveSignals("flood_wait", 30))
		Expect(bot).To(HaveSpamBotAnswer("none"))
		// A failing matcher explains itself.
		m := BeInState("ok")
		ok, err := m.Match(bot)
		Expect(err).NotTo(HaveOccurred())
		Expect(ok).To(BeFalse())
		Expect(m.FailureMessage(bot)).To(ContainSubstring("Expected state ok\nGot throttled"))
	})
	It("read SpamBot's answer in Russian", func() {
		rep := runFile(suiteRunner, "library/russian-spambot-status.yaml")
		Expect(rep.Account("ivan")).To(HaveSpamBotAnswer("limited_temporary"))
		Expect(rep.Account("ivan")).To(BeInState("limited"))
	})
})

var _ = Describe("a team's own client code", Label(sc.LabelSim), func() {
	It("runs in a hook with the configured client and virtual time", func() {
		// The team's code: warm a username cache at start-up, as fast as
		// it can; each call's outcome is recorded for the expectations.
		warm := func(ctx context.Context, env *sc.HookEnv) error {
			for _, name := range env.Usernames[:35] {
				_, err := env.API.ContactsResolveUsername(ctx, &tg.ContactsResolveUsernameRequest{Username: name})
				env.Record(err)
			}
			return nil
		}
		r, err := sc.NewRunner(sc.Options{Hooks: map[string]sc.Hook{"warm-cache": warm}, Progress: GinkgoWriter})
		Expect(err).NotTo(HaveOccurred())
		rep := runFile(r, "testdata/hook.yaml")
		Expect(rep).To(Pass())
		Expect(rep.Account("teambot")).To(HaveFloodWaitOn("contacts.resolveUsername"))
	})
	It("is refused before anything runs when it is not registered", func() {
		s, err := sc.Load("testdata/hook.yaml")
		Expect(err).NotTo(HaveOccurred())
		_, err = suiteRunner.Run(context.Background(), s)
		Expect(err).To(MatchError(ContainSubstring(`testdata/hook.yaml:9: steps: hook "warm-cache" is not registered`)))
	})
	It("gives the report a copy of the outcomes, whatever the hook's goroutines record later", func() {
		release, done := make(chan struct{}), make(chan struct{})
		leaky := func(_ context.Context, env *sc.HookEnv) error {
			env.Record(nil)
			go func() { // still recording after the hook returned
				defer close(done)
				<-release
				for range 200 {
					env.Record(nil)
				}
			}()
			return nil
		}
		r, err := sc.NewRunner(sc.Options{Hooks: map[string]sc.Hook{"warm-cache": leaky}})
		Expect(err).NotTo(HaveOccurred())
		rep := runFile(r, "testdata/hook.yaml")
		step := rep.Steps[1]
		close(release)
		n := 0
		for range 200 { // reading the report while the goroutine records (-race)
			for _, v := range step.Outcomes {
				n += v
			}
		}
		<-done
		Expect(n).To(Equal(200))
		Expect(step.Outcomes).To(Equal(map[string]int{"ok": 1}))
	})
	It("fails the scenario at its step when it returns an error", func() {
		boom := func(context.Context, *sc.HookEnv) error { return errors.New("cache server down") }
		r, err := sc.NewRunner(sc.Options{Hooks: map[string]sc.Hook{"warm-cache": boom}})
		Expect(err).NotTo(HaveOccurred())
		rep := runFile(r, "testdata/hook.yaml")
		Expect(rep).NotTo(Pass())
		Expect(rep.Failures[0].Error()).To(ContainSubstring(`steps[1].hook (account teambot): expected the step to run, got hook "warm-cache": cache server down`))
	})
})

var _ = Describe("targets", func() {
	It("refuse production with an explanation", func() {
		for _, name := range []string{"production", "prod", "live", "telegram"} {
			_, err := sc.ParseTarget(name)
			Expect(err).To(MatchError(sc.ErrProductionRefused))
			Expect(err.Error()).To(ContainSubstring("limited or banned"))
		}
		t, err := sc.ParseTarget("staging")
		Expect(err).NotTo(HaveOccurred())
		Expect(t).To(Equal(sc.TargetStaging))
	})
	It("staging names the missing variables and never their values", func() {
		env := map[string]string{sc.EnvStagingAppHash: "0123456789abcdef0123456789abcdef"}
		_, err := sc.StagingFromEnv(func(k string) string { return env[k] })
		Expect(err).To(MatchError(ContainSubstring(sc.EnvStagingAppID)))
		Expect(err.Error()).To(ContainSubstring(sc.EnvStagingPhone))
		Expect(err.Error()).NotTo(ContainSubstring(sc.EnvStagingAppHash))
		env = map[string]string{sc.EnvStagingAppID: "12345", sc.EnvStagingAppHash: "0123456789abcdef0123456789abcdef",
			sc.EnvStagingPhone: "+447700900123"}
		_, err = sc.StagingFromEnv(func(k string) string { return env[k] })
		Expect(err).To(MatchError(ContainSubstring("must be a Telegram test number")))
		Expect(err.Error()).NotTo(ContainSubstring("447700900123"))
		Expect(err.Error()).NotTo(ContainSubstring("0123456789abcdef"))
	})
	It("staging skips scenarios not labelled staging without connecting", func() {
		r, err := sc.NewRunner(sc.Options{Target: sc.TargetStaging,
			Staging: sc.StagingConfig{AppID: 1, AppHash: "x", Phone: "9996621234"}})
		Expect(err).NotTo(HaveOccurred())
		s, err := sc.Load("library/cold-dms-to-strangers.yaml")
		Expect(err).NotTo(HaveOccurred())
		rep, err := r.Run(context.Background(), s)
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Skipped).To(ContainSubstring("not labelled staging"))
		Expect(rep.Passed).To(BeFalse())
	})
})

var _ = Describe("determinism", Label(sc.LabelSim, sc.LabelSlow), func() {
	It("gives the same report for the same file, run after run", func() {
		files, err := sc.Find("library")
		Expect(err).NotTo(HaveOccurred())
		for _, f := range files {
			a, b := runFile(suiteRunner, f), runFile(suiteRunner, f)
			Expect(summary(b)).To(Equal(summary(a)), f)
		}
	})
})

// summary is a report without its wall times.
func summary(r *sc.Report) string {
	var b strings.Builder
	_ = r.WriteText(&b)
	var out []string
	for _, l := range strings.Split(b.String(), "\n") {
		if strings.Contains(l, "wall ") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
