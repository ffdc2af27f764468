package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// SetFreeze freezes pushes for a service (f not nil: a later freeze replaces
// an earlier one) or lifts the freeze (f nil). It returns the freeze that was
// in place before, if any.
func (s *Store) SetFreeze(ctx context.Context, service string, f *Freeze) (*Freeze, error) {
	var before *Freeze
	err := s.write(ctx, func(tx *sql.Tx) error {
		svc, err := scanService(tx.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE name = ? AND deleted_at IS NULL`, service))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		before = svc.Freeze
		if f == nil {
			_, err = tx.ExecContext(ctx, `UPDATE services SET frozen_at = NULL, frozen_by = '', frozen_reason = '' WHERE name = ?`, service)
			return err
		}
		at := f.At
		if at.IsZero() {
			at = now()
		}
		_, err = tx.ExecContext(ctx, `UPDATE services SET frozen_at = ?, frozen_by = ?, frozen_reason = ? WHERE name = ?`,
			unixNano(at), f.By, f.Reason, service)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("set freeze of service %s: %w", service, err)
	}
	return before, nil
}

// SetHeldImage records the image a push built while the service was frozen
// ("" once it is deployed or replaced).
func (s *Store) SetHeldImage(ctx context.Context, service, image string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE services SET held_image = ? WHERE name = ? AND deleted_at IS NULL`, image, service)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = ErrNotFound
		}
	}
	if err != nil {
		return fmt.Errorf("set held image of service %s: %w", service, err)
	}
	return nil
}
