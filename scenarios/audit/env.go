package audit

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gotd/td/crypto"
	"github.com/gotd/td/session"
	"github.com/gotd/td/telegram"
	"github.com/gotd/td/telegram/dcs"
	"github.com/gotd/td/tg"
)

// The environment of an audited command: how it finds the test server and
// its accounts. Documented in docs/audit.md; a contract with programs in
// any language.
const (
	// EnvAudit is "1" in an audited command's environment.
	EnvAudit = "TGSAFETY_AUDIT"
	// EnvAddr is the server's address (host:port), EnvHost and EnvPort
	// its parts.
	EnvAddr = "TGSAFETY_ADDR"
	EnvHost = "TGSAFETY_HOST"
	EnvPort = "TGSAFETY_PORT"
	// EnvDC is the data centre number the server plays.
	EnvDC = "TGSAFETY_DC"
	// EnvPublicKey is the path of the server's RSA public key (PEM, "RSA
	// PUBLIC KEY"), which the client must trust instead of Telegram's.
	EnvPublicKey = "TGSAFETY_PUBLIC_KEY"
	// EnvLoginCode is the code auth.signIn accepts (the DC number five
	// times).
	EnvLoginCode = "TGSAFETY_LOGIN_CODE"
	// EnvAppID and EnvAppHash identify the client to the test server,
	// which does not check them; they are not a registered application.
	EnvAppID   = "TGSAFETY_APP_ID"
	EnvAppHash = "TGSAFETY_APP_HASH"
	// EnvUsernames lists, comma-separated, population users who are
	// strangers to every account: cold-DM targets, usernames to resolve.
	EnvUsernames = "TGSAFETY_USERNAMES"
	// EnvAccounts lists the accounts' names, comma-separated, in order;
	// the n-th (from 1) is described by the EnvAccountPrefix variables.
	EnvAccounts = "TGSAFETY_ACCOUNTS"
	// EnvAccountPrefix starts the per-account variables:
	// TGSAFETY_ACCOUNT_<n>_NAME, _PHONE, _USERNAME, _CONTACTS,
	// _SESSION_FILE, _TELETHON_SESSION, _GRAMJS_SESSION, _AUTH_KEY.
	EnvAccountPrefix = "TGSAFETY_ACCOUNT_"
)

// appID and appHash are what audited clients are told to use.
const (
	appID   = 17349
	appHash = "tgsafety-audit-not-a-real-hash"
)

// envAccount is one account as handed to the client.
type envAccount struct {
	spec     AccountSpec
	phone    string
	username string
	contacts []string
	data     *session.Data
	file     string
}

// environment builds the variables for an audited command.
func environment(host string, port, dc int, keyFile, loginCode string, strangers []string, accts []envAccount) []string {
	env := []string{
		EnvAudit + "=1",
		EnvAddr + "=" + net.JoinHostPort(host, strconv.Itoa(port)),
		EnvHost + "=" + host,
		EnvPort + "=" + strconv.Itoa(port),
		EnvDC + "=" + strconv.Itoa(dc),
		EnvPublicKey + "=" + keyFile,
		EnvLoginCode + "=" + loginCode,
		EnvAppID + "=" + strconv.Itoa(appID),
		EnvAppHash + "=" + appHash,
		EnvUsernames + "=" + strings.Join(strangers, ","),
	}
	names := make([]string, len(accts))
	for i, a := range accts {
		names[i] = a.spec.Name
		p := fmt.Sprintf("%s%d_", EnvAccountPrefix, i+1)
		env = append(env,
			p+"NAME="+a.spec.Name,
			p+"PHONE="+a.phone,
			p+"USERNAME="+a.username,
			p+"CONTACTS="+strings.Join(a.contacts, ","),
			p+"SESSION_FILE="+a.file,
			p+"TELETHON_SESSION="+telethonSession(dc, host, port, a.data.AuthKey),
			p+"GRAMJS_SESSION="+gramjsSession(dc, host, port, a.data.AuthKey),
			p+"AUTH_KEY="+hex.EncodeToString(a.data.AuthKey),
		)
	}
	return append(env, EnvAccounts+"="+strings.Join(names, ","))
}

// telethonSession is Telethon's StringSession: "1" and the URL-safe
// base64 (padded) of struct.pack(">B4sH256s", dc, ip, port, auth_key).
func telethonSession(dc int, host string, port int, key []byte) string {
	ip := net.ParseIP(host).To4()
	b := make([]byte, 0, 1+4+2+256)
	b = append(b, byte(dc))
	b = append(b, ip...)
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	b = append(b, key...)
	return "1" + base64.URLEncoding.EncodeToString(b)
}

