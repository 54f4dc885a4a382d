package scenarios

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/auth"
	"github.com/gotd/td/telegram/dcs"

	"github.com/tgsafety/tgsafety/testserver"
)

// The environment variables that configure the staging target. They hold
// a Telegram test-DC account's credentials; their values never appear in
// logs or errors.
const (
	EnvStagingAppID   = "TGSAFETY_STAGING_APP_ID"
	EnvStagingAppHash = "TGSAFETY_STAGING_APP_HASH"
	EnvStagingPhone   = "TGSAFETY_STAGING_PHONE"
	// EnvStagingSession is optional: a file to keep the session in, so
	// that each run does not log in (and spend the daily login budget)
	// again.
	EnvStagingSession = "TGSAFETY_STAGING_SESSION"
)

// StagingConfig is a test-DC account: Telegram's test servers
// (dcs.Test()), a test phone number 99966XYYYY (X is the DC; the login code
// is X five times), and an api_id/api_hash from my.telegram.org.
type StagingConfig struct {
	AppID   int
	AppHash string
	Phone   string
	// SessionFile keeps the session between runs ("" keeps it in memory).
	SessionFile string
}

// StagingFromEnv reads the staging configuration from the environment
// (getenv is os.Getenv in production, a map in tests). The error names
// every missing or malformed variable, never a value.
func StagingFromEnv(getenv func(string) string) (StagingConfig, error) {
	c := StagingConfig{AppHash: getenv(EnvStagingAppHash), Phone: strings.TrimPrefix(getenv(EnvStagingPhone), "+"),
		SessionFile: getenv(EnvStagingSession)}
	var missing []string
	if v := getenv(EnvStagingAppID); v == "" {
		missing = append(missing, EnvStagingAppID)
	} else if id, err := strconv.Atoi(v); err != nil || id <= 0 {
		return c, fmt.Errorf("staging: %s must be a positive number (the api_id from my.telegram.org)", EnvStagingAppID)
	} else {
		c.AppID = id
	}
	if c.AppHash == "" {
		missing = append(missing, EnvStagingAppHash)
	}
	if c.Phone == "" {
		missing = append(missing, EnvStagingPhone)
	}
	if len(missing) > 0 {
		return c, fmt.Errorf("staging needs a Telegram test-DC account; set %s (see docs/scenarios.md, \"Staging\")",
			strings.Join(missing, ", "))
	}
	return c, c.Validate()
}

// Validate checks the configuration without echoing its values.
func (c StagingConfig) Validate() error {
	switch {
	case c.AppID <= 0:
		return errors.New("staging: the api_id is missing (" + EnvStagingAppID + ")")
	case c.AppHash == "":
		return errors.New("staging: the api_hash is missing (" + EnvStagingAppHash + ")")
	case len(c.Phone) != 10 || !strings.HasPrefix(c.Phone, "99966") || strings.Trim(c.Phone, "0123456789") != "" ||
		c.Phone[5] < '1' || c.Phone[5] > '3':
		// Only Telegram's reserved test numbers: a real number must never
		// end up on the test DCs' login flow by mistake, nor be printed.
		return errors.New("staging: " + EnvStagingPhone + " must be a Telegram test number, 99966XYYYY with X the test DC (1-3)")
	}
	return nil
}

func (c StagingConfig) dc() int { return int(c.Phone[5] - '0') }

// login makes sure the session in storage is authorised, with a client
// that has updates off: with updates on, gotd's self check on connect
// would report the not-yet-authorised session to the monitor as dead. On
// the test DCs the login code is the DC number five times.
func (c StagingConfig) login(ctx context.Context) (session.Storage, error) {
	var st session.Storage = new(session.StorageMemory)
	if c.SessionFile != "" {
		st = &session.FileStorage{Path: c.SessionFile}
	}
	client := telegram.NewClient(c.AppID, c.AppHash, telegram.Options{DC: c.dc(), DCList: dcs.Test(),
		SessionStorage: st, NoUpdates: true})
	dc := strconv.Itoa(c.dc())
	flow := auth.NewFlow(testserver.Authenticator{PhoneNumber: c.Phone, LoginCode: strings.Repeat(dc, 5)}, auth.SendCodeOptions{})
	err := client.Run(ctx, func(ctx context.Context) error { return client.Auth().IfNecessary(ctx, flow) })
	if err != nil {
		// The flow's errors carry no secrets, but say which step failed.
		return nil, fmt.Errorf("staging login: %w", err)
	}
	return st, nil
}

// clientOptions are the options of the monitored client of the test DCs.
func (c StagingConfig) clientOptions(st session.Storage) telegram.Options {
	return telegram.Options{DC: c.dc(), DCList: dcs.Test(), SessionStorage: st}
}
