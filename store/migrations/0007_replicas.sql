-- 0007_replicas: a service's scale and a deployment's replicas (README,
-- "Replicas"). The count is the service's policy, like its watch policy:
-- never part of a snapshot, so a rollback or redeploy runs at the service's
-- current count. Each deployment records the count it runs with (clank scale
-- changes the ACTIVE one's in place), and each of its containers is a row of
-- replicas, by slot (0 .. replicas-1).

ALTER TABLE services ADD COLUMN replicas INTEGER NOT NULL DEFAULT 1 CHECK (replicas >= 1);
ALTER TABLE deployments ADD COLUMN replicas INTEGER NOT NULL DEFAULT 1 CHECK (replicas >= 1);

-- One row per container a deployment runs in: its host port on 127.0.0.1,
-- and the dev.clank.deployment label it carries ('' for the deployment's own
-- id; another deployment's id when this one adopted that one's warm standby:
-- Docker cannot relabel a container).
CREATE TABLE replicas (
    deployment_id   TEXT NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
    slot            INTEGER NOT NULL CHECK (slot >= 0),
    container_id    TEXT NOT NULL,
    host_port       INTEGER NOT NULL DEFAULT 0,
    container_label TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (deployment_id, slot)
) STRICT;

-- The one container of each deployment made before this migration is its slot 0.
INSERT INTO replicas (deployment_id, slot, container_id, host_port, container_label)
    SELECT id, 0, container_id, host_port, container_label FROM deployments WHERE container_id <> '';
ALTER TABLE deployments DROP COLUMN container_id;
ALTER TABLE deployments DROP COLUMN host_port;
ALTER TABLE deployments DROP COLUMN container_label;