// gramjsSession is GramJS's StringSession: "1" and the base64 of dc (1
// byte), the address's length (2 bytes, big-endian), the address, the
// port (2 bytes, big-endian) and the auth key.
func gramjsSession(dc int, host string, port int, key []byte) string {
	b := []byte{byte(dc)}
	b = binary.BigEndian.AppendUint16(b, uint16(len(host)))
	b = append(b, host...)
	b = binary.BigEndian.AppendUint16(b, uint16(port))
	b = append(b, key...)
	return "1" + base64.StdEncoding.EncodeToString(b)
}

// writeSessionFile writes a gotd session file (session.FileStorage's
// JSON) with mode 0600.
func writeSessionFile(path string, data *session.Data) error {
	st := &session.FileStorage{Path: path}
	return (&session.Loader{Storage: st}).Save(context.Background(), data)
}

// ClientEnv is what an audited program finds in its environment, read
// back by ReadEnv: for Go programs, and for the audit's own tests.
type ClientEnv struct {
	Addr          string
	DC            int
	PublicKeyFile string
	LoginCode     string
	AppID         int
	AppHash       string
	// Usernames are strangers to every account.
	Usernames []string
	Accounts  []ClientAccount
}

// ClientAccount is one account of a ClientEnv.
type ClientAccount struct {
	Name     string
	Phone    string
	Username string
	// Contacts are the usernames of its mutual contacts.
	Contacts        []string
	SessionFile     string
	TelethonSession string
	GramJSSession   string
}

// ReadEnv reads an audited command's environment (os.Getenv, or a map's
// lookup in tests).
func ReadEnv(getenv func(string) string) (*ClientEnv, error) {
	if getenv(EnvAudit) != "1" {
		return nil, fmt.Errorf("%s is not set: run this program under `scenario-run audit -- PROGRAM`", EnvAudit)
	}
	e := &ClientEnv{Addr: getenv(EnvAddr), PublicKeyFile: getenv(EnvPublicKey), LoginCode: getenv(EnvLoginCode), AppHash: getenv(EnvAppHash)}
	var err error
	if e.DC, err = strconv.Atoi(getenv(EnvDC)); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvDC, err)
	}
	if e.AppID, err = strconv.Atoi(getenv(EnvAppID)); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvAppID, err)
	}
	e.Usernames = splitList(getenv(EnvUsernames))
	for i, name := range splitList(getenv(EnvAccounts)) {
		p := fmt.Sprintf("%s%d_", EnvAccountPrefix, i+1)
		a := ClientAccount{Name: getenv(p + "NAME"), Phone: getenv(p + "PHONE"), Username: getenv(p + "USERNAME"),
			Contacts: splitList(getenv(p + "CONTACTS")), SessionFile: getenv(p + "SESSION_FILE"),
			TelethonSession: getenv(p + "TELETHON_SESSION"), GramJSSession: getenv(p + "GRAMJS_SESSION")}
		if a.Name != name {
			return nil, fmt.Errorf("%sNAME is %q, but %s lists %q there", p, a.Name, EnvAccounts, name)
		}
		e.Accounts = append(e.Accounts, a)
	}
	if e.Addr == "" || e.PublicKeyFile == "" || len(e.Accounts) == 0 {
		return nil, errors.New("the audit environment is incomplete (address, public key or accounts missing)")
	}
	return e, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// GotdOptions returns gotd client options for an account: the server's
// key and address, and the account's session file. The file is the
// client's own: gotd writes it back as it goes.
func (e *ClientEnv) GotdOptions(a ClientAccount) (telegram.Options, error) {
	pem, err := os.ReadFile(e.PublicKeyFile)
	if err != nil {
		return telegram.Options{}, err
	}
	keys, err := crypto.ParseRSAPublicKeys(pem)
	if err != nil || len(keys) == 0 {
		return telegram.Options{}, fmt.Errorf("%s: no RSA public key: %v", e.PublicKeyFile, err)
	}
	host, portText, err := net.SplitHostPort(e.Addr)
	if err != nil {
		return telegram.Options{}, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return telegram.Options{}, err
	}
	pks := make([]telegram.PublicKey, len(keys))
	for i, k := range keys {
		pks[i] = telegram.PublicKey{RSA: k}
	}
	return telegram.Options{
		PublicKeys:     pks,
		DC:             e.DC,
		DCList:         dcs.List{Options: []tg.DCOption{{ID: e.DC, IPAddress: host, Port: port}}},
		Resolver:       dcs.Plain(dcs.PlainOptions{}),
		SessionStorage: &session.FileStorage{Path: filepath.Clean(a.SessionFile)},
		NoUpdates:      true,
	}, nil
}
