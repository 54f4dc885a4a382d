package testserver

import (
	"context"

	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/tg"
)

// Authenticator answers gotd's auth.Flow for a simulated account: the
// phone, the login code, and the name to sign up with when the number is
// new. The test server has no 2FA, so Password is never asked for.
// Use it as auth.NewFlow(testserver.Authenticator{...}, auth.SendCodeOptions{}).
type Authenticator struct {
	PhoneNumber string
	// LoginCode is the server's code (Server.LoginCode, or the login_code
	// that scenario-run serve prints).
	LoginCode string
	FirstName string
	LastName  string
}

var _ auth.UserAuthenticator = Authenticator{}

// Phone returns the account's number.
func (a Authenticator) Phone(context.Context) (string, error) { return a.PhoneNumber, nil }

// Password reports that no 2FA password exists.
func (a Authenticator) Password(context.Context) (string, error) {
	return "", auth.ErrPasswordNotProvided
}

// AcceptTermsOfService accepts: the simulation has no terms to read.
func (a Authenticator) AcceptTermsOfService(context.Context, tg.HelpTermsOfService) error {
	return nil
}

// SignUp gives the name for a new account ("Simulated Account" when unset).
func (a Authenticator) SignUp(context.Context) (auth.UserInfo, error) {
	info := auth.UserInfo{FirstName: a.FirstName, LastName: a.LastName}
	if info.FirstName == "" {
		info.FirstName, info.LastName = "Simulated", "Account"
	}
	return info, nil
}

// Code returns the login code.
func (a Authenticator) Code(context.Context, *tg.AuthSentCode) (string, error) {
	return a.LoginCode, nil
}
