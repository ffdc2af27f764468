// Package edge is Clank's in-process HTTP edge router: every request to a service
// reaches its container through here.
//
// The router picks a backend by the request's Host header from an immutable routing
// table held behind an atomic pointer, so a blue-green switch (SetRoute) is one pointer
// swap and the request path takes no lock. Each backend counts its requests in flight,
// upgraded (WebSocket) connections and streaming responses included, so the engine can
// Drain the old backend after a switch: requests that started there finish there, and
// whatever is left when the drain timeout ends is closed.
package edge
