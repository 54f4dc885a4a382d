package bearer

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	const token = "s3cret-token-0123456789abcdef"
	for _, tc := range []struct {
		header, want string
	}{
		{"", "missing Authorization header"},
		{"Basic " + token, "must use the Bearer scheme"},
		{"Bearer wrong", "invalid bearer token"},
		{"Bearer " + token + "x", "invalid bearer token"},
		{"Bearer", "invalid bearer token"},
		{"Bearer " + token, ""},
		{"bearer  " + token + " ", ""},
	} {
		r := httptest.NewRequest("POST", "/", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		got := Check(r, token)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.header, got, tc.want)
		}
		if strings.Contains(got, token) {
			t.Errorf("%q: the reason %q shows the token", tc.header, got)
		}
	}
}
