//go:build !unix

package edge

// peek cannot look at a socket here: no connection is reused.
func (c *backendConn) peek() connState { return connUncertain }
