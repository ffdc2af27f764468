package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// Events returns a deployment's events in the order they happened.
func (s *Store) Events(ctx context.Context, deploymentID string) ([]Event, error) {
	evs, err := s.events(ctx, deploymentID)
	if err != nil {
		return nil, fmt.Errorf("events of deployment %s: %w", deploymentID, err)
	}
	return evs, nil
}

func (s *Store) events(ctx context.Context, deploymentID string) ([]Event, error) {
	// One read transaction, so "no events" and "no deployment" are told
	// apart on the same snapshot.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE id = ?`, deploymentID).Scan(&n); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, deployment_id, service, status, message, at
		FROM events WHERE deployment_id = ? ORDER BY id`, deploymentID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	evs := []Event{}
	for rows.Next() {
		var (
			e      Event
			status string
			at     int64
		)
		if err := rows.Scan(&e.ID, &e.DeploymentID, &e.Service, &status, &e.Message, &at); err != nil {
			return nil, err
		}
		e.Status = Status(status)
		e.At = fromUnixNano(at)
		evs = append(evs, e)
	}
	return evs, rows.Err()
}

// AddEvent appends an event to a deployment's history and returns it with
// its ID. At defaults to now, Service and Status to the deployment's.
func (s *Store) AddEvent(ctx context.Context, e Event) (Event, error) {
	err := s.write(ctx, func(tx *sql.Tx) error {
		d, err := getDeployment(ctx, tx, e.DeploymentID)
		if err != nil {
			return err
		}
		if e.Service == "" {
			e.Service = d.Service
		}
		if e.Status == "" {
			e.Status = d.Status
		}
		if e.At.IsZero() {
			e.At = now()
		}
		e.ID, err = s.addEvent(ctx, tx, e)
		return err
	})
	if err != nil {
		return Event{}, fmt.Errorf("add event to deployment %s: %w", e.DeploymentID, err)
	}
	return e, nil
}

// DefaultKeepEvents is how many lifecycle events the store keeps per service
// unless told otherwise (SetKeepEvents): the newest.
const DefaultKeepEvents = 1000

// SetKeepEvents bounds the events kept per service to the newest n (with at
// most a batch of n/16 more between trims); n < 0 keeps every event, 0
// restores DefaultKeepEvents. Deployments are never deleted: only the oldest
// events of a long history go.
func (s *Store) SetKeepEvents(n int) {
	if n == 0 {
		n = DefaultKeepEvents
	}
	s.trim.Lock()
	s.trim.keep = n
	s.trim.since = map[string]int{}
	s.trim.Unlock()
}

// eventTrim is how the store keeps events bounded: each service's oldest
// events beyond keep are deleted in batches, once every keep/16 events of it
// (every one for a small keep), so that a service holds at most keep plus a
// batch, and an insert rarely pays for more than its own row.
type eventTrim struct {
	sync.Mutex
	keep  int            // < 0 keeps all
	since map[string]int // events added per service since its last trim
}

// due counts an event of service and says whether its trim is due.
func (t *eventTrim) due(service string) (keep int, due bool) {
	t.Lock()
	defer t.Unlock()
	if t.keep < 0 {
		return 0, false
	}
	n, seen := t.since[service]
	if seen && n+1 < max(t.keep/16, 1) {
		t.since[service] = n + 1
		return t.keep, false
	}
	t.since[service] = 0
	return t.keep, true
}

// addEvent appends e and, when due, drops its service's events beyond the
// newest keepEvents, in the same transaction.
func (s *Store) addEvent(ctx context.Context, tx *sql.Tx, e Event) (int64, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO events (deployment_id, service, status, message, at)
		VALUES (?, ?, ?, ?, ?)`, e.DeploymentID, e.Service, string(e.Status), e.Message, unixNano(e.At))
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if keep, due := s.trim.due(e.Service); due {
		// The index on (service, id) walks the newest keep, then deletes the
		// older ones.
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE service = ?1 AND id <= (
			SELECT id FROM events WHERE service = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)`, e.Service, keep); err != nil {
			return 0, err
		}
	}
	return id, nil
}
