package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/tgsafety/tgsafety/monitor"
)

// The inbox carries reports between replicas: a signal posted to a
// replica that does not hold the account's lease is stored here, durable
// before it is acknowledged, and the holder (told by NOTIFY, or at its
// next renewal) applies it to the account and moves it into the events
// in one transaction, so that it is counted exactly once whichever
// replica took it and whoever holds the account when it is applied.

// errAlreadyDelivered rolls back a delivery some of whose rows another
// delivery (an earlier try of the same) already moved.
var errAlreadyDelivered = errors.New("store: inbox rows already delivered")

// InboxItem is one report waiting for its account's holder.
type InboxItem struct {
	ID    int64
	Event monitor.Event
}

// Enqueue stores reported signal events for their accounts' holders and
// wakes them; it returns once committed.
func (p *Postgres) Enqueue(ctx context.Context, events []monitor.Event) error {
	if len(events) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	notified := map[string]bool{}
	for i, e := range events {
		body, err := encodeEvent(e)
		if err != nil {
			return fmt.Errorf("store: inbox event %d (%s): %w", i, e.Account, err)
		}
		b.Queue("INSERT INTO inbox (account, received_ns, body) VALUES ($1, $2, $3)", e.Account, unixNano(e.Time), string(body))
		if !notified[e.Account] {
			notified[e.Account] = true
			b.Queue("SELECT pg_notify($1, $2)", inboxChannel, e.Account)
		}
	}
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() })
	if err != nil {
		return fmt.Errorf("store: inbox: %w", err)
	}
	return nil
}

// Inbox returns up to n reports waiting for account, oldest first.
func (p *Postgres) Inbox(ctx context.Context, account string, n int) ([]InboxItem, error) {
	rows, err := p.pool.Query(ctx, "SELECT id, body FROM inbox WHERE account = $1 ORDER BY id LIMIT $2", account, limit(n))
	if err != nil {
		return nil, fmt.Errorf("store: inbox of %s: %w", account, err)
	}
	defer rows.Close()
	var out []InboxItem
	for rows.Next() {
		var it InboxItem
		var body []byte
		if err := rows.Scan(&it.ID, &body); err != nil {
			return nil, fmt.Errorf("store: inbox of %s: %w", account, err)
		}
		if err := json.Unmarshal(body, &it.Event); err != nil {
			return nil, fmt.Errorf("store: inbox of %s: row %d: %w", account, it.ID, err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// Deliver stores events (as the holder applied them, with their Seq) and
// deletes the inbox rows ids they came from, in one transaction, fenced
// by the accounts' leases: when any account's lease moved, nothing is
// written or deleted and the error is a *FencedError, so that the next
// holder applies the reports instead.
func (p *Postgres) Deliver(ctx context.Context, ids []int64, events []monitor.Event) error {
	rows, err := eventRows(events)
	if err != nil {
		return err
	}
	accounts := make([]string, len(events))
	for i, e := range events {
		accounts[i] = e.Account
	}
	var fenced []string
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		refused, err := p.checkFence(ctx, tx, accounts)
		if err != nil {
			return err
		}
		if fenced = sortedKeys(refused); len(fenced) > 0 {
			return nil
		}
		// Deleted first: a retry of a delivery whose commit succeeded but
		// whose answer was lost finds its rows gone and stores nothing
		// twice.
		tag, err := tx.Exec(ctx, "DELETE FROM inbox WHERE id = ANY($1)", ids)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ids)) {
			return errAlreadyDelivered
		}
		return insertEvents(ctx, tx, rows)
	})
	if errors.Is(err, errAlreadyDelivered) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: deliver inbox: %w", err)
	}
	if len(fenced) > 0 {
		return &FencedError{Accounts: fenced}
	}
	return nil
}
