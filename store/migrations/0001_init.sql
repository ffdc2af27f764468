-- 0001_init: services and the domains they own, deployments (immutable
-- snapshots plus the state of their run), lifecycle events, image availability
-- and a small key/value table. Times are UTC unix nanoseconds (INTEGER).

CREATE TABLE services (
    name                 TEXT PRIMARY KEY,
    config               TEXT NOT NULL,  -- JSON of store.Config (env values included: secrets)
    active_deployment_id TEXT REFERENCES deployments(id),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
) STRICT;

-- One service per domain: the primary key is the rule.
CREATE TABLE service_domains (
    domain  TEXT PRIMARY KEY,  -- lower case, no trailing dot
    service TEXT NOT NULL REFERENCES services(name) ON DELETE CASCADE
) STRICT;
CREATE INDEX service_domains_service ON service_domains(service);

CREATE TABLE deployments (
    id                   TEXT PRIMARY KEY,
    service              TEXT NOT NULL REFERENCES services(name),
    number               INTEGER NOT NULL CHECK (number > 0),
    kind                 TEXT NOT NULL CHECK (kind IN ('deploy', 'redeploy', 'rollback')),
    source_deployment_id TEXT REFERENCES deployments(id),
    config               TEXT NOT NULL,  -- JSON of store.Config: the snapshot
    image_digest         TEXT NOT NULL DEFAULT '',
    image_source         TEXT NOT NULL DEFAULT '' CHECK (image_source IN ('', 'registry', 'external', 'local')),
    triggered_by         TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL CHECK (status IN ('DEPLOYING', 'HEALTH_CHECKING', 'ACTIVE',
                                                         'DRAINING', 'INACTIVE', 'FAILED', 'CANCELLED')),
    failure_reason       TEXT NOT NULL DEFAULT '',
    container_id         TEXT NOT NULL DEFAULT '',
    host_port            INTEGER NOT NULL DEFAULT 0,
    created_at           INTEGER NOT NULL,
    activated_at         INTEGER,
    ended_at             INTEGER,
    -- Its index also serves "newest N of a service" (service = ? ORDER BY number DESC).
    UNIQUE (service, number)
) STRICT;

-- Reconcile looks deployments up by status.
CREATE INDEX deployments_status ON deployments(status);
-- Rollback targets: the most recently activated deployments of a service.
CREATE INDEX deployments_activated ON deployments(service, activated_at)
    WHERE activated_at IS NOT NULL;
-- At most one ACTIVE deployment per service.
CREATE UNIQUE INDEX deployments_one_active ON deployments(service)
    WHERE status = 'ACTIVE';

-- A deployment's snapshot never changes; only its run fields do.
CREATE TRIGGER deployments_snapshot_immutable
BEFORE UPDATE OF id, service, number, kind, source_deployment_id, config,
                 triggered_by, created_at ON deployments
BEGIN
    SELECT RAISE(ABORT, 'deployment snapshot is immutable');
END;
-- The image digest (and its source) may be recorded once, by a deployment
-- created before its image was resolved; a recorded digest never changes.
CREATE TRIGGER deployments_digest_pinned
BEFORE UPDATE OF image_digest, image_source ON deployments
WHEN OLD.image_digest <> ''
     AND (NEW.image_digest IS NOT OLD.image_digest OR NEW.image_source IS NOT OLD.image_source)
BEGIN
    SELECT RAISE(ABORT, 'deployment image digest is pinned');
END;

CREATE TABLE events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    service       TEXT NOT NULL,
    status        TEXT NOT NULL,
    message       TEXT NOT NULL,
    at            INTEGER NOT NULL
) STRICT;
CREATE INDEX events_deployment ON events(deployment_id, id);

-- Image availability, keyed by digest or reference (registry work).
CREATE TABLE availability (
    key        TEXT PRIMARY KEY,
    state      TEXT NOT NULL CHECK (state IN ('available', 'missing', 'unknown')),
    reason     TEXT NOT NULL DEFAULT '',
    checked_at INTEGER NOT NULL
) STRICT;

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;
