package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

const deploymentColumns = `id, number, service, kind, source_deployment_id, config, image_digest,
	image_source, triggered_by, status, failure_reason, replicas, ` + replicaColumn + `,
	created_at, activated_at, ended_at, schema, restarts, last_exit, watch_until,
	watch_policy, watch_tripped, warm_until`

// replicaColumn reads a deployment's containers (the replicas table) as one
// JSON array of [slot, container_id, host_port, container_label], so that a
// list of deployments stays one query.
const replicaColumn = `(SELECT json_group_array(json_array(r.slot, r.container_id, r.host_port, r.container_label))
	FROM replicas r WHERE r.deployment_id = deployments.id)`

// CreateDeployment stores d, a new deployment whose ID the caller chose. In
// one transaction it numbers d (the service's highest number plus one), and
// writes its first event ("created"). Status defaults to DEPLOYING and cannot
// be ACTIVE (see Activate); CreatedAt defaults to now. A new deployment has
// no run state yet: FailureReason, Containers, ActivatedAt and EndedAt are
// stored empty and cleared in *d. Replicas defaults to 1. On success
// d.Number is set.
func (s *Store) CreateDeployment(ctx context.Context, d *Deployment) error {
	if err := s.createDeployment(ctx, d); err != nil {
		return fmt.Errorf("create deployment %s of %s: %w", d.ID, d.Service, err)
	}
	return nil
}

func (s *Store) createDeployment(ctx context.Context, d *Deployment) error {
	if d.ID == "" {
		return errors.New("empty id")
	}
	switch d.Kind {
	case KindDeploy, KindRedeploy, KindRollback:
	default:
		return fmt.Errorf("invalid kind %q", d.Kind)
	}
	switch d.ImageSource {
	case "", SourceRegistry, SourceExternal, SourceLocal:
	default:
		return fmt.Errorf("invalid image source %q", d.ImageSource)
	}
	status := d.Status
	if status == "" {
		status = StatusDeploying
	}
	if !validStatus(status) {
		return fmt.Errorf("invalid status %q", status)
	}
	if status == StatusActive {
		return errors.New("a deployment is created before it is ACTIVE: use Activate")
	}
	cfg, err := encodeConfig(d.Config)
	if err != nil {
		return err
	}
	created := d.CreatedAt
	if created.IsZero() {
		created = now()
	}
	if d.Replicas == 0 {
		d.Replicas = 1
	}
	if d.Replicas < 1 {
		return fmt.Errorf("invalid replica count %d", d.Replicas)
	}

	var number int
	err = s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM services WHERE name = ? AND deleted_at IS NULL`, d.Service).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("service %s: %w", d.Service, ErrNotFound)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE id = ?`, d.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		if d.SourceDeploymentID != "" {
			err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE id = ? AND service = ?`,
				d.SourceDeploymentID, d.Service).Scan(&n)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("source deployment %s: %w", d.SourceDeploymentID, ErrNotFound)
			}
		}
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(number), 0) + 1 FROM deployments WHERE service = ?`,
			d.Service).Scan(&number); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO deployments (id, number, service, kind, source_deployment_id,
			config, image_digest, image_source, triggered_by, status, created_at, schema, replicas)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, number, d.Service, string(d.Kind), nullString(d.SourceDeploymentID),
			cfg, d.ImageDigest, d.ImageSource, d.TriggeredBy, string(status), unixNano(created), d.Schema, d.Replicas)
		if err != nil {
			return err
		}
		_, err = s.addEvent(ctx, tx, Event{DeploymentID: d.ID, Service: d.Service, Status: status, Message: "created", At: created})
		return err
	})
	if err != nil {
		return err
	}
	d.Number = number
	d.Status = status
	d.CreatedAt = created
	d.FailureReason, d.Containers, d.ContainerID, d.HostPort = "", nil, "", 0
	d.ActivatedAt, d.EndedAt = nil, nil
	d.Restarts, d.LastExit = 0, ""
	d.WatchUntil, d.WatchPolicy, d.WatchTripped, d.WarmUntil = nil, Policy{}, "", nil
	return nil
}

// GetDeployment returns the deployment with this id.
func (s *Store) GetDeployment(ctx context.Context, id string) (Deployment, error) {
	d, err := getDeployment(ctx, s.r, id)
	if err != nil {
		return Deployment{}, fmt.Errorf("get deployment %s: %w", id, err)
	}
	return d, nil
}

