package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/tgsafety/tgsafety/monitor/store/pgtest"
)

// Replicas starting together migrate a new database once: every open
// succeeds and each migration is recorded once.
func TestPostgresConcurrentOpenMigratesOnce(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			p, err := OpenPostgres(context.Background(), dsn, Options{})
			if err != nil {
				errs <- err
				return
			}
			p.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p := openPG(t, dsn)
	var rows, max int
	queryRow(t, p, "SELECT COUNT(*), MAX(version) FROM schema_migrations", &rows, &max)
	if rows != len(pgMigrations) || max != len(pgMigrations) || p.SchemaVersion() != len(pgMigrations) {
		t.Errorf("%d migration rows up to %d (schema %d), want %d", rows, max, p.SchemaVersion(), len(pgMigrations))
	}
}

// A database a newer build migrated is refused, naming both versions.
func TestPostgresNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	p := openPG(t, dsn)
	future := len(pgMigrations) + 1
	if _, err := p.pool.Exec(context.Background(), "INSERT INTO schema_migrations (version, applied_ns) VALUES ($1, 0)", future); err != nil {
		t.Fatal(err)
	}
	_, err := OpenPostgres(context.Background(), dsn, Options{})
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != future || sv.Known != len(pgMigrations) {
		t.Fatalf("open = %v, want a SchemaVersionError %d > %d", err, future, len(pgMigrations))
	}
}

// No error shows the DSN's password, whether the DSN cannot be parsed or
// the server refuses the connection.
func TestPostgresPasswordNeverInErrors(t *testing.T) {
	const pw = "hunter2-s3cretPW"
	good := pgtest.NewDatabase(t)
	host := strings.Fields(good)[0] // host=/tmp/...
	for _, dsn := range []string{
		"postgres://tgsafety:" + pw + "@[::1:5432/db", // malformed URL
		"postgres://tgsafety:" + pw + "@localhost:1/db?sslmode=disable&connect_timeout=2",
		host + " user=nobody_here password=" + pw + " dbname=nope sslmode=disable",
		host + " user=nobody_here password='" + pw + "' dbname=nope sslmode=disable",
		"host=/nonexistent/dir user=u password=" + pw + " sslmode=disable connect_timeout=2",
	} {
		_, err := OpenPostgres(context.Background(), dsn, Options{})
		if err == nil {
			t.Errorf("%s: opened", strings.ReplaceAll(dsn, pw, "PW"))
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	for _, tc := range []struct{ dsn, msg string }{
		{"postgres://u:p%40ss@h/db", "cannot parse postgres://u:p%40ss@h/db and p@ss"},
		{"host=h password='a b' user=u", "bad: password='a b'"},
		{"host=h password=xyz123 user=u", "server said xyz123"},
	} {
		got := redactDSN(errors.New(tc.msg), tc.dsn).Error()
		for _, secret := range []string{"p@ss", "p%40ss", "a b", "xyz123"} {
			if strings.Contains(got, secret) {
				t.Errorf("%q: %q still shows %q", tc.dsn, got, secret)
			}
		}
	}
	base := errors.New("plain")
	if got := redactDSN(base, "host=h"); got != base {
		t.Errorf("an error without a password changed: %v", got)
	}
}
