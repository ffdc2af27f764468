-- 0004: the tail of a container's log, kept when the engine removes the
-- container (a FAILED deployment's, a drained one's, a warm standby's, a
-- deleted service's), so that `clank logs` and the dashboard still show it.
-- Bounded per deployment (lines and bytes, store.SetKeepLogs) and per
-- service (the newest KeepLogDeployments deployments keep theirs); a purge
-- deletes them with the deployments. deployment_id is the deployment the
-- container was made for (its label): a warm standby adopted by a rollback
-- is found by container_id from the deployment that adopted it.

CREATE TABLE kept_logs (
    id            INTEGER PRIMARY KEY,
    deployment_id TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    service       TEXT NOT NULL,
    container_id  TEXT NOT NULL,
    removed_at    INTEGER NOT NULL,
    cut           INTEGER NOT NULL DEFAULT 0 CHECK (cut IN (0, 1)),
    text          BLOB NOT NULL
) STRICT;
CREATE INDEX kept_logs_deployment ON kept_logs(deployment_id, id);
CREATE INDEX kept_logs_container ON kept_logs(container_id);
CREATE INDEX kept_logs_service ON kept_logs(service, id);
