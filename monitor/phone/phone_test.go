package phone

import (
	"strings"
	"testing"
)

func TestLikeCountsDigitsHoweverWritten(t *testing.T) {
	for _, s := range []string{"+79991234567", "7_999_123_45_67", "user_7999_123_45_67",
		"phone-7999-123-4567", "+7 (999) 123-45-67", "a1b2c3d4e5f6g7", "1234567"} {
		if !Like(s) {
			t.Errorf("Like(%q) = false", s)
		}
	}
	for _, s := range []string{"", "alice", "bot-2024-06", "fleet_123456", "eu-1.crm-22"} {
		if Like(s) {
			t.Errorf("Like(%q) = true", s)
		}
	}
}

func TestDigitsReadsInternationalNumbers(t *testing.T) {
	for in, want := range map[string]string{
		"+79991234567":           "79991234567",
		" +7 (999) 123-45-67 ":   "79991234567",
		"+1.555.010.0123":        "15550100123",
		"1234567":                "1234567",
		"+123456789012345":       "123456789012345",
		"\t+44 20 7946 0958\n":   "442079460958",
		"+7 999 123 45 67      ": "79991234567",
	} {
		if got, ok := Digits(in); !ok || got != want {
			t.Errorf("Digits(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "+", "123456", "+1234567890123456", "user_7999_123_45_67", "7999123456x", "++79991234567"} {
		if got, ok := Digits(in); ok {
			t.Errorf("Digits(%q) = %q, want not a number", in, got)
		}
	}
}

// FuzzDigits checks that the two rules agree: whatever Digits reads as a
// number, Like hides, and Digits returns only 7 to 15 digits.
func FuzzDigits(f *testing.F) {
	for _, s := range []string{"+79991234567", "+7 (999) 123-45-67", "user_7999_123_45_67", "", "+", "1234567890123456"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := Digits(s)
		if !ok {
			return
		}
		if !Like(s) || !Like(d) {
			t.Fatalf("Digits(%q) = %q but Like is false", s, d)
		}
		if len(d) < MinDigits || len(d) > MaxDigits || strings.Trim(d, "0123456789") != "" {
			t.Fatalf("Digits(%q) = %q: not 7 to 15 digits", s, d)
		}
	})
}
