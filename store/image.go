package store

import (
	"context"
	"fmt"
)

// SetImage records the digest and source of a deployment whose image was
// pulled during DEPLOYING. It sets them once: a deployment's pinned image
// never changes after it is known.
func (s *Store) SetImage(ctx context.Context, id, digest, source string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE deployments SET image_digest = ?, image_source = ? WHERE id = ? AND image_digest = ''`,
		digest, source, id)
	if err == nil {
		var n int64
		if n, err = res.RowsAffected(); err == nil && n == 0 {
			err = fmt.Errorf("%w (or its digest is already set)", ErrNotFound)
		}
	}
	if err != nil {
		return fmt.Errorf("set image of deployment %s: %w", id, err)
	}
	return nil
}
