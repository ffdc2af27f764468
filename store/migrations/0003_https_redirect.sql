-- 0003_https_redirect: whether plain-HTTP requests for a service's domains
-- that have a certificate are redirected to HTTPS. It is the service's edge
-- policy, not part of a deployment's snapshot: a rollback leaves it alone, and
-- a change takes effect at once. On by default (it matters only with HTTPS on).

ALTER TABLE services ADD COLUMN https_redirect INTEGER NOT NULL DEFAULT 1 CHECK (https_redirect IN (0, 1));
