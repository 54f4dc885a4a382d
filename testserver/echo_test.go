package testserver

import (
	"net/http"
	"strings"
	"testing"
)

// TestControlErrorsNeverEchoRejectedValues: a value put in the wrong field
// may be a phone number or a token, and error bodies end up in CI logs.
// Every 400 says what is wrong with a field without quoting its value.
func TestControlErrorsNeverEchoRejectedValues(t *testing.T) {
	s := newServer(t, Options{Users: 1})
	c := newControl(t, s, "")
	const phone = "9996627001"
	c.must("POST", "/control/v1/accounts", `{"phone":"`+phone+`","username":"taken_name_1555"}`)
	const secret = "551112222" // the digits of +15551112222, however they are formatted
	for _, tc := range []struct{ method, path, body, want string }{
		{"POST", "/control/v1/advance", `{"duration":"+15551112222"}`, "duration: invalid duration"},
		{"POST", "/control/v1/advance", `{"duration":"-15551112222ns"}`, "duration must be positive"},
		{"POST", "/control/v1/accounts", `{"phone":"9996627002","age":"+15551112222"}`, "age: invalid duration"},
		{"POST", "/control/v1/accounts", `{"phone":"9996627002","age":"-15551112222ms"}`, "age must not be negative"},
		{"POST", "/control/v1/accounts", `{"phone":"9996627002","mutual_contacts":-15551112222}`, "mutual_contacts must not be negative"},
		{"POST", "/control/v1/accounts", `{"phone":"9996627002","mutual_contacts":15551112222}`, "mutual contacts must be within"},
		{"POST", "/control/v1/accounts", `{"phone":"9996627002","username":"TAKEN_name_1555"}`, "username is taken"},
		{"POST", "/control/v1/accounts/limit", `{"phone":"` + phone + `","duration":"+15551112222"}`, "duration: invalid duration"},
		{"POST", "/control/v1/accounts/limit", `{"phone":"` + phone + `","duration":"-15551112222ms"}`, "duration must not be negative"},
		{"POST", "/control/v1/accounts/freeze", `{"phone":"` + phone + `","until":"+15551112222"}`, "until: invalid time"},
		{"POST", "/control/v1/accounts/fault", `{"phone":"` + phone + `","method":"15551112222","times":1,"drop":true}`, "is not a TL method name"},
		{"POST", "/control/v1/accounts/fault", `{"phone":"` + phone + `","times":1,"error_message":"+15551112222"}`, "error_message is not an RPC error"},
		{"POST", "/control/v1/accounts/fault", `{"phone":"` + phone + `","times":1,"delay":"+15551112222"}`, "delay: invalid duration"},
		{"POST", "/control/v1/accounts/fault", `{"phone":"` + phone + `","times":1,"delay":"-15551112222ms"}`, "delay must be positive"},
		{"POST", "/control/v1/accounts/fault", `{"phone":"` + phone + `","times":-15551112222,"drop":true}`, "times must be at least 1"},
		{"GET", "/control/v1/accounts/status?phone=" + phone + "&%2B15551112222=1", "", "unknown query parameter"},
	} {
		code, out := c.do(tc.method, tc.path, tc.body)
		msg, _ := out["error"].(string)
		if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) || strings.Contains(msg, secret) || strings.Contains(msg, "1555") {
			t.Errorf("%s %s %s: %d %q; want 400 mentioning %q without the value", tc.method, tc.path, tc.body, code, msg, tc.want)
		}
	}
}
