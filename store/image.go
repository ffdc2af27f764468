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

// SetSchema records the dev.clank.schema label of a deployment's image. Like
// the digest it is recorded once: a schema already recorded stays.
func (s *Store) SetSchema(ctx context.Context, id, schema string) error {
	if _, err := s.w.ExecContext(ctx, `UPDATE deployments SET schema = ? WHERE id = ? AND schema = ''`, schema, id); err != nil {
		return fmt.Errorf("set schema of deployment %s: %w", id, err)
	}
	return nil
}

// ImageRef is one pinned image that deployments ran.
type ImageRef struct {
	Source string // SourceRegistry, SourceExternal or SourceLocal
	Image  string // the reference as deployed
	Digest string
}

// Images lists the distinct pinned images of deployments; with
// activatedOnly, of those that were ACTIVE at some point: the ones whose
// availability decides a rollback.
func (s *Store) Images(ctx context.Context, activatedOnly bool) ([]ImageRef, error) {
	q := `SELECT DISTINCT image_source, json_extract(config, '$.image'), image_digest
		FROM deployments WHERE image_digest <> ''`
	if activatedOnly {
		q += ` AND activated_at IS NOT NULL`
	}
	return s.images(ctx, q)
}

// ServiceImages lists the distinct pinned images of service's deployments
// that were ACTIVE at some point: the images of its "Rollback capable" badges.
func (s *Store) ServiceImages(ctx context.Context, service string) ([]ImageRef, error) {
	return s.images(ctx, `SELECT DISTINCT image_source, json_extract(config, '$.image'), image_digest
		FROM deployments WHERE image_digest <> '' AND activated_at IS NOT NULL AND service = ?`, service)
}

func (s *Store) images(ctx context.Context, q string, args ...any) ([]ImageRef, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list activated images: %w", err)
	}
	defer rows.Close()
	out := []ImageRef{}
	for rows.Next() {
		var r ImageRef
		if err := rows.Scan(&r.Source, &r.Image, &r.Digest); err != nil {
			return nil, fmt.Errorf("list activated images: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListAvailability returns every recorded availability.
func (s *Store) ListAvailability(ctx context.Context) ([]Availability, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key, state, via, reason, checked_at FROM availability`)
	if err != nil {
		return nil, fmt.Errorf("list availability: %w", err)
	}
	defer rows.Close()
	out := []Availability{}
	for rows.Next() {
		var a Availability
		var checked int64
		if err := rows.Scan(&a.Key, &a.State, &a.Via, &a.Reason, &checked); err != nil {
			return nil, fmt.Errorf("list availability: %w", err)
		}
		a.CheckedAt = fromUnixNano(checked)
		out = append(out, a)
	}
	return out, rows.Err()
}

// ListActivated returns the service's deployments that were ACTIVE at some
// point, the most recently activated first, plus those in progress or
// draining: what pruning must weigh, without reading every deployment.
func (s *Store) ListActivated(ctx context.Context, service string) ([]Deployment, error) {
	ds, err := scanDeployments(s.r.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE service = ? AND (activated_at IS NOT NULL OR status IN ('DEPLOYING', 'HEALTH_CHECKING', 'DRAINING'))
		ORDER BY activated_at DESC, number DESC`, service))
	if err != nil {
		return nil, fmt.Errorf("list activated deployments of %s: %w", service, err)
	}
	return ds, nil
}
