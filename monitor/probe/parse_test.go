package probe

import (
	"testing"
	"time"

	"github.com/gotd/td/tg"

	"github.com/tgsafety/tgsafety/monitor/signal"
)

func parse(code int, msg string) signal.Signal { return signal.Parse(code, msg) }

func TestParseAppConfig(t *testing.T) {
	since, until := time.Unix(1767600000, 0).UTC(), time.Unix(1768809600, 0).UTC()
	obj := func(vs ...tg.JSONObjectValue) tg.HelpAppConfigClass {
		return &tg.HelpAppConfig{Config: &tg.JSONObject{Value: vs}}
	}
	num := func(k string, v float64) tg.JSONObjectValue {
		return tg.JSONObjectValue{Key: k, Value: &tg.JSONNumber{Value: v}}
	}
	for name, c := range map[string]struct {
		cfg                  tg.HelpAppConfigClass
		known, frozen        bool
		wantSince, wantUntil time.Time
		appeal               string
	}{
		"not frozen":   {cfg: obj(num("test", 1)), known: true},
		"zero since":   {cfg: obj(num("freeze_since_date", 0)), known: true},
		"frozen":       {cfg: obj(num("freeze_since_date", float64(since.Unix())), num("freeze_until_date", float64(until.Unix())), tg.JSONObjectValue{Key: "freeze_appeal_url", Value: &tg.JSONString{Value: "https://t.me/spambot"}}), known: true, frozen: true, wantSince: since, wantUntil: until, appeal: "https://t.me/spambot"},
		"not modified": {cfg: &tg.HelpAppConfigNotModified{}},
		"not object":   {cfg: &tg.HelpAppConfig{Config: &tg.JSONArray{}}},
		"bad type":     {cfg: obj(tg.JSONObjectValue{Key: "freeze_since_date", Value: &tg.JSONString{Value: "yesterday"}})},
		"negative":     {cfg: obj(num("freeze_since_date", -5))},
	} {
		st := ParseAppConfig(c.cfg)
		if st.Known != c.known || st.Frozen != c.frozen || !st.Since.Equal(c.wantSince) || !st.DeletionDate.Equal(c.wantUntil) || st.AppealURL != c.appeal {
			t.Errorf("%s: %+v", name, st)
		}
		if !st.Known && st.Reason == "" {
			t.Errorf("%s: unknown without a reason", name)
		}
	}
}
