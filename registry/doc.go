// Package registry is the embedded Clank registry and the image availability
// checker.
//
// Server wraps distribution's registry application (filesystem storage,
// deletes enabled) on a listener Clank owns, adds the OCI referrers API that
// distribution v3.1.2 lacks, and runs a stop-the-world garbage collection
// that never removes a manifest a deployment still needs.
//
// Checker answers "can this deployment's image still be had?" with a manifest
// HEAD (never a pull) for images in a registry and an engine inspect for
// images built here, deduplicating per digest and bounding concurrency.
package registry
