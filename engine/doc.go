// Package engine deploys, redeploys and rolls back services as Docker
// containers behind the edge router. Every deployment is an immutable snapshot
// that goes DEPLOYING -> HEALTH_CHECKING -> ACTIVE with a blue-green cutover;
// the engine reconciles the store, the router and the runtime after a restart,
// and streams every change to its subscribers (the dashboard, the CLI).
package engine
