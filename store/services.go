package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// CreateService stores a new service and claims its domains. CreatedAt and
// UpdatedAt are set to now when zero; ActiveDeploymentID, Freeze and
// HeldImage are ignored (a new service has none). A service of that name that
// was deleted without purge comes back with its deployment history.
func (s *Store) CreateService(ctx context.Context, svc Service) error {
	if svc.Name == "" {
		return errors.New("create service: empty name")
	}
	cfg, err := encodeConfig(svc.Config)
	if err != nil {
		return fmt.Errorf("create service %s: %w", svc.Name, err)
	}
	policy, err := encodePolicy(svc.Policy)
	if err != nil {
		return fmt.Errorf("create service %s: %w", svc.Name, err)
	}
	if svc.Replicas == 0 {
		svc.Replicas = 1
	}
	t := now()
	if svc.CreatedAt.IsZero() {
		svc.CreatedAt = t
	}
	if svc.UpdatedAt.IsZero() {
		svc.UpdatedAt = svc.CreatedAt
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		var deleted sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT deleted_at FROM services WHERE name = ?`, svc.Name).Scan(&deleted)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx,
				`INSERT INTO services (name, config, policy, git_branch, push_builds, https_redirect, replicas, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				svc.Name, cfg, policy, gitBranch(svc.Git), svc.Git.PushBuilds, svc.HTTPSRedirect, svc.Replicas, unixNano(svc.CreatedAt), unixNano(svc.UpdatedAt))
		case err != nil:
		case !deleted.Valid:
			err = ErrExists
		default:
			_, err = tx.ExecContext(ctx, `UPDATE services SET config = ?, policy = ?, git_branch = ?, push_builds = ?, https_redirect = ?, replicas = ?, active_deployment_id = NULL,
				frozen_at = NULL, frozen_by = '', frozen_reason = '', held_image = '', deleted_at = NULL,
				created_at = ?, updated_at = ? WHERE name = ?`,
				cfg, policy, gitBranch(svc.Git), svc.Git.PushBuilds, svc.HTTPSRedirect, svc.Replicas, unixNano(svc.CreatedAt), unixNano(svc.UpdatedAt), svc.Name)
		}
		if err != nil {
			return err
		}
		return claimDomains(ctx, tx, svc.Name, svc.Config.Domains)
	})
	if err != nil {
		return fmt.Errorf("create service %s: %w", svc.Name, err)
	}
	return nil
}

// UpdateService replaces a service's config, policy, git settings, HTTPS
// redirect and replica count (0 keeps it) and, in the same transaction, the
// set of domains it owns.
// UpdatedAt is set to now when zero. CreatedAt, ActiveDeploymentID (Activate
// owns it), Freeze and HeldImage are not changed.
func (s *Store) UpdateService(ctx context.Context, svc Service) error {
	cfg, err := encodeConfig(svc.Config)
	if err != nil {
		return fmt.Errorf("update service %s: %w", svc.Name, err)
	}
	policy, err := encodePolicy(svc.Policy)
	if err != nil {
		return fmt.Errorf("update service %s: %w", svc.Name, err)
	}
	if svc.UpdatedAt.IsZero() {
		svc.UpdatedAt = now()
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE services SET config = ?, policy = ?, git_branch = ?, push_builds = ?, https_redirect = ?,
			replicas = CASE WHEN ? > 0 THEN ? ELSE replicas END, updated_at = ?
			WHERE name = ? AND deleted_at IS NULL`,
			cfg, policy, gitBranch(svc.Git), svc.Git.PushBuilds, svc.HTTPSRedirect, svc.Replicas, svc.Replicas, unixNano(svc.UpdatedAt), svc.Name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return claimDomains(ctx, tx, svc.Name, svc.Config.Domains)
	})
	if err != nil {
		return fmt.Errorf("update service %s: %w", svc.Name, err)
	}
	return nil
}

// DeleteService deletes a service and frees its domains. Its deployments
// are history and stay, unless purge (or it has none): a deployment that was
// ACTIVE or draining becomes INACTIVE, one caught in progress FAILED, each
// with an event, and the service is marked deleted (a service created again
// under its name gets the history back). With purge the service, its
// deployments, their events and kept logs are deleted outright, a service deleted
// earlier without purge included. The caller makes sure nothing is in
// progress and the containers are gone.
func (s *Store) DeleteService(ctx context.Context, name string, purge bool) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM services WHERE name = ? AND (deleted_at IS NULL OR ?)`,
			name, purge).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE service = ?`, name).Scan(&n); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM service_domains WHERE service = ?`, name); err != nil {
			return err
		}
		if purge || n == 0 {
			for _, q := range []string{
				`UPDATE services SET active_deployment_id = NULL WHERE name = ?`,
				`DELETE FROM events WHERE deployment_id IN (SELECT id FROM deployments WHERE service = ?)`,
				`DELETE FROM kept_logs WHERE service = ?`,
				`DELETE FROM replicas WHERE deployment_id IN (SELECT id FROM deployments WHERE service = ?)`,
				`DELETE FROM deployments WHERE service = ?`,
				`DELETE FROM services WHERE name = ?`,
			} {
				if _, err := tx.ExecContext(ctx, q, name); err != nil {
					return err
				}
			}
			return nil
		}
		ds, err := scanDeployments(tx.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
			WHERE service = ? AND status IN ('DEPLOYING', 'HEALTH_CHECKING', 'ACTIVE', 'DRAINING')`, name))
		if err != nil {
			return err
		}
		for _, d := range ds {
			status := StatusInactive
			if d.Status.InProgress() {
				status = StatusFailed
			}
			if _, err := s.setStatus(ctx, tx, d.ID, status, "service deleted"); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE services SET active_deployment_id = NULL, frozen_at = NULL, frozen_by = '',
			frozen_reason = '', held_image = '', deleted_at = ? WHERE name = ?`, unixNano(now()), name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete service %s: %w", name, err)
	}
	return nil
}

