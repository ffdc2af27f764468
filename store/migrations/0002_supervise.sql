-- 0002_supervise: what Clank keeps of a deployment's life after its cutover
-- (DESIGN.md "After the cutover"): the service's watch policy, restarts and
-- the last exit of an ACTIVE deployment's container, its watch window, and
-- the warm standby a replaced deployment leaves during that window.

-- The service's policy (JSON of store.Policy). It belongs to the service and
-- is never part of a deployment's snapshot. Services made before this
-- migration get the defaults (store.DefaultPolicy).
ALTER TABLE services ADD COLUMN policy TEXT NOT NULL
    DEFAULT '{"auto_rollback":false,"watch_window":300000000000,"watch_failures":3,"watch_5xx":0.5,"keep_warm":true}';

-- How often the engine started an ACTIVE deployment's crashed container
-- again, and how it last ended ("exit 137 (OOM killed)").
ALTER TABLE deployments ADD COLUMN restarts INTEGER NOT NULL DEFAULT 0 CHECK (restarts >= 0);
ALTER TABLE deployments ADD COLUMN last_exit TEXT NOT NULL DEFAULT '';

-- The watch window after the cutover: until when, under which policy (the
-- service's at the cutover, JSON of store.Policy), and what tripped it.
ALTER TABLE deployments ADD COLUMN watch_until INTEGER;
ALTER TABLE deployments ADD COLUMN watch_policy TEXT NOT NULL DEFAULT '';
ALTER TABLE deployments ADD COLUMN watch_tripped TEXT NOT NULL DEFAULT '';

-- A replaced deployment whose container keeps running out of the route until
-- warm_until, ready to be adopted by a rollback.
ALTER TABLE deployments ADD COLUMN warm_until INTEGER;
CREATE INDEX deployments_warm ON deployments(warm_until) WHERE warm_until IS NOT NULL;

-- The dev.clank.deployment label of the deployment's container: '' for its
-- own id; the creating deployment's id when it adopted a warm standby
-- (Docker cannot relabel a container).
ALTER TABLE deployments ADD COLUMN container_label TEXT NOT NULL DEFAULT '';