// GetDeploymentByNumber returns a service's deployment by its number.
func (s *Store) GetDeploymentByNumber(ctx context.Context, service string, number int) (Deployment, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE service = ? AND number = ?`,
		service, number)
	d, err := scanDeployment(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Deployment{}, fmt.Errorf("get deployment #%d of %s: %w", number, service, err)
	}
	return d, nil
}

// ListDeployments returns up to limit deployments of a service, newest
// (highest number) first, starting below beforeNumber. beforeNumber <= 0
// starts from the newest; limit <= 0 means no limit. For the next page, pass
// the last number returned.
func (s *Store) ListDeployments(ctx context.Context, service string, limit int, beforeNumber int) ([]Deployment, error) {
	before := int64(beforeNumber)
	if before <= 0 {
		before = math.MaxInt64
	}
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	ds, err := scanDeployments(s.listNewest.QueryContext(ctx, service, before, limit))
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s: %w", service, err)
	}
	return ds, nil
}

const listDeploymentsQuery = `SELECT ` + deploymentColumns + ` FROM deployments
	WHERE service = ? AND number < ? ORDER BY number DESC LIMIT ?`

// CountDeployments returns how many deployments a service has.
func (s *Store) CountDeployments(ctx context.Context, service string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE service = ?`, service).Scan(&n); err != nil {
		return 0, fmt.Errorf("count deployments of %s: %w", service, err)
	}
	return n, nil
}

// ListDeploymentsByStatus returns the deployments of every service whose
// status is one of statuses, by service then number. No statuses, no
// deployments.
func (s *Store) ListDeploymentsByStatus(ctx context.Context, statuses ...Status) ([]Deployment, error) {
	if len(statuses) == 0 {
		return []Deployment{}, nil
	}
	args := make([]any, len(statuses))
	for i, st := range statuses {
		args[i] = string(st)
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(statuses)), ", ")
	ds, err := scanDeployments(s.r.QueryContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE status IN (`+marks+`) ORDER BY service, number`, args...))
	if err != nil {
		return nil, fmt.Errorf("list deployments by status: %w", err)
	}
	return ds, nil
}

// LastActivated returns the service's deployment that most recently became
// ACTIVE (by ActivatedAt), other than excludeID: the default rollback target
// when excludeID is the current ACTIVE one. ErrNotFound if there is none.
func (s *Store) LastActivated(ctx context.Context, service string, excludeID string) (Deployment, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE service = ? AND activated_at IS NOT NULL AND id <> ?
		ORDER BY activated_at DESC, number DESC LIMIT 1`, service, excludeID)
	d, err := scanDeployment(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Deployment{}, fmt.Errorf("last activated deployment of %s: %w", service, err)
	}
	return d, nil
}

// SetStatus moves a deployment to status and records an event with msg, in
// one transaction. FAILED also stores msg as the failure reason; INACTIVE,
// FAILED and CANCELLED set EndedAt (once). A deployment that leaves ACTIVE
// this way stops being its service's active deployment. ACTIVE itself is
// refused: use Activate. It returns the updated deployment.
func (s *Store) SetStatus(ctx context.Context, id string, status Status, msg string) (Deployment, error) {
	var d Deployment
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		d, err = s.setStatus(ctx, tx, id, status, msg)
		return err
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("set status of deployment %s to %s: %w", id, status, err)
	}
	return d, nil
}

// Fail marks a deployment FAILED with reason: SetStatus(ctx, id, StatusFailed, reason).
func (s *Store) Fail(ctx context.Context, id string, reason string) (Deployment, error) {
	return s.SetStatus(ctx, id, StatusFailed, reason)
}

func (s *Store) setStatus(ctx context.Context, tx *sql.Tx, id string, status Status, msg string) (Deployment, error) {
	if !validStatus(status) {
		return Deployment{}, fmt.Errorf("invalid status %q", status)
	}
	if status == StatusActive {
		return Deployment{}, errors.New("use Activate to make a deployment ACTIVE")
	}
	d, err := getDeployment(ctx, tx, id)
	if err != nil {
		return Deployment{}, err
	}
	t := now()
	d.Status = status
	if status == StatusFailed {
		d.FailureReason = msg
	}
	if (status == StatusInactive || status == StatusFailed || status == StatusCancelled) && d.EndedAt == nil {
		d.EndedAt = &t
	}
	if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = ?, failure_reason = ?, ended_at = ? WHERE id = ?`,
		string(d.Status), d.FailureReason, nullTime(d.EndedAt), id); err != nil {
		return Deployment{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE services SET active_deployment_id = NULL
		WHERE name = ? AND active_deployment_id = ?`, d.Service, id); err != nil {
		return Deployment{}, err
	}
	if _, err := s.addEvent(ctx, tx, Event{DeploymentID: id, Service: d.Service, Status: status, Message: msg, At: t}); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

