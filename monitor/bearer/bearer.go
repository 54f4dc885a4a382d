// Package bearer checks the bearer token of tgsafety's HTTP APIs (the
// daemon's API and the test server's control API), so that both refuse
// the same way and compare tokens in constant time.
package bearer

import (
	"crypto/subtle"
	"net/http"
	"strings"
)

// Check returns why r does not carry token as its bearer token, or "" when
// it does. The reasons are safe to show the caller: they never include
// either token.
func Check(r *http.Request, token string) string {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return "missing Authorization header; send Authorization: Bearer <token>"
	}
	scheme, got, _ := strings.Cut(hdr, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "Authorization must use the Bearer scheme"
	}
	// Constant time: the token is the only thing guarding the API.
	if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(token)) != 1 {
		return "invalid bearer token"
	}
	return ""
}