// GetService returns the named service.
func (s *Store) GetService(ctx context.Context, name string) (Service, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE name = ? AND deleted_at IS NULL`, name)
	svc, err := scanService(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Service{}, fmt.Errorf("get service %s: %w", name, err)
	}
	return svc, nil
}

// ListServices returns every service, by name.
func (s *Store) ListServices(ctx context.Context) ([]Service, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+serviceColumns+` FROM services WHERE deleted_at IS NULL ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	defer rows.Close()
	svcs := []Service{}
	for rows.Next() {
		svc, err := scanService(rows)
		if err != nil {
			return nil, fmt.Errorf("list services: %w", err)
		}
		svcs = append(svcs, svc)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	return svcs, nil
}

// domainOwner returns the name of the service that owns domain (compared
// case-insensitively, trailing dot ignored).
func (s *Store) domainOwner(ctx context.Context, domain string) (string, error) {
	var owner string
	err := s.r.QueryRowContext(ctx, `SELECT service FROM service_domains WHERE domain = ?`,
		NormalizeDomain(domain)).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("domain owner of %s: %w", domain, err)
	}
	return owner, nil
}

// claimDomains makes domains the exact set service owns, or fails with a
// *DomainTakenError if another service owns one of them.
func claimDomains(ctx context.Context, tx *sql.Tx, service string, domains []string) error {
	seen := make(map[string]bool, len(domains))
	var claim []string
	for _, d := range domains {
		nd := NormalizeDomain(d)
		if nd == "" {
			return errors.New("empty domain")
		}
		if seen[nd] {
			continue
		}
		seen[nd] = true
		var owner string
		err := tx.QueryRowContext(ctx, `SELECT service FROM service_domains WHERE domain = ?`, nd).Scan(&owner)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case owner != service:
			return &DomainTakenError{Domain: nd, Service: owner}
		}
		claim = append(claim, nd)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM service_domains WHERE service = ?`, service); err != nil {
		return err
	}
	for _, d := range claim {
		if _, err := tx.ExecContext(ctx, `INSERT INTO service_domains (domain, service) VALUES (?, ?)`, d, service); err != nil {
			return err
		}
	}
	return nil
}

// NormalizeDomain is the form a domain is owned, stored and routed under:
// host names are case-insensitive and "a.com." is "a.com". The engine's
// checks and the edge router's lookups ask here too.
func NormalizeDomain(d string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(d)), ".")
}

const serviceColumns = `name, config, active_deployment_id, created_at, updated_at,
	git_branch, push_builds, frozen_at, frozen_by, frozen_reason, held_image, https_redirect, policy, replicas`

func gitBranch(g GitSettings) string {
	if g.Branch == "" {
		return DefaultGitBranch
	}
	return g.Branch
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanService(sc scanner) (Service, error) {
	var (
		svc              Service
		cfg, policy      string
		active           sql.NullString
		created, updated int64
		frozenAt         sql.NullInt64
		frozenBy, why    string
	)
	if err := sc.Scan(&svc.Name, &cfg, &active, &created, &updated,
		&svc.Git.Branch, &svc.Git.PushBuilds, &frozenAt, &frozenBy, &why, &svc.HeldImage, &svc.HTTPSRedirect, &policy, &svc.Replicas); err != nil {
		return Service{}, err
	}
	if frozenAt.Valid {
		svc.Freeze = &Freeze{By: frozenBy, At: fromUnixNano(frozenAt.Int64), Reason: why}
	}
	p, err := decodePolicy(policy)
	if err != nil {
		return Service{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	svc.Policy = p
	c, err := decodeConfig(cfg)
	if err != nil {
		return Service{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	svc.Config = c
	svc.ActiveDeploymentID = active.String
	svc.CreatedAt = fromUnixNano(created)
	svc.UpdatedAt = fromUnixNano(updated)
	return svc, nil
}