// SetReplica records the container of deployment id's replica r.Slot (its
// host port on 127.0.0.1, and the label it carries: r.Label "" or id for the
// deployment's own), replacing the slot's previous container.
func (s *Store) SetReplica(ctx context.Context, id string, r Replica) error {
	if r.Label == id {
		r.Label = ""
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM deployments WHERE id = ?`, id).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO replicas (deployment_id, slot, container_id, host_port, container_label)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (deployment_id, slot) DO UPDATE
			SET container_id = excluded.container_id, host_port = excluded.host_port, container_label = excluded.container_label`,
			id, r.Slot, r.ContainerID, r.HostPort, r.Label)
		return err
	})
	if err != nil {
		return fmt.Errorf("set replica %d of deployment %s: %w", r.Slot, id, err)
	}
	return nil
}

// RemoveReplica forgets the container of deployment id's replica slot (it
// was scaled away); a slot with none is not an error.
func (s *Store) RemoveReplica(ctx context.Context, id string, slot int) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM replicas WHERE deployment_id = ? AND slot = ?`, id, slot); err != nil {
		return fmt.Errorf("remove replica %d of deployment %s: %w", slot, id, err)
	}
	return nil
}

// Scale sets the replica count of service and of its deployment id (the
// ACTIVE one, scaled in place) to n, with an event that says msg, in one
// transaction; id "" sets the service's alone. It returns the deployment
// (zero when id is "").
func (s *Store) Scale(ctx context.Context, service, id string, n int, msg string) (Deployment, error) {
	if n < 1 {
		return Deployment{}, fmt.Errorf("scale %s: invalid replica count %d", service, n)
	}
	var d Deployment
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE services SET replicas = ?, updated_at = ? WHERE name = ? AND deleted_at IS NULL`,
			n, unixNano(now()), service)
		if err != nil {
			return err
		}
		if k, err := res.RowsAffected(); err != nil {
			return err
		} else if k == 0 {
			return ErrNotFound
		}
		if id == "" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE deployments SET replicas = ? WHERE id = ? AND service = ?`, n, id, service); err != nil {
			return err
		}
		if d, err = getDeployment(ctx, tx, id); err != nil {
			return err
		}
		_, err = s.addEvent(ctx, tx, Event{DeploymentID: id, Service: service, Status: d.Status, Message: msg, At: now()})
		return err
	})
	if err != nil {
		return Deployment{}, fmt.Errorf("scale %s to %d: %w", service, n, err)
	}
	return d, nil
}

// Activate makes a deployment its service's ACTIVE one, in one transaction:
// it becomes ACTIVE (ActivatedAt is set the first time only, EndedAt is
// cleared), the service's ActiveDeploymentID points at it, and the service's
// previously ACTIVE deployment, if any and different, becomes DRAINING. Each
// change gets an event. It returns the activated deployment and the previous
// one (zero if none). FAILED and CANCELLED deployments cannot be activated.
func (s *Store) Activate(ctx context.Context, id string) (Deployment, Deployment, error) {
	var d, prev Deployment
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if d, err = getDeployment(ctx, tx, id); err != nil {
			return err
		}
		if d.Status == StatusFailed || d.Status == StatusCancelled {
			return fmt.Errorf("deployment is %s", d.Status)
		}
		t := now()
		row := tx.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
			WHERE service = ? AND status = 'ACTIVE' AND id <> ?`, d.Service, id)
		prev, err = scanDeployment(row)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			prev = Deployment{}
		case err != nil:
			return err
		default:
			prev.Status = StatusDraining
			if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = ? WHERE id = ?`,
				string(prev.Status), prev.ID); err != nil {
				return err
			}
			msg := fmt.Sprintf("draining: replaced by #%d", d.Number)
			if _, err := s.addEvent(ctx, tx, Event{DeploymentID: prev.ID, Service: prev.Service,
				Status: prev.Status, Message: msg, At: t}); err != nil {
				return err
			}
		}
		if d.Status != StatusActive {
			d.Status = StatusActive
			if d.ActivatedAt == nil {
				d.ActivatedAt = &t
			}
			d.EndedAt = nil
			if _, err := tx.ExecContext(ctx, `UPDATE deployments SET status = ?, activated_at = ?, ended_at = NULL
				WHERE id = ?`, string(d.Status), nullTime(d.ActivatedAt), id); err != nil {
				return err
			}
			if _, err := s.addEvent(ctx, tx, Event{DeploymentID: id, Service: d.Service,
				Status: d.Status, Message: "activated", At: t}); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE services SET active_deployment_id = ? WHERE name = ?`, id, d.Service)
		return err
	})
	if err != nil {
		return Deployment{}, Deployment{}, fmt.Errorf("activate deployment %s: %w", id, err)
	}
	return d, prev, nil
}

