package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// The run fields of a deployment's life after its cutover
// (docs/architecture.md, "After the cutover"): exits and restarts, the watch
// window, the warm standby.
// Each change and its event are written in one transaction.

// RecordExit records how an ACTIVE deployment's container ended
// ("exit 137 (OOM killed)"), with an event that says msg.
func (s *Store) RecordExit(ctx context.Context, id, lastExit, msg string) (Deployment, error) {
	return s.updateRun(ctx, id, "record exit", msg, `last_exit = ?`, lastExit)
}

// RecordRestart counts one more start of an ACTIVE deployment's crashed
// container, with an event that says msg.
func (s *Store) RecordRestart(ctx context.Context, id, msg string) (Deployment, error) {
	return s.updateRun(ctx, id, "record restart", msg, `restarts = restarts + 1`)
}

// StartWatch records the watch window of a deployment that just became
// ACTIVE: until when, and the service's policy it is watched with.
func (s *Store) StartWatch(ctx context.Context, id string, until time.Time, p Policy) (Deployment, error) {
	policy, err := encodePolicy(p)
	if err != nil {
		return Deployment{}, err
	}
	return s.updateRun(ctx, id, "start watch", "", `watch_until = ?, watch_policy = ?`, unixNano(until), policy)
}

// TripWatch records what tripped a deployment's watch, with an event.
func (s *Store) TripWatch(ctx context.Context, id, reason string) (Deployment, error) {
	return s.updateRun(ctx, id, "trip watch", "watch tripped: "+reason, `watch_tripped = ?`, reason)
}

// Standby ends a drained deployment as a warm standby: INACTIVE, its
// container kept running until until. An event says msg.
func (s *Store) Standby(ctx context.Context, id string, until time.Time, msg string) (Deployment, error) {
	var d Deployment
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET warm_until = ? WHERE id = ?`, unixNano(until), id); err != nil {
			return err
		}
		var err error
		d, err = s.setStatus(ctx, tx, id, StatusInactive, msg)
		return err
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("keep deployment %s warm: %w", id, err)
	}
	return d, nil
}

// EndStandby records that a deployment is no longer a warm standby (its
// container was removed, or a rollback adopted it), with an event that says
// msg. ok is false when it was not one: someone else ended it first.
func (s *Store) EndStandby(ctx context.Context, id, msg string) (d Deployment, ok bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deployments SET warm_until = NULL WHERE id = ? AND warm_until IS NOT NULL`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if d, err = getDeployment(ctx, tx, id); err != nil {
			return err
		}
		if ok = n > 0; ok {
			_, err = s.addEvent(ctx, tx, Event{DeploymentID: id, Service: d.Service, Status: d.Status, Message: msg, At: now()})
		}
		return err
	})
	if err != nil {
		return Deployment{}, false, fmt.Errorf("end standby of deployment %s: %w", id, err)
	}
	return d, ok, nil
}

// ListStandbys returns every warm standby, by service then number.
func (s *Store) ListStandbys(ctx context.Context) ([]Deployment, error) {
	ds, err := scanDeployments(s.r.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE warm_until IS NOT NULL ORDER BY service, number`))
	if err != nil {
		return nil, fmt.Errorf("list warm standbys: %w", err)
	}
	return ds, nil
}

// updateRun sets run fields of deployment id (set is the SQL assignment,
// args its values) and, when msg is not "", adds an event with the
// deployment's status, all in one transaction.
func (s *Store) updateRun(ctx context.Context, id, what, msg, set string, args ...any) (Deployment, error) {
	var d Deployment
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE deployments SET `+set+` WHERE id = ?`, append(args, id)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		if d, err = getDeployment(ctx, tx, id); err != nil {
			return err
		}
		if msg != "" {
			_, err = s.addEvent(ctx, tx, Event{DeploymentID: id, Service: d.Service, Status: d.Status, Message: msg, At: now()})
		}
		return err
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("%s of deployment %s: %w", what, id, err)
	}
	return d, nil
}
