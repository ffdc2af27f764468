package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// GetMeta returns a value of the key/value table (the daemon's instance id,
// for one).
func (s *Store) GetMeta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("get meta %s: %w", key, err)
	}
	return v, nil
}

// SetMeta sets a value of the key/value table.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	if err != nil {
		return fmt.Errorf("set meta %s: %w", key, err)
	}
	return nil
}

// GetAvailability returns what was last recorded about an image's
// availability, keyed by digest or reference.
func (s *Store) GetAvailability(ctx context.Context, key string) (Availability, error) {
	a := Availability{Key: key}
	var checked int64
	err := s.r.QueryRowContext(ctx, `SELECT state, via, reason, checked_at FROM availability WHERE key = ?`, key).
		Scan(&a.State, &a.Via, &a.Reason, &checked)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Availability{}, fmt.Errorf("get availability of %s: %w", key, err)
	}
	a.CheckedAt = fromUnixNano(checked)
	return a, nil
}

// PutAvailability records an image's availability, replacing what was there.
// CheckedAt defaults to now.
func (s *Store) PutAvailability(ctx context.Context, a Availability) error {
	switch a.State {
	case AvailabilityAvailable, AvailabilityMissing, AvailabilityUnknown:
	default:
		return fmt.Errorf("put availability of %s: invalid state %q", a.Key, a.State)
	}
	if a.CheckedAt.IsZero() {
		a.CheckedAt = now()
	}
	switch a.Via {
	case "", ViaRegistry, ViaLocal:
	default:
		return fmt.Errorf("put availability of %s: invalid via %q", a.Key, a.Via)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO availability (key, state, via, reason, checked_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET state = excluded.state, via = excluded.via, reason = excluded.reason,
		checked_at = excluded.checked_at`,
		a.Key, a.State, a.Via, a.Reason, unixNano(a.CheckedAt))
	if err != nil {
		return fmt.Errorf("put availability of %s: %w", a.Key, err)
	}
	return nil
}
