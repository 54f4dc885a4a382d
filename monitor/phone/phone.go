package phone

import "strings"

// MinDigits is how many digits make a string look like a phone number.
// The shortest numbers in use have 7 digits after the country code; a
// count of digits, wherever they are, also catches numbers written with
// underscores or letters around them ("user_7999_123_45_67").
const MinDigits = 7

// MaxDigits is the longest international number (E.164: 15 digits).
const MaxDigits = 15

// Like reports whether s may be, or contain, a phone number: it has
// MinDigits or more decimal digits in total, however they are separated.
// Such a string is never shown and never accepted as a name or tag.
func Like(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			if n++; n >= MinDigits {
				return true
			}
		}
	}
	return false
}

// Digits returns the digits of s when s is written as an international
// phone number: an optional "+", then MinDigits to MaxDigits digits, with
// spaces, dashes, dots and parentheses ignored (and surrounding white
// space). Whatever Digits accepts, Like reports as a phone number.
func Digits(s string) (string, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "+")
	b := make([]byte, 0, MaxDigits)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			if len(b) == MaxDigits {
				return "", false
			}
			b = append(b, c)
		case strings.IndexByte(" -.()", c) >= 0:
		default:
			return "", false
		}
	}
	if len(b) < MinDigits {
		return "", false
	}
	return string(b), true
}
