package ssh

// EventSubscribers counts the sessions subscribed to the server's shared
// event stream.
func (s *Server) EventSubscribers() int { return s.events.subscribers() }
