// Package registry is the embedded Clank registry and the image availability
// checker.
//
// Server wraps distribution's registry application (filesystem storage,
// deletes enabled) on a listener Clank owns, adds the OCI referrers API that
// distribution v3.1.2 lacks, and runs a stop-the-world garbage collection
// that never removes a manifest a deployment still needs.
//
// Checker answers "does its registry still hold this deployment's image?"
// with a manifest HEAD (never a pull), deduplicating per digest and bounding
// concurrency; Images is the engine's ImageChecker on top of it, and the rule
// for "is this the Clank registry" (IsClankRegistry). The local engine's
// copies are the engine's to check.
package registry