func validStatus(s Status) bool {
	switch s {
	case StatusDeploying, StatusHealthChecking, StatusActive, StatusDraining,
		StatusInactive, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

func getDeployment(ctx context.Context, q queryer, id string) (Deployment, error) {
	row := q.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = ?`, id)
	d, err := scanDeployment(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Deployment{}, ErrNotFound
	}
	return d, err
}

// scanDeployments reads the deployments of a query's result:
// scanDeployments(db.QueryContext(...)).
func scanDeployments(rows *sql.Rows, err error) ([]Deployment, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	ds := []Deployment{}
	for rows.Next() {
		d, err := scanDeployment(rows)
		if err != nil {
			return nil, err
		}
		ds = append(ds, d)
	}
	return ds, rows.Err()
}

func scanDeployment(sc scanner) (Deployment, error) {
	var (
		d                                   Deployment
		kind, status, cfg, policy, replicas string
		source                              sql.NullString
		created                             int64
		activated, endedAt                  sql.NullInt64
		watchUntil, warmUntil               sql.NullInt64
	)
	err := sc.Scan(&d.ID, &d.Number, &d.Service, &kind, &source, &cfg, &d.ImageDigest,
		&d.ImageSource, &d.TriggeredBy, &status, &d.FailureReason, &d.Replicas, &replicas,
		&created, &activated, &endedAt, &d.Schema, &d.Restarts, &d.LastExit, &watchUntil,
		&policy, &d.WatchTripped, &warmUntil)
	if err != nil {
		return Deployment{}, err
	}
	if d.Config, err = decodeConfig(cfg); err != nil {
		return Deployment{}, fmt.Errorf("deployment %s: %w", d.ID, err)
	}
	if policy != "" {
		if d.WatchPolicy, err = decodePolicy(policy); err != nil {
			return Deployment{}, fmt.Errorf("deployment %s: %w", d.ID, err)
		}
	}
	if d.Containers, err = decodeReplicas(replicas); err != nil {
		return Deployment{}, fmt.Errorf("deployment %s: %w", d.ID, err)
	}
	if len(d.Containers) > 0 {
		d.ContainerID, d.HostPort = d.Containers[0].ContainerID, d.Containers[0].HostPort
	}
	d.WatchUntil = timePtr(watchUntil)
	d.WarmUntil = timePtr(warmUntil)
	d.Kind = Kind(kind)
	d.Status = Status(status)
	d.SourceDeploymentID = source.String
	d.CreatedAt = fromUnixNano(created)
	d.ActivatedAt = timePtr(activated)
	d.EndedAt = timePtr(endedAt)
	return d, nil
}

// decodeReplicas reads replicaColumn's JSON, by slot.
func decodeReplicas(s string) ([]Replica, error) {
	var rows [][4]any
	if err := json.Unmarshal([]byte(s), &rows); err != nil {
		return nil, fmt.Errorf("decode replicas: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	out := make([]Replica, 0, len(rows))
	for _, row := range rows {
		slot, _ := row[0].(float64)
		id, _ := row[1].(string)
		port, _ := row[2].(float64)
		label, _ := row[3].(string)
		out = append(out, Replica{Slot: int(slot), ContainerID: id, HostPort: int(port), Label: label})
	}
	slices.SortFunc(out, func(a, b Replica) int { return a.Slot - b.Slot })
	return out, nil
}
