package scenarios

import (
	"context"
	"errors"
	"fmt"

	"github.com/gotd/td/telegram"
)

// ErrClientFuncAborted is returned by RunClient when fn did not return:
// it panicked or called runtime.Goexit (as testing's t.FailNow does).
var ErrClientFuncAborted = errors.New("scenarios: the client function was aborted (panic or Goexit)")

// ClientAppID and ClientAppHash identify scenario clients to the test
// server, which does not check them: they are not a registered
// application and must never be used against Telegram.
const (
	ClientAppID   = 17349
	ClientAppHash = "tgsafety-scenario-not-a-real-hash"
)

// RunClient connects a real gotd client with opts (ClientAppID) and runs
// fn on it until fn returns; it returns fn's error or the client's. fn
// runs on a goroutine of gotd's, so a panic or runtime.Goexit there would
// otherwise hang the client: both become ErrClientFuncAborted (a panic
// with its value). Cancel ctx to stop a client whose fn waits forever.
//
// This is the one place that knows how to drive a gotd client for tests
// and scenarios; the runner's accounts and the Go-written tests use it.
func RunClient(ctx context.Context, opts telegram.Options, fn func(ctx context.Context, c *telegram.Client) error) error {
	return runClient(ctx, telegram.NewClient(ClientAppID, ClientAppHash, opts), fn)
}

func runClient(ctx context.Context, c *telegram.Client, fn func(ctx context.Context, c *telegram.Client) error) error {
	return c.Run(ctx, func(ctx context.Context) error {
		done := make(chan error, 1)
		go func() {
			finished := false
			defer func() {
				if finished {
					return
				}
				if r := recover(); r != nil {
					done <- fmt.Errorf("%w: panic: %v", ErrClientFuncAborted, r)
					return
				}
				done <- ErrClientFuncAborted
			}()
			err := fn(ctx, c)
			finished = true
			done <- err
		}()
		return <-done
	})
}
